//! Provider adapters: one module per upstream dialect behind one small trait.
//!
//! An adapter turns a client request into what one target expects (path, body, headers,
//! credentials) and says how its answer is read back. Adding a dialect means one module
//! here plus a row in `adapter_for`. The core serves OpenAI-compatible upstreams; the other
//! dialects of the config (Anthropic, Bedrock, Vertex, Azure, ...) plug in here later.

pub mod openai;

use crate::body::RequestHead;
use crate::config::{Dialect, Provider};
use crate::errors::GatewayError;
use bytes::Bytes;
use pingora_http::RequestHeader;

/// What the client asked the gateway to do, from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
    ImagesGenerations,
    AudioSpeech,
    Rerank,
}

impl Operation {
    /// The client-facing path of each operation served from a JSON body.
    pub fn from_path(path: &str) -> Option<Operation> {
        Some(match path {
            "/v1/chat/completions" => Operation::ChatCompletions,
            "/v1/completions" => Operation::Completions,
            "/v1/embeddings" => Operation::Embeddings,
            "/v1/responses" => Operation::Responses,
            "/v1/images/generations" => Operation::ImagesGenerations,
            "/v1/audio/speech" => Operation::AudioSpeech,
            "/v1/rerank" => Operation::Rerank,
            _ => return None,
        })
    }

    /// Path below an OpenAI-compatible base URL (which already holds `/v1`).
    pub fn openai_suffix(self) -> &'static str {
        match self {
            Operation::ChatCompletions => "/chat/completions",
            Operation::Completions => "/completions",
            Operation::Embeddings => "/embeddings",
            Operation::Responses => "/responses",
            Operation::ImagesGenerations => "/images/generations",
            Operation::AudioSpeech => "/audio/speech",
            Operation::Rerank => "/rerank",
        }
    }

    /// `gen_ai_operation_name` (OpenTelemetry GenAI conventions).
    pub fn otel_name(self) -> &'static str {
        match self {
            Operation::ChatCompletions => "chat",
            Operation::Completions => "text_completion",
            Operation::Embeddings => "embeddings",
            Operation::Responses => "responses",
            Operation::ImagesGenerations => "image_generation",
            Operation::AudioSpeech => "speech",
            Operation::Rerank => "rerank",
        }
    }

    /// Operations whose streams end with a usage chunk when asked for `include_usage`.
    pub fn streams_usage(self) -> bool {
        matches!(self, Operation::ChatCompletions | Operation::Completions)
    }
}

/// The client request, as the adapter sees it for one target.
pub struct ClientRequest<'a> {
    pub op: Operation,
    pub head: &'a RequestHead,
    pub body: &'a Bytes,
    /// The model id to send upstream.
    pub upstream_model: &'a str,
}

/// A request made ready for one target.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Path and query for the upstream.
    pub path: String,
    pub body: Bytes,
    /// How the answer is relayed.
    pub relay: RelayMode,
}

/// How an answer is read on its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMode {
    /// OpenAI SSE; `strip_usage_chunk` when the gateway added `include_usage` itself.
    OpenAiStream { strip_usage_chunk: bool },
    /// One OpenAI JSON body with `usage`.
    OpenAiJson,
}

/// One upstream dialect.
pub trait Adapter: Send + Sync {
    /// Build path and body for `provider`.
    fn prepare(&self, provider: &Provider, req: &ClientRequest) -> Result<Prepared, GatewayError>;

    /// Set credentials, host and framing on the upstream request header. Client
    /// credentials are removed here: they never reach an upstream.
    fn set_headers(
        &self,
        provider: &Provider,
        endpoint: &crate::config::Endpoint,
        hdr: &mut RequestHeader,
        body_len: usize,
    ) -> pingora_error::Result<()>;
}

/// The adapter of a dialect, or `None` while that dialect is not served yet.
pub fn adapter_for(dialect: Dialect) -> Option<&'static dyn Adapter> {
    match dialect {
        Dialect::OpenAi => Some(&openai::OpenAiCompatible),
        _ => None,
    }
}

/// Headers that carry the client's own credentials or gateway-only routing hints.
pub const CLIENT_ONLY_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-ai-eg-model",
    "x-provider",
    "proxy-authorization",
    "cookie",
];

/// `Host` value for an endpoint (port only when not the scheme's default).
pub fn host_header(ep: &crate::config::Endpoint) -> String {
    let default = if ep.tls { 443 } else { 80 };
    let host = if ep.host.contains(':') {
        format!("[{}]", ep.host)
    } else {
        ep.host.clone()
    };
    if ep.port == default {
        host
    } else {
        format!("{host}:{}", ep.port)
    }
}
