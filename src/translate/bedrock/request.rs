//! ir::Request → Converse request body (translation.md §5.3, §6.3, with the [REC] fixes).
//!
//! Decisions where the tables are silent (each also in the module docs of `bedrock`):
//! - The model goes in the path, never in the body.
//! - A `Role::System` message in the middle of the conversation is appended to `system`
//!   (Converse has no system role in `messages`); its position is lost, its text is not.
//! - Empty text parts are skipped and a message left with no blocks is dropped (Converse
//!   rejects blank text and empty content); consecutive same-role messages are merged
//!   (Converse requires alternation; OpenAI `tool` messages arrive as separate messages).
//! - `tool_choice: none` omits `toolConfig`, unless the history holds toolUse/toolResult
//!   blocks: Converse then requires a `toolConfig`, so the tools are kept without a
//!   `toolChoice`; with no tools in the request, each tool named in the history is declared
//!   with an open object schema so the history stays valid.
//! - `response_format: json_schema` → `outputConfig.textFormat` (Bedrock structured output,
//!   schema sent as a JSON string); `json_object` has no Converse counterpart → 400.
//! - `user` → `requestMetadata.user` when it fits Converse's key/value rules (≤ 256 chars of
//!   `[A-Za-z0-9 whitespace : _ @ $ # = / + , - .]`); otherwise it is left out (it is a
//!   logging label, it does not change the answer) with a debug log line.
//! - `parallel_tool_calls: false` has no Converse counterpart and is a hint: ignored.
//! - `tools[].strict: true` → `toolSpec.strict: true` (Bedrock strict tool use).
//! - `reasoning_effort` → `additionalModelRequestFields.reasoning_config` (AIGW; models that
//!   do not take it answer 400 themselves), except for Claude model ids (`anthropic.` in
//!   the id), which get Anthropic's `output_config: {effort}` instead; `top_k` and
//!   `thinking` go to `additionalModelRequestFields` as sent.
//! - Documents get names `document-1`, `document-2`, ... (Converse requires a name, the
//!   neutral form has none).
//! - Redacted thinking data goes out as the text it came in (base64 on Bedrock's wire).

use super::super::ir::{self, MediaSource, Part, Role};
use crate::errors::GatewayError;
use crate::wire::bedrock as w;
use serde_json::{json, Map};
use std::collections::BTreeMap;

/// The Converse body for `req`.
pub fn encode_request(req: &ir::Request, target: &ir::Target) -> Result<Vec<u8>, GatewayError> {
    let conv = Conversation::build(req, target)?;
    let mut body = w::ConverseRequest {
        messages: conv.messages,
        system: conv.system,
        tool_config: conv.tool_config,
        inference_config: w::InferenceConfig {
            max_tokens: req
                .max_tokens
                .or((target.default_max_tokens > 0).then_some(target.default_max_tokens)),
            temperature: req.temperature,
            top_p: req.top_p,
            stop_sequences: req.stop.clone(),
        },
        ..Default::default()
    };

    let mut extra = Map::new();
    if let Some(k) = req.top_k {
        extra.insert("top_k".into(), json!(k));
    }
    if let Some(t) = &req.thinking {
        extra.insert("thinking".into(), t.clone());
    }
    if let Some(e) = &req.reasoning_effort {
        // Claude reads Anthropic's own `output_config.effort` from the fields Bedrock
        // forwards; other models (Nova, GLM, ...) take AIGW's `reasoning_config`.
        if target.model.contains("anthropic.") {
            extra.insert("output_config".into(), json!({ "effort": e }));
        } else {
            extra.insert("reasoning_config".into(), json!(e));
        }
    }
    if !extra.is_empty() {
        body.additional_model_request_fields = Some(extra);
    }

    body.output_config = match &req.response_format {
        None | Some(ir::ResponseFormat::Text) => None,
        Some(ir::ResponseFormat::JsonSchema { name, schema, .. }) => Some(w::OutputConfig {
            text_format: w::TextFormat {
                kind: "json_schema",
                structure: w::FormatStructure {
                    json_schema: w::JsonSchemaDefinition {
                        schema: schema.to_string(),
                        name: name.clone(),
                    },
                },
            },
        }),
        Some(ir::ResponseFormat::JsonObject) => {
            return Err(refuse(
                target,
                "response_format",
                "`response_format: json_object` is not supported by provider `{p}` (Converse takes a JSON schema: use `json_schema`)",
            ))
        }
    };

    if let Some(user) = &req.user {
        if metadata_ok(user) {
            body.request_metadata = Some(BTreeMap::from([("user".to_owned(), user.clone())]));
        } else {
            log::debug!("bedrock: `user` left out of requestMetadata (does not fit its rules)");
        }
    }

    serde_json::to_vec(&body)
        .map_err(|e| GatewayError::new(500, format!("cannot write the Converse body: {e}")))
}

/// CountTokens body: `{"input":{"converse":{messages, system, toolConfig}}}`.
pub fn encode_count_tokens(
    req: &ir::Request,
    target: &ir::Target,
) -> Result<Vec<u8>, GatewayError> {
    let conv = Conversation::build(req, target)?;
    let body = w::CountTokensRequest {
        input: w::CountTokensInput {
            converse: w::CountTokensConverse {
                messages: conv.messages,
                system: conv.system,
                tool_config: conv.tool_config,
            },
        },
    };
    serde_json::to_vec(&body)
        .map_err(|e| GatewayError::new(500, format!("cannot write the CountTokens body: {e}")))
}

/// `{"inputTokens": N}` → N.
pub fn decode_count_tokens(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<w::CountTokensResponse>(body)
        .ok()?
        .input_tokens
}

/// A 400 naming the field and the provider; `{p}` in `msg` is the provider id.
fn refuse(target: &ir::Target, param: &'static str, msg: &str) -> GatewayError {
    GatewayError::bad_request(msg.replace("{p}", target.provider)).param(param)
}

/// Converse's rule for requestMetadata values.
fn metadata_ok(v: &str) -> bool {
    v.chars().count() <= 256
        && v.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || c.is_whitespace()
                || matches!(
                    c,
                    ':' | '_' | '@' | '$' | '#' | '=' | '/' | '+' | ',' | '-' | '.'
                )
        })
}

/// The parts shared by Converse and CountTokens.
struct Conversation {
    messages: Vec<w::Message>,
    system: Vec<w::ContentBlock>,
    tool_config: Option<w::ToolConfig>,
}

impl Conversation {
    fn build(req: &ir::Request, target: &ir::Target) -> Result<Self, GatewayError> {
        let mut enc = Encoder {
            target,
            documents: 0,
        };
        let mut system = Vec::new();
        for (i, p) in req.system.iter().enumerate() {
            enc.system_part(p, &format!("system[{i}]"), &mut system)?;
        }

        let mut messages: Vec<w::Message> = Vec::new();
        for (i, m) in req.messages.iter().enumerate() {
            let role = match m.role {
                Role::System => {
                    for (j, p) in m.content.iter().enumerate() {
                        enc.system_part(p, &format!("messages[{i}].content[{j}]"), &mut system)?;
                    }
                    continue;
                }
                Role::User => w::Role::User,
                Role::Assistant => w::Role::Assistant,
            };
            let mut blocks = Vec::new();
            for (j, p) in m.content.iter().enumerate() {
                enc.part(p, &format!("messages[{i}].content[{j}]"), &mut blocks)?;
            }
            if blocks.is_empty() {
                continue;
            }
            match messages.last_mut() {
                Some(last) if last.role == role => last.content.extend(blocks),
                _ => messages.push(w::Message {
                    role,
                    content: blocks,
                }),
            }
        }

        let tool_config = tool_config(req, target)?;
        Ok(Conversation {
            messages,
            system,
            tool_config,
        })
    }
}

struct Encoder<'a, 'b> {
    target: &'a ir::Target<'b>,
    documents: usize,
}

impl Encoder<'_, '_> {
    fn system_part(
        &mut self,
        p: &Part,
        field: &str,
        out: &mut Vec<w::ContentBlock>,
    ) -> Result<(), GatewayError> {
        match p {
            Part::Text { text, cache } => {
                if !text.is_empty() {
                    out.push(w::ContentBlock::Text(text.clone()));
                }
                push_cache_point(cache, out);
                Ok(())
            }
            _ => Err(GatewayError::bad_request(format!(
                "`{field}`: only text is supported in a system message by provider `{}`",
                self.target.provider
            ))
            .param("messages")),
        }
    }

    fn part(
        &mut self,
        p: &Part,
        field: &str,
        out: &mut Vec<w::ContentBlock>,
    ) -> Result<(), GatewayError> {
        match p {
            Part::Text { text, cache } => {
                if !text.is_empty() {
                    out.push(w::ContentBlock::Text(text.clone()));
                }
                push_cache_point(cache, out);
            }
            Part::Image { source, cache } => {
                out.push(w::ContentBlock::Image(self.image(source, field)?));
                push_cache_point(cache, out);
            }
            Part::Document { source, cache } => {
                out.push(w::ContentBlock::Document(self.document(source, field)?));
                push_cache_point(cache, out);
            }
            Part::ToolUse {
                id,
                name,
                input,
                cache,
            } => {
                out.push(w::ContentBlock::ToolUse(w::ToolUse {
                    tool_use_id: id.clone(),
                    name: name.clone(),
                    // Converse wants a JSON document; a call without arguments is `{}`.
                    input: if input.is_null() {
                        json!({})
                    } else {
                        input.clone()
                    },
                }));
                push_cache_point(cache, out);
            }
            Part::ToolResult {
                tool_use_id,
                content,
                is_error,
                cache,
            } => {
                let mut parts = Vec::with_capacity(content.len());
                for (k, c) in content.iter().enumerate() {
                    let field = format!("{field}.content[{k}]");
                    parts.push(match c {
                        Part::Text { text, .. } => w::ToolResultContent::Text(text.clone()),
                        Part::Image { source, .. } => {
                            w::ToolResultContent::Image(self.image(source, &field)?)
                        }
                        Part::Document { source, .. } => {
                            w::ToolResultContent::Document(self.document(source, &field)?)
                        }
                        _ => {
                            return Err(GatewayError::bad_request(format!(
                                "`{field}`: a tool result may hold text, images and documents only for provider `{}`",
                                self.target.provider
                            ))
                            .param("messages"))
                        }
                    });
                }
                out.push(w::ContentBlock::ToolResult(w::ToolResult {
                    tool_use_id: tool_use_id.clone(),
                    content: parts,
                    status: is_error.then_some("error"),
                }));
                push_cache_point(cache, out);
            }
            Part::Thinking { text, signature } => {
                out.push(w::ContentBlock::ReasoningContent(
                    w::ReasoningContent::ReasoningText(w::ReasoningText {
                        text: text.clone(),
                        signature: signature.clone(),
                    }),
                ));
            }
            Part::RedactedThinking { data } => {
                out.push(w::ContentBlock::ReasoningContent(
                    w::ReasoningContent::RedactedContent(data.clone()),
                ));
            }
        }
        Ok(())
    }

    fn image(&self, source: &MediaSource, field: &str) -> Result<w::Media, GatewayError> {
        let (media_type, data) = self.inline(source, field, "image")?;
        let format = match media_type.to_ascii_lowercase().as_str() {
            "image/png" => "png",
            "image/jpeg" | "image/jpg" => "jpeg",
            "image/gif" => "gif",
            "image/webp" => "webp",
            other => {
                return Err(GatewayError::bad_request(format!(
                    "`{field}`: image type `{}` is not supported by provider `{}` (png, jpeg, gif, webp)",
                    crate::errors::clip(other, 100),
                    self.target.provider
                ))
                .param("messages"))
            }
        };
        Ok(w::Media {
            format: format.into(),
            source: w::Source {
                bytes: data.to_owned(),
            },
        })
    }

    fn document(&mut self, source: &MediaSource, field: &str) -> Result<w::Document, GatewayError> {
        let (media_type, data) = self.inline(source, field, "document")?;
        let format = match media_type.to_ascii_lowercase().as_str() {
            "application/pdf" => "pdf",
            "text/csv" => "csv",
            "application/msword" => "doc",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
            "application/vnd.ms-excel" => "xls",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
            "text/html" => "html",
            "text/plain" => "txt",
            "text/markdown" => "md",
            other => {
                return Err(GatewayError::bad_request(format!(
                    "`{field}`: document type `{}` is not supported by provider `{}`",
                    crate::errors::clip(other, 100),
                    self.target.provider
                ))
                .param("messages"))
            }
        };
        self.documents += 1;
        Ok(w::Document {
            format: format.into(),
            name: format!("document-{}", self.documents),
            source: w::Source {
                bytes: data.to_owned(),
            },
        })
    }

    /// Converse takes media inline only.
    fn inline<'s>(
        &self,
        source: &'s MediaSource,
        field: &str,
        what: &str,
    ) -> Result<(&'s str, &'s str), GatewayError> {
        match source {
            MediaSource::Base64 { media_type, data } => Ok((media_type, data)),
            MediaSource::Url(_) => Err(GatewayError::bad_request(format!(
                "`{field}`: {what} URLs are not supported by provider `{}` (Converse takes only inline base64 data)",
                self.target.provider
            ))
            .param("messages")),
        }
    }
}

/// Anthropic `cache_control` (any value) → a `cachePoint` after the block. Not at the head
/// of a list nor twice in a row (a cache hint on a skipped empty text): a cachePoint marks
/// the end of a prefix, and a list made of cachePoints alone is not a message.
fn push_cache_point(cache: &ir::CacheControl, out: &mut Vec<w::ContentBlock>) {
    let after_content =
        matches!(out.last(), Some(b) if !matches!(b, w::ContentBlock::CachePoint(_)));
    if cache.is_some() && after_content {
        out.push(w::ContentBlock::CachePoint(w::CachePoint::DEFAULT));
    }
}

fn tool_config(
    req: &ir::Request,
    target: &ir::Target,
) -> Result<Option<w::ToolConfig>, GatewayError> {
    let history_uses_tools = req.messages.iter().any(|m| {
        m.content
            .iter()
            .any(|p| matches!(p, Part::ToolUse { .. } | Part::ToolResult { .. }))
    });
    let mut tools = Vec::new();
    for t in &req.tools {
        tools.push(w::ToolEntry::ToolSpec(w::ToolSpec {
            name: t.name.clone(),
            description: t.description.clone().filter(|d| !d.is_empty()),
            input_schema: w::InputSchema {
                json: if t.schema.is_null() {
                    json!({"type": "object"})
                } else {
                    t.schema.clone()
                },
            },
            strict: t.strict.filter(|s| *s),
        }));
        if t.cache.is_some() {
            tools.push(w::ToolEntry::CachePoint(w::CachePoint::DEFAULT));
        }
    }

    let choice = match &req.tool_choice {
        None | Some(ir::ToolChoice::Auto) if tools.is_empty() => None,
        None => None,
        Some(ir::ToolChoice::Auto) => Some(w::ToolChoice::Auto(w::Empty {})),
        Some(ir::ToolChoice::Any) | Some(ir::ToolChoice::Tool(_)) if tools.is_empty() => {
            return Err(refuse(
                target,
                "tool_choice",
                "`tool_choice` requires a tool call but the request has no `tools` (provider `{p}`)",
            ))
        }
        Some(ir::ToolChoice::Any) => Some(w::ToolChoice::Any(w::Empty {})),
        Some(ir::ToolChoice::Tool(name)) => {
            Some(w::ToolChoice::Tool(w::NamedTool { name: name.clone() }))
        }
        Some(ir::ToolChoice::None) => {
            if !history_uses_tools {
                return Ok(None);
            }
            None
        }
    };

    if tools.is_empty() {
        if !history_uses_tools {
            return Ok(None);
        }
        tools = declared_from_history(req);
        if tools.is_empty() {
            return Ok(None);
        }
    }
    Ok(Some(w::ToolConfig {
        tools,
        tool_choice: choice,
    }))
}

/// Tool specs for the tools the history called, when the request declares none: Converse
/// refuses toolUse/toolResult blocks without a toolConfig.
fn declared_from_history(req: &ir::Request) -> Vec<w::ToolEntry> {
    let mut names: Vec<&str> = Vec::new();
    for m in &req.messages {
        for p in &m.content {
            if let Part::ToolUse { name, .. } = p {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
    }
    names
        .into_iter()
        .map(|n| {
            w::ToolEntry::ToolSpec(w::ToolSpec {
                name: n.to_owned(),
                description: Some("A tool used earlier in this conversation.".into()),
                input_schema: w::InputSchema {
                    json: json!({"type": "object"}),
                },
                strict: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_rules() {
        assert!(metadata_ok("user-1@example.com"));
        assert!(metadata_ok("a b:c_d$e#f=g/h+i,j-k.l"));
        assert!(!metadata_ok("ü"));
        assert!(!metadata_ok("<script>"));
        assert!(!metadata_ok(&"a".repeat(257)));
    }
}
