//! Azure OpenAI (and AI Foundry): OpenAI's wire under Azure's paths and key header.
//!
//! With an `api_version` the deployments form
//! `/openai/deployments/{deployment}/chat/completions?api-version=V` (the deployment in the
//! path); without one the v1 form `/openai/v1/chat/completions` (the deployment as the
//! body's `model`, which `proxy::prepare` writes either way). The key goes in `api-key`;
//! no `Authorization` header is sent (contract §11).

use super::{
    encode_segment, secret_header, set_host_and_length, strip_headers, Adapter, Head, Operation,
    ANTHROPIC_HEADERS, CLIENT_ONLY_HEADERS, FRAMING, HOP_BY_HOP_HEADERS,
};
use crate::config::Provider;
use crate::errors::GatewayError;
use crate::pool::PoolEndpoint;
use crate::translate::Wire;
use http::HeaderName;

pub struct Azure;

/// What Azure serves under a deployment (or the v1 root).
fn azure_suffix(op: Operation) -> Option<&'static str> {
    match op {
        Operation::ChatCompletions | Operation::Messages => Some("/chat/completions"),
        Operation::Completions => Some("/completions"),
        Operation::Embeddings => Some("/embeddings"),
        Operation::Responses => Some("/responses"),
        Operation::ImagesGenerations => Some("/images/generations"),
        Operation::AudioSpeech => Some("/audio/speech"),
        Operation::Rerank | Operation::CountTokens => None,
    }
}

impl Adapter for Azure {
    fn wire(&self, _provider: &Provider, _model: &str) -> Option<Wire> {
        Some(Wire::OpenAiChat)
    }

    fn path(
        &self,
        provider: &Provider,
        op: Operation,
        model: &str,
        _stream: bool,
    ) -> Result<String, GatewayError> {
        let suffix = azure_suffix(op).ok_or_else(|| {
            GatewayError::bad_request(format!(
                "provider `{}` (Azure OpenAI) does not serve {}",
                provider.id,
                op.otel_name()
            ))
        })?;
        let root = provider.base_path.trim_end_matches('/');
        // The endpoint may be written with or without its `/openai` segment.
        let root = root.strip_suffix("/openai").unwrap_or(root);
        Ok(match &provider.api_version {
            Some(v) => format!(
                "{root}/openai/deployments/{}{suffix}?api-version={}",
                encode_segment(model),
                encode_segment(v)
            ),
            None => format!("{root}/openai/v1{suffix}"),
        })
    }

    fn authorize(
        &self,
        provider: &Provider,
        endpoint: &PoolEndpoint,
        hdr: &mut Head,
        body: &[u8],
    ) -> pingora_error::Result<()> {
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
                .insert(HeaderName::from_static("api-key"), secret_header(key)?);
        }
        set_host_and_length(endpoint, hdr, body.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dialect, Endpoint};

    fn azure(version: Option<&str>, base_path: &str) -> Provider {
        Provider {
            dialect: Dialect::AzureOpenAi,
            api_key: Some("az-key".into()),
            api_version: version.map(str::to_string),
            base_path: base_path.into(),
            ..Provider::test_fleet("azure", vec![])
        }
    }

    #[test]
    fn deployments_form_with_api_version_v1_form_without() {
        let p = azure(Some("2025-01-01-preview"), "");
        assert_eq!(
            Azure
                .path(&p, Operation::ChatCompletions, "prod-4o", true)
                .unwrap(),
            "/openai/deployments/prod-4o/chat/completions?api-version=2025-01-01-preview"
        );
        assert_eq!(
            Azure.path(&p, Operation::Embeddings, "emb", false).unwrap(),
            "/openai/deployments/emb/embeddings?api-version=2025-01-01-preview"
        );
        let p = azure(None, "/openai");
        assert_eq!(
            Azure
                .path(&p, Operation::ChatCompletions, "prod-4o", false)
                .unwrap(),
            "/openai/v1/chat/completions"
        );
        assert!(Azure.path(&p, Operation::CountTokens, "x", false).is_err());
    }

    #[test]
    fn key_goes_in_api_key_and_no_authorization_is_sent() {
        let ep = PoolEndpoint::new(&Endpoint {
            host: "x.openai.azure.com".into(),
            port: 443,
            tls: true,
        });
        let mut r = crate::providers::test_head(
            "/v1/chat/completions",
            &[("Authorization", "Bearer sk-client")],
        );
        Azure
            .authorize(&azure(None, ""), &ep, &mut r, b"{}")
            .unwrap();
        assert_eq!(r.headers.get("api-key").unwrap(), "az-key");
        assert!(r.headers.get("api-key").unwrap().is_sensitive());
        assert!(r.headers.get("authorization").is_none());
        assert_eq!(r.headers.get("host").unwrap(), "x.openai.azure.com");
    }
}
