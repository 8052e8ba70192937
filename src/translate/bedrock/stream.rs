//! ConverseStream (`application/vnd.amazon.eventstream`) → ir::Event, frame by frame as
//! the bytes arrive.
//!
//! Bedrock's quirks this absorbs:
//! - no `contentBlockStart` for text or reasoning blocks (or one with `start: {}`): the
//!   block opens with its first delta, its kind learned from that delta;
//! - `contentBlockIndex` is Bedrock's; ours count from 0 in the order blocks open;
//! - `metadata` (usage) normally follows `messageStop` but some streams send it first:
//!   `Done` goes out once both were seen (or at the end of the body after `messageStop`);
//! - failures arrive in-band as `exception` / `error` frames: one `Event::Error`, then
//!   nothing (later frames are not read).

use super::super::ir::{Block, Delta, Event, StopReason, StreamDecoder};
use super::response::{stop_reason, stop_sequence, usage};
use crate::errors::{clip, GatewayError};
use crate::eventstream::{Frame, FrameDecoder};
use crate::wire::bedrock as w;
use serde::de::DeserializeOwned;

/// Blocks open at once before the stream is judged broken (Bedrock opens one at a time).
const MAX_OPEN_BLOCKS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    Redacted,
    Tool,
}

#[derive(Debug)]
struct Open {
    bedrock_index: u64,
    index: usize,
    kind: Kind,
}

pub struct Decoder {
    frames: FrameDecoder,
    started: bool,
    open: Vec<Open>,
    next_index: usize,
    stopped: bool,
    metadata_seen: bool,
    /// `Done` or `Error` went out: nothing more is emitted.
    finished: bool,
}

impl Decoder {
    /// `max_event`: the largest frame accepted, in bytes (prelude and CRCs included).
    pub fn new(max_event: usize) -> Self {
        Decoder {
            frames: FrameDecoder::new(max_event),
            started: false,
            open: Vec::new(),
            next_index: 0,
            stopped: false,
            metadata_seen: false,
            finished: false,
        }
    }

    fn frame(&mut self, f: &Frame, out: &mut Vec<Event>) -> Result<(), GatewayError> {
        match f.header_str(":message-type") {
            Some("event") => self.event(f, out),
            Some("exception") => {
                let kind = f
                    .header_str(":exception-type")
                    .unwrap_or("unknownException");
                let body: w::ExceptionBody = serde_json::from_slice(&f.payload).unwrap_or_default();
                let message = body
                    .message
                    .or(body.message_upper)
                    .unwrap_or_else(|| format!("Bedrock stream failed: {}", clip(kind, 200)));
                self.fail(GatewayError::new(exception_status(kind), message), out);
                Ok(())
            }
            Some("error") => {
                let code = f.header_str(":error-code").unwrap_or("unknown");
                let message = f
                    .header_str(":error-message")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("Bedrock stream failed: {}", clip(code, 200)));
                self.fail(GatewayError::new(exception_status(code), message), out);
                Ok(())
            }
            other => {
                log::warn!(
                    "bedrock: stream frame with message type {:?} skipped",
                    other.map(|s| clip(s, 100))
                );
                Ok(())
            }
        }
    }

    fn fail(&mut self, e: GatewayError, out: &mut Vec<Event>) {
        out.push(Event::Error(e));
        self.finished = true;
    }

    fn start(&mut self, out: &mut Vec<Event>) {
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: String::new(),
                model: String::new(),
            });
        }
    }

    fn event(&mut self, f: &Frame, out: &mut Vec<Event>) -> Result<(), GatewayError> {
        let Some(kind) = f.header_str(":event-type") else {
            log::warn!("bedrock: stream event without :event-type skipped");
            return Ok(());
        };
        match kind {
            "messageStart" => self.start(out),
            "contentBlockStart" => {
                self.start(out);
                let e: w::ContentBlockStart = payload(kind, f)?;
                if let Some(t) = e.start.tool_use {
                    self.close(e.content_block_index, out);
                    self.open(
                        e.content_block_index,
                        Kind::Tool,
                        Block::ToolUse {
                            id: t.tool_use_id,
                            name: t.name,
                        },
                        out,
                    )?;
                }
                // `start: {}` (a text block): it opens with its first delta.
            }
            "contentBlockDelta" => {
                self.start(out);
                let e: w::ContentBlockDelta = payload(kind, f)?;
                self.delta(e, out)?;
            }
            "contentBlockStop" => {
                let e: w::ContentBlockStop = payload(kind, f)?;
                // A block that never got a delta was never opened: nothing to close.
                self.close(e.content_block_index, out);
            }
            "messageStop" => {
                self.start(out);
                let e: w::MessageStop = payload(kind, f)?;
                // Blocks end before the answer does (ir order).
                for o in std::mem::take(&mut self.open) {
                    out.push(Event::BlockStop { index: o.index });
                }
                out.push(Event::Stop {
                    reason: e
                        .stop_reason
                        .as_deref()
                        .map(stop_reason)
                        .unwrap_or(StopReason::EndTurn),
                    sequence: stop_sequence(e.additional_model_response_fields.as_ref()),
                });
                self.stopped = true;
                self.done_if_complete(out);
            }
            "metadata" => {
                let e: w::Metadata = payload(kind, f)?;
                if let Some(u) = &e.usage {
                    out.push(Event::Usage(usage(u)));
                }
                self.metadata_seen = true;
                self.done_if_complete(out);
            }
            other => log::debug!("bedrock: stream event `{}` skipped", clip(other, 100)),
        }
        Ok(())
    }

    fn done_if_complete(&mut self, out: &mut Vec<Event>) {
        if self.stopped && self.metadata_seen && !self.finished {
            out.push(Event::Done);
            self.finished = true;
        }
    }

    fn delta(&mut self, e: w::ContentBlockDelta, out: &mut Vec<Event>) -> Result<(), GatewayError> {
        let bi = e.content_block_index;
        let d = e.delta;
        if let Some(text) = d.text {
            let index = self.ensure(bi, Kind::Text, out)?;
            if !text.is_empty() {
                out.push(Event::Delta {
                    index,
                    delta: Delta::Text(text),
                });
            }
        } else if let Some(t) = d.tool_use {
            if !self.is_open(bi, Kind::Tool) {
                log::warn!("bedrock: tool input for block {bi} without its contentBlockStart");
            }
            let index = self.ensure(bi, Kind::Tool, out)?;
            if !t.input.is_empty() {
                out.push(Event::Delta {
                    index,
                    delta: Delta::ToolArgs(t.input),
                });
            }
        } else if let Some(r) = d.reasoning_content {
            if let Some(data) = r.redacted_content {
                // Each redacted piece is a whole block: its data cannot grow by deltas.
                self.close(bi, out);
                self.open(bi, Kind::Redacted, Block::RedactedThinking { data }, out)?;
            } else if let Some(text) = r.text {
                let index = self.ensure(bi, Kind::Thinking, out)?;
                if !text.is_empty() {
                    out.push(Event::Delta {
                        index,
                        delta: Delta::Thinking(text),
                    });
                }
            } else if let Some(sig) = r.signature {
                let index = self.ensure(bi, Kind::Thinking, out)?;
                out.push(Event::Delta {
                    index,
                    delta: Delta::Signature(sig),
                });
            } else {
                log::debug!("bedrock: empty reasoning delta for block {bi} skipped");
            }
        } else {
            log::debug!("bedrock: delta of an unknown kind for block {bi} skipped");
        }
        Ok(())
    }

    fn is_open(&self, bedrock_index: u64, kind: Kind) -> bool {
        self.open
            .iter()
            .any(|o| o.bedrock_index == bedrock_index && o.kind == kind)
    }

    /// Our index of the block open at `bedrock_index`, opening one of `kind` when none is
    /// (or when the open one is of another kind: it is closed first).
    fn ensure(
        &mut self,
        bedrock_index: u64,
        kind: Kind,
        out: &mut Vec<Event>,
    ) -> Result<usize, GatewayError> {
        if let Some(o) = self.open.iter().find(|o| o.bedrock_index == bedrock_index) {
            if o.kind == kind {
                return Ok(o.index);
            }
            self.close(bedrock_index, out);
        }
        let block = match kind {
            Kind::Text => Block::Text,
            Kind::Thinking => Block::Thinking,
            Kind::Tool => Block::ToolUse {
                id: String::new(),
                name: String::new(),
            },
            Kind::Redacted => Block::RedactedThinking {
                data: String::new(),
            },
        };
        self.open(bedrock_index, kind, block, out)
    }

    fn open(
        &mut self,
        bedrock_index: u64,
        kind: Kind,
        block: Block,
        out: &mut Vec<Event>,
    ) -> Result<usize, GatewayError> {
        if self.open.len() >= MAX_OPEN_BLOCKS {
            return Err(GatewayError::new(
                502,
                format!("Bedrock stream opened more than {MAX_OPEN_BLOCKS} blocks at once"),
            ));
        }
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        self.open.push(Open {
            bedrock_index,
            index,
            kind,
        });
        out.push(Event::BlockStart { index, block });
        Ok(index)
    }

    fn close(&mut self, bedrock_index: u64, out: &mut Vec<Event>) {
        if let Some(pos) = self
            .open
            .iter()
            .position(|o| o.bedrock_index == bedrock_index)
        {
            let o = self.open.remove(pos);
            out.push(Event::BlockStop { index: o.index });
        }
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), GatewayError> {
        if self.finished {
            return Ok(());
        }
        self.frames.feed(chunk);
        while !self.finished {
            let frame = self.frames.next_frame().map_err(|e| {
                GatewayError::new(502, format!("Bedrock stream is unreadable: {e}"))
            })?;
            let Some(frame) = frame else { break };
            self.frame(&frame, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), GatewayError> {
        if !self.finished && self.stopped {
            out.push(Event::Done);
            self.finished = true;
        }
        Ok(())
    }
}

fn payload<T: DeserializeOwned>(kind: &str, f: &Frame) -> Result<T, GatewayError> {
    serde_json::from_slice(&f.payload).map_err(|e| {
        GatewayError::new(
            502,
            format!(
                "Bedrock stream event `{}` is not valid JSON: {e}",
                clip(kind, 100)
            ),
        )
    })
}

/// The status of an in-band Bedrock failure, by its exception type (or `:error-code`).
fn exception_status(kind: &str) -> u16 {
    // Bedrock spells these `throttlingException` in streams and `ThrottlingException` in
    // headers: compare without the first letter's case.
    let mut k = kind.to_owned();
    if let Some(first) = k.get_mut(..1) {
        first.make_ascii_lowercase();
    }
    match k.as_str() {
        "throttlingException" => 429,
        "serviceUnavailableException" => 503,
        "modelStreamErrorException" => 502,
        "validationException" => 400,
        "internalServerException" => 500,
        "modelTimeoutException" => 504,
        _ => 502,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventstream::encode_frame;

    fn ev(kind: &str, payload: &str) -> Vec<u8> {
        encode_frame(
            &[(":message-type", "event"), (":event-type", kind)],
            payload.as_bytes(),
        )
    }

    #[test]
    fn statuses_by_exception_type_either_case() {
        assert_eq!(exception_status("ThrottlingException"), 429);
        assert_eq!(exception_status("throttlingException"), 429);
        assert_eq!(exception_status("modelTimeoutException"), 504);
        assert_eq!(exception_status(""), 502);
        assert_eq!(exception_status("éx"), 502);
    }

    #[test]
    fn bad_json_in_a_known_event_is_a_502() {
        let mut d = Decoder::new(1024);
        let mut out = Vec::new();
        let e = d
            .feed(&ev("contentBlockDelta", "{not json"), &mut out)
            .unwrap_err();
        assert_eq!(e.status, 502);
    }

    #[test]
    fn unknown_events_are_skipped_and_tool_input_without_start_still_flows() {
        let mut d = Decoder::new(1024);
        let mut out = Vec::new();
        let mut bytes = ev("somethingNew", "{}");
        bytes.extend(ev(
            "contentBlockDelta",
            r#"{"contentBlockIndex":3,"delta":{"toolUse":{"input":"{}"}}}"#,
        ));
        bytes.extend(ev("contentBlockStop", r#"{"contentBlockIndex":3}"#));
        d.feed(&bytes, &mut out).unwrap();
        d.finish(&mut out).unwrap();
        assert_eq!(
            out,
            vec![
                Event::Start {
                    id: String::new(),
                    model: String::new()
                },
                Event::BlockStart {
                    index: 0,
                    block: Block::ToolUse {
                        id: String::new(),
                        name: String::new()
                    }
                },
                Event::Delta {
                    index: 0,
                    delta: Delta::ToolArgs("{}".into())
                },
                Event::BlockStop { index: 0 },
            ]
        );
    }

    #[test]
    fn too_many_open_blocks_is_a_502() {
        let mut d = Decoder::new(1024);
        let mut out = Vec::new();
        let mut r = Ok(());
        for i in 0..=MAX_OPEN_BLOCKS {
            let p = format!(r#"{{"contentBlockIndex":{i},"delta":{{"text":"x"}}}}"#);
            r = d.feed(&ev("contentBlockDelta", &p), &mut out);
            if r.is_err() {
                break;
            }
        }
        assert_eq!(r.unwrap_err().status, 502);
    }
}
