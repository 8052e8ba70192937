//! The `openai` chat dialect's wire structs (serde).
//!
//! Upstream answers (`chat.completion`, `chat.completion.chunk`, error bodies) are read
//! leniently: unknown fields are ignored, `null` reads as absent, and token counts accept
//! any JSON number (a wrong type in a count must not kill a whole stream).
//! Client requests are read field by field in `translate::openai::request`, where every
//! top-level and message-level key is considered; the small nested objects are typed here.
//! The `*Out` structs borrow from the neutral form so writing a 50 KB body copies no text.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

// ───────────────────────────── lenient readers ─────────────────────────────

/// A token count: a non-negative integer, or a float (truncated); anything else is unknown.
pub fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        _ => None,
    })
}

/// A string, or nothing for `null` / any other type.
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    })
}

// ───────────────────────────── usage ─────────────────────────────

#[derive(Debug, Default, Deserialize)]
pub struct UsageIn {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetailsIn>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetailsIn>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PromptDetailsIn {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub cached_tokens: Option<u64>,
    /// Non-standard (LiteLLM-style servers fronting Anthropic).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub cache_creation_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CompletionDetailsIn {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub reasoning_tokens: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct UsageOut {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptDetailsOut,
    pub completion_tokens_details: CompletionDetailsOut,
}

#[derive(Debug, Serialize)]
pub struct PromptDetailsOut {
    pub cached_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct CompletionDetailsOut {
    pub reasoning_tokens: u64,
}

// ───────────────────────────── shared pieces ─────────────────────────────

/// One entry of `thinking_blocks` (LiteLLM's vendor field carrying Anthropic thinking).
#[derive(Debug, Clone, Deserialize)]
pub struct ThinkingBlockIn {
    #[serde(default, rename = "type", deserialize_with = "lenient_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub thinking: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub signature: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub data: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum ThinkingBlockOut<'a> {
    #[serde(rename = "thinking")]
    Thinking {
        thinking: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        signature: Option<&'a str>,
    },
    #[serde(rename = "redacted_thinking")]
    Redacted { data: &'a str },
}

/// A whole tool call (request `messages[].tool_calls[]`, response `message.tool_calls[]`).
#[derive(Debug, Clone, Deserialize)]
pub struct ToolCallIn {
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient_string")]
    pub kind: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionCallIn>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FunctionCallIn {
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// A JSON string per the spec; some servers send the object itself.
    #[serde(default)]
    pub arguments: Option<Value>,
}

#[derive(Debug, Serialize)]
pub struct ToolCallOut<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCallOut<'a>,
}

#[derive(Debug, Serialize)]
pub struct FunctionCallOut<'a> {
    pub name: &'a str,
    pub arguments: String,
}

// ───────────────────────────── client request pieces ─────────────────────────────

/// `tools[i]`.
#[derive(Debug, Deserialize)]
pub struct ToolIn {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDefIn>,
    /// Vendor extension (LiteLLM / AIGW): a cache breakpoint after this tool.
    #[serde(default)]
    pub cache_control: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct FunctionDefIn {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `response_format`.
#[derive(Debug, Deserialize)]
pub struct ResponseFormatIn {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub json_schema: Option<JsonSchemaIn>,
}

#[derive(Debug, Deserialize)]
pub struct JsonSchemaIn {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub schema: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `image_url` of a content part.
#[derive(Debug, Deserialize)]
pub struct ImageUrlIn {
    pub url: String,
}

/// `file` of a content part.
#[derive(Debug, Deserialize)]
pub struct FileIn {
    #[serde(default)]
    pub file_data: Option<String>,
    #[serde(default)]
    pub file_id: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
}

// ───────────────────────────── upstream request (written) ─────────────────────────────

#[derive(Debug, Serialize)]
pub struct ChatRequestOut<'a> {
    pub model: &'a str,
    pub messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub stop: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptionsOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct StreamOptionsOut {
    pub include_usage: bool,
}

#[derive(Debug, Serialize)]
pub struct MessageOut<'a> {
    pub role: &'static str,
    /// `None` writes `null` (an assistant turn that only calls tools).
    pub content: Option<ContentOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ContentOut<'a> {
    Text(String),
    Parts(Vec<PartOut<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum PartOut<'a> {
    #[serde(rename = "text")]
    Text { text: &'a str },
    #[serde(rename = "image_url")]
    ImageUrl { image_url: UrlOut },
    #[serde(rename = "file")]
    File { file: FileOut },
}

#[derive(Debug, Serialize)]
pub struct UrlOut {
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct FileOut {
    pub file_data: String,
}

#[derive(Debug, Serialize)]
pub struct ToolOut<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionDefOut<'a>,
}

#[derive(Debug, Serialize)]
pub struct FunctionDefOut<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub parameters: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

// ───────────────────────────── upstream answer (read) ─────────────────────────────

#[derive(Debug, Deserialize)]
pub struct ChatCompletionIn {
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub model: Option<String>,
    #[serde(default)]
    pub choices: Option<Vec<ChoiceIn>>,
    #[serde(default)]
    pub usage: Option<UsageIn>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct ChoiceIn {
    #[serde(default)]
    pub message: Option<AssistantMessageIn>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub finish_reason: Option<String>,
    /// vLLM: the stop string that ended generation (a number when it was a token id).
    #[serde(default)]
    pub stop_reason: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AssistantMessageIn {
    /// A string, or (Mistral) an array of `text` / `thinking` parts.
    #[serde(default)]
    pub content: Option<Value>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub reasoning_content: Option<String>,
    /// Newer vLLM spells it `reasoning`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub thinking_blocks: Option<Vec<ThinkingBlockIn>>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub refusal: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallIn>>,
}

// ───────────────────────────── upstream stream chunk (read) ─────────────────────────────

#[derive(Debug, Deserialize)]
pub struct ChunkIn {
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub model: Option<String>,
    /// vLLM writes a mid-stream failure as `{"object":"error","message":..,"code":..}`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub object: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub choices: Option<Vec<ChunkChoiceIn>>,
    #[serde(default)]
    pub usage: Option<UsageIn>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct ChunkChoiceIn {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub index: Option<u64>,
    #[serde(default)]
    pub delta: Option<DeltaIn>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub stop_reason: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeltaIn {
    #[serde(default)]
    pub content: Option<Value>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub reasoning_content: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub thinking_blocks: Option<Vec<ThinkingBlockIn>>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub refusal: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallDeltaIn>>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallDeltaIn {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub index: Option<u64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionCallIn>,
}

// ───────────────────────────── client answer (written) ─────────────────────────────

#[derive(Debug, Serialize)]
pub struct ChatCompletionOut<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: [ChoiceOut<'a>; 1],
    pub usage: UsageOut,
}

#[derive(Debug, Serialize)]
pub struct ChoiceOut<'a> {
    pub index: u32,
    pub message: AssistantMessageOut<'a>,
    pub finish_reason: &'static str,
    pub logprobs: Option<()>,
}

#[derive(Debug, Serialize)]
pub struct AssistantMessageOut<'a> {
    pub role: &'static str,
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_blocks: Option<Vec<ThinkingBlockOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallOut<'a>>>,
}

#[derive(Debug, Serialize)]
pub struct ChunkOut<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: &'a [ChunkChoiceOut<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOut>,
}

#[derive(Debug, Serialize)]
pub struct ChunkChoiceOut<'a> {
    pub index: u32,
    pub delta: DeltaOut<'a>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Debug, Default, Serialize)]
pub struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_blocks: Option<[ThinkingBlockOut<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<[ToolCallDeltaOut<'a>; 1]>,
}

#[derive(Debug, Serialize)]
pub struct ToolCallDeltaOut<'a> {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDeltaOut<'a>,
}

#[derive(Debug, Serialize)]
pub struct FunctionDeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}
