//! The Anthropic Messages dialect: client side (decode requests, encode answers and
//! streams) and upstream side (encode requests, decode answers and streams).
//!
//! - [`request`]: `/v1/messages` bodies ⇄ [`super::ir::Request`] (hints dropped listed there)
//! - [`response`]: whole messages ⇄ [`super::ir::Response`]
//! - [`stream`]: SSE ⇄ [`super::ir::Event`]s
//! - [`error`]: error envelopes → [`GatewayError`](crate::errors::GatewayError)
//! - [`usage`]: usage counters, and sniffing for the same-dialect (pass-through) path

pub mod error;
pub mod request;
pub mod response;
pub mod stream;
pub mod usage;

pub use error::decode_error;
pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{Decoder, Encoder};
pub use usage::{is_error_event, usage_in_body, usage_in_event};
