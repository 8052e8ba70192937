//! OpenAI-compatible upstreams: OpenAI itself, vLLM, SGLang, Ollama, llama.cpp and the
//! hosted vendors of the preset table. Same dialect in and out: the body passes as raw
//! bytes, with only `model` (when a target renames it) and `stream_options` spliced in.

use super::{bearer, strip_headers, Adapter, ClientRequest, Prepared, RelayMode};
use crate::body::{force_include_usage, set_model, splice};
use crate::config::Provider;
use crate::errors::GatewayError;
use crate::pool::PoolEndpoint;
use http::HeaderValue;
use pingora_http::RequestHeader;

pub struct OpenAiCompatible;

/// `CLIENT_ONLY_HEADERS` plus the framing and encoding this adapter sets itself.
pub(crate) const STRIPPED: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "x-ai-eg-model",
    "x-provider",
    "proxy-authorization",
    "cookie",
    "accept-encoding",
    "transfer-encoding",
];

impl OpenAiCompatible {
    /// Cohere's compatibility API rejects `stream_options` (translation.md §2).
    fn accepts_stream_options(provider: &Provider) -> bool {
        provider.id != "cohere"
    }
}

impl Adapter for OpenAiCompatible {
    fn prepare(&self, provider: &Provider, req: &ClientRequest) -> Result<Prepared, GatewayError> {
        let mut edits = Vec::with_capacity(2);
        if req.head.model.as_deref() != Some(req.upstream_model) {
            if let Some(e) = set_model(req.head, req.upstream_model) {
                edits.push(e);
            }
        }
        let mut strip_usage_chunk = false;
        if req.head.stream && req.op.streams_usage() && Self::accepts_stream_options(provider) {
            if let Some(e) = force_include_usage(req.body, req.head) {
                edits.push(e);
                strip_usage_chunk = true;
            }
        }
        let relay = if req.head.stream {
            RelayMode::OpenAiStream { strip_usage_chunk }
        } else {
            RelayMode::OpenAiJson
        };
        Ok(Prepared {
            path: format!("{}{}", provider.base_path, req.op.openai_suffix()),
            body: splice(req.body, edits),
            relay,
        })
    }

    fn set_headers(
        &self,
        provider: &Provider,
        endpoint: &PoolEndpoint,
        hdr: &mut RequestHeader,
        body_len: usize,
    ) -> pingora_error::Result<()> {
        // Client credentials and routing hints out; `accept-encoding` out too, so answers
        // come back as plain text and usage can be read from them; the body is re-framed.
        strip_headers(hdr, STRIPPED);
        if let Some(key) = &provider.api_key {
            hdr.insert_header("authorization", bearer(key)?)?;
        }
        hdr.insert_header("host", endpoint.host.clone())?;
        hdr.insert_header("content-length", HeaderValue::from(body_len))?;
        Ok(())
    }
}
