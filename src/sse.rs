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
#[derive(Debug)]
pub struct SseRelay {
    /// Unfinished event bytes carried over from earlier chunks.
    tail: BytesMut,
    /// How much of `tail` was already searched for an event end, so each byte is searched
    /// once however many reads an event spans (rescanning it on every read was quadratic:
    /// one 50 MB event took 49 s of CPU).
    searched: usize,
    /// The largest event held while incomplete.
    max_event: usize,
    /// Drop usage-only chunks (`choices: []` with `usage`) from the output.
    strip_usage_chunk: bool,
    /// The last usage an event carried (cumulative counts: the last one wins).
    pub usage: Option<Usage>,
    /// Events with content seen, a fallback estimate of output tokens.
    pub content_events: u64,
    /// An in-band `{"error": ...}` event was seen.
    pub saw_error: bool,
    pub saw_done: bool,
    /// The stream is Anthropic's (`event:` + `data:`), whose usage is cumulative across
    /// `message_start` and `message_delta`.
    anthropic: Option<crate::translate::ir::UsageUpdate>,
}

/// An upstream event grew past `limits.max_stream_event` without ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge {
    pub limit: usize,
}

impl std::fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the upstream sent a stream event larger than limits.max_stream_event ({} bytes)",
            self.limit
        )
    }
}

/// The default `limits.max_stream_event`.
pub const DEFAULT_MAX_EVENT: usize = 16 * 1024 * 1024;

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
        Self::with_max_event(strip_usage_chunk, DEFAULT_MAX_EVENT)
    }

    pub fn with_max_event(strip_usage_chunk: bool, max_event: usize) -> Self {
        SseRelay {
            tail: BytesMut::new(),
            searched: 0,
            max_event,
            strip_usage_chunk,
            usage: None,
            content_events: 0,
            saw_error: false,
            saw_done: false,
            anthropic: None,
        }
    }

    /// A relay for an Anthropic Messages stream passed through to an Anthropic client.
    pub fn anthropic(max_event: usize) -> Self {
        SseRelay {
            anthropic: Some(Default::default()),
            ..Self::with_max_event(false, max_event)
        }
    }

    /// Read one upstream chunk. Returns what goes downstream: `None` means forward the chunk
    /// unchanged (zero-copy: it held whole events only, none dropped), `Some(bytes)` replaces
    /// it (possibly empty while an event is incomplete).
    ///
    /// Only whole events go downstream: an unfinished event waits for its end, so a stream cut
    /// by a failure can always be closed with a well-formed terminal error event.
    pub fn feed(&mut self, chunk: &Bytes) -> Result<Option<Bytes>, EventTooLarge> {
        let mut dropped = Dropped::default();
        if self.tail.is_empty() {
            let consumed = self.scan_events(chunk, 0, &mut dropped);
            if consumed < chunk.len() {
                self.tail.extend_from_slice(&chunk[consumed..]);
                self.searched = self.tail.len();
                self.check_size()?;
            }
            if dropped.is_empty() && consumed == chunk.len() {
                return Ok(None);
            }
            return Ok(Some(dropped.remove_from(chunk.slice(..consumed))));
        }
        // Appending is amortised linear (the buffer doubles); the search resumes where the
        // last one stopped, three bytes back for a `\r\n\r\n` split across reads.
        self.tail.extend_from_slice(chunk);
        let mut tail = std::mem::take(&mut self.tail);
        let consumed = self.scan_events(&tail, self.searched.saturating_sub(3), &mut dropped);
        let done = tail.split_to(consumed).freeze();
        self.tail = tail;
        self.searched = self.tail.len();
        self.check_size()?;
        Ok(Some(dropped.remove_from(done)))
    }

    /// The stream ended: whatever unfinished event is left, read and passed on as it is
    /// (some servers end the last event without a blank line).
    pub fn finish(&mut self) -> Option<Bytes> {
        if self.tail.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.tail).freeze();
        self.searched = 0;
        if self.read_event(&rest) && self.strip_usage_chunk {
            return None;
        }
        Some(rest)
    }

    /// True while an unfinished event is held back.
    pub fn holds_partial_event(&self) -> bool {
        !self.tail.is_empty()
    }

    fn check_size(&self) -> Result<(), EventTooLarge> {
        if self.tail.len() > self.max_event {
            return Err(EventTooLarge {
                limit: self.max_event,
            });
        }
        Ok(())
    }

    /// Walk the complete events of `buf` (the first event end is searched from `from`),
    /// note the usage-only ones to drop, and return how many bytes were complete events.
    fn scan_events(&mut self, buf: &[u8], from: usize, dropped: &mut Dropped) -> usize {
        let mut at = 0;
        let mut from = from;
        while let Some((len, sep)) = next_event(&buf[at..], from) {
            let event = &buf[at..at + len];
            if self.read_event(event) && self.strip_usage_chunk {
                dropped.push(at..at + len + sep);
            }
            at += len + sep;
            from = 0;
        }
        at
    }

    /// Read one event; true when it is a usage-only chunk.
    fn read_event(&mut self, event: &[u8]) -> bool {
        if self.anthropic.is_some() {
            self.read_anthropic_event(event);
            return false;
        }
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

impl SseRelay {
    /// An Anthropic event: content blocks count as content; only `message_start` and
    /// `message_delta` (which carry usage) are parsed, and only their usage.
    fn read_anthropic_event(&mut self, event: &[u8]) {
        for line in event.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            let kind = anthropic_event_type(data);
            match kind.as_deref() {
                Some(b"content_block_start") | Some(b"content_block_delta") => {
                    self.content_events += 1
                }
                Some(b"message_start") | Some(b"message_delta") => {
                    if let Some(u) = crate::translate::anthropic::usage_in_event(data) {
                        if let Some(acc) = self.anthropic.as_mut() {
                            acc.merge(&u);
                            self.usage = Some(acc.to_usage());
                        }
                    }
                }
                Some(b"message_stop") => self.saw_done = true,
                Some(b"error") => self.saw_error = true,
                _ => {}
            }
        }
    }
}

/// The `"type"` of an Anthropic event's data, read from its first bytes (Anthropic writes
/// it first) without parsing the rest; a server that orders keys otherwise costs a parse.
fn anthropic_event_type(data: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    const EVENTS: &[&[u8]] = &[
        b"content_block_delta",
        b"content_block_start",
        b"content_block_stop",
        b"message_start",
        b"message_delta",
        b"message_stop",
        b"ping",
        b"error",
    ];
    if let Some(rest) = data.strip_prefix(b"{\"type\":\"") {
        if let Some(end) = memchr::memchr(b'"', rest) {
            if EVENTS.contains(&&rest[..end]) {
                return Some(std::borrow::Cow::Borrowed(&rest[..end]));
            }
        }
    }
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    let k: Kind = serde_json::from_slice(data).ok()?;
    Some(std::borrow::Cow::Owned(k.kind.into_bytes()))
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

/// Byte ranges of usage-only events to leave out of a chunk.
#[derive(Default)]
struct Dropped(Vec<std::ops::Range<usize>>);

impl Dropped {
    fn push(&mut self, r: std::ops::Range<usize>) {
        self.0.push(r);
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `events` without the dropped ranges (the same bytes, no copy, when none).
    fn remove_from(self, events: Bytes) -> Bytes {
        if self.0.is_empty() {
            return events;
        }
        let mut out = BytesMut::with_capacity(events.len());
        let mut at = 0;
        for r in self.0 {
            out.extend_from_slice(&events[at..r.start]);
            at = r.end;
        }
        out.extend_from_slice(&events[at..]);
        out.freeze()
    }
}

/// Length of the next complete event and of its separator (`\n\n`, `\r\n\r\n`), looking
/// for the separator's first line feed at or after `from`.
///
/// One forward pass over the line feeds: searching for each separator over the whole
/// remainder, per event, was quadratic in the events a coalesced chunk holds.
fn next_event(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let from = from.min(buf.len());
    for i in memchr::memchr_iter(b'\n', &buf[from..]).map(|i| i + from) {
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
            match relay.feed(&b).expect("within the event cap") {
                None => out.extend_from_slice(&b),
                Some(r) => out.extend_from_slice(&r),
            }
        }
        if let Some(rest) = relay.finish() {
            out.extend_from_slice(&rest);
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
        assert!(r.feed(&chunk).unwrap().is_none());
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

    #[test]
    fn unfinished_events_are_held_back_until_they_end() {
        for strip in [false, true] {
            let mut r = SseRelay::new(strip);
            let first = Bytes::from_static(b"data: {\"choices\":[{}]}\n\ndata: {\"cho");
            let out = r.feed(&first).unwrap().expect("replaced");
            assert_eq!(&out[..], b"data: {\"choices\":[{}]}\n\n");
            assert!(r.holds_partial_event());
            let out = r
                .feed(&Bytes::from_static(b"ices\":[{}]}\r"))
                .unwrap()
                .unwrap();
            assert!(out.is_empty());
            let out = r
                .feed(&Bytes::from_static(b"\n\r\ndata: [DONE]\n\n"))
                .unwrap()
                .unwrap();
            assert_eq!(
                &out[..],
                b"data: {\"choices\":[{}]}\r\n\r\ndata: [DONE]\n\n"
            );
            assert!(!r.holds_partial_event() && r.saw_done);
            assert_eq!(r.content_events, 2);
        }
    }

    #[test]
    fn a_last_event_without_blank_line_is_passed_on_at_the_end() {
        let mut r = SseRelay::new(false);
        let out = run(&mut r, &[b"data: {\"choices\":[{}]}\n\ndata: [DONE]\n"]);
        assert!(out.ends_with(b"data: [DONE]\n"));
        assert!(r.saw_done);
    }

    #[test]
    fn an_event_past_the_cap_is_refused() {
        let mut r = SseRelay::with_max_event(false, 1000);
        let mut fed = 0;
        let err = loop {
            match r.feed(&Bytes::from(vec![b'A'; 300])) {
                Ok(_) => fed += 300,
                Err(e) => break e,
            }
            assert!(fed < 2000, "never refused");
        };
        assert_eq!(err.limit, 1000);
        assert!(fed >= 900, "refused early at {fed}");
        // Complete events of any size pass: only what is held counts.
        let mut r = SseRelay::with_max_event(false, 1000);
        let mut big = b"data: ".to_vec();
        big.extend(std::iter::repeat_n(b'x', 5000));
        big.extend_from_slice(b"\n\n");
        assert!(r.feed(&Bytes::from(big)).unwrap().is_none());
    }

    /// A 64 MiB event in 16 KiB reads: each byte is searched once (the old scanner searched
    /// the whole held event on every read, about 128 GiB of searching here).
    #[test]
    fn one_long_event_is_scanned_in_linear_time() {
        let mut r = SseRelay::with_max_event(false, 128 << 20);
        let piece = Bytes::from(vec![b'A'; 16 * 1024]);
        let started = std::time::Instant::now();
        assert!(r.feed(&Bytes::from_static(b"data: ")).unwrap().is_some());
        for _ in 0..4096 {
            let out = r.feed(&piece).unwrap().unwrap();
            assert!(out.is_empty());
        }
        let out = r.feed(&Bytes::from_static(b"\n\n")).unwrap().unwrap();
        assert_eq!(out.len(), 6 + 64 * 1024 * 1024 + 2);
        // Linear: well under a second even unoptimised; quadratic would take minutes.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}

#[cfg(test)]
mod anthropic_tests {
    use super::*;

    #[test]
    fn anthropic_usage_is_cumulative_whatever_the_key_order() {
        let stream = concat!(
            "event: message_start\ndata: {\"message\":{\"content\":[],\"id\":\"msg_1\",\"model\":\"m\",\"role\":\"assistant\",\"type\":\"message\",\"usage\":{\"cache_creation_input_tokens\":2,\"cache_read_input_tokens\":3,\"input_tokens\":21,\"output_tokens\":1}},\"type\":\"message_start\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":4}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let mut relay = SseRelay::anthropic(DEFAULT_MAX_EVENT);
        assert_eq!(
            relay.feed(&Bytes::from_static(stream.as_bytes())).unwrap(),
            None
        );
        let u = relay.usage.unwrap();
        assert_eq!(
            (u.input, u.cached_input, u.cache_creation_input, u.output),
            (26, 3, 2, 4)
        );
        assert_eq!(relay.content_events, 1);
        assert!(relay.saw_done);
    }
}
