//! The request body on the hot path: read only what routing needs, rewrite by splicing.
//!
//! `RequestHead::scan` walks the top level of the JSON object once, borrowing every value
//! as raw bytes (`serde_json::value::RawValue`): nothing below the top level is parsed or
//! allocated, so a 20 MiB chat costs one validating pass, not a DOM. The byte offsets it
//! records let `splice` rewrite `model` or `stream_options` while every other byte reaches
//! the upstream exactly as the client sent it.
//!
//! Guarded by `benches/hot_path.rs` (`head_scan/*`, `rewrite/*`).

use bytes::{Bytes, BytesMut};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// What the gateway needs to know of a JSON request body, with where it sits.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RequestHead {
    pub model: Option<String>,
    /// Byte range of the `model` value (quotes included).
    pub model_span: Option<Range<usize>>,
    /// True when `model` was present but not a string.
    pub model_not_string: bool,
    pub stream: bool,
    pub stream_options_span: Option<Range<usize>>,
    /// The client asked for `stream_options.include_usage: true` itself.
    pub include_usage: bool,
    /// First non-blank byte of the `messages` value, if present (`[` when well-formed).
    pub messages_kind: Option<u8>,
    pub max_tokens: Option<u64>,
    /// Byte ranges of the prompt as sent (`system`, then `messages`, `prompt` or `input`), for
    /// fleet prefix routing: hashed as raw bytes, never parsed.
    pub prompt_spans: [Option<Range<usize>>; 2],
    /// Byte range of the OpenAI `user` field (a conversation's pin for session affinity).
    pub user_span: Option<Range<usize>>,
    /// Offset of the closing `}` of the top-level object.
    pub object_end: usize,
}

/// The top-level keys the gateway reads. Each may appear once: JSON parsers disagree on
/// which of two equal keys wins (serde keeps the last, many keep the first), so a body with
/// `"model"` twice could pass the allow-list with one name and be served under the other.
/// Keys compare after unescaping, so `"mod\u0065l"` counts as `"model"`.
const READ_KEYS: [&str; 7] = [
    "model",
    "stream",
    "stream_options",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
];

/// Why a body could not be scanned; the message names the field or the JSON error.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanError(pub String);

impl RequestHead {
    /// Scan a request body. Fails when the body is not one JSON object.
    pub fn scan(body: &[u8]) -> Result<RequestHead, ScanError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let mut head = de
            .deserialize_map(HeadVisitor {
                base: body.as_ptr() as usize,
            })
            .map_err(|e| match e.classify() {
                // Well-formed JSON of the wrong shape (not an object, a duplicate key).
                serde_json::error::Category::Data => {
                    ScanError(format!("request body must be one JSON object: {e}"))
                }
                _ => ScanError(format!("request body is not valid JSON: {e}")),
            })?;
        de.end()
            .map_err(|e| ScanError(format!("request body is not valid JSON: {e}")))?;
        head.object_end = last_non_ws(body).unwrap_or(0);
        Ok(head)
    }
}

fn last_non_ws(b: &[u8]) -> Option<usize> {
    b.iter()
        .rposition(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
}

/// A top-level key, borrowed from the body unless it holds escapes (serde's own
/// `Cow<str>` always allocates, which cost an allocation per key on every request).
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

struct HeadVisitor {
    base: usize,
}

impl HeadVisitor {
    fn span(&self, raw: &RawValue) -> Range<usize> {
        let start = raw.get().as_ptr() as usize - self.base;
        start..start + raw.get().len()
    }
}

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = RequestHead;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestHead, A::Error> {
        let mut head = RequestHead::default();
        let mut seen = [false; READ_KEYS.len()];
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let raw: &'de RawValue = map.next_value()?;
            let text = raw.get();
            if let Some(i) = READ_KEYS.iter().position(|k| *k == key.as_ref()) {
                if std::mem::replace(&mut seen[i], true) {
                    return Err(serde::de::Error::custom(format_args!(
                        "duplicate key `{}`: each of {} may appear once",
                        READ_KEYS[i],
                        READ_KEYS.join(", ")
                    )));
                }
            }
            match key.as_ref() {
                "model" => {
                    head.model_span = Some(self.span(raw));
                    match serde_json::from_str::<Cow<str>>(text) {
                        Ok(m) => {
                            head.model = Some(m.into_owned());
                            head.model_not_string = false;
                        }
                        Err(_) => {
                            head.model = None;
                            head.model_not_string = true;
                        }
                    }
                }
                "stream" => head.stream = text == "true",
                "stream_options" => {
                    head.stream_options_span = Some(self.span(raw));
                    head.include_usage = serde_json::from_str::<StreamOptions>(text)
                        .ok()
                        .and_then(|o| o.include_usage)
                        .unwrap_or(false);
                }
                "messages" => {
                    head.messages_kind = text.as_bytes().first().copied();
                    head.prompt_spans[1] = Some(self.span(raw));
                }
                "prompt" | "input" => head.prompt_spans[1] = Some(self.span(raw)),
                "system" => head.prompt_spans[0] = Some(self.span(raw)),
                "user" => head.user_span = Some(self.span(raw)),
                "max_tokens" | "max_completion_tokens" | "max_output_tokens" => {
                    if let Ok(n) = text.parse::<u64>() {
                        // max_completion_tokens wins over max_tokens, whatever the order
                        // (max_output_tokens is the Responses API's one name for it).
                        if key != "max_tokens" || head.max_tokens.is_none() {
                            head.max_tokens = Some(n);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(head)
    }
}

#[derive(serde::Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// One edit of a body: replace `range` with `with`; an empty range inserts.
#[derive(Debug, Clone)]
pub struct Edit {
    pub range: Range<usize>,
    pub with: Vec<u8>,
}

/// Apply non-overlapping edits to `body`. No edits: the same `Bytes`, no copy.
pub fn splice(body: &Bytes, mut edits: Vec<Edit>) -> Bytes {
    if edits.is_empty() {
        return body.clone();
    }
    edits.sort_by_key(|e| e.range.start);
    let extra: usize = edits.iter().map(|e| e.with.len()).sum();
    let mut out = BytesMut::with_capacity(body.len() + extra);
    let mut at = 0;
    for e in &edits {
        out.extend_from_slice(&body[at..e.range.start]);
        out.extend_from_slice(&e.with);
        at = e.range.end;
    }
    out.extend_from_slice(&body[at..]);
    out.freeze()
}

/// The edit that sets the top-level `model` to `model`.
pub fn set_model(head: &RequestHead, model: &str) -> Option<Edit> {
    let span = head.model_span.clone()?;
    let with = serde_json::to_vec(model).ok()?;
    Some(Edit { range: span, with })
}

/// The edit that makes the upstream send a final usage chunk on a stream
/// (`stream_options.include_usage = true`), keeping any other stream option.
pub fn force_include_usage(body: &[u8], head: &RequestHead) -> Option<Edit> {
    if head.include_usage || !head.stream {
        return None;
    }
    match &head.stream_options_span {
        Some(span) => {
            let mut opts: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&body[span.clone()]).unwrap_or_default();
            opts.insert("include_usage".into(), serde_json::Value::Bool(true));
            Some(Edit {
                range: span.clone(),
                with: serde_json::to_vec(&opts).ok()?,
            })
        }
        None => {
            let end = head.object_end;
            Some(Edit {
                range: end..end,
                with: br#","stream_options":{"include_usage":true}"#.to_vec(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_model_and_stream_anywhere() {
        let body = br#"{"messages":[{"role":"user","content":"{\"model\":\"no\"}"}],"stream":true,"model":"gpt-4o"}"#;
        let h = RequestHead::scan(body).unwrap();
        assert_eq!(h.model.as_deref(), Some("gpt-4o"));
        assert!(h.stream);
        assert!(!h.include_usage);
        assert_eq!(h.messages_kind, Some(b'['));
        assert_eq!(&body[h.model_span.clone().unwrap()], br#""gpt-4o""#);
        assert_eq!(h.object_end, body.len() - 1);
    }

    #[test]
    fn escaped_keys_are_read_like_plain_ones() {
        let body = br#"{"mod\u0065l":"gpt-4o","str\u0065am":true,"messages":[]}"#;
        let h = RequestHead::scan(body).unwrap();
        assert_eq!(h.model.as_deref(), Some("gpt-4o"));
        assert!(h.stream);
        assert_eq!(&body[h.model_span.clone().unwrap()], br#""gpt-4o""#);
    }

    #[test]
    fn duplicate_read_keys_are_refused_even_when_escaped() {
        for body in [
            &br#"{"model":"secret-model","model":"gpt-4o-mini","messages":[]}"#[..],
            br#"{"model":"secret-model","model":"gpt-4o-mini"}"#,
            br#"{"model":"a","model":"b"}"#,
            br#"{"model":"m","stream":false,"stream":true}"#,
            br#"{"model":"m","stream":true,"stream":false}"#,
            br#"{"model":"m","messages":[],"messages":"x"}"#,
            br#"{"model":"m","stream_options":{},"stream_options":{"include_usage":true}}"#,
        ] {
            let e = RequestHead::scan(body).unwrap_err();
            assert!(
                e.0.contains("duplicate key"),
                "{}: {}",
                String::from_utf8_lossy(body),
                e.0
            );
        }
        // Keys the gateway does not read pass as they are: the upstream decides.
        assert!(RequestHead::scan(br#"{"model":"m","user":"a","user":"b"}"#).is_ok());
    }

    #[test]
    fn rejects_non_objects_and_bad_json() {
        assert!(RequestHead::scan(b"[1,2]").is_err());
        assert!(RequestHead::scan(b"{\"model\":").is_err());
        assert!(RequestHead::scan(b"{} x").is_err());
        assert!(RequestHead::scan(b"").is_err());
    }

    #[test]
    fn model_of_wrong_type_is_flagged() {
        let h = RequestHead::scan(br#"{"model":42}"#).unwrap();
        assert!(h.model.is_none() && h.model_not_string);
    }

    #[test]
    fn rewrite_model_keeps_other_bytes() {
        let body = Bytes::from_static(br#"{ "model" : "a" , "x":[1, 2 ,3]}"#);
        let h = RequestHead::scan(&body).unwrap();
        let out = splice(&body, vec![set_model(&h, "meta/llama \"3\"").unwrap()]);
        assert_eq!(
            &out[..],
            br#"{ "model" : "meta/llama \"3\"" , "x":[1, 2 ,3]}"#
        );
    }

    #[test]
    fn include_usage_inserted_or_merged() {
        let body = Bytes::from_static(br#"{"model":"m","stream":true}"#);
        let h = RequestHead::scan(&body).unwrap();
        let out = splice(&body, vec![force_include_usage(&body, &h).unwrap()]);
        assert_eq!(
            &out[..],
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#
        );

        let body = Bytes::from_static(br#"{"model":"m","stream":true,"stream_options":{"x":1}}"#);
        let h = RequestHead::scan(&body).unwrap();
        let out = splice(&body, vec![force_include_usage(&body, &h).unwrap()]);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["stream_options"],
            serde_json::json!({"x":1,"include_usage":true})
        );

        let body = Bytes::from_static(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
        );
        let h = RequestHead::scan(&body).unwrap();
        assert!(h.include_usage && force_include_usage(&body, &h).is_none());
    }

    #[test]
    fn no_edit_is_zero_copy() {
        let body = Bytes::from_static(b"{}");
        let out = splice(&body, vec![]);
        assert_eq!(out.as_ptr(), body.as_ptr());
    }
}
