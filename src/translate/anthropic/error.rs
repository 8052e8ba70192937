//! Anthropic error envelopes → [`GatewayError`], and Anthropic error types → statuses.

use crate::errors::GatewayError;
use crate::wire::anthropic::ErrorEnvelope;

/// The most characters of a non-JSON error body kept as the message.
const MAX_TEXT_MESSAGE: usize = 2000;

/// An upstream error answer: status kept, message word for word (Claude Code reads 4xx
/// messages to decide how to retry).
pub fn decode_error(status: u16, body: &[u8]) -> GatewayError {
    if let Ok(env) = serde_json::from_slice::<ErrorEnvelope>(body) {
        let message = env.error.and_then(|e| e.message).or(env.message);
        if let Some(m) = message {
            return GatewayError::new(status, m);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        GatewayError::new(
            status,
            format!("upstream answered {status} with an empty body"),
        )
    } else {
        GatewayError::new(
            status,
            text.chars().take(MAX_TEXT_MESSAGE).collect::<String>(),
        )
    }
}

/// The HTTP status Anthropic uses for an `error.type` (in-band stream errors carry no
/// status). A type no table knows is reported as 500 (`api_error`).
pub fn status_of_type(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_message_kept() {
        let e = decode_error(
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.1: `tool_use` ids were found"},"request_id":"req_1"}"#,
        );
        assert_eq!(e.status, 400);
        assert_eq!(e.message, "messages.1: `tool_use` ids were found");
    }

    #[test]
    fn text_and_empty_bodies() {
        assert_eq!(
            decode_error(502, b"  <html>bad</html>\n").message,
            "<html>bad</html>"
        );
        assert_eq!(
            decode_error(503, b"").message,
            "upstream answered 503 with an empty body"
        );
        let long = vec![b'x'; 5000];
        assert_eq!(decode_error(500, &long).message.len(), 2000);
        assert_eq!(
            decode_error(529, br#"{"type":"error"}"#).message,
            r#"{"type":"error"}"#
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(status_of_type("overloaded_error"), 529);
        assert_eq!(status_of_type("timeout_error"), 504);
        assert_eq!(status_of_type("something_new"), 500);
    }
}
