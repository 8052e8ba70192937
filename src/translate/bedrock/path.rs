//! Request paths below the Bedrock Runtime root (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`).
//!
//! The model id is ONE path segment: everything but RFC 3986 unreserved characters is
//! percent-encoded, so `anthropic.claude-3-5-haiku-20241022-v1:0` goes as `...v1%3A0` and an
//! inference-profile ARN's `/` as `%2F` (never a new segment). SigV4 then signs it encoded
//! a second time (providers::sigv4).

use std::fmt::Write;

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

/// Percent-encode everything but `A-Z a-z 0-9 - . _ ~`. A segment that is all dots (`.`,
/// `..`) is encoded too, so no client-supplied id can become a relative path step that a
/// client library or the signer's path normalisation would resolve away.
pub fn encode_segment(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b == b'.') {
        return "%2E".repeat(s.len());
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

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
