//! OpenAI-compatible upstreams: OpenAI itself, vLLM, SGLang, Ollama, llama.cpp and the
//! hosted vendors of the preset table. Their wire is OpenAI chat; a same-dialect body is
//! spliced (`proxy::prepare`), anything else translated.

use super::{
    bearer, set_host_and_length, strip_headers, Adapter, Head, Operation, ANTHROPIC_HEADERS,
    CLIENT_ONLY_HEADERS, FRAMING, HOP_BY_HOP_HEADERS,
};
use crate::config::Provider;
use crate::errors::GatewayError;
use crate::pool::PoolEndpoint;
use crate::translate::Wire;

pub struct OpenAiCompatible;

impl Adapter for OpenAiCompatible {
    fn wire(&self, _provider: &Provider, _model: &str) -> Option<Wire> {
        Some(Wire::OpenAiChat)
    }

    fn path(
        &self,
        provider: &Provider,
        op: Operation,
        _model: &str,
        _stream: bool,
    ) -> Result<String, GatewayError> {
        if op == Operation::CountTokens {
            // vLLM's (and SGLang's) tokenizer sits at the server root, beside `/v1`.
            let root = provider.base_path.trim_end_matches('/');
            let root = root.strip_suffix("/v1").unwrap_or(root);
            return Ok(format!("{root}/tokenize"));
        }
        match op.openai_suffix() {
            Some(suffix) => Ok(format!("{}{suffix}", provider.base_path)),
            None => Err(GatewayError::bad_request(format!(
                "provider `{}` does not serve {}",
                provider.id,
                op.otel_name()
            ))),
        }
    }

    fn authorize(
        &self,
        provider: &Provider,
        endpoint: &PoolEndpoint,
        hdr: &mut Head,
        body: &[u8],
    ) -> pingora_error::Result<()> {
        // Client credentials and routing hints out; `accept-encoding` out too, so answers
        // come back as plain text and usage can be read from them; the body is re-framed.
        strip_headers(
            hdr,
            &[
                CLIENT_ONLY_HEADERS,
                FRAMING,
                HOP_BY_HOP_HEADERS,
                ANTHROPIC_HEADERS,
            ],
        );
        if let Some(key) = &provider.api_key {
            hdr.headers
                .insert(http::header::AUTHORIZATION, bearer(key)?);
        }
        set_host_and_length(endpoint, hdr, body.len())
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
            let mut r = crate::providers::test_head(
                "/v1/chat/completions",
                &[
                    ("Authorization", "Bearer sk-client"),
                    ("X-Provider", "fleet"),
                    ("Accept-Encoding", "gzip, br"),
                    ("Transfer-Encoding", "chunked"),
                    ("Content-Length", "99"),
                    ("Host", "gateway.example"),
                    ("Content-Type", "application/json"),
                    ("Anthropic-Version", "2023-06-01"),
                ],
            );
            OpenAiCompatible
                .authorize(&provider(key), &ep, &mut r, &[b'x'; 42])
                .unwrap();
            let h = |n: &str| r.headers.get(n).map(|v| v.to_str().unwrap().to_string());
            assert_eq!(h("authorization"), key.map(|k| format!("Bearer {k}")));
            assert_eq!(h("host").as_deref(), Some("gpu-1.internal:8000"));
            assert_eq!(h("content-length").as_deref(), Some("42"));
            assert_eq!(h("content-type").as_deref(), Some("application/json"));
            for gone in [
                "x-provider",
                "accept-encoding",
                "transfer-encoding",
                "anthropic-version",
            ] {
                assert_eq!(h(gone), None, "{gone}");
            }
        }
    }
}
