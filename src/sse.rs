//! Server-sent events relayed from an OpenAI-dialect upstream, read on the way.
//!
//! The relay never collects a stream: each upstream chunk goes downstream as soon as it
//! arrives. In the common case the very same `Bytes` is forwarded (zero-copy) and the scanner
//! only copies the unfinished tail of an event across chunk boundaries.
//!
//! Only when the gateway itself added `stream_options.include_usage` (the client did not ask)
//! must the final usage-only chunk be removed; then complete events are forwarded and a
//! partial event waits for its end, which costs nothing a client could use.
//!
//! Guarded by `benches/hot_path.rs` (`sse_scan`).

use crate::usage::{OpenAiUsage, Usage};
use bytes::{Bytes, BytesMut};
use memchr::memmem;
use once_cell::sync::Lazy;
use serde::Deserialize;

/// Per-stream scanner state.
#[derive(Debug, Default)]
pub struct SseRelay {
    /// Unfinished event bytes carried over from earlier chunks.
    tail: BytesMut,
    /// Drop usage-only chunks (`choices: []` with `usage`) from the output.
    strip_usage_chunk: bool,
    /// The last usage an event carried (cumulative counts: the last one wins).
    pub usage: Option<Usage>,
    /// Events with content seen, a fallback estimate of output tokens.
    pub content_events: u64,
    /// An in-band `{"error": ...}` event was seen.
    pub saw_error: bool,
    pub saw_done: bool,
}

#[derive(Deserialize)]
struct ChunkProbe {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

impl SseRelay {
    pub fn new(strip_usage_chunk: bool) -> Self {
        SseRelay {
            strip_usage_chunk,
            ..Default::default()
        }
    }

    /// Read one upstream chunk. Returns what goes downstream: `None` means forward the chunk
    /// unchanged, `Some(bytes)` replaces it (possibly empty while an event is incomplete).
    pub fn feed(&mut self, chunk: &Bytes) -> Option<Bytes> {
        if !self.strip_usage_chunk {
            self.scan_passthrough(chunk);
            return None;
        }
        self.scan_filtering(chunk)
    }

    /// Pass-through: scan complete events, keep only the partial tail.
    fn scan_passthrough(&mut self, chunk: &[u8]) {
        if self.tail.is_empty() {
            let consumed = self.scan_events(chunk, &mut |_, _| {});
            self.tail.extend_from_slice(&chunk[consumed..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let tail = std::mem::take(&mut self.tail);
            let consumed = self.scan_events(&tail, &mut |_, _| {});
            self.tail.extend_from_slice(&tail[consumed..]);
        }
    }

    /// Filtering: forward complete events except usage-only ones.
    fn scan_filtering(&mut self, chunk: &Bytes) -> Option<Bytes> {
        let joined: Bytes = if self.tail.is_empty() {
            chunk.clone()
        } else {
            self.tail.extend_from_slice(chunk);
            std::mem::take(&mut self.tail).freeze()
        };
        let mut dropped: Vec<std::ops::Range<usize>> = Vec::new();
        let consumed = self.scan_events(&joined, &mut |range, drop| {
            if drop {
                dropped.push(range);
            }
        });
        self.tail.extend_from_slice(&joined[consumed..]);
        if dropped.is_empty() && consumed == joined.len() && joined.as_ptr() == chunk.as_ptr() {
            return None; // whole events, nothing dropped: the original chunk, zero-copy
        }
        let mut out = BytesMut::with_capacity(consumed);
        let mut at = 0;
        for r in dropped {
            out.extend_from_slice(&joined[at..r.start]);
            at = r.end;
        }
        out.extend_from_slice(&joined[at..consumed]);
        Some(out.freeze())
    }

    /// Walk the complete events of `buf`; call `each(range, is_usage_only)` for each and
    /// return how many bytes were complete events.
    fn scan_events(
        &mut self,
        buf: &[u8],
        each: &mut dyn FnMut(std::ops::Range<usize>, bool),
    ) -> usize {
        let mut at = 0;
        while let Some((len, sep)) = next_event(&buf[at..]) {
            let event = &buf[at..at + len];
            let usage_only = self.read_event(event);
            each(at..at + len + sep, usage_only && self.strip_usage_chunk);
            at += len + sep;
        }
        at
    }

    /// Read one event; true when it is a usage-only chunk.
    fn read_event(&mut self, event: &[u8]) -> bool {
        let mut usage_only = false;
        for line in event.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data == b"[DONE]" {
                self.saw_done = true;
                continue;
            }
            let has_usage = USAGE_KEY.find(data).is_some();
            let has_error = ERROR_KEY.find(data).is_some();
            // With include_usage, every OpenAI chunk carries `"usage":null`: that is a content
            // chunk, not worth a JSON parse (benches/hot_path.rs, sse_scan).
            if !has_error && (!has_usage || usage_is_null(data)) {
                self.content_events += 1;
                continue;
            }
            // Only events that mention usage or error are parsed at all.
            if let Ok(probe) = serde_json::from_slice::<ChunkProbe>(data) {
                if probe.error.is_some() {
                    self.saw_error = true;
                }
                match (probe.usage, probe.choices) {
                    (Some(u), choices) => {
                        self.usage = Some(u.into());
                        usage_only = choices.map(|c| c.is_empty()).unwrap_or(true);
                        if !usage_only {
                            self.content_events += 1;
                        }
                    }
                    (None, Some(c)) if !c.is_empty() => self.content_events += 1,
                    _ => {}
                }
            }
        }
        usage_only
    }
}

/// Searchers built once: `memmem::find` builds its searcher on every call, which cost more
/// than the search itself on short SSE events.
static USAGE_KEY: Lazy<memmem::Finder<'static>> = Lazy::new(|| memmem::Finder::new(b"\"usage\""));
static ERROR_KEY: Lazy<memmem::Finder<'static>> = Lazy::new(|| memmem::Finder::new(b"\"error\""));

/// True when every `"usage"` key in `data` is followed by `null`.
fn usage_is_null(data: &[u8]) -> bool {
    USAGE_KEY.find_iter(data).all(|at| {
        let rest = &data[at + 7..];
        let rest = &rest[rest.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
        let Some(rest) = rest.strip_prefix(b":") else {
            return false;
        };
        let rest = &rest[rest.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
        rest.starts_with(b"null")
    })
}

/// Length of the next complete event and of its separator (`\n\n`, `\r\n\r\n`).
///
/// One forward pass over the line feeds: searching for each separator over the whole
/// remainder, per event, was quadratic in the events a coalesced chunk holds.
fn next_event(buf: &[u8]) -> Option<(usize, usize)> {
    for i in memchr::memchr_iter(b'\n', buf) {
        match buf.get(i + 1) {
            Some(b'\n') => return Some((i, 2)),
            Some(b'\r') if buf.get(i + 2) == Some(&b'\n') && i > 0 && buf[i - 1] == b'\r' => {
                return Some((i - 1, 4))
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n",
        "data: [DONE]\n\n"
    );

    fn run(relay: &mut SseRelay, pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            let b = Bytes::copy_from_slice(p);
            match relay.feed(&b) {
                None => out.extend_from_slice(&b),
                Some(r) => out.extend_from_slice(&r),
            }
        }
        out
    }

    #[test]
    fn passthrough_reads_usage_across_any_split() {
        let s = STREAM.as_bytes();
        for cut in 1..s.len() {
            let mut r = SseRelay::new(false);
            let out = run(&mut r, &[&s[..cut], &s[cut..]]);
            assert_eq!(out, s, "cut at {cut}");
            let u = r.usage.expect("usage");
            assert_eq!((u.input, u.output, u.total), (9, 2, 11));
            assert_eq!(r.content_events, 2);
            assert!(r.saw_done);
        }
    }

    #[test]
    fn filtering_drops_only_the_usage_chunk_across_any_split() {
        let s = STREAM.as_bytes();
        let usage_event_start = STREAM.find("data: {\"id\":\"c\",\"choices\":[]").unwrap();
        let usage_event_end = STREAM.find("data: [DONE]").unwrap();
        let mut expected = s[..usage_event_start].to_vec();
        expected.extend_from_slice(&s[usage_event_end..]);
        for cut in 1..s.len() {
            let mut r = SseRelay::new(true);
            let out = run(&mut r, &[&s[..cut], &s[cut..]]);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected),
                "cut at {cut}"
            );
            assert_eq!(r.usage.unwrap().output, 2);
        }
    }

    #[test]
    fn crlf_framing_and_no_space_after_colon() {
        let s = b"data:{\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\r\n\r\n";
        let mut r = SseRelay::new(false);
        run(&mut r, &[s]);
        assert_eq!(r.usage.unwrap().total, 2);
    }

    #[test]
    fn whole_chunks_are_forwarded_zero_copy_when_filtering() {
        let mut r = SseRelay::new(true);
        let chunk = Bytes::from_static(b"data: {\"choices\":[{\"delta\":{}}]}\n\n");
        assert!(r.feed(&chunk).is_none());
    }

    #[test]
    fn usage_null_chunks_count_as_content_without_parsing() {
        assert!(usage_is_null(
            br#"{"choices":[{"delta":{}}],"usage" : null}"#
        ));
        assert!(!usage_is_null(
            br#"{"choices":[],"usage":{"prompt_tokens":1}}"#
        ));
        assert!(!usage_is_null(br#"{"usage":null,"x":{"usage":{"a":1}}}"#));
    }

    #[test]
    fn coalesced_chunk_of_many_events_in_either_framing() {
        for sep in ["\n\n", "\r\n\r\n"] {
            let mut chunk = String::new();
            for i in 0..200 {
                chunk.push_str(&format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"t{i}\"}}}}],\"usage\":null}}{sep}"));
            }
            chunk.push_str(&format!("data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":200}}}}{sep}data: [DONE]{sep}"));
            let mut r = SseRelay::new(true);
            let out = run(&mut r, &[chunk.as_bytes()]);
            assert_eq!(r.content_events, 200, "sep {sep:?}");
            assert_eq!(r.usage.unwrap().output, 200);
            assert!(r.saw_done);
            let text = String::from_utf8(out).unwrap();
            assert!(!text.contains("\"choices\":[]"), "usage chunk stripped");
            assert_eq!(text.matches("data: ").count(), 201);
        }
    }

    #[test]
    fn in_band_error_is_noticed() {
        let mut r = SseRelay::new(false);
        run(&mut r, &[b"data: {\"error\":{\"message\":\"boom\"}}\n\n"]);
        assert!(r.saw_error);
    }
}
