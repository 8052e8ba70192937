//! OpenAI-compatible upstreams: OpenAI itself, vLLM, SGLang, Ollama, llama.cpp and the
//! hosted vendors of the preset table. Same dialect in and out: the body passes as raw
//! bytes, with only `model` (when a target renames it) and `stream_options` spliced in.

use super::{
    bearer, strip_headers, Adapter, ClientRequest, Prepared, RelayMode, CLIENT_ONLY_HEADERS,
    HOP_BY_HOP_HEADERS,
};
use crate::body::{force_include_usage, set_model, splice};
use crate::config::Provider;
use crate::errors::GatewayError;
use crate::pool::PoolEndpoint;
use http::HeaderValue;
use pingora_http::RequestHeader;

pub struct OpenAiCompatible;

/// Set anew by this adapter: the body is re-framed, and the answer must come back as plain text.
const FRAMING: &[&str] = &["accept-encoding", "transfer-encoding"];

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
        strip_headers(hdr, &[CLIENT_ONLY_HEADERS, FRAMING, HOP_BY_HOP_HEADERS]);
        if let Some(key) = &provider.api_key {
            hdr.insert_header("authorization", bearer(key)?)?;
        }
        hdr.insert_header("host", endpoint.host.clone())?;
        hdr.insert_header("content-length", HeaderValue::from(body_len))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Endpoint;

    fn provider(api_key: Option<&str>) -> Provider {
        Provider {
            api_key: api_key.map(str::to_string),
            ..Provider::test_fleet("fleet", vec![])
        }
    }

    #[test]
    fn upstream_headers_carry_our_credentials_host_and_length_only() {
        let ep = PoolEndpoint::new(&Endpoint {
            host: "gpu-1.internal".into(),
            port: 8000,
            tls: false,
        });
        for key in [None, Some("sk-upstream")] {
            let mut r = RequestHeader::build("POST", b"/v1/chat/completions", None).unwrap();
            for (k, v) in [
                ("Authorization", "Bearer sk-client"),
                ("X-Provider", "fleet"),
                ("Accept-Encoding", "gzip, br"),
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "99"),
                ("Host", "gateway.example"),
                ("Content-Type", "application/json"),
            ] {
                r.append_header(k.to_string(), v).unwrap();
            }
            OpenAiCompatible
                .set_headers(&provider(key), &ep, &mut r, 42)
                .unwrap();
            let h = |n: &str| r.headers.get(n).map(|v| v.to_str().unwrap().to_string());
            assert_eq!(h("authorization"), key.map(|k| format!("Bearer {k}")));
            assert_eq!(h("host").as_deref(), Some("gpu-1.internal:8000"));
            assert_eq!(h("content-length").as_deref(), Some("42"));
            assert_eq!(h("content-type").as_deref(), Some("application/json"));
            for gone in ["x-provider", "accept-encoding", "transfer-encoding"] {
                assert_eq!(h(gone), None, "{gone}");
            }
        }
    }
}
