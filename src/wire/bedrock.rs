//! The `bedrock` dialect's wire structs (serde): the Converse / ConverseStream API.
//!
//! Requests are written (`Serialize`), answers are read (`Deserialize`, unknown fields
//! tolerated: Bedrock adds fields such as `metrics`, `trace`, `serverToolUsage` freely).
//! Union shapes (`{"text": ...}` or `{"image": ...}`) are externally tagged enums when
//! written and all-optional structs when read, so an answer with a block kind this
//! gateway does not know yet is seen (and reported) rather than failing the parse.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

// ---- request -------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<ContentBlock>,
    /// Always present (AIGW sends `{}` when nothing is set; Converse accepts it).
    pub inference_config: InferenceConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentBlock>,
}

/// One request content block (also a system block: `text` or `cachePoint`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum ContentBlock {
    Text(String),
    Image(Media),
    Document(Document),
    ToolUse(ToolUse),
    ToolResult(ToolResult),
    ReasoningContent(ReasoningContent),
    CachePoint(CachePoint),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CachePoint {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl CachePoint {
    pub const DEFAULT: CachePoint = CachePoint { kind: "default" };
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Media {
    pub format: String,
    pub source: Source,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Document {
    pub format: String,
    pub name: String,
    pub source: Source,
}

/// Base64 of the media's bytes (the JSON form of Converse's blob type).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Source {
    pub bytes: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    pub tool_use_id: String,
    pub name: String,
    pub input: Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    pub tool_use_id: String,
    pub content: Vec<ToolResultContent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContent {
    Text(String),
    Image(Media),
    Document(Document),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum ReasoningContent {
    ReasoningText(ReasoningText),
    /// Base64 text, as the answer carried it.
    RedactedContent(String),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReasoningText {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    pub tools: Vec<ToolEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum ToolEntry {
    ToolSpec(ToolSpec),
    CachePoint(CachePoint),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: InputSchema,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InputSchema {
    pub json: Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum ToolChoice {
    Auto(Empty),
    Any(Empty),
    Tool(NamedTool),
}

/// `{}`.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Empty {}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NamedTool {
    pub name: String,
}

/// Structured output: `{"textFormat":{"type":"json_schema","structure":{"jsonSchema":{...}}}}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OutputConfig {
    pub text_format: TextFormat,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TextFormat {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub structure: FormatStructure,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FormatStructure {
    pub json_schema: JsonSchemaDefinition,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JsonSchemaDefinition {
    /// The schema as a JSON *string* (Converse's type for it).
    pub schema: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// CountTokens: `{"input":{"converse":{messages, system, toolConfig}}}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CountTokensRequest {
    pub input: CountTokensInput,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CountTokensInput {
    pub converse: CountTokensConverse,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CountTokensConverse {
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<ContentBlock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CountTokensResponse {
    pub input_tokens: Option<u64>,
}

// ---- answers -------------------------------------------------------------------------

/// A Converse answer. `output` is absent in the HTTP-200 error shapes
/// (`{"Output":{"__type":...},"Version":"1.0"}`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    pub output: Option<Output>,
    pub stop_reason: Option<String>,
    pub usage: Option<Usage>,
    /// Model-specific extras; Claude puts the matched `stop_sequence` here.
    pub additional_model_response_fields: Option<Value>,
    /// The Coral error envelope some failures come back in with status 200.
    #[serde(rename = "Output")]
    pub coral_output: Option<CoralOutput>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct CoralOutput {
    #[serde(rename = "__type")]
    pub kind: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Output {
    pub message: Option<OutMessage>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct OutMessage {
    #[serde(default)]
    pub content: Vec<OutBlock>,
}

/// One answer content block; exactly one field is set on a well-formed block.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OutBlock {
    pub text: Option<String>,
    pub tool_use: Option<OutToolUse>,
    pub reasoning_content: Option<OutReasoning>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OutToolUse {
    #[serde(default)]
    pub tool_use_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub input: Value,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OutReasoning {
    pub reasoning_text: Option<OutReasoningText>,
    pub redacted_content: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct OutReasoningText {
    #[serde(default)]
    pub text: String,
    pub signature: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    pub cache_write_input_tokens: Option<u64>,
}

/// An error answer body (`{"message": ...}`; some services spell it `Message`).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ErrorBody {
    pub message: Option<String>,
    #[serde(rename = "Message")]
    pub message_upper: Option<String>,
    /// awsJson-style error type (`com.amazon.coral.validate#ValidationException`), used
    /// when the `x-amzn-errortype` header is missing.
    #[serde(rename = "__type")]
    pub kind: Option<String>,
}

// ---- stream events (ConverseStream payloads, by `:event-type`) ------------------------

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockStart {
    #[serde(default)]
    pub content_block_index: u64,
    #[serde(default)]
    pub start: BlockStartInfo,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BlockStartInfo {
    pub tool_use: Option<StartToolUse>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StartToolUse {
    #[serde(default)]
    pub tool_use_id: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockDelta {
    #[serde(default)]
    pub content_block_index: u64,
    #[serde(default)]
    pub delta: DeltaInfo,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeltaInfo {
    pub text: Option<String>,
    pub tool_use: Option<DeltaToolUse>,
    pub reasoning_content: Option<DeltaReasoning>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct DeltaToolUse {
    #[serde(default)]
    pub input: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeltaReasoning {
    pub text: Option<String>,
    pub signature: Option<String>,
    pub redacted_content: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockStop {
    #[serde(default)]
    pub content_block_index: u64,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MessageStop {
    pub stop_reason: Option<String>,
    pub additional_model_response_fields: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Metadata {
    pub usage: Option<Usage>,
}

/// The payload of an `exception` frame.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ExceptionBody {
    pub message: Option<String>,
    #[serde(rename = "Message")]
    pub message_upper: Option<String>,
}
