//! The OpenAI chat dialect (`/v1/chat/completions`), every side: a client's request in and
//! answers out, and an OpenAI-compatible upstream's (OpenAI, Azure, vLLM, llama-server,
//! Groq, Mistral, DeepSeek, xAI) request out and answers in. Wire structs:
//! `crate::wire::openai`.
//!
//! - `request`: `decode_request` / `encode_request`
//! - `response`: `decode_response` / `encode_response` (+ the finish-reason and usage tables)
//! - `stream`: `Decoder` / `Encoder`, over `framing` (SSE bytes → event data)
//! - `error`: `decode_error`
//!
//! # Client fields (decode_request)
//!
//! Mapped: `model`, `messages`, `max_completion_tokens` (wins over) `max_tokens`,
//! `temperature`, `top_p`, `stop` (string or list), `stream`,
//! `stream_options.include_usage`, `tools` (type `function`), `tool_choice`,
//! `parallel_tool_calls`, `response_format` (text / json_object / json_schema), `user`,
//! `reasoning_effort`, and the vendor extensions `thinking` (kept as JSON), `top_k`,
//! `cache_control` (on content parts, tools and — marking its last part — a message),
//! `reasoning_content` / `thinking_blocks` / content parts `thinking` and
//! `redacted_thinking` on assistant turns.
//!
//! Hints, dropped because they change cost, latency, retention or caching but not the
//! answer: `store`, `metadata`, `service_tier`, `prompt_cache_key`, `prompt_cache_retention`,
//! `safety_identifier`, `seed` (best-effort determinism even at OpenAI), `prediction`
//! (a latency optimisation), `stream_options.include_obfuscation`, `image_url.detail`
//! (the resolution an image is read at), assistant `annotations` (citations echoed from
//! an earlier answer), `tool` messages' legacy `name`. Fields at their default value are
//! accepted: `n: 1`, `logprobs: false`, `top_logprobs: 0`, `logit_bias: {}`,
//! `presence_penalty: 0`, `frequency_penalty: 0`, `modalities: ["text"]`; `null` is absent.
//!
//! Untranslatable (the encoders refuse them, 400 naming the field and provider):
//! `n` > 1, `logprobs`, `top_logprobs`, `logit_bias`, `presence_penalty`,
//! `frequency_penalty`, `modalities` other than text, `audio`, `web_search_options`,
//! `verbosity`, legacy `functions` / `function_call` / `role: function`, `input_audio`
//! parts, `file` parts by `file_id`, tool types other than `function` (`tools[i].type`),
//! `tool_choice` of type `allowed_tools` / `custom`, `name` on system, user and assistant
//! messages (the participant's name: no counterpart elsewhere), any other field
//! (vLLM's `min_p`, `repetition_penalty`, `guided_json`, ...) by its name.
//!
//! # Upstream body (encode_request)
//!
//! - System parts → one leading `system` message, texts joined with a blank line; a system
//!   message later in the conversation stays where it is. A user message of text only is a
//!   string (texts joined with a blank line), otherwise parts: base64 images as `data:`
//!   URLs, documents as `file` parts with a `data:` URL (a document by URL is refused).
//! - Tool results become `tool` messages before the rest of their user message; their text
//!   parts are joined. A `tool` message carries text only, so an image or document inside a
//!   tool result goes in one user message right after the tool messages. `is_error` has
//!   no counterpart (the result's text is sent as it is).
//! - Assistant: text joined as `content` (`null` only beside tool calls: OpenAI refuses a
//!   null content without them, so a thinking-only turn sends `""`), thinking joined as
//!   `reasoning_content`, tool uses as `tool_calls` (arguments compact JSON; a raw string
//!   input goes back as it came). Thinking signatures and redacted thinking cannot survive
//!   an OpenAI upstream (they only mean something to Anthropic) and are left out.
//! - `max_tokens` (not `max_completion_tokens`: vLLM and llama-server read it), no default
//!   when the client gave none. `top_k` is sent to self-hosted servers and refused for
//!   provider `openai`. `tool_choice` and `parallel_tool_calls` only with `tools` (OpenAI
//!   rejects them alone). A json_schema format without a name is named `response`.
//!   `thinking: {type: enabled, budget_tokens}` becomes `reasoning_effort` (≤1024 low,
//!   ≤8192 medium, else high) unless one was given; other kinds send none. Cache hints are
//!   not sent (OpenAI-compatible servers cache by prefix on their own). Streaming always
//!   asks for `stream_options.include_usage`.
//!
//! # Upstream answers (decode_response)
//!
//! Choice 0 only. Thinking from `thinking_blocks` when they hold thinking (they carry
//! signatures), else `reasoning_content` / `reasoning`; Mistral's content parts of type
//! `thinking` are thinking too; `refusal` is text. Tool-call arguments that are not JSON
//! become `{}` (a tool input must be an object); a call with no id gets `call_<n>`.
//! A 200 body that is an error envelope is that error, status 502.
//!
//! # Client answers (encode_response, Encoder)
//!
//! `content` is the joined text, `null` only beside tool calls with no text (as OpenAI
//! writes it). `reasoning_content` only when there is thinking; `thinking_blocks` only when
//! a signature or a redacted block must survive the client's next turn. Usage: unknown
//! counts are 0; `prompt_tokens_details.cache_creation_tokens` only when non-zero.
//! Stream specifics are on [`Encoder`].
//!
//! An empty `messages` list is accepted here; the upstream judges it.

mod error;
mod framing;
mod request;
mod response;
mod stream;

pub use error::decode_error;
pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{Decoder, Encoder};
