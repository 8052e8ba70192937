//! Anthropic Messages upstreams (`api.anthropic.com` and anything speaking its API).
//!
//! `ANTHROPIC_BASE_URL` is the API root: the gateway appends `/v1/messages` and
//! `/v1/messages/count_tokens` (contract §11). The key goes in `x-api-key`; the client's
//! `anthropic-version` and `anthropic-beta` pass, and a version is set when none came.

use super::{
    secret_header, set_host_and_length, strip_headers, Adapter, Head, Operation,
    CLIENT_ONLY_HEADERS, FRAMING, HOP_BY_HOP_HEADERS, X_API_KEY,
};
use crate::config::Provider;
use crate::errors::GatewayError;
use crate::pool::PoolEndpoint;
use crate::translate::Wire;
use http::{HeaderName, HeaderValue};

pub struct Anthropic;

/// The API version sent when the client named none (OpenAI clients never do).
pub const DEFAULT_VERSION: &str = "2023-06-01";

impl Adapter for Anthropic {
    fn wire(&self, _provider: &Provider, _model: &str) -> Option<Wire> {
        Some(Wire::AnthropicMessages)
    }

    fn path(
        &self,
        provider: &Provider,
        op: Operation,
        _model: &str,
        _stream: bool,
    ) -> Result<String, GatewayError> {
        let root = provider.base_path.trim_end_matches('/');
        match op {
            Operation::Messages | Operation::ChatCompletions => Ok(format!("{root}/v1/messages")),
            Operation::CountTokens => Ok(format!("{root}/v1/messages/count_tokens")),
            other => Err(GatewayError::bad_request(format!(
                "provider `{}` (Anthropic) does not serve {}",
                provider.id,
                other.otel_name()
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
        strip_headers(hdr, &[CLIENT_ONLY_HEADERS, FRAMING, HOP_BY_HOP_HEADERS]);
        if let Some(key) = &provider.api_key {
            hdr.headers.insert(X_API_KEY, secret_header(key)?);
        }
        if hdr.headers.get("anthropic-version").is_none() {
            hdr.headers.insert(
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static(DEFAULT_VERSION),
            );
        }
        hdr.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        set_host_and_length(endpoint, hdr, body.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dialect, Endpoint};

    #[test]
    fn key_in_x_api_key_version_defaulted_betas_kept_no_bearer() {
        let p = Provider {
            dialect: Dialect::Anthropic,
            api_key: Some("sk-ant-up".into()),
            base_path: String::new(),
            ..Provider::test_fleet("anthropic", vec![])
        };
        let ep = PoolEndpoint::new(&Endpoint {
            host: "api.anthropic.com".into(),
            port: 443,
            tls: true,
        });
        assert_eq!(
            Anthropic.path(&p, Operation::Messages, "m", true).unwrap(),
            "/v1/messages"
        );
        assert_eq!(
            Anthropic
                .path(&p, Operation::CountTokens, "m", false)
                .unwrap(),
            "/v1/messages/count_tokens"
        );
        assert!(Anthropic
            .path(&p, Operation::Embeddings, "m", false)
            .is_err());
        for (client_version, want) in [(None, DEFAULT_VERSION), (Some("2099-01-01"), "2099-01-01")]
        {
            let mut h = vec![
                ("x-api-key", "sk-client"),
                ("authorization", "Bearer sk-client"),
                ("anthropic-beta", "a-1,b-2"),
            ];
            if let Some(v) = client_version {
                h.push(("anthropic-version", v));
            }
            let mut r = crate::providers::test_head("/v1/messages", &h);
            Anthropic.authorize(&p, &ep, &mut r, b"{}").unwrap();
            assert_eq!(r.headers.get("x-api-key").unwrap(), "sk-ant-up");
            assert!(r.headers.get("authorization").is_none());
            assert_eq!(r.headers.get("anthropic-version").unwrap(), want);
            assert_eq!(r.headers.get("anthropic-beta").unwrap(), "a-1,b-2");
        }
    }
}
