//! Anthropic usage counters → [`UsageUpdate`], and cheap usage sniffing for the
//! same-dialect path (Anthropic client to Anthropic upstream, bytes passed through).
//!
//! Anthropic's `input_tokens` excludes cache reads and writes; the neutral form's `input`
//! includes them (contract §7), so `input = input_tokens + cache_read + cache_creation`.

use crate::translate::ir::UsageUpdate;
use crate::wire::anthropic::{Msg, StreamEvent, WireUsage};
use memchr::memmem;

/// A whole usage object (a message's, or `message_start`'s).
pub fn from_wire(u: &WireUsage) -> UsageUpdate {
    let read = u.cache_read_input_tokens;
    let creation = u.cache_creation_input_tokens;
    UsageUpdate {
        input: u.input_tokens.map(|i| {
            i.saturating_add(read.unwrap_or(0))
                .saturating_add(creation.unwrap_or(0))
        }),
        cached_input: read,
        cache_creation_input: creation,
        output: u.output_tokens,
        reasoning: u.output_tokens_details.and_then(|d| d.thinking_tokens),
    }
}

enum Kind {
    Usage,
    Error,
    Other,
    /// `type` is not the first key: parse to know.
    Unknown,
}

/// The event's `"type"` value, read without parsing the JSON when `type` is the first key
/// (Anthropic writes it first in every event).
fn kind_of(data: &[u8]) -> Kind {
    let Some(rest) = trim_start(data).strip_prefix(b"{") else {
        return Kind::Unknown;
    };
    let Some(rest) = trim_start(rest).strip_prefix(b"\"type\"") else {
        return Kind::Unknown;
    };
    let Some(r) = trim_start(rest).strip_prefix(b":") else {
        return Kind::Unknown;
    };
    let r = trim_start(r);
    if r.starts_with(b"\"message_start\"") || r.starts_with(b"\"message_delta\"") {
        Kind::Usage
    } else if r.starts_with(b"\"error\"") {
        Kind::Error
    } else {
        Kind::Other
    }
}

fn trim_start(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// The usage one SSE event's `data` carries: `message_start`'s `message.usage` or
/// `message_delta`'s `usage` (cumulative: merge with [`UsageUpdate::merge`], which
/// replaces). Every other event is rejected from its first bytes without parsing.
/// A `message_delta` carrying `input_tokens` without the cache fields reports `input`
/// without them (this function keeps no state; Anthropic sends all three together).
pub fn usage_in_event(data: &[u8]) -> Option<UsageUpdate> {
    match kind_of(data) {
        Kind::Usage | Kind::Unknown => {}
        Kind::Error | Kind::Other => return None,
    }
    let ev: StreamEvent = serde_json::from_slice(data).ok()?;
    match ev.kind.as_deref() {
        Some("message_start") => ev.message.and_then(|m| m.usage).map(|u| from_wire(&u)),
        Some("message_delta") => ev.usage.map(|u| from_wire(&u)),
        _ => None,
    }
}

/// The usage of a whole (non-streamed) message. `usage` sits near the end, after the
/// content, so the last `"usage"` key is read alone; a body where that does not parse as
/// usage is parsed whole. (A `"usage"` key inside a later top-level field would mislead
/// the fast path; Anthropic writes none after `usage` today.)
pub fn usage_in_body(body: &[u8]) -> Option<UsageUpdate> {
    if let Some(u) = usage_object_at_end(body) {
        return Some(from_wire(&u));
    }
    let m: Msg = serde_json::from_slice(body).ok()?;
    m.usage.map(|u| from_wire(&u))
}

fn usage_object_at_end(body: &[u8]) -> Option<WireUsage> {
    let at = memmem::rfind(body, b"\"usage\"")?;
    let rest = trim_start(body.get(at + 7..)?);
    let rest = trim_start(rest.strip_prefix(b":")?);
    if !rest.starts_with(b"{") {
        return None;
    }
    let mut it = serde_json::Deserializer::from_slice(rest).into_iter::<WireUsage>();
    let u = it.next()?.ok()?;
    (u.input_tokens.is_some() || u.output_tokens.is_some()).then_some(u)
}

/// Is this SSE event's data an in-band error (`{"type":"error",...}`)?
pub fn is_error_event(data: &[u8]) -> bool {
    match kind_of(data) {
        Kind::Error => true,
        Kind::Unknown => serde_json::from_slice::<StreamEvent>(data)
            .map(|e| e.kind.as_deref() == Some("error"))
            .unwrap_or(false),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_usage_includes_cache() {
        let d = br#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":2,"output_tokens":1}}}"#;
        let u = usage_in_event(d).unwrap();
        assert_eq!(u.input, Some(17));
        assert_eq!(u.cached_input, Some(5));
        assert_eq!(u.cache_creation_input, Some(2));
        assert_eq!(u.output, Some(1));
    }

    #[test]
    fn delta_usage_and_rejections() {
        let d = br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42}}"#;
        let u = usage_in_event(d).unwrap();
        assert_eq!(u.output, Some(42));
        assert_eq!(u.input, None);
        assert!(usage_in_event(br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"usage"}}"#).is_none());
        assert!(usage_in_event(br#"{"type":"ping"}"#).is_none());
        assert!(usage_in_event(b"not json").is_none());
    }

    #[test]
    fn error_events() {
        assert!(is_error_event(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        ));
        assert!(is_error_event(br#"{ "type" : "error" }"#));
        assert!(!is_error_event(br#"{"type":"message_stop"}"#));
        // `type` not first: parsed, not guessed from a nested `type`.
        let late =
            br#"{"message":{"type":"message","usage":{"input_tokens":2}},"type":"message_start"}"#;
        assert_eq!(usage_in_event(late).unwrap().input, Some(2));
    }

    #[test]
    fn body_usage_fast_and_slow() {
        let b = br#"{"id":"m","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":1}}"#;
        let u = usage_in_body(b).unwrap();
        assert_eq!(
            (u.input, u.output, u.cached_input),
            (Some(4), Some(4), Some(1))
        );
        assert!(usage_in_body(b"{}").is_none());
    }
}
