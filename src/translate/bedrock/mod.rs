//! The `bedrock` dialect: AWS Bedrock Converse / ConverseStream, spoken for every Bedrock
//! model (translation.md §5.3, §6.3, §8; gateway.md §11). Upstream side only: no client
//! speaks Converse to the gateway.
//!
//! - [`request`]: ir::Request → Converse body (and CountTokens); the decisions the spec
//!   leaves open are listed at the top of that module.
//! - [`response`]: Converse JSON → ir::Response.
//! - [`stream`]: eventstream frames → ir::Event.
//! - [`error`]: error answers → GatewayError.
//! - [`path`]: `/model/{id}/converse[-stream]`, `/model/{id}/count-tokens`.
//!
//! Signing (SigV4, service `bedrock`) is `providers::sigv4`; the framing is `eventstream`.

pub mod error;
pub mod path;
pub mod request;
pub mod response;
pub mod stream;

pub use error::decode_error;
pub use path::{count_tokens_path, model_path};
pub use request::{decode_count_tokens, encode_count_tokens, encode_request};
pub use response::decode_response;
pub use stream::Decoder;
