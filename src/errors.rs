//! Client-facing errors: one type, turned into a status and dialect-correct JSON in one place.

use std::fmt;

/// The API dialect the client speaks; errors are written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientDialect {
    #[default]
    OpenAi,
    Anthropic,
}

/// An error the gateway answers itself.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayError {
    pub status: u16,
    pub message: String,
    /// The request field at fault, when there is one (`model`, `messages`).
    pub param: Option<&'static str>,
    /// A machine-readable code (`invalid_api_key`, `model_not_found`, ...).
    pub code: Option<&'static str>,
    /// Seconds to put in `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
}

impl GatewayError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }
    pub fn param(mut self, p: &'static str) -> Self {
        self.param = Some(p);
        self
    }
    pub fn code(mut self, c: &'static str) -> Self {
        self.code = Some(c);
        self
    }
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(400, msg)
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::new(401, msg).code("invalid_api_key")
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(403, msg).code("model_not_allowed")
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(404, msg)
    }

    /// OpenAI `error.type` for a status: the names OpenAI itself uses, so SDKs and
    /// dashboards that switch on them keep working.
    pub fn openai_type(status: u16) -> &'static str {
        match status {
            400 | 404 | 405 | 408 | 409 | 411 | 413 | 415 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            503 => "service_unavailable",
            504 => "timeout",
            _ => "api_error",
        }
    }

    /// Anthropic `error.type` for a status (contract §11).
    pub fn anthropic_type(status: u16) -> &'static str {
        match status {
            400 | 405 | 408 | 409 | 411 | 415 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            504 => "timeout_error",
            _ => "api_error",
        }
    }

    /// The JSON body in the client's dialect, keys in the order each provider writes them.
    pub fn body(&self, dialect: ClientDialect) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct OpenAiInner<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            kind: &'static str,
            param: Option<&'static str>,
            code: Option<&'static str>,
        }
        #[derive(serde::Serialize)]
        struct OpenAi<'a> {
            error: OpenAiInner<'a>,
        }
        #[derive(serde::Serialize)]
        struct AnthropicInner<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            message: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Anthropic<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            error: AnthropicInner<'a>,
        }
        let out = match dialect {
            ClientDialect::OpenAi => serde_json::to_vec(&OpenAi {
                error: OpenAiInner {
                    message: &self.message,
                    kind: Self::openai_type(self.status),
                    param: self.param,
                    code: self.code,
                },
            }),
            ClientDialect::Anthropic => serde_json::to_vec(&Anthropic {
                kind: "error",
                error: AnthropicInner {
                    kind: Self::anthropic_type(self.status),
                    message: &self.message,
                },
            }),
        };
        out.unwrap_or_default()
    }
}

impl GatewayError {
    /// The event that ends a client's stream after a failure (contract §11): OpenAI an
    /// error chunk then `[DONE]` (no `finish_reason` before it), Anthropic `event: error`
    /// (no `message_stop`). The one place stream errors are written, as `body` is for
    /// whole answers.
    pub fn terminal_event(&self, dialect: ClientDialect) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.message.len());
        match dialect {
            ClientDialect::OpenAi => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&self.body(dialect));
                out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
            }
            ClientDialect::Anthropic => {
                out.extend_from_slice(b"event: error\ndata: ");
                out.extend_from_slice(&self.body(dialect));
                out.extend_from_slice(b"\n\n");
            }
        }
        out
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for GatewayError {}

/// At most `max` bytes of a client-supplied string (cut at a character boundary, `…`
/// marking the cut), for error messages and log lines: a client's 5 MiB model name must not
/// come back 5 MiB long in every error and log line about it.
pub fn clip(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &s[..end]))
}

/// Wrap an upstream error body that is not already an OpenAI error envelope, keeping
/// the upstream's message. `None` means the body passes through as it is.
pub fn openai_envelope_for_upstream(status: u16, body: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Probe {
        error: Option<serde_json::Value>,
    }
    let parsed = serde_json::from_slice::<Probe>(body).ok();
    if let Some(p) = &parsed {
        if let Some(serde_json::Value::Object(e)) = &p.error {
            if e.get("message").is_some() {
                return None; // already `{"error":{"message",...}}`
            }
        }
    }
    // The upstream's message, read once for every dialect (`translate::openai`).
    Some(crate::translate::openai::decode_error(status, body).body(ClientDialect::OpenAi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_shape() {
        let e = GatewayError::bad_request("missing field `model`").param("model");
        let v: serde_json::Value = serde_json::from_slice(&e.body(ClientDialect::OpenAi)).unwrap();
        assert_eq!(v["error"]["message"], "missing field `model`");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert!(v["error"]["code"].is_null());
    }

    #[test]
    fn anthropic_shape() {
        let e = GatewayError::new(413, "too big");
        let v: serde_json::Value =
            serde_json::from_slice(&e.body(ClientDialect::Anthropic)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "request_too_large");
    }

    #[test]
    fn terminal_events_in_each_dialect() {
        let e = GatewayError::new(529, "Overloaded");
        let o = String::from_utf8(e.terminal_event(ClientDialect::OpenAi)).unwrap();
        assert!(o.starts_with("data: {\"error\":"), "{o}");
        assert!(o.ends_with("\n\ndata: [DONE]\n\n"), "{o}");
        let a = String::from_utf8(e.terminal_event(ClientDialect::Anthropic)).unwrap();
        assert!(a.starts_with("event: error\ndata: {"), "{a}");
        assert!(a.contains("\"overloaded_error\""), "{a}");
        assert!(!a.contains("message_stop"));
    }

    #[test]
    fn upstream_bodies_are_wrapped_only_when_needed() {
        assert!(
            openai_envelope_for_upstream(400, br#"{"error":{"message":"bad","type":"x"}}"#)
                .is_none()
        );
        let wrapped = openai_envelope_for_upstream(502, b"<html>bad gateway</html>").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&wrapped).unwrap();
        assert_eq!(v["error"]["message"], "<html>bad gateway</html>");
        let wrapped =
            openai_envelope_for_upstream(500, br#"{"error":"Internal Server Error"}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&wrapped).unwrap();
        assert_eq!(v["error"]["message"], "Internal Server Error");
        assert_eq!(v["error"]["type"], "api_error");
    }
}
