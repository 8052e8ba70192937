//! Request paths below the Bedrock Runtime root (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`).
//!
//! The model id is ONE path segment: everything but RFC 3986 unreserved characters is
//! percent-encoded, so `anthropic.claude-3-5-haiku-20241022-v1:0` goes as `...v1%3A0` and an
//! inference-profile ARN's `/` as `%2F` (never a new segment). SigV4 then signs it encoded
//! a second time (providers::sigv4).

/// `/model/{id}/converse` or `/model/{id}/converse-stream`.
pub fn model_path(model_id: &str, stream: bool) -> String {
    let op = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!("/model/{}/{op}", encode_segment(model_id))
}

/// `/model/{base-id}/count-tokens`. CountTokens takes the base model, not a cross-region
/// inference profile: a geo prefix (`us.`, `eu.`, `apac.`, `global.`, ...) in front of
/// `anthropic.` is removed.
pub fn count_tokens_path(model_id: &str) -> String {
    format!(
        "/model/{}/count-tokens",
        encode_segment(base_model_id(model_id))
    )
}

/// The id without a cross-region prefix: `us.anthropic.x` → `anthropic.x`. Only a short
/// lowercase-letter prefix directly before `anthropic.` counts, so ARNs and other
/// providers' ids are left as they are.
pub fn base_model_id(model_id: &str) -> &str {
    if let Some((geo, rest)) = model_id.split_once('.') {
        let is_geo =
            !geo.is_empty() && geo.len() <= 8 && geo.bytes().all(|b| b.is_ascii_lowercase());
        if is_geo && rest.starts_with("anthropic.") {
            return rest;
        }
    }
    model_id
}

/// One path segment, percent-encoded (shared with the other adapters).
pub use crate::providers::encode_segment;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_are_one_segment() {
        assert_eq!(
            model_path("anthropic.claude-3-5-haiku-20241022-v1:0", false),
            "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
        );
        assert_eq!(
            model_path("us.anthropic.claude-sonnet-4-20250514-v1:0", true),
            "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream"
        );
        assert_eq!(
            model_path(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
                false
            ),
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
        );
        assert_eq!(encode_segment("a b~é"), "a%20b~%C3%A9");
        assert_eq!(model_path("..", false), "/model/%2E%2E/converse");
        assert_eq!(encode_segment("a..b"), "a..b");
    }

    #[test]
    fn count_tokens_strips_the_geo_prefix() {
        for (id, want) in [
            (
                "us.anthropic.claude-sonnet-4-20250514-v1:0",
                "anthropic.claude-sonnet-4-20250514-v1%3A0",
            ),
            ("eu.anthropic.x-v1:0", "anthropic.x-v1%3A0"),
            ("apac.anthropic.x", "anthropic.x"),
            ("global.anthropic.x", "anthropic.x"),
            ("anthropic.x", "anthropic.x"),
            ("us.amazon.nova-pro-v1:0", "us.amazon.nova-pro-v1%3A0"),
            ("meta.llama3", "meta.llama3"),
        ] {
            assert_eq!(
                count_tokens_path(id),
                format!("/model/{want}/count-tokens"),
                "{id}"
            );
        }
    }
}
