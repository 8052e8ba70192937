//! An OpenAI-dialect upstream's error body → `GatewayError`, status kept, message word for word.

use crate::errors::{clip, GatewayError};
use serde_json::Value;

/// Longest message kept from a JSON error body. Generous: agents read 4xx messages word for
/// word (Claude Code decides retries on them), but a hostile upstream must not make every
/// error and log line megabytes long.
const MAX_JSON_MESSAGE: usize = 16 * 1024;
/// Longest text kept from a body that is not JSON (HTML error pages and the like).
const MAX_TEXT_MESSAGE: usize = 2000;

/// Shapes read, in order: `{"error":{"message":..}}` (OpenAI, Azure, Groq, ...),
/// `{"error":"text"}`, `{"message":..}` (vLLM's `{"object":"error",...}`, Mistral),
/// `{"detail":..}` (FastAPI servers; a non-string detail is kept as compact JSON).
/// Any other body: its trimmed text.
pub fn decode_error(status: u16, body: &[u8]) -> GatewayError {
    GatewayError::new(status, message_of(status, body))
}

fn message_of(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return format!("upstream answered {status} with an empty body");
    }
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) {
        let found = match map.get("error") {
            Some(Value::Object(e)) => e.get("message").map(as_text),
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
        .or_else(|| map.get("message").filter(|m| !m.is_null()).map(as_text))
        .or_else(|| map.get("detail").filter(|m| !m.is_null()).map(as_text));
        if let Some(m) = found {
            return clip(&m, MAX_JSON_MESSAGE).into_owned();
        }
    }
    clip(trimmed, MAX_TEXT_MESSAGE).into_owned()
}

/// A string as it is; anything else as compact JSON (FastAPI's `detail` is often a list).
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Status named by an in-band error object (`code: 429`, `status: 503`, `code: "429"`),
/// when it is an HTTP error status.
pub(crate) fn status_named(obj: &Value) -> Option<u16> {
    ["code", "status"].iter().find_map(|k| {
        let n = match obj.get(*k)? {
            Value::Number(n) => n.as_u64()?,
            Value::String(s) => s.trim().parse::<u64>().ok()?,
            _ => return None,
        };
        (400..=599).contains(&n).then_some(n as u16)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_envelope_keeps_status_and_message() {
        let e = decode_error(
            400,
            br#"{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#,
        );
        assert_eq!(e.status, 400);
        assert_eq!(
            e.message,
            "Unsupported parameter: 'max_tokens' is not supported with this model."
        );
    }

    #[test]
    fn other_shapes() {
        assert_eq!(decode_error(500, br#"{"error":"boom"}"#).message, "boom");
        assert_eq!(
            decode_error(400, br#"{"object":"error","message":"bad","code":400}"#).message,
            "bad"
        );
        assert_eq!(decode_error(422, br#"{"detail":"nope"}"#).message, "nope");
        assert_eq!(
            decode_error(422, br#"{"detail":[{"loc":["body"],"msg":"x"}]}"#).message,
            r#"[{"loc":["body"],"msg":"x"}]"#
        );
        assert_eq!(
            decode_error(502, b"  <html>bad gateway</html>\n").message,
            "<html>bad gateway</html>"
        );
        assert_eq!(
            decode_error(503, b"  \n").message,
            "upstream answered 503 with an empty body"
        );
        assert_eq!(decode_error(503, b"").status, 503);
        assert_eq!(decode_error(500, br#"{"foo":1}"#).message, r#"{"foo":1}"#);
    }

    #[test]
    fn long_text_is_bounded() {
        let body = "x".repeat(10_000);
        let m = decode_error(500, body.as_bytes()).message;
        assert!(m.len() <= MAX_TEXT_MESSAGE + 4);
    }

    #[test]
    fn status_names() {
        assert_eq!(status_named(&serde_json::json!({"code": 429})), Some(429));
        assert_eq!(status_named(&serde_json::json!({"code": "503"})), Some(503));
        assert_eq!(
            status_named(&serde_json::json!({"code": "rate_limit"})),
            None
        );
        assert_eq!(status_named(&serde_json::json!({"code": 200})), None);
    }
}
