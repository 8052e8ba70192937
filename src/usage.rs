//! Normalised token usage (contract §7): every dialect's counters map onto one shape.

use memchr::memmem::FinderRev;
use once_cell::sync::Lazy;
use serde::Deserialize;

/// Token usage of one request. `input` includes cache reads and writes; a cached token
/// is counted once, in `input` and again in `cached_input` only as a breakdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub cached_input: u64,
    pub cache_creation_input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub total: u64,
    /// True when the numbers were estimated by the gateway (the upstream never sent
    /// usage, e.g. the client went away before the final usage chunk).
    pub estimated: bool,
}

/// OpenAI's `usage` object (chat, completions, embeddings, vLLM and most compatible servers).
#[derive(Debug, Deserialize, Default)]
pub struct OpenAiUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize, Default)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    /// Non-standard, sent by some compatible servers.
    #[serde(default)]
    pub cache_creation_tokens: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
pub struct CompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        let (cached, creation) = u
            .prompt_tokens_details
            .map(|d| {
                (
                    d.cached_tokens.unwrap_or(0),
                    d.cache_creation_tokens.unwrap_or(0),
                )
            })
            .unwrap_or_default();
        let reasoning = u
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0);
        Usage {
            input: u.prompt_tokens,
            cached_input: cached,
            cache_creation_input: creation,
            output: u.completion_tokens,
            reasoning,
            total: u
                .total_tokens
                .unwrap_or(u.prompt_tokens.saturating_add(u.completion_tokens)),
            estimated: false,
        }
    }
}

/// Find the last top-level-looking `"usage": {...}` object in an OpenAI JSON body
/// (non-streaming answers put it last) and read it. Returns `None` when absent or
/// `null`. Only the usage object is parsed, never the whole body.
pub fn openai_usage_in(body: &[u8]) -> Option<Usage> {
    // Built once: constructing the searcher cost more than the search on small bodies.
    static USAGE_KEY: Lazy<FinderRev<'static>> = Lazy::new(|| FinderRev::new(b"\"usage\""));
    let finder = &*USAGE_KEY;
    let mut end = body.len();
    while let Some(pos) = finder.rfind(&body[..end]) {
        let rest = &body[pos + 7..];
        let rest = skip_ws(rest);
        if let Some(after_colon) = rest.strip_prefix(b":") {
            let value = skip_ws(after_colon);
            if value.first() == Some(&b'{') {
                // The plain shape every server sends, read by hand; anything unusual (escapes,
                // floats, odd nesting) goes through serde instead.
                if let Some(u) = quick::read(value) {
                    return Some(u);
                }
                let mut de = serde_json::Deserializer::from_slice(value).into_iter::<OpenAiUsage>();
                if let Some(Ok(u)) = de.next() {
                    return Some(u.into());
                }
            }
            if value.starts_with(b"null") {
                return None;
            }
        }
        end = pos;
    }
    None
}

/// A reader for OpenAI's usage object without serde (a third of its cost per answer): field
/// names matched as bytes, counts read as integers, every other value skipped. It answers
/// `None`, and the caller falls back to serde, on anything it does not expect (escapes,
/// floats, nested containers, a `null` count), so well-formed usage reads the same both ways.
mod quick {
    use super::{skip_ws, Usage};

    #[derive(Default)]
    struct Counts {
        prompt: u64,
        completion: u64,
        total: Option<u64>,
        cached: u64,
        creation: u64,
        reasoning: u64,
    }

    pub fn read(v: &[u8]) -> Option<Usage> {
        let mut c = Counts::default();
        object(v, &mut |key, value, parent| {
            // As serde reads `OpenAiUsage`: the two counts must be integers; the optional
            // ones may be `null` (counted as absent).
            let null = value == b"null";
            let n = || integer(value);
            let opt = || {
                if null {
                    Some(None)
                } else {
                    integer(value).map(Some)
                }
            };
            match (parent, key) {
                (None, b"prompt_tokens") => c.prompt = n()?,
                (None, b"completion_tokens") => c.completion = n()?,
                (None, b"total_tokens") => c.total = opt()?,
                (Some(b"prompt_tokens_details"), b"cached_tokens") => {
                    c.cached = opt()?.unwrap_or(0)
                }
                (Some(b"prompt_tokens_details"), b"cache_creation_tokens") => {
                    c.creation = opt()?.unwrap_or(0)
                }
                (Some(b"completion_tokens_details"), b"reasoning_tokens") => {
                    c.reasoning = opt()?.unwrap_or(0)
                }
                _ => {}
            }
            Some(())
        })?;
        Some(Usage {
            input: c.prompt,
            cached_input: c.cached,
            cache_creation_input: c.creation,
            output: c.completion,
            reasoning: c.reasoning,
            total: c.total.unwrap_or(c.prompt.saturating_add(c.completion)),
            estimated: false,
        })
    }

    /// Called with each member's key, raw value, and the key of the `*_details` object it
    /// sits in (`None` at the top level).
    type OnMember<'f> = &'f mut dyn FnMut(&[u8], &[u8], Option<&[u8]>) -> Option<()>;

    /// Walk `{...}` at the start of `v`: each member's key and raw value go to `on`, and the
    /// members of `*_details` objects one level down with their parent's key. Returns the
    /// bytes after the object.
    fn object<'a>(v: &'a [u8], on: OnMember) -> Option<&'a [u8]> {
        members(v, None, on)
    }

    fn members<'a>(v: &'a [u8], parent: Option<&[u8]>, on: OnMember) -> Option<&'a [u8]> {
        let mut rest = skip_ws(v.strip_prefix(b"{")?);
        if let Some(after) = rest.strip_prefix(b"}") {
            return Some(after);
        }
        loop {
            let (key, after_key) = plain_string(rest)?;
            rest = skip_ws(skip_ws(after_key).strip_prefix(b":")?);
            if rest.first() == Some(&b'{') {
                if parent.is_some() || !key.ends_with(b"_details") {
                    rest = skip_value(rest)?;
                } else {
                    rest = members(rest, Some(key), on)?;
                }
            } else {
                let after = skip_value(rest)?;
                on(key, &rest[..rest.len() - after.len()], parent)?;
                rest = after;
            }
            rest = skip_ws(rest);
            match rest.first()? {
                b',' => rest = skip_ws(&rest[1..]),
                b'}' => return Some(&rest[1..]),
                _ => return None,
            }
        }
    }

    /// A string without escapes: its bytes and what follows. Escapes → `None` (serde reads those).
    fn plain_string(v: &[u8]) -> Option<(&[u8], &[u8])> {
        let v = v.strip_prefix(b"\"")?;
        let end = v.iter().position(|&b| b == b'"' || b == b'\\')?;
        (v[end] == b'"').then(|| (&v[..end], &v[end + 1..]))
    }

    /// Skip one scalar, string or array without escapes or nested objects: enough for every
    /// usage object seen; anything else is left to serde.
    fn skip_value(v: &[u8]) -> Option<&[u8]> {
        match v.first()? {
            b'"' => plain_string(v).map(|(_, rest)| rest),
            b'{' | b'[' => {
                let close = if v[0] == b'{' { b'}' } else { b']' };
                let end = v.iter().position(|&b| b == close)?;
                // Only flat containers of scalars: no nested containers or strings inside.
                v[1..end]
                    .iter()
                    .all(|b| !matches!(b, b'{' | b'[' | b'"'))
                    .then(|| &v[end + 1..])
            }
            _ => {
                let end = v
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                    .unwrap_or(v.len());
                (end > 0).then(|| &v[end..])
            }
        }
    }

    /// A non-negative JSON integer that fits u64.
    fn integer(v: &[u8]) -> Option<u64> {
        if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        if v.len() > 1 && v[0] == b'0' {
            return None;
        }
        v.iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add((d - b'0') as u64)
        })
    }
}

fn skip_ws(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
        .count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_at_end_of_chat_body() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"the word \"usage\": here"}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2}}}"#;
        let u = openai_usage_in(body).unwrap();
        assert_eq!(
            u,
            Usage {
                input: 12,
                cached_input: 4,
                cache_creation_input: 0,
                output: 5,
                reasoning: 2,
                total: 17,
                estimated: false
            }
        );
    }

    #[test]
    fn null_or_missing_usage_is_none() {
        assert_eq!(openai_usage_in(br#"{"usage":null}"#), None);
        assert_eq!(openai_usage_in(br#"{"choices":[]}"#), None);
    }

    #[test]
    fn embeddings_usage_without_completion() {
        let u = openai_usage_in(br#"{"data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}"#)
            .unwrap();
        assert_eq!((u.input, u.output, u.total), (8, 0, 8));
    }

    /// Counts near `u64::MAX` without `total_tokens`: the derived total saturates instead of
    /// overflowing (a panic with overflow checks, a wrapped total without).
    #[test]
    fn derived_total_saturates() {
        // 20 digits go to serde; 19 digits each are read by hand.
        for usage in [
            r#"{"prompt_tokens":18446744073709551615,"completion_tokens":2}"#,
            r#"{"prompt_tokens":9999999999999999999,"completion_tokens":9999999999999999999}"#,
        ] {
            let read = openai_usage_in(format!(r#"{{"usage":{usage}}}"#).as_bytes()).unwrap();
            assert_eq!(read.total, u64::MAX, "{usage}");
            let by_serde: Usage = serde_json::from_str::<OpenAiUsage>(usage).unwrap().into();
            assert_eq!(by_serde, read, "{usage}");
        }
    }

    /// The hand reader and serde agree on every shape, or the hand reader steps aside.
    #[test]
    fn quick_reader_agrees_with_serde() {
        let cases: &[&[u8]] = &[
            br#"{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}"#,
            br#"{ "prompt_tokens" : 9 , "completion_tokens" : 12 }"#,
            br#"{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2,"audio_tokens":null,"accepted_prediction_tokens":0}}"#,
            br#"{"prompt_tokens":9,"completion_tokens":1,"prompt_tokens_details":null,"total_tokens":null}"#,
            br#"{"prompt_tokens":9,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":null,"cache_creation_tokens":3}}"#,
            br#"{"prompt_tokens":9,"completion_tokens":1,"extra":"text","list":[1,2],"flag":true}"#,
            br#"{"prompt_tokens":9,"completion_tokens":1,"nested":{"a":{"b":1}}}"#,
            br#"{"prompt_tokens":9,"completion_tokens":1,"s":"with \"escape\""}"#,
            br#"{"prompt_tokens":9.0,"completion_tokens":1}"#,
            br#"{"prompt_tokens":-1,"completion_tokens":1}"#,
            br#"{"prompt_tokens":null,"completion_tokens":1}"#,
            br#"{"prompt_tokens":18446744073709551615,"completion_tokens":0}"#,
            br#"{"prompt_tokens":99999999999999999999,"completion_tokens":0}"#,
            br#"{"prompt_tokens":012,"completion_tokens":0}"#,
            br#"{"prompt_\u0074okens":5,"completion_tokens":0}"#,
            br#"{"completion_tokens_details":{"reasoning_tokens":7},"prompt_tokens":1,"completion_tokens":8}"#,
            br#"{}"#,
            br#"{"prompt_tokens":1,"completion_tokens":2"#,
        ];
        for case in cases {
            let serde: Option<Usage> = serde_json::Deserializer::from_slice(case)
                .into_iter::<OpenAiUsage>()
                .next()
                .and_then(Result::ok)
                .map(Into::into);
            if let Some(quick) = quick::read(case) {
                assert_eq!(Some(quick), serde, "{}", String::from_utf8_lossy(case));
            }
            // Inside a body, the value is whatever follows `"usage":` (the body's own closing
            // brace may complete a truncated case).
            let mut body = br#"{"id":"x","usage":"#.to_vec();
            body.extend_from_slice(case);
            body.push(b'}');
            let value = &body[body.len() - case.len() - 1..];
            let serde_in_body: Option<Usage> = serde_json::Deserializer::from_slice(value)
                .into_iter::<OpenAiUsage>()
                .next()
                .and_then(Result::ok)
                .map(Into::into);
            assert_eq!(
                openai_usage_in(&body),
                serde_in_body,
                "{}",
                String::from_utf8_lossy(case)
            );
        }
        // The common shape is read by hand, not handed to serde.
        assert!(quick::read(cases[2]).is_some());
    }
}
