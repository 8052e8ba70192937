//! Streams: Anthropic SSE → [`Event`]s ([`Decoder`]) and [`Event`]s → Anthropic SSE for a
//! client ([`Encoder`]).
//!
//! Decoder decisions:
//! - Block types the neutral form has no place for (server-tool results, `container_upload`,
//!   compaction, ...) are skipped with all their events; the blocks that remain are
//!   renumbered from 0 in the order they open, and an upstream index that opens again gets
//!   a fresh number (indices are never reused).
//! - `server_tool_use` opens a ToolUse block like `tool_use` (translation.md §5.4).
//! - `citations_delta` and delta types no table knows are skipped; so are deltas and stops
//!   for an index that never opened.
//! - A second `message_start` carrying the same id before any block opened is a duplicate
//!   and ignored. Any other second `message_start` means two answers were spliced into one
//!   stream: content the client may already have cannot be taken back, and joining them
//!   would send a half tool call, so the stream fails (502).
//! - `message_delta` usage is cumulative: each count it carries replaces the earlier one.
//! - `data: [DONE]` (sent by some Anthropic-compatible proxies) is ignored.
//! - Nothing is decoded after `message_stop` or `event: error`.
//! - At the end of the body, a last event whose blank line (or final line end) never came
//!   is still decoded when its data is whole JSON; an event cut mid-JSON is not.

use super::super::ir::*;
use super::error::status_of_type;
use super::response::{stop_from_wire, stop_to_wire, usage_to_wire};
use super::usage::from_wire;
use crate::errors::GatewayError;
use crate::wire::anthropic::{MsgBlock, OutUsage, StreamEvent, WireUsage};
use memchr::memchr;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};

// ───────────────────────────── decoder ─────────────────────────────

pub struct Decoder {
    max_event: usize,
    /// Bytes not yet consumed as complete lines.
    buf: Vec<u8>,
    /// How far `buf` has been searched for a line end (so a long line is scanned once).
    searched: usize,
    /// The current event's `data` (lines joined by `\n`).
    data: Vec<u8>,
    /// Lines of the current event seen (comments and `event:` included), for the limit.
    event_len: usize,
    started: bool,
    message_id: String,
    block_seen: bool,
    finished: bool,
    /// Upstream block index → this decoder's index (`None`: a skipped block).
    blocks: HashMap<u64, Option<usize>>,
    next_index: usize,
    /// Raw Anthropic input counters, so a `message_delta` that updates one of them can
    /// report the inclusive `input` again.
    raw: WireUsage,
}

impl Decoder {
    pub fn new(max_event: usize) -> Self {
        Decoder {
            max_event,
            buf: Vec::new(),
            searched: 0,
            data: Vec::new(),
            event_len: 0,
            started: false,
            message_id: String::new(),
            block_seen: false,
            finished: false,
            blocks: HashMap::new(),
            next_index: 0,
            raw: WireUsage::default(),
        }
    }

    fn too_big(&self) -> GatewayError {
        GatewayError::new(
            502,
            format!(
                "upstream stream event exceeds limits.max_stream_event ({} bytes)",
                self.max_event
            ),
        )
    }

    /// Consume complete lines from `buf`.
    fn lines(&mut self, out: &mut Vec<Event>) -> Result<(), GatewayError> {
        let mut start = 0;
        while !self.finished {
            let Some(nl) = memchr(b'\n', &self.buf[self.searched..]).map(|i| i + self.searched)
            else {
                break;
            };
            let mut end = nl;
            if end > start && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
            let (s, e) = (start, end);
            start = nl + 1;
            self.searched = start;
            self.line(s, e, out)?;
        }
        if self.finished {
            self.buf.clear();
            self.searched = 0;
            return Ok(());
        }
        if start > 0 {
            self.buf.drain(..start);
            self.searched = self.buf.len();
        } else {
            self.searched = self.buf.len();
        }
        if self.event_len.saturating_add(self.buf.len()) > self.max_event {
            return Err(self.too_big());
        }
        Ok(())
    }

    /// One line `buf[s..e]` (without its end).
    fn line(&mut self, s: usize, e: usize, out: &mut Vec<Event>) -> Result<(), GatewayError> {
        if s == e {
            self.event_len = 0;
            if !self.data.is_empty() {
                let data = std::mem::take(&mut self.data);
                let r = self.event(&data, out);
                self.data = data;
                self.data.clear();
                r?;
            }
            return Ok(());
        }
        self.event_len = self.event_len.saturating_add(e - s + 1);
        if self.event_len > self.max_event {
            return Err(self.too_big());
        }
        let line = &self.buf[s..e];
        if let Some(v) = line.strip_prefix(b"data:") {
            let v = v.strip_prefix(b" ").unwrap_or(v);
            if !self.data.is_empty() {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(v);
        }
        // `event:` names the type the data repeats; `id:`, `retry:` and comments: unused.
        Ok(())
    }

    fn event(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), GatewayError> {
        if data == b"[DONE]" {
            return Ok(()); // some Anthropic-compatible proxies end with OpenAI's marker
        }
        let ev: StreamEvent = serde_json::from_slice(data).map_err(|e| {
            GatewayError::new(502, format!("upstream stream event is not JSON: {e}"))
        })?;
        let Some(kind) = ev.kind.as_deref() else {
            return Ok(());
        };
        match kind {
            "message_start" => {
                let m = ev.message.unwrap_or_default();
                let id = m.id.unwrap_or_default();
                if self.started {
                    if id == self.message_id && !self.block_seen {
                        return Ok(()); // a duplicate
                    }
                    return Err(GatewayError::new(
                        502,
                        format!(
                            "upstream stream began a second message (`{}`) inside `{}`",
                            crate::errors::clip(&id, 64),
                            crate::errors::clip(&self.message_id, 64)
                        ),
                    ));
                }
                self.started = true;
                self.message_id = id.clone();
                out.push(Event::Start {
                    id,
                    model: m.model.unwrap_or_default(),
                });
                if let Some(u) = m.usage {
                    self.raw = u;
                    out.push(Event::Usage(from_wire(&u)));
                }
            }
            "content_block_start" => {
                self.block_seen = true;
                let (Some(up), Some(b)) = (ev.index, ev.content_block) else {
                    return Ok(());
                };
                let index = self.next_index;
                let opened = open_block(index, b, out);
                self.blocks.insert(up, opened.then_some(index));
                if opened {
                    self.next_index += 1;
                }
            }
            "content_block_delta" => {
                let (Some(index), Some(d)) = (self.index_of(ev.index), ev.delta) else {
                    return Ok(());
                };
                let delta = match d.kind.as_deref() {
                    Some("text_delta") => d.text.map(Delta::Text),
                    Some("thinking_delta") => d.thinking.map(Delta::Thinking),
                    Some("signature_delta") => d.signature.map(Delta::Signature),
                    Some("input_json_delta") => d.partial_json.map(Delta::ToolArgs),
                    _ => None, // citations_delta and unknown kinds
                };
                if let Some(delta) = delta {
                    out.push(Event::Delta { index, delta });
                }
            }
            "content_block_stop" => {
                if let Some(index) = self.index_of(ev.index) {
                    out.push(Event::BlockStop { index });
                }
            }
            "message_delta" => {
                if let Some(d) = ev.delta {
                    if let Some(r) = d.stop_reason {
                        out.push(Event::Stop {
                            reason: stop_from_wire(&r),
                            sequence: d.stop_sequence,
                        });
                    }
                }
                if let Some(u) = ev.usage {
                    out.push(Event::Usage(self.delta_usage(&u)));
                }
            }
            "message_stop" => {
                self.finished = true;
                out.push(Event::Done);
            }
            "error" => {
                self.finished = true;
                let e = ev.error.unwrap_or_default();
                let status = status_of_type(e.kind.as_deref().unwrap_or(""));
                out.push(Event::Error(GatewayError::new(
                    status,
                    e.message
                        .unwrap_or_else(|| "upstream stream error".to_string()),
                )));
            }
            _ => {} // ping and event types no table knows
        }
        Ok(())
    }

    fn index_of(&self, up: Option<u64>) -> Option<usize> {
        up.and_then(|i| self.blocks.get(&i).copied().flatten())
    }

    /// Cumulative counts replace; the input total is recomputed from the latest raw parts.
    fn delta_usage(&mut self, u: &WireUsage) -> UsageUpdate {
        let touches_input = u.input_tokens.is_some()
            || u.cache_read_input_tokens.is_some()
            || u.cache_creation_input_tokens.is_some();
        macro_rules! take {
            ($($f:ident),*) => { $( if u.$f.is_some() { self.raw.$f = u.$f; } )* };
        }
        take!(
            input_tokens,
            cache_read_input_tokens,
            cache_creation_input_tokens
        );
        let mut upd = UsageUpdate {
            output: u.output_tokens,
            reasoning: u.output_tokens_details.and_then(|d| d.thinking_tokens),
            ..Default::default()
        };
        if touches_input {
            let all = from_wire(&self.raw);
            upd.input = all.input;
            upd.cached_input = all.cached_input;
            upd.cache_creation_input = all.cache_creation_input;
        }
        upd
    }
}

/// Emit a block's opening; `false` for a type that is skipped.
fn open_block(index: usize, b: MsgBlock, out: &mut Vec<Event>) -> bool {
    match b.kind.as_str() {
        "text" => {
            out.push(Event::BlockStart {
                index,
                block: Block::Text,
            });
            if let Some(t) = b.text.filter(|t| !t.is_empty()) {
                out.push(Event::Delta {
                    index,
                    delta: Delta::Text(t),
                });
            }
        }
        "thinking" => {
            out.push(Event::BlockStart {
                index,
                block: Block::Thinking,
            });
            if let Some(t) = b.thinking.filter(|t| !t.is_empty()) {
                out.push(Event::Delta {
                    index,
                    delta: Delta::Thinking(t),
                });
            }
            if let Some(s) = b.signature.filter(|s| !s.is_empty()) {
                out.push(Event::Delta {
                    index,
                    delta: Delta::Signature(s),
                });
            }
        }
        "redacted_thinking" => out.push(Event::BlockStart {
            index,
            block: Block::RedactedThinking {
                data: b.data.unwrap_or_default(),
            },
        }),
        "tool_use" | "server_tool_use" => {
            out.push(Event::BlockStart {
                index,
                block: Block::ToolUse {
                    id: b.id.unwrap_or_default(),
                    name: b.name.unwrap_or_default(),
                },
            });
            if let Some(input) = b
                .input
                .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
            {
                out.push(Event::Delta {
                    index,
                    delta: Delta::ToolArgs(input.to_string()),
                });
            }
        }
        _ => return false,
    }
    true
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), GatewayError> {
        if self.finished {
            return Ok(());
        }
        self.buf.extend_from_slice(chunk);
        self.lines(out)
    }

    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), GatewayError> {
        if self.finished {
            return Ok(());
        }
        // A last data line without its end still counts; an event cut mid-JSON does not
        // (the relay sees the stream unfinished).
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.strip_suffix(b"\r").unwrap_or(&rest);
        if let Some(v) = rest.strip_prefix(b"data:") {
            let v = v.strip_prefix(b" ").unwrap_or(v);
            if !self.data.is_empty() {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(v);
        }
        let data = std::mem::take(&mut self.data);
        if !data.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_ok() {
            self.event(&data, out)?;
        }
        Ok(())
    }
}

// ───────────────────────────── encoder ─────────────────────────────

/// Writes Anthropic SSE for a client, in exactly the order the official SDKs' stream
/// accumulators expect.
///
/// - `message_start` is written when the first event after `Start` that is not `Usage`
///   arrives, so the input usage an Anthropic upstream sends right after `Start` lands in
///   it. A stream without `Start` gets one made from the client options.
/// - The client sees one block open at a time, numbered 0.. in the order written. A block
///   that starts while another is open closes the open one first (its later `BlockStop` is
///   ignored), except that a ToolUse block starting while a ToolUse block is open (an
///   OpenAI upstream's parallel tool calls, whose arguments may interleave) is held with
///   its deltas and written, in order, once the open one stops. Deltas for a block already
///   closed this way cannot be carried in Anthropic's framing and are dropped (the neutral
///   form only interleaves tool calls, so this does not happen).
/// - `message_delta` is the one held event: it waits for `Done`, because OpenAI and
///   Bedrock send usage last. `ping` is never written.
pub struct Encoder {
    opts: ClientOpts,
    start: Option<(String, String)>,
    started: bool,
    ended: bool,
    usage: UsageUpdate,
    stop: Option<(StopReason, Option<String>)>,
    next_client: usize,
    /// The block open for the client: (neutral index, client index, is a tool call).
    open: Option<(usize, usize, bool)>,
    /// Blocks waiting their turn, with their events.
    held: VecDeque<Held>,
}

struct Held {
    index: usize,
    block: Block,
    deltas: Vec<Delta>,
    stopped: bool,
}

#[derive(Serialize)]
struct SseMessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: SseMessage<'a>,
}

#[derive(Serialize)]
struct SseMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [u8; 0],
    stop_reason: Option<()>,
    stop_sequence: Option<()>,
    usage: OutUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SseBlock<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
        signature: &'static str,
    },
    RedactedThinking {
        data: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: EmptyObject,
    },
}

#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(tag = "type")]
enum SseDelta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct SseBlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    content_block: SseBlock<'a>,
}

#[derive(Serialize)]
struct SseBlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: SseDelta<'a>,
}

#[derive(Serialize)]
struct SseBlockStop {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
}

#[derive(Serialize)]
struct SseMessageDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: SseStop<'a>,
    usage: SseDeltaUsage,
}

#[derive(Serialize)]
struct SseStop<'a> {
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct SseDeltaUsage {
    output_tokens: u64,
    input_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
}

fn write_event<T: Serialize>(out: &mut Vec<u8>, name: &str, data: &T) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Serializing these structs into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

impl Encoder {
    pub fn new(opts: ClientOpts) -> Self {
        Encoder {
            opts,
            start: None,
            started: false,
            ended: false,
            usage: UsageUpdate::default(),
            stop: None,
            next_client: 0,
            open: None,
            held: VecDeque::new(),
        }
    }

    fn message_start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let (id, model) = self.start.take().unwrap_or_default();
        let id = if id.is_empty() {
            format!("msg_{}", self.opts.fallback_id)
        } else {
            id
        };
        let model = if model.is_empty() {
            self.opts.model.as_str()
        } else {
            model.as_str()
        };
        let mut usage = usage_to_wire(&self.usage);
        usage.output_tokens = 0;
        write_event(
            out,
            "message_start",
            &SseMessageStart {
                kind: "message_start",
                message: SseMessage {
                    id: &id,
                    kind: "message",
                    role: "assistant",
                    model,
                    content: [],
                    stop_reason: None,
                    stop_sequence: None,
                    usage,
                },
            },
        );
    }

    fn write_start(&mut self, index: usize, block: &Block, out: &mut Vec<u8>) {
        let client = self.next_client;
        self.next_client += 1;
        let content_block = match block {
            Block::Text => SseBlock::Text { text: "" },
            Block::Thinking => SseBlock::Thinking {
                thinking: "",
                signature: "",
            },
            Block::RedactedThinking { data } => SseBlock::RedactedThinking { data },
            Block::ToolUse { id, name } => SseBlock::ToolUse {
                id,
                name,
                input: EmptyObject {},
            },
        };
        write_event(
            out,
            "content_block_start",
            &SseBlockStart {
                kind: "content_block_start",
                index: client,
                content_block,
            },
        );
        self.open = Some((index, client, matches!(block, Block::ToolUse { .. })));
    }

    fn write_delta(client: usize, delta: &Delta, out: &mut Vec<u8>) {
        let delta = match delta {
            Delta::Text(t) => SseDelta::Text { text: t },
            Delta::Thinking(t) => SseDelta::Thinking { thinking: t },
            Delta::Signature(s) => SseDelta::Signature { signature: s },
            Delta::ToolArgs(a) => SseDelta::InputJson { partial_json: a },
        };
        write_event(
            out,
            "content_block_delta",
            &SseBlockDelta {
                kind: "content_block_delta",
                index: client,
                delta,
            },
        );
    }

    /// Close the open block for the client.
    fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some((_, client, _)) = self.open.take() {
            write_event(
                out,
                "content_block_stop",
                &SseBlockStop {
                    kind: "content_block_stop",
                    index: client,
                },
            );
        }
    }

    /// Write held blocks while none is open; a held block not yet stopped stays open.
    fn flush_held(&mut self, out: &mut Vec<u8>) {
        while self.open.is_none() {
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.write_start(h.index, &h.block, out);
            if let Some((_, client, _)) = self.open {
                for d in &h.deltas {
                    Self::write_delta(client, d, out);
                }
            }
            if h.stopped {
                self.close_open(out);
            }
        }
    }

    fn block_start(&mut self, index: usize, block: &Block, out: &mut Vec<u8>) {
        if let Some((_, _, open_is_tool)) = self.open {
            if open_is_tool && matches!(block, Block::ToolUse { .. }) || !self.held.is_empty() {
                self.held.push_back(Held {
                    index,
                    block: block.clone(),
                    deltas: Vec::new(),
                    stopped: false,
                });
                return;
            }
            self.close_open(out);
        }
        self.write_start(index, block, out);
    }

    fn delta(&mut self, index: usize, delta: &Delta, out: &mut Vec<u8>) {
        match self.open {
            Some((open, client, _)) if open == index => Self::write_delta(client, delta, out),
            _ => {
                if let Some(h) = self.held.iter_mut().find(|h| h.index == index) {
                    h.deltas.push(delta.clone());
                } else {
                    log::debug!(
                        "anthropic encoder: delta for closed or unknown block {index} dropped"
                    );
                }
            }
        }
    }

    fn block_stop(&mut self, index: usize, out: &mut Vec<u8>) {
        match self.open {
            Some((open, _, _)) if open == index => {
                self.close_open(out);
                self.flush_held(out);
            }
            _ => {
                if let Some(h) = self.held.iter_mut().find(|h| h.index == index) {
                    h.stopped = true;
                }
                // Otherwise already closed for the client (or never opened): ignored.
            }
        }
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        self.message_start(out);
        self.close_open(out);
        for h in self.held.iter_mut() {
            h.stopped = true;
        }
        self.flush_held(out);
        self.close_open(out);
        let (reason, sequence) = match &self.stop {
            Some((r, s)) => (stop_to_wire(r), s.as_deref()),
            None => ("end_turn", None),
        };
        let u = usage_to_wire(&self.usage);
        write_event(
            out,
            "message_delta",
            &SseMessageDelta {
                kind: "message_delta",
                delta: SseStop {
                    stop_reason: reason,
                    stop_sequence: sequence,
                },
                usage: SseDeltaUsage {
                    output_tokens: u.output_tokens,
                    input_tokens: u.input_tokens,
                    cache_read_input_tokens: u.cache_read_input_tokens,
                    cache_creation_input_tokens: u.cache_creation_input_tokens,
                },
            },
        );
        write_event(
            out,
            "message_stop",
            &SseBlockStopless {
                kind: "message_stop",
            },
        );
        self.ended = true;
    }
}

#[derive(Serialize)]
struct SseBlockStopless {
    #[serde(rename = "type")]
    kind: &'static str,
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, ev: &Event, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match ev {
            Event::Start { id, model } => {
                if !self.started {
                    self.start = Some((id.clone(), model.clone()));
                }
            }
            Event::Usage(u) => self.usage.merge(u),
            Event::BlockStart { index, block } => {
                self.message_start(out);
                self.block_start(*index, block, out);
            }
            Event::Delta { index, delta } => {
                self.message_start(out);
                self.delta(*index, delta, out);
            }
            Event::BlockStop { index } => {
                self.message_start(out);
                self.block_stop(*index, out);
            }
            Event::Stop { reason, sequence } => {
                self.message_start(out);
                self.stop = Some((reason.clone(), sequence.clone()));
            }
            Event::Error(e) => self.terminal_error(e, out),
            Event::Done => self.done(out),
        }
    }

    fn terminal_error(&mut self, err: &GatewayError, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        // Written where every error is (errors.rs): one boundary for all dialects.
        out.extend_from_slice(&err.terminal_event(crate::errors::ClientDialect::Anthropic));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn decode(sse: &str, max: usize) -> Result<Vec<Event>, GatewayError> {
        let mut d = Decoder::new(max);
        let mut out = Vec::new();
        d.feed(sse.as_bytes(), &mut out)?;
        d.finish(&mut out)?;
        Ok(out)
    }

    fn ev(kind: &str, data: &str) -> String {
        format!("event: {kind}\ndata: {data}\n\n")
    }

    fn encode(events: &[Event]) -> Vec<Value> {
        let mut e = Encoder::new(ClientOpts {
            model: "cm".into(),
            fallback_id: "f1".into(),
            ..Default::default()
        });
        let mut out = Vec::new();
        for x in events {
            e.encode(x, &mut out);
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn skipped_blocks_are_renumbered_and_indices_never_reused() {
        let sse = [
            ev("message_start", r#"{"type":"message_start","message":{"id":"m","model":"c"}}"#),
            ev("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"web_search_tool_result","content":[]}}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hidden"}}"#),
            ev("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
            ev("content_block_start", r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"f","input":{"a":1}}}"#),
            ev("content_block_stop", r#"{"type":"content_block_stop","index":1}"#),
            ev("content_block_start", r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":"hi"}}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{}}}"#),
            ev("content_block_stop", r#"{"type":"content_block_stop","index":1}"#),
            ev("message_stop", r#"{"type":"message_stop"}"#),
        ]
        .concat();
        let out = decode(&sse, 1 << 16).unwrap();
        assert_eq!(
            out,
            vec![
                Event::Start {
                    id: "m".into(),
                    model: "c".into()
                },
                Event::BlockStart {
                    index: 0,
                    block: Block::ToolUse {
                        id: "t".into(),
                        name: "f".into()
                    }
                },
                Event::Delta {
                    index: 0,
                    delta: Delta::ToolArgs(r#"{"a":1}"#.into())
                },
                Event::BlockStop { index: 0 },
                Event::BlockStart {
                    index: 1,
                    block: Block::Text
                },
                Event::Delta {
                    index: 1,
                    delta: Delta::Text("hi".into())
                },
                Event::BlockStop { index: 1 },
                Event::Done,
            ]
        );
    }

    #[test]
    fn error_event_maps_type_to_status_and_ends_the_stream() {
        let sse = [
            ev(
                "message_start",
                r#"{"type":"message_start","message":{"id":"m"}}"#,
            ),
            ev(
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
            ev("message_stop", r#"{"type":"message_stop"}"#),
        ]
        .concat();
        let out = decode(&sse, 1 << 16).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], Event::Error(GatewayError::new(529, "Overloaded")));
    }

    #[test]
    fn oversized_event_fails_with_the_limit_named() {
        let big = format!(
            "data: {{\"type\":\"ping\",\"x\":\"{}\"}}\n",
            "a".repeat(200)
        );
        let e = decode(&big, 100).unwrap_err();
        assert_eq!(e.status, 502);
        assert!(e.message.contains("limits.max_stream_event"));
        // Without a line end too, fed in pieces.
        let mut d = Decoder::new(100);
        let mut out = Vec::new();
        d.feed(b"data: ", &mut out).unwrap();
        assert!(d.feed(&[b'a'; 150], &mut out).is_err());
        // Bad JSON is a 502, not a panic.
        assert_eq!(decode("data: {nope\n\n", 100).unwrap_err().status, 502);
    }

    #[test]
    fn finish_decodes_a_last_event_without_its_blank_line_only_when_whole() {
        let out = decode("data: {\"type\":\"message_stop\"}", 1000).unwrap();
        assert_eq!(out, vec![Event::Done]);
        assert_eq!(
            decode("data: {\"type\":\"message_st", 1000).unwrap(),
            vec![]
        );
    }

    #[test]
    fn encoder_message_start_waits_for_usage_and_message_delta_for_done() {
        let events = vec![
            Event::Start {
                id: String::new(),
                model: String::new(),
            },
            Event::Usage(UsageUpdate {
                input: Some(50),
                cached_input: Some(20),
                ..Default::default()
            }),
            Event::BlockStart {
                index: 0,
                block: Block::Thinking,
            },
            Event::Delta {
                index: 0,
                delta: Delta::Thinking("hm".into()),
            },
            Event::Delta {
                index: 0,
                delta: Delta::Signature("sig".into()),
            },
            Event::BlockStop { index: 0 },
            Event::Stop {
                reason: StopReason::MaxTokens,
                sequence: None,
            },
            Event::Usage(UsageUpdate {
                output: Some(7),
                ..Default::default()
            }),
            Event::Done,
        ];
        let v = encode(&events);
        assert_eq!(v[0]["message"]["id"], "msg_f1");
        assert_eq!(v[0]["message"]["model"], "cm");
        assert_eq!(v[0]["message"]["content"], serde_json::json!([]));
        assert_eq!(v[0]["message"]["usage"]["input_tokens"], 30);
        assert_eq!(v[0]["message"]["usage"]["cache_read_input_tokens"], 20);
        assert_eq!(
            v[1]["content_block"],
            serde_json::json!({"type":"thinking","thinking":"","signature":""})
        );
        assert_eq!(
            v[3]["delta"],
            serde_json::json!({"type":"signature_delta","signature":"sig"})
        );
        assert_eq!(v[5]["type"], "message_delta");
        assert_eq!(v[5]["delta"]["stop_reason"], "max_tokens");
        assert_eq!(v[5]["usage"]["output_tokens"], 7);
        assert_eq!(v[6]["type"], "message_stop");
        assert_eq!(v.len(), 7);
    }

    #[test]
    fn encoder_serialises_interleaved_tool_calls() {
        let tool = |i: usize, n: &str| Event::BlockStart {
            index: i,
            block: Block::ToolUse {
                id: format!("call_{n}"),
                name: n.into(),
            },
        };
        let args = |i: usize, a: &str| Event::Delta {
            index: i,
            delta: Delta::ToolArgs(a.into()),
        };
        let events = vec![
            Event::Start {
                id: "chatcmpl-1".into(),
                model: "gpt".into(),
            },
            Event::BlockStart {
                index: 0,
                block: Block::Text,
            },
            Event::Delta {
                index: 0,
                delta: Delta::Text("ok".into()),
            },
            tool(1, "a"),
            args(1, "{\"x\":"),
            tool(2, "b"),
            args(2, "{\"y\":"),
            args(1, "1}"),
            args(2, "2}"),
            Event::BlockStop { index: 0 },
            Event::BlockStop { index: 1 },
            Event::Stop {
                reason: StopReason::ToolUse,
                sequence: None,
            },
            Event::Done,
        ];
        let v = encode(&events);
        let kinds: Vec<(String, Option<u64>)> = v
            .iter()
            .map(|e| (e["type"].as_str().unwrap().to_string(), e["index"].as_u64()))
            .collect();
        let k = |s: &str, i: Option<u64>| (s.to_string(), i);
        assert_eq!(
            kinds,
            vec![
                k("message_start", None),
                k("content_block_start", Some(0)),
                k("content_block_delta", Some(0)),
                k("content_block_stop", Some(0)),
                k("content_block_start", Some(1)),
                k("content_block_delta", Some(1)),
                k("content_block_delta", Some(1)),
                k("content_block_stop", Some(1)),
                k("content_block_start", Some(2)),
                k("content_block_delta", Some(2)),
                k("content_block_delta", Some(2)),
                k("content_block_stop", Some(2)),
                k("message_delta", None),
                k("message_stop", None),
            ]
        );
        assert_eq!(v[4]["content_block"]["id"], "call_a");
        assert_eq!(v[8]["content_block"]["id"], "call_b");
        assert_eq!(v[10]["delta"]["partial_json"], "2}");
    }

    #[test]
    fn terminal_error_is_last() {
        let mut e = Encoder::new(ClientOpts::default());
        let mut out = Vec::new();
        e.encode(
            &Event::BlockStart {
                index: 0,
                block: Block::Text,
            },
            &mut out,
        );
        e.encode(&Event::Error(GatewayError::new(429, "slow down")), &mut out);
        e.encode(&Event::Done, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.ends_with(
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}\n\n"
        ));
        assert!(!s.contains("message_stop"));
    }
}
