//! The neutral form every dialect translates through.
//!
//! A client dialect *decodes* its request into [`Request`] and *encodes* [`Response`] /
//! [`Event`]s back; an upstream dialect *encodes* [`Request`] into its wire body and
//! *decodes* its answers into [`Response`] / [`Event`]s. N client + M upstream modules
//! instead of N × M translators. Only taken when the client's and the upstream's dialects
//! differ: same-dialect traffic is spliced and streamed through untouched.
//!
//! Conventions every module keeps:
//! - Nothing is dropped silently. A client field with no counterpart here either lands in
//!   [`Request::untranslatable`] (it changes the answer: every encoder refuses it with a 400
//!   naming the field and the provider) or is a documented hint that may go (cache and
//!   context-management hints).
//! - Tool-call ids, thinking signatures and redacted-thinking data pass unchanged.
//! - Usage follows contract §7: `input` includes cache reads and writes.

use crate::errors::GatewayError;
use serde_json::Value;

/// One chat request, whatever dialect it came in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The model the client asked for (the encoder writes the target's upstream id instead).
    pub model: String,
    /// System prompt parts (OpenAI `system`/`developer` messages at the head, Anthropic
    /// `system`), in order. Only `Part::Text` appears here.
    pub system: Vec<Part>,
    pub messages: Vec<Message>,
    /// The most tokens to generate (`max_completion_tokens` wins over `max_tokens`).
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    /// The client wants usage in its stream (OpenAI `stream_options.include_usage`). An
    /// Anthropic client always gets usage (its dialect carries it in `message_delta`).
    pub include_usage: bool,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `false`: at most one tool call per turn (Anthropic `disable_parallel_tool_use`).
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat>,
    /// End-user id (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// Extended thinking as Anthropic spells it (`{"type":"enabled","budget_tokens":N}`,
    /// `{"type":"adaptive"}`, `{"type":"disabled"}`); OpenAI clients may send it as a vendor
    /// extension. Kept as the client's JSON.
    pub thinking: Option<Value>,
    /// OpenAI `reasoning_effort` (`minimal`, `low`, `medium`, `high`, ...), Anthropic
    /// `output_config.effort`.
    pub reasoning_effort: Option<String>,
    /// Fields the client sent that change the answer and have no counterpart here, by the
    /// client's name (`n`, `logprobs`, `audio`, `tools[2].type=web_search_20250305`, ...).
    /// Every encoder refuses a request with any (400 naming field and provider).
    pub untranslatable: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// A system message in the middle of a conversation (Claude Code sends these); a
    /// leading one goes to [`Request::system`] instead.
    System,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    /// In order. Tool results live in user messages (OpenAI `tool` messages are merged into
    /// one user message when consecutive; the OpenAI encoder splits them out again).
    pub content: Vec<Part>,
}

/// Cache hint (Anthropic `cache_control`, Bedrock `cachePoint`), kept as the client's JSON
/// (`{"type":"ephemeral"}`, maybe with `ttl`).
pub type CacheControl = Option<Value>;

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text {
        text: String,
        cache: CacheControl,
    },
    Image {
        source: MediaSource,
        cache: CacheControl,
    },
    /// A PDF or other document (Anthropic `document`, OpenAI `file` with data).
    Document {
        source: MediaSource,
        cache: CacheControl,
    },
    ToolUse {
        id: String,
        name: String,
        /// The arguments as a JSON value (an object). OpenAI's `arguments` string is parsed;
        /// arguments that are not JSON are kept as a string value.
        input: Value,
        cache: CacheControl,
    },
    ToolResult {
        tool_use_id: String,
        /// Text and image parts.
        content: Vec<Part>,
        is_error: bool,
        cache: CacheControl,
    },
    Thinking {
        text: String,
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaSource {
    Base64 { media_type: String, data: String },
    Url(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the input (OpenAI `parameters`, Anthropic `input_schema`).
    pub schema: Value,
    pub strict: Option<bool>,
    pub cache: CacheControl,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    /// Some tool must be called (OpenAI `required`, Anthropic `any`).
    Any,
    None,
    Tool(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: Option<String>,
        schema: Value,
        strict: Option<bool>,
    },
}

/// Why generation stopped (translation.md §9 maps each dialect's names onto these).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StopReason {
    #[default]
    EndTurn,
    StopSequence,
    MaxTokens,
    ToolUse,
    /// Content filter / refusal.
    Refusal,
    /// Anthropic `pause_turn` (a server tool paused the turn).
    PauseTurn,
    /// A reason no table knows, by the upstream's name.
    Other(String),
}

/// Usage as the upstream reported it so far. `None` fields are unknown. `input` is
/// inclusive of cache reads and writes (contract §7); `reasoning` is part of `output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageUpdate {
    pub input: Option<u64>,
    pub cached_input: Option<u64>,
    pub cache_creation_input: Option<u64>,
    pub output: Option<u64>,
    pub reasoning: Option<u64>,
}

impl UsageUpdate {
    /// Later counts replace earlier ones (Anthropic's stream counts are cumulative).
    pub fn merge(&mut self, later: &UsageUpdate) {
        macro_rules! take {
            ($($f:ident),*) => { $( if later.$f.is_some() { self.$f = later.$f; } )* };
        }
        take!(input, cached_input, cache_creation_input, output, reasoning);
    }

    pub fn to_usage(&self) -> crate::usage::Usage {
        let input = self.input.unwrap_or(0);
        let output = self.output.unwrap_or(0);
        crate::usage::Usage {
            input,
            cached_input: self.cached_input.unwrap_or(0),
            cache_creation_input: self.cache_creation_input.unwrap_or(0),
            output,
            reasoning: self.reasoning.unwrap_or(0),
            total: input + output,
            estimated: false,
        }
    }

    pub fn from_usage(u: &crate::usage::Usage) -> UsageUpdate {
        UsageUpdate {
            input: Some(u.input),
            cached_input: Some(u.cached_input),
            cache_creation_input: Some(u.cache_creation_input),
            output: Some(u.output),
            reasoning: Some(u.reasoning),
        }
    }
}

/// One whole (non-streamed) answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// The upstream's id (empty when it gives none: the encoder makes one).
    pub id: String,
    /// The model the upstream says answered (empty: the encoder uses the request's).
    pub model: String,
    /// Text, Thinking, RedactedThinking and ToolUse parts, in the upstream's order.
    pub content: Vec<Part>,
    pub stop: StopReason,
    pub stop_sequence: Option<String>,
    pub usage: UsageUpdate,
}

/// The kind of a content block opened in a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Text,
    Thinking,
    RedactedThinking { data: String },
    ToolUse { id: String, name: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
    Thinking(String),
    /// A thinking block's signature (sent once, at the block's end, by Anthropic and Bedrock).
    Signature(String),
    /// A piece of a tool call's JSON arguments.
    ToolArgs(String),
}

/// One step of a streamed answer. A decoder emits, in this order: `Start`, then blocks
/// (`BlockStart`, `Delta`*, `BlockStop`; blocks never interleave except that an OpenAI
/// upstream's parallel tool calls may), then `Stop`, `Usage` (any time, any number), `Done`.
/// Block indices are the decoder's, counted from 0 in the order blocks open.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The answer began. `id`/`model` are empty when the upstream gives none (Bedrock).
    Start {
        id: String,
        model: String,
    },
    BlockStart {
        index: usize,
        block: Block,
    },
    Delta {
        index: usize,
        delta: Delta,
    },
    BlockStop {
        index: usize,
    },
    /// Usage so far; `Some` fields replace earlier ones.
    Usage(UsageUpdate),
    Stop {
        reason: StopReason,
        sequence: Option<String>,
    },
    /// An in-band failure (Anthropic `event: error`, a Bedrock exception frame, an OpenAI
    /// error chunk). Nothing follows it. Status and message as the gateway will report them.
    Error(GatewayError),
    /// The upstream said the answer is complete (`[DONE]`, `message_stop`, end of frames).
    Done,
}

impl Event {
    /// Does this event put answer content in front of the client? Until the first one, an
    /// in-band failure may still move to the next target (the stream commit protocol).
    pub fn is_content(&self) -> bool {
        match self {
            Event::BlockStart { block, .. } => {
                matches!(
                    block,
                    Block::ToolUse { .. } | Block::RedactedThinking { .. }
                )
            }
            Event::Delta { delta, .. } => match delta {
                Delta::Text(s) | Delta::Thinking(s) | Delta::ToolArgs(s) => !s.is_empty(),
                Delta::Signature(_) => false,
            },
            _ => false,
        }
    }
}

/// What an upstream encoder needs to know about the target it writes for.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Provider id, for refusal messages ("... not supported by provider `bedrock`").
    pub provider: &'a str,
    /// The upstream model id (goes in the body, or in the path for Bedrock/Azure).
    pub model: &'a str,
    /// `max_tokens` to send when the client gave none and the upstream requires one.
    pub default_max_tokens: u64,
}

/// What a client encoder needs to know to write answers.
#[derive(Debug, Clone, Default)]
pub struct ClientOpts {
    /// The model name shown when the upstream names none.
    pub model: String,
    /// The id when the upstream gives none (the gateway's request id).
    pub fallback_id: String,
    /// OpenAI clients: send the usage chunk (`choices: []`) before `[DONE]`.
    pub include_usage: bool,
    /// Unix seconds for OpenAI's `created`.
    pub created: u64,
}

/// Reads one upstream dialect's stream, chunk by chunk as it arrives.
pub trait StreamDecoder: Send + Sync {
    /// Decode what `chunk` completes; partial frames/events are kept for the next call.
    /// `Err` means the bytes cannot be a stream of this dialect (bad framing, bad CRC, an
    /// event over the size limit): the relay ends the answer with a terminal error.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), GatewayError>;
    /// The upstream closed the body. Emits what a well-formed end implies; an unfinished
    /// stream emits nothing more (the relay then decides it was cut).
    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), GatewayError>;
}

/// Writes one client dialect's stream.
pub trait StreamEncoder: Send + Sync {
    /// Append the client's bytes for `ev` to `out` (nothing when the event is held or has
    /// no counterpart).
    fn encode(&mut self, ev: &Event, out: &mut Vec<u8>);
    /// A terminal error after content was sent: well-formed in the client's dialect (OpenAI:
    /// an error chunk then `[DONE]`; Anthropic: `event: error`, no `message_stop`).
    fn terminal_error(&mut self, err: &GatewayError, out: &mut Vec<u8>);
}
