//! Streams: an OpenAI-dialect upstream's SSE → `ir::Event`s ([`Decoder`]), and `ir::Event`s
//! → an OpenAI client's `chat.completion.chunk` SSE ([`Encoder`]). Both translate each
//! piece as it arrives; nothing is collected.

use super::error::status_named;
use super::framing::{SseFraming, TooLarge};
use super::response::{content_pieces, finish_of, stop_from, usage_from, usage_out};
use crate::errors::{clip, GatewayError};
use crate::translate::ir::*;
use crate::wire::openai as wire;
use serde_json::Value;

// ───────────────────────────── decoder ─────────────────────────────

/// Reads an OpenAI-dialect upstream's stream (OpenAI, Azure, vLLM, llama-server, Groq,
/// Mistral, DeepSeek, xAI).
///
/// - `Start` comes with the first chunk that carries a choice or usage: Azure's leading
///   `prompt_filter_results` chunk (`choices: []`, empty id) carries neither and is skipped,
///   so the id and model are the real ones.
/// - Only choice 0 is read (the gateway never asks for `n > 1`).
/// - Text: `delta.content` (a string, or Mistral's array of `text` / `thinking` parts) and
///   `delta.refusal`. Thinking: `delta.reasoning_content`, else `delta.reasoning` (vLLM);
///   `delta.thinking_blocks` give signatures and redacted blocks, and thinking text only
///   when the chunk has no `reasoning_content` (servers that send both repeat the text).
/// - Tool calls are keyed by OpenAI's `index` (its position in `tool_calls` when a server
///   omits it, as Mistral does). A known index with a different id is a new call: the old
///   block closes. A call that arrives without any id gets `call_<block index>`.
///   Tool blocks stay open until `finish_reason` (parallel calls may interleave).
/// - `finish_reason` closes every open block, then `Stop`; vLLM's `stop_reason` string
///   makes it a stop sequence. Usage (any chunk, `choices: []` too) follows the chunk's
///   other events. An `error` object (or vLLM's `{"object":"error"}`) is `Event::Error`
///   with the upstream's message word for word and status 502 unless it names one; then
///   nothing more is read.
/// - At the end of the body: an event complete but for its blank line is still read (a
///   body ending `data: [DONE]` with no newline); a cut JSON chunk is not. When `Stop` was
///   seen but no `[DONE]`, `Done` is implied (some servers omit it); otherwise nothing,
///   and the relay treats the stream as cut.
pub struct Decoder {
    framing: SseFraming,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
}

struct ToolSlot {
    openai_index: u64,
    block: usize,
    id: String,
    open: bool,
}

#[derive(Default)]
struct State {
    max_event: usize,
    started: bool,
    stopped: bool,
    /// `Done` or `Error` went out: nothing more is read.
    ended: bool,
    next_index: usize,
    open: Option<(usize, Kind)>,
    tools: Vec<ToolSlot>,
}

impl Decoder {
    pub fn new(max_event: usize) -> Self {
        Decoder {
            framing: SseFraming::new(max_event),
            state: State {
                max_event,
                ..State::default()
            },
        }
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), GatewayError> {
        if self.state.ended {
            return Ok(());
        }
        let state = &mut self.state;
        let framed = self.framing.feed(chunk, |data| {
            state.event(data, out)?;
            Ok::<bool, GatewayError>(!state.ended)
        })?;
        match framed {
            Ok(()) => Ok(()),
            Err(TooLarge) => {
                // The relay ends the answer; drop what was held and read nothing more.
                self.state.ended = true;
                self.framing = SseFraming::new(self.state.max_event);
                Err(GatewayError::new(
                502,
                format!(
                    "an upstream stream event grew past limits.max_stream_event ({} bytes) without ending",
                    self.state.max_event
                ),
                ))
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), GatewayError> {
        if self.state.ended {
            return Ok(());
        }
        if let Some(data) = self.framing.finish() {
            // A last event cut mid-JSON is the cut itself, not a framing error.
            let mut tail = Vec::new();
            if self.state.event(&data, &mut tail).is_ok() {
                out.append(&mut tail);
            }
        }
        if !self.state.ended && self.state.stopped {
            self.state.ended = true;
            out.push(Event::Done);
        }
        Ok(())
    }
}

impl State {
    fn event(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), GatewayError> {
        if self.ended {
            return Ok(());
        }
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            self.ended = true;
            out.push(Event::Done);
            return Ok(());
        }
        let chunk: wire::ChunkIn = serde_json::from_slice(data).map_err(|e| {
            GatewayError::new(
                502,
                format!(
                    "upstream sent a stream chunk that is not JSON: {}",
                    clip(&e.to_string(), 200)
                ),
            )
        })?;
        if let Some(err) = in_band_error(&chunk) {
            self.ended = true;
            out.push(Event::Error(err));
            return Ok(());
        }
        let choice = chunk
            .choices
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0);
        if choice.is_none() && chunk.usage.is_none() {
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(Event::Start {
                id: chunk.id.unwrap_or_default(),
                model: chunk.model.unwrap_or_default(),
            });
        }
        if let Some(choice) = choice {
            if let Some(delta) = choice.delta {
                self.delta(delta, out);
            }
            if let Some(finish) = choice.finish_reason.as_deref().filter(|_| !self.stopped) {
                self.close_all(out);
                let (reason, sequence) = stop_from(finish, choice.stop_reason.as_ref());
                self.stopped = true;
                out.push(Event::Stop { reason, sequence });
            }
        }
        if let Some(u) = &chunk.usage {
            out.push(Event::Usage(usage_from(u)));
        }
        Ok(())
    }

    fn delta(&mut self, d: wire::DeltaIn, out: &mut Vec<Event>) {
        let reasoning = d
            .reasoning_content
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(d.reasoning.as_deref());
        let had_reasoning = reasoning.is_some_and(|r| !r.is_empty());
        if let Some(r) = reasoning {
            self.piece(Kind::Thinking, r, out);
        }
        for b in d.thinking_blocks.as_deref().unwrap_or(&[]) {
            match b.kind.as_deref() {
                Some("thinking") => {
                    // Its text only when the chunk has no `reasoning_content` to repeat.
                    if let Some(t) = b.thinking.as_deref().filter(|_| !had_reasoning) {
                        self.piece(Kind::Thinking, t, out);
                    }
                    if let Some(sig) = b.signature.as_deref().filter(|s| !s.is_empty()) {
                        let index = self.ensure_open(Kind::Thinking, out);
                        out.push(Event::Delta {
                            index,
                            delta: Delta::Signature(sig.to_string()),
                        });
                    }
                }
                Some("redacted_thinking") => {
                    if let Some(data) = &b.data {
                        self.close_open(out);
                        let index = self.take_index();
                        out.push(Event::BlockStart {
                            index,
                            block: Block::RedactedThinking { data: data.clone() },
                        });
                        out.push(Event::BlockStop { index });
                    }
                }
                _ => {}
            }
        }
        if let Some(c) = &d.content {
            content_pieces(c, |thinking, t| {
                self.piece(if thinking { Kind::Thinking } else { Kind::Text }, t, out)
            });
        }
        if let Some(r) = &d.refusal {
            self.piece(Kind::Text, r, out);
        }
        for (pos, call) in d.tool_calls.unwrap_or_default().into_iter().enumerate() {
            self.tool(pos, call, out);
        }
    }

    fn take_index(&mut self) -> usize {
        let i = self.next_index;
        self.next_index += 1;
        i
    }

    fn close_open(&mut self, out: &mut Vec<Event>) {
        if let Some((index, _)) = self.open.take() {
            out.push(Event::BlockStop { index });
        }
    }

    /// The open text/thinking block of `kind`, opening it (and closing another) if needed.
    fn ensure_open(&mut self, kind: Kind, out: &mut Vec<Event>) -> usize {
        match self.open {
            Some((index, k)) if k == kind => index,
            _ => {
                self.close_open(out);
                let index = self.take_index();
                let block = match kind {
                    Kind::Text => Block::Text,
                    Kind::Thinking => Block::Thinking,
                };
                out.push(Event::BlockStart { index, block });
                self.open = Some((index, kind));
                index
            }
        }
    }

    fn piece(&mut self, kind: Kind, s: &str, out: &mut Vec<Event>) {
        if s.is_empty() {
            return;
        }
        let index = self.ensure_open(kind, out);
        let delta = match kind {
            Kind::Text => Delta::Text(s.to_string()),
            Kind::Thinking => Delta::Thinking(s.to_string()),
        };
        out.push(Event::Delta { index, delta });
    }

    fn tool(&mut self, pos: usize, call: wire::ToolCallDeltaIn, out: &mut Vec<Event>) {
        let k = call.index.unwrap_or(pos as u64);
        let id = call.id.filter(|s| !s.is_empty());
        let (name, args) = match call.function {
            Some(f) => (
                f.name.filter(|s| !s.is_empty()),
                match f.arguments {
                    Some(Value::String(s)) => s,
                    Some(Value::Null) | None => String::new(),
                    // Some servers send the arguments object itself.
                    Some(other) => other.to_string(),
                },
            ),
            None => (None, String::new()),
        };
        let mut slot = self
            .tools
            .iter()
            .position(|t| t.open && t.openai_index == k);
        if let (Some(s), Some(new_id)) = (slot, id.as_deref()) {
            if self.tools[s].id != new_id {
                // The index was reused for another call: the earlier one is complete.
                self.tools[s].open = false;
                out.push(Event::BlockStop {
                    index: self.tools[s].block,
                });
                slot = None;
            }
        }
        let block = match slot {
            Some(s) => self.tools[s].block,
            None => {
                if id.is_none() && name.is_none() && args.is_empty() {
                    return;
                }
                self.close_open(out);
                let block = self.take_index();
                let id = id.unwrap_or_else(|| format!("call_{block}"));
                out.push(Event::BlockStart {
                    index: block,
                    block: Block::ToolUse {
                        id: id.clone(),
                        name: name.unwrap_or_default(),
                    },
                });
                self.tools.push(ToolSlot {
                    openai_index: k,
                    block,
                    id,
                    open: true,
                });
                block
            }
        };
        if !args.is_empty() {
            out.push(Event::Delta {
                index: block,
                delta: Delta::ToolArgs(args),
            });
        }
    }

    /// Every open block closes, in the order they opened.
    fn close_all(&mut self, out: &mut Vec<Event>) {
        let mut open: Vec<usize> = self
            .tools
            .iter_mut()
            .filter(|t| t.open)
            .map(|t| {
                t.open = false;
                t.block
            })
            .collect();
        if let Some((index, _)) = self.open.take() {
            open.push(index);
        }
        open.sort_unstable();
        out.extend(open.into_iter().map(|index| Event::BlockStop { index }));
    }
}

/// An in-band failure: `{"error": {...}}` / `{"error": "text"}`, or vLLM's
/// `{"object": "error", "message": .., "code": ..}`.
fn in_band_error(chunk: &wire::ChunkIn) -> Option<GatewayError> {
    match &chunk.error {
        Some(Value::String(s)) => return Some(GatewayError::new(502, s.clone())),
        Some(e @ Value::Object(o)) => {
            let message = match o.get("message") {
                Some(Value::String(s)) => s.clone(),
                _ => e.to_string(),
            };
            return Some(GatewayError::new(status_named(e).unwrap_or(502), message));
        }
        _ => {}
    }
    if chunk.object.as_deref() == Some("error") {
        let status = chunk
            .code
            .as_ref()
            .and_then(|c| status_named(&serde_json::json!({ "code": c })))
            .unwrap_or(502);
        let message = chunk
            .message
            .clone()
            .unwrap_or_else(|| "upstream stream failed".to_string());
        return Some(GatewayError::new(status, message));
    }
    None
}

// ───────────────────────────── encoder ─────────────────────────────

/// Writes an OpenAI client's `chat.completion.chunk` stream, one chunk per event that has a
/// counterpart (`BlockStart` of text/thinking and `BlockStop` have none).
///
/// - `Start` → `delta: {role: "assistant", content: ""}` (as OpenAI opens).
/// - Text → `content`, thinking → `reasoning_content`, a signature →
///   `thinking_blocks: [{type: thinking, thinking: "", signature}]`, a redacted block →
///   `thinking_blocks: [{type: redacted_thinking, data}]`.
/// - Tool blocks → `tool_calls[{index: k}]`, k counting tool blocks in opening order.
/// - `Stop` → `delta: {}` with the finish reason. `Usage` is merged and held; at `Done` the
///   usage chunk (`choices: []`) goes out only when the client asked (`include_usage`),
///   with zeros for counts the upstream never gave, then `[DONE]`.
/// - `Error` and `terminal_error` → an error chunk then `[DONE]`; nothing after.
pub struct Encoder {
    opts: ClientOpts,
    id: String,
    model: String,
    usage: UsageUpdate,
    /// (block index, OpenAI tool index) of each tool block.
    tools: Vec<(usize, usize)>,
    ended: bool,
}

impl Encoder {
    pub fn new(opts: ClientOpts) -> Self {
        let id = format!("chatcmpl-{}", opts.fallback_id);
        let model = opts.model.clone();
        Encoder {
            opts,
            id,
            model,
            usage: UsageUpdate::default(),
            tools: Vec::new(),
            ended: false,
        }
    }

    fn chunk(&self, delta: wire::DeltaOut<'_>, finish: Option<&'static str>, out: &mut Vec<u8>) {
        let choices = [wire::ChunkChoiceOut {
            index: 0,
            delta,
            finish_reason: finish,
        }];
        self.write(&choices, None, out);
    }

    fn write(
        &self,
        choices: &[wire::ChunkChoiceOut<'_>],
        usage: Option<wire::UsageOut>,
        out: &mut Vec<u8>,
    ) {
        let c = wire::ChunkOut {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.opts.created,
            model: &self.model,
            choices,
            usage,
        };
        out.extend_from_slice(b"data: ");
        // Writing into a Vec cannot fail; the structs hold only strings and numbers.
        let _ = serde_json::to_writer(&mut *out, &c);
        out.extend_from_slice(b"\n\n");
    }

    fn tool_index(&self, block: usize) -> Option<usize> {
        self.tools
            .iter()
            .find(|(b, _)| *b == block)
            .map(|(_, k)| *k)
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, ev: &Event, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match ev {
            Event::Start { id, model } => {
                if !id.is_empty() {
                    self.id.clone_from(id);
                }
                if !model.is_empty() {
                    self.model.clone_from(model);
                }
                self.chunk(
                    wire::DeltaOut {
                        role: Some("assistant"),
                        content: Some(""),
                        ..Default::default()
                    },
                    None,
                    out,
                );
            }
            Event::BlockStart { index, block } => match block {
                Block::ToolUse { id, name } => {
                    let k = self.tools.len();
                    self.tools.push((*index, k));
                    let call = wire::ToolCallDeltaOut {
                        index: k,
                        id: Some(id),
                        kind: Some("function"),
                        function: wire::FunctionDeltaOut {
                            name: Some(name),
                            arguments: "",
                        },
                    };
                    self.chunk(
                        wire::DeltaOut {
                            tool_calls: Some([call]),
                            ..Default::default()
                        },
                        None,
                        out,
                    );
                }
                Block::RedactedThinking { data } => {
                    let b = wire::ThinkingBlockOut::Redacted { data };
                    self.chunk(
                        wire::DeltaOut {
                            thinking_blocks: Some([b]),
                            ..Default::default()
                        },
                        None,
                        out,
                    );
                }
                Block::Text | Block::Thinking => {}
            },
            Event::Delta { index, delta } => match delta {
                Delta::Text(s) if !s.is_empty() => self.chunk(
                    wire::DeltaOut {
                        content: Some(s),
                        ..Default::default()
                    },
                    None,
                    out,
                ),
                Delta::Thinking(s) if !s.is_empty() => self.chunk(
                    wire::DeltaOut {
                        reasoning_content: Some(s),
                        ..Default::default()
                    },
                    None,
                    out,
                ),
                Delta::Signature(sig) if !sig.is_empty() => {
                    let b = wire::ThinkingBlockOut::Thinking {
                        thinking: "",
                        signature: Some(sig),
                    };
                    self.chunk(
                        wire::DeltaOut {
                            thinking_blocks: Some([b]),
                            ..Default::default()
                        },
                        None,
                        out,
                    );
                }
                Delta::ToolArgs(s) if !s.is_empty() => {
                    // Arguments for a block never opened as a tool have nowhere to go.
                    if let Some(k) = self.tool_index(*index) {
                        let call = wire::ToolCallDeltaOut {
                            index: k,
                            id: None,
                            kind: None,
                            function: wire::FunctionDeltaOut {
                                name: None,
                                arguments: s,
                            },
                        };
                        self.chunk(
                            wire::DeltaOut {
                                tool_calls: Some([call]),
                                ..Default::default()
                            },
                            None,
                            out,
                        );
                    }
                }
                _ => {}
            },
            Event::BlockStop { .. } => {}
            Event::Usage(u) => self.usage.merge(u),
            Event::Stop { reason, .. } => {
                self.chunk(wire::DeltaOut::default(), Some(finish_of(reason)), out)
            }
            Event::Error(e) => self.terminal_error(e, out),
            Event::Done => {
                if self.opts.include_usage {
                    self.write(&[], Some(usage_out(&self.usage)), out);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.ended = true;
            }
        }
    }

    fn terminal_error(&mut self, err: &GatewayError, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        // Written where every error is (errors.rs): one boundary for all dialects.
        out.extend_from_slice(&err.terminal_event(crate::errors::ClientDialect::OpenAi));
        self.ended = true;
    }
}

#[cfg(test)]
mod tests;
