//! OpenAI-compatible upstreams: OpenAI itself, vLLM, SGLang, Ollama, llama.cpp and the
//! hosted vendors of the preset table. Same dialect in and out: the body passes as raw
//! bytes, with only `model` (when a target renames it) and `stream_options` spliced in.

use super::{host_header, Adapter, ClientRequest, Prepared, RelayMode, CLIENT_ONLY_HEADERS};
use crate::body::{force_include_usage, set_model, splice};
use crate::config::{Endpoint, Provider};
use crate::errors::GatewayError;
use pingora_http::RequestHeader;

pub struct OpenAiCompatible;

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
        endpoint: &Endpoint,
        hdr: &mut RequestHeader,
        body_len: usize,
    ) -> pingora_error::Result<()> {
        for h in CLIENT_ONLY_HEADERS {
            hdr.remove_header(*h);
        }
        if let Some(key) = &provider.api_key {
            hdr.insert_header("authorization", format!("Bearer {key}"))?;
        }
        hdr.insert_header("host", host_header(endpoint))?;
        // Plain text back, so usage can be read from the stream.
        hdr.remove_header("accept-encoding");
        hdr.remove_header("transfer-encoding");
        hdr.insert_header("content-length", body_len.to_string())?;
        Ok(())
    }
}
