//! Translation between dialects, taken only when the client's and the upstream's differ.
//!
//! ```text
//!  client body ──decode_request──► ir::Request ──encode_request──► upstream body
//!  client bytes ◄─encode_response── ir::Response ◄─decode_response── upstream JSON
//!  client SSE  ◄──StreamEncoder──── ir::Event ◄────StreamDecoder──── upstream stream
//! ```
//!
//! One module per dialect (`openai`, `anthropic`, `bedrock`), each holding the sides it
//! has: a client dialect decodes requests and encodes answers, an upstream dialect encodes
//! requests and decodes answers. Their wire structs live in `crate::wire::<dialect>`.
//! Adding a dialect is one module here, its wire file, and one arm in each function below.

pub mod anthropic;
pub mod bedrock;
pub mod ir;
pub mod openai;

use crate::errors::{ClientDialect, GatewayError};
pub use ir::{ClientOpts, Event, Request, Response, StreamDecoder, StreamEncoder, Target};

/// The wire format one target speaks, per (provider, model): Azure speaks OpenAI's chat,
/// Bedrock its Converse for every model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    OpenAiChat,
    AnthropicMessages,
    BedrockConverse,
}

impl Wire {
    /// The client dialect that speaks this wire natively, if any: same dialect in and out
    /// means no translation (spliced and streamed through).
    pub fn native_client(self) -> Option<ClientDialect> {
        match self {
            Wire::OpenAiChat => Some(ClientDialect::OpenAi),
            Wire::AnthropicMessages => Some(ClientDialect::Anthropic),
            Wire::BedrockConverse => None,
        }
    }
}

/// A client's chat request in neutral form.
pub fn decode_request(client: ClientDialect, body: &[u8]) -> Result<Request, GatewayError> {
    match client {
        ClientDialect::OpenAi => openai::decode_request(body),
        ClientDialect::Anthropic => anthropic::decode_request(body),
    }
}

/// The body one target gets. Refuses (400 naming field and provider) what it cannot carry.
pub fn encode_request(wire: Wire, req: &Request, target: &Target) -> Result<Vec<u8>, GatewayError> {
    if let Some(field) = req.untranslatable.first() {
        return Err(GatewayError::bad_request(format!(
            "`{field}` cannot be translated for provider `{}`",
            target.provider
        )));
    }
    match wire {
        Wire::OpenAiChat => openai::encode_request(req, target),
        Wire::AnthropicMessages => anthropic::encode_request(req, target),
        Wire::BedrockConverse => bedrock::encode_request(req, target),
    }
}

/// An upstream's whole (non-streamed) answer in neutral form.
pub fn decode_response(wire: Wire, body: &[u8]) -> Result<Response, GatewayError> {
    match wire {
        Wire::OpenAiChat => openai::decode_response(body),
        Wire::AnthropicMessages => anthropic::decode_response(body),
        Wire::BedrockConverse => bedrock::decode_response(body),
    }
}

/// The client's JSON for a whole answer.
pub fn encode_response(client: ClientDialect, resp: &Response, opts: &ClientOpts) -> Vec<u8> {
    match client {
        ClientDialect::OpenAi => openai::encode_response(resp, opts),
        ClientDialect::Anthropic => anthropic::encode_response(resp, opts),
    }
}

pub fn stream_decoder(wire: Wire, max_event: usize) -> Box<dyn StreamDecoder> {
    match wire {
        Wire::OpenAiChat => Box::new(openai::Decoder::new(max_event)),
        Wire::AnthropicMessages => Box::new(anthropic::Decoder::new(max_event)),
        Wire::BedrockConverse => Box::new(bedrock::Decoder::new(max_event)),
    }
}

pub fn stream_encoder(client: ClientDialect, opts: ClientOpts) -> Box<dyn StreamEncoder> {
    match client {
        ClientDialect::OpenAi => Box::new(openai::Encoder::new(opts)),
        ClientDialect::Anthropic => Box::new(anthropic::Encoder::new(opts)),
    }
}

/// An upstream's error answer as the gateway reports it: status kept, message kept, in
/// neutral form (`GatewayError::body` then writes it in the client's dialect).
/// `error_type`: a header naming the error where the dialect has one (`x-amzn-errortype`).
pub fn decode_error(
    wire: Wire,
    status: u16,
    error_type: Option<&str>,
    body: &[u8],
) -> GatewayError {
    match wire {
        Wire::OpenAiChat => openai::decode_error(status, body),
        Wire::AnthropicMessages => anthropic::decode_error(status, body),
        Wire::BedrockConverse => bedrock::decode_error(status, error_type, body),
    }
}
