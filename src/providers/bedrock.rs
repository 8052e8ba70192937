//! AWS Bedrock, spoken through Converse and ConverseStream for every model.
//!
//! The model id is one percent-encoded path segment (ids hold `:` and `/`; inference-profile
//! ARNs too). Requests are signed with SigV4 (service `bedrock`, the provider's region, the
//! final body and the Host actually sent) after everything else is final, or carry
//! `AWS_BEARER_TOKEN_BEDROCK` instead.

use super::{
    bearer, set_host_and_length, strip_headers, Adapter, Head, Operation, ANTHROPIC_HEADERS,
    CLIENT_ONLY_HEADERS, FRAMING, HOP_BY_HOP_HEADERS,
};
use crate::config::Provider;
use crate::errors::GatewayError;
use crate::pool::PoolEndpoint;
use crate::translate::bedrock::path as bedrock_paths;
use crate::translate::Wire;
use pingora_error::{Error, ErrorType};

pub struct Bedrock;

impl Adapter for Bedrock {
    fn wire(&self, _provider: &Provider, _model: &str) -> Option<Wire> {
        Some(Wire::BedrockConverse)
    }

    fn path(
        &self,
        provider: &Provider,
        op: Operation,
        model: &str,
        stream: bool,
    ) -> Result<String, GatewayError> {
        let root = provider.base_path.trim_end_matches('/');
        match op {
            Operation::ChatCompletions | Operation::Messages => Ok(format!(
                "{root}{}",
                bedrock_paths::model_path(model, stream)
            )),
            Operation::CountTokens => {
                Ok(format!("{root}{}", bedrock_paths::count_tokens_path(model)))
            }
            other => Err(GatewayError::bad_request(format!(
                "provider `{}` (Bedrock Converse) does not serve {}",
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
        strip_headers(
            hdr,
            &[
                CLIENT_ONLY_HEADERS,
                FRAMING,
                HOP_BY_HOP_HEADERS,
                ANTHROPIC_HEADERS,
            ],
        );
        hdr.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        set_host_and_length(endpoint, hdr, body.len())?;
        if let Some(token) = &provider.api_key {
            hdr.headers
                .insert(http::header::AUTHORIZATION, bearer(token)?);
            return Ok(());
        }
        let Some(keys) = &provider.aws else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "bedrock provider without credentials",
            ));
        };
        sign(provider, keys, endpoint, hdr, body)
    }
}

/// SigV4 over the request as it will be sent: method, final path, the Host header set
/// above, content type and body.
fn sign(
    provider: &Provider,
    keys: &crate::config::AwsKeys,
    endpoint: &PoolEndpoint,
    hdr: &mut Head,
    body: &[u8],
) -> pingora_error::Result<()> {
    let creds = super::sigv4::AwsCredentials {
        access_key_id: keys.access_key_id.clone(),
        secret_access_key: keys.secret_access_key.clone(),
        session_token: keys.session_token.clone(),
    };
    let path = hdr
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let region = provider.region.as_deref().unwrap_or_default();
    let signed = super::sigv4::sign(
        hdr.method.as_str(),
        endpoint.host.to_str().unwrap_or_default(),
        &path,
        "application/json",
        body,
        &creds,
        region,
        std::time::SystemTime::now(),
    )
    .map_err(|why| Error::explain(ErrorType::InternalError, format!("SigV4: {why}")))?;
    for (name, value) in signed {
        let sensitive = name == "authorization" || name == "x-amz-security-token";
        let mut v = http::HeaderValue::from_str(&value)
            .map_err(|_| Error::explain(ErrorType::InternalError, "SigV4 header"))?;
        v.set_sensitive(sensitive);
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::explain(ErrorType::InternalError, "SigV4 header name"))?;
        hdr.headers.insert(name, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_id_is_one_encoded_segment() {
        let p = Provider {
            dialect: crate::config::Dialect::Bedrock,
            base_path: String::new(),
            ..Provider::test_fleet("bedrock", vec![])
        };
        let path = |m: &str, op, s| Bedrock.path(&p, op, m, s).unwrap();
        assert_eq!(
            path(
                "anthropic.claude-3-5-haiku-20241022-v1:0",
                Operation::ChatCompletions,
                false
            ),
            "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
        );
        assert_eq!(
            path("arn:aws:bedrock:us-east-1:123:inference-profile/us.x", Operation::Messages, true),
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123%3Ainference-profile%2Fus.x/converse-stream"
        );
        assert_eq!(
            path(
                "us.anthropic.claude-sonnet-4-20250514-v1:0",
                Operation::CountTokens,
                false
            ),
            "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/count-tokens"
        );
    }
}
