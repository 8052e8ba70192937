//! Bedrock error answers → GatewayError: status kept, message word for word, the error
//! type from `x-amzn-errortype` in front (translation.md §8, [REC] cut at the first `:`).

use crate::errors::GatewayError;
use crate::wire::bedrock as w;

/// Longest non-JSON body text kept in a message.
const MAX_TEXT: usize = 2000;

pub fn decode_error(status: u16, error_type: Option<&str>, body: &[u8]) -> GatewayError {
    let parsed = serde_json::from_slice::<w::ErrorBody>(body).ok();
    let body_kind = parsed.as_ref().and_then(|b| b.kind.clone());
    let message = match parsed {
        Some(w::ErrorBody {
            message: Some(m), ..
        })
        | Some(w::ErrorBody {
            message_upper: Some(m),
            ..
        }) => m,
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("upstream answered {status} with an empty body")
            } else {
                text.chars().take(MAX_TEXT).collect()
            }
        }
    };
    // `ValidationException:http://internal.amazon.com/coral/...` → `ValidationException`.
    // Without the header, a body's `__type` (`com.amazon...#ValidationException`) names it.
    let header_kind = error_type.and_then(|t| t.split(':').next()).map(str::trim);
    let body_kind = body_kind.as_deref().and_then(|t| {
        let t = t.split(':').next()?;
        t.rsplit('#').next().map(str::trim)
    });
    let kind = header_kind
        .filter(|t| !t.is_empty())
        .or(body_kind.filter(|t| !t.is_empty()));
    let message = match kind {
        Some(k) => format!("{}: {message}", crate::errors::clip(k, 200)),
        None => message,
    };
    GatewayError::new(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_is_cut_at_the_first_colon() {
        let e = decode_error(
            400,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            br#"{"message":"Malformed input request"}"#,
        );
        assert_eq!(e.status, 400);
        assert_eq!(e.message, "ValidationException: Malformed input request");
    }

    #[test]
    fn bodies_without_a_message() {
        assert_eq!(
            decode_error(429, None, br#"{"Message":"slow down"}"#).message,
            "slow down"
        );
        assert_eq!(
            decode_error(502, None, b"\n").message,
            "upstream answered 502 with an empty body"
        );
        // JSON without a message: the text itself.
        assert_eq!(decode_error(500, None, br#"{"x":1}"#).message, r#"{"x":1}"#);
        let e = decode_error(503, Some(" :x"), "é".repeat(3000).as_bytes());
        assert_eq!(e.message.chars().count(), MAX_TEXT);
    }

    #[test]
    fn body_type_when_no_header() {
        let body = br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}"#;
        assert_eq!(
            decode_error(400, None, body).message,
            "ValidationException: bad"
        );
        // The header wins.
        assert_eq!(
            decode_error(400, Some("ThrottlingException"), body).message,
            "ThrottlingException: bad"
        );
    }
}
