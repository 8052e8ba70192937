//! Requests: a client's `/v1/chat/completions` body → `ir::Request` (decode), and
//! `ir::Request` → the body for an OpenAI-compatible upstream (encode).
//!
//! Decoding reads the body key by key so that every field is considered; `null` values
//! count as absent (SDKs send them). Untranslatable fields are named as the client wrote
//! them (`n`, `messages[3].name`, `messages[1].content[0].type=input_audio`, `tools[2].type`).

use super::response::{arguments_string, arguments_value, thinking_parts};
use crate::errors::{clip, GatewayError};
use crate::translate::ir::*;
use crate::wire::openai as wire;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

// ───────────────────────────── decode (client → neutral) ─────────────────────────────

fn bad(msg: impl Into<String>) -> GatewayError {
    GatewayError::bad_request(msg)
}

/// A typed view of one field, or a 400 naming it.
fn typed<T: DeserializeOwned>(v: Value, field: &'static str) -> Result<T, GatewayError> {
    serde_json::from_value(v)
        .map_err(|e| bad(format!("invalid `{field}`: {}", clip(&e.to_string(), 200))).param(field))
}

fn number(v: &Value, field: &'static str) -> Result<f64, GatewayError> {
    v.as_f64()
        .ok_or_else(|| bad(format!("`{field}` must be a number")).param(field))
}

fn count(v: &Value, field: &'static str) -> Result<u64, GatewayError> {
    v.as_u64()
        .ok_or_else(|| bad(format!("`{field}` must be a non-negative integer")).param(field))
}

fn text(v: Value, field: &'static str) -> Result<String, GatewayError> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(bad(format!("`{field}` must be a string")).param(field)),
    }
}

pub fn decode_request(body: &[u8]) -> Result<Request, GatewayError> {
    let top = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(bad("the request body must be a JSON object")),
        Err(e) => {
            return Err(bad(format!(
                "malformed request: the body is not valid JSON: {}",
                clip(&e.to_string(), 200)
            )))
        }
    };
    let mut req = Request::default();
    let mut messages = None;
    let (mut max_tokens, mut max_completion_tokens) = (None, None);
    for (key, value) in top {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "model" => req.model = text(value, "model")?,
            "messages" => messages = Some(value),
            "max_tokens" => max_tokens = Some(count(&value, "max_tokens")?),
            "max_completion_tokens" => {
                max_completion_tokens = Some(count(&value, "max_completion_tokens")?)
            }
            "temperature" => req.temperature = Some(number(&value, "temperature")?),
            "top_p" => req.top_p = Some(number(&value, "top_p")?),
            "top_k" => req.top_k = Some(count(&value, "top_k")?),
            "stop" => req.stop = stop_list(value)?,
            "stream" => {
                req.stream = value
                    .as_bool()
                    .ok_or_else(|| bad("`stream` must be a boolean").param("stream"))?
            }
            "stream_options" => stream_options(value, &mut req)?,
            "tools" => req.tools = tools(value, &mut req.untranslatable)?,
            "tool_choice" => req.tool_choice = tool_choice(value, &mut req.untranslatable)?,
            "parallel_tool_calls" => {
                req.parallel_tool_calls = Some(value.as_bool().ok_or_else(|| {
                    bad("`parallel_tool_calls` must be a boolean").param("parallel_tool_calls")
                })?)
            }
            "response_format" => req.response_format = Some(response_format(value)?),
            "user" => req.user = Some(text(value, "user")?),
            "reasoning_effort" => req.reasoning_effort = Some(text(value, "reasoning_effort")?),
            "thinking" => req.thinking = Some(value),
            // Hints: they change cost, latency, retention or caching, never the answer.
            "store"
            | "metadata"
            | "service_tier"
            | "prompt_cache_key"
            | "prompt_cache_retention"
            | "safety_identifier"
            | "seed"
            | "prediction" => {}
            // Defaults change nothing; anything else does.
            "n" if value.as_u64() == Some(1) => {}
            "logprobs" if value == Value::Bool(false) => {}
            "top_logprobs" if value.as_u64() == Some(0) => {}
            "logit_bias" if value.as_object().is_some_and(Map::is_empty) => {}
            "presence_penalty" | "frequency_penalty" if value.as_f64() == Some(0.0) => {}
            "modalities" if value == json!(["text"]) => {}
            _ => req.untranslatable.push(key),
        }
    }
    req.max_tokens = max_completion_tokens.or(max_tokens);
    match messages {
        Some(Value::Array(list)) => decode_messages(list, &mut req)?,
        Some(_) => return Err(bad("`messages` must be an array").param("messages")),
        None => return Err(bad("`messages` is required").param("messages")),
    }
    Ok(req)
}

fn stop_list(v: Value) -> Result<Vec<String>, GatewayError> {
    match v {
        Value::String(s) => Ok(vec![s]),
        Value::Array(_) => typed(v, "stop"),
        _ => Err(bad("`stop` must be a string or an array of strings").param("stop")),
    }
}

fn stream_options(v: Value, req: &mut Request) -> Result<(), GatewayError> {
    let Value::Object(map) = v else {
        return Err(bad("`stream_options` must be an object").param("stream_options"));
    };
    for (k, v) in map {
        match k.as_str() {
            "include_usage" => req.include_usage = v.as_bool().unwrap_or(false),
            // Obfuscation pads chunks against side channels: it never changes the answer.
            "include_obfuscation" => {}
            _ if v.is_null() => {}
            _ => req.untranslatable.push(format!("stream_options.{k}")),
        }
    }
    Ok(())
}

fn tools(v: Value, untranslatable: &mut Vec<String>) -> Result<Vec<Tool>, GatewayError> {
    let list: Vec<wire::ToolIn> = typed(v, "tools")?;
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.into_iter().enumerate() {
        match (t.kind.as_deref(), t.function) {
            (Some("function") | None, Some(f)) => out.push(Tool {
                name: f.name,
                description: f.description,
                schema: f
                    .parameters
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                strict: f.strict,
                cache: t.cache_control,
            }),
            _ => untranslatable.push(format!("tools[{i}].type")),
        }
    }
    Ok(out)
}

fn tool_choice(
    v: Value,
    untranslatable: &mut Vec<String>,
) -> Result<Option<ToolChoice>, GatewayError> {
    let invalid = || {
        bad("`tool_choice` must be auto, none, required or a named function").param("tool_choice")
    };
    match &v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Any)),
            _ => Err(invalid()),
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(|n| Some(ToolChoice::Tool(n.to_string())))
                .ok_or_else(invalid),
            // `allowed_tools`, `custom`: no neutral counterpart.
            Some(_) => {
                untranslatable.push("tool_choice".to_string());
                Ok(None)
            }
            None => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

fn response_format(v: Value) -> Result<ResponseFormat, GatewayError> {
    let rf: wire::ResponseFormatIn = typed(v, "response_format")?;
    match rf.kind.as_str() {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(ResponseFormat::JsonObject),
        "json_schema" => {
            let js = rf.json_schema.ok_or_else(|| {
                bad("`response_format.json_schema` is required for type json_schema")
                    .param("response_format")
            })?;
            Ok(ResponseFormat::JsonSchema {
                name: js.name,
                schema: js.schema.unwrap_or_else(|| json!({})),
                strict: js.strict,
            })
        }
        other => Err(bad(format!(
            "unknown `response_format.type` `{}`",
            clip(other, 64)
        ))
        .param("response_format")),
    }
}

/// Fields a message may carry, per role, besides `role` and `content`. `name` is the
/// participant's name: it changes what the model sees, and neither Anthropic nor Bedrock has
/// it, so it is untranslatable (except on `tool` messages, where it is the legacy echo of
/// the function's name and adds nothing to `tool_call_id`).
const SYSTEM_KEYS: &[&str] = &["cache_control"];
const USER_KEYS: &[&str] = &["cache_control"];
const ASSISTANT_KEYS: &[&str] = &[
    "cache_control",
    "reasoning_content",
    "thinking_blocks",
    "refusal",
    "tool_calls",
];
/// Hints on assistant turns: `annotations` are URL citations echoed from an earlier answer.
const ASSISTANT_HINTS: &[&str] = &["annotations"];
const TOOL_KEYS: &[&str] = &["cache_control", "tool_call_id"];
const TOOL_HINTS: &[&str] = &["name"];

fn decode_messages(list: Vec<Value>, req: &mut Request) -> Result<(), GatewayError> {
    let mut leading_system = true;
    let mut last_was_tool = false;
    for (i, m) in list.into_iter().enumerate() {
        let Value::Object(mut m) = m else {
            return Err(bad(format!("`messages[{i}]` must be an object")).param("messages"));
        };
        let role = match m.remove("role") {
            Some(Value::String(r)) => r,
            _ => return Err(bad(format!("`messages[{i}].role` is required")).param("messages")),
        };
        let msg_cache = m.remove("cache_control").filter(|c| !c.is_null());
        let content = m.remove("content").filter(|c| !c.is_null());
        let is_tool = role == "tool";
        match role.as_str() {
            "system" | "developer" => {
                unknown_keys(i, &m, SYSTEM_KEYS, &[], &mut req.untranslatable);
                let mut parts = text_parts(i, content, &mut req.untranslatable)?;
                set_last_cache(&mut parts, msg_cache);
                if leading_system {
                    req.system.extend(parts);
                } else {
                    req.messages.push(Message {
                        role: Role::System,
                        content: parts,
                    });
                }
            }
            "user" => {
                unknown_keys(i, &m, USER_KEYS, &[], &mut req.untranslatable);
                let mut parts = user_parts(i, content, &mut req.untranslatable)?;
                set_last_cache(&mut parts, msg_cache);
                req.messages.push(Message {
                    role: Role::User,
                    content: parts,
                });
            }
            "assistant" => {
                unknown_keys(
                    i,
                    &m,
                    ASSISTANT_KEYS,
                    ASSISTANT_HINTS,
                    &mut req.untranslatable,
                );
                let mut parts = assistant_parts(i, content, m, &mut req.untranslatable)?;
                set_last_cache(&mut parts, msg_cache);
                req.messages.push(Message {
                    role: Role::Assistant,
                    content: parts,
                });
            }
            "tool" => {
                unknown_keys(i, &m, TOOL_KEYS, TOOL_HINTS, &mut req.untranslatable);
                let tool_use_id = match m.remove("tool_call_id") {
                    Some(Value::String(id)) => id,
                    _ => {
                        return Err(bad(format!("`messages[{i}].tool_call_id` is required"))
                            .param("messages"))
                    }
                };
                let result = Part::ToolResult {
                    tool_use_id,
                    content: text_parts(i, content, &mut req.untranslatable)?,
                    is_error: false,
                    cache: msg_cache,
                };
                // Consecutive tool messages answer one assistant turn: one user message.
                match req.messages.last_mut() {
                    Some(prev) if last_was_tool => prev.content.push(result),
                    _ => req.messages.push(Message {
                        role: Role::User,
                        content: vec![result],
                    }),
                }
            }
            "function" => req
                .untranslatable
                .push(format!("messages[{i}].role=function")),
            other => {
                return Err(bad(format!(
                    "unknown role `{}` in `messages[{i}]`",
                    clip(other, 64)
                ))
                .param("messages"))
            }
        }
        leading_system &= matches!(role.as_str(), "system" | "developer");
        last_was_tool = is_tool;
    }
    Ok(())
}

/// Names every key of message `i` that is neither mapped nor a hint.
fn unknown_keys(
    i: usize,
    m: &Map<String, Value>,
    known: &[&str],
    hints: &[&str],
    out: &mut Vec<String>,
) {
    for (k, v) in m {
        if !v.is_null() && !known.contains(&k.as_str()) && !hints.contains(&k.as_str()) {
            out.push(format!("messages[{i}].{k}"));
        }
    }
}

/// A message-level `cache_control` (LiteLLM's extension) marks the message's last block.
fn set_last_cache(parts: &mut [Part], cache: Option<Value>) {
    let Some(c) = cache else { return };
    match parts.last_mut() {
        Some(Part::Text { cache, .. })
        | Some(Part::Image { cache, .. })
        | Some(Part::Document { cache, .. })
        | Some(Part::ToolUse { cache, .. })
        | Some(Part::ToolResult { cache, .. }) => *cache = Some(c),
        _ => {}
    }
}

/// Content parts as `(index, type, object)`; a string is one text part.
fn each_part(
    i: usize,
    content: Option<Value>,
    mut f: impl FnMut(usize, &str, Map<String, Value>) -> Result<(), GatewayError>,
) -> Result<(), GatewayError> {
    match content {
        None => Ok(()),
        Some(Value::String(s)) => {
            let mut m = Map::new();
            m.insert("text".into(), Value::String(s));
            f(0, "text", m)
        }
        Some(Value::Array(parts)) => {
            for (j, p) in parts.into_iter().enumerate() {
                let Value::Object(mut p) = p else {
                    return Err(
                        bad(format!("`messages[{i}].content[{j}]` must be an object"))
                            .param("messages"),
                    );
                };
                let kind = match p.remove("type") {
                    Some(Value::String(t)) => t,
                    _ => {
                        return Err(
                            bad(format!("`messages[{i}].content[{j}].type` is required"))
                                .param("messages"),
                        )
                    }
                };
                f(j, &kind, p)?;
            }
            Ok(())
        }
        Some(_) => Err(bad(format!(
            "`messages[{i}].content` must be a string or an array"
        ))
        .param("messages")),
    }
}

fn part_text(
    i: usize,
    j: usize,
    p: &mut Map<String, Value>,
    key: &str,
) -> Result<String, GatewayError> {
    match p.remove(key) {
        Some(Value::String(t)) => Ok(t),
        _ => Err(bad(format!(
            "`messages[{i}].content[{j}].{key}` must be a string"
        ))
        .param("messages")),
    }
}

fn part_cache(p: &mut Map<String, Value>) -> CacheControl {
    p.remove("cache_control").filter(|c| !c.is_null())
}

/// Names the keys of a content part left after its mapped ones were taken.
fn leftover_part_keys(
    i: usize,
    j: usize,
    p: &Map<String, Value>,
    hints: &[&str],
    out: &mut Vec<String>,
) {
    for (k, v) in p {
        if !v.is_null() && !hints.contains(&k.as_str()) {
            out.push(format!("messages[{i}].content[{j}].{k}"));
        }
    }
}

/// System and tool content: text only.
fn text_parts(
    i: usize,
    content: Option<Value>,
    untranslatable: &mut Vec<String>,
) -> Result<Vec<Part>, GatewayError> {
    let mut parts = Vec::new();
    each_part(i, content, |j, kind, mut p| {
        if kind == "text" {
            let text = part_text(i, j, &mut p, "text")?;
            let cache = part_cache(&mut p);
            leftover_part_keys(i, j, &p, &[], untranslatable);
            parts.push(Part::Text { text, cache });
        } else {
            untranslatable.push(format!(
                "messages[{i}].content[{j}].type={}",
                clip(kind, 64)
            ));
        }
        Ok(())
    })?;
    Ok(parts)
}

fn user_parts(
    i: usize,
    content: Option<Value>,
    untranslatable: &mut Vec<String>,
) -> Result<Vec<Part>, GatewayError> {
    let mut parts = Vec::new();
    each_part(i, content, |j, kind, mut p| {
        match kind {
            "text" => {
                let text = part_text(i, j, &mut p, "text")?;
                let cache = part_cache(&mut p);
                leftover_part_keys(i, j, &p, &[], untranslatable);
                parts.push(Part::Text { text, cache });
            }
            "image_url" => {
                // `{"url": ..., "detail": ...}`, or the bare URL some clients send.
                let url = match p.remove("image_url") {
                    Some(Value::String(u)) => u,
                    // `detail` (the resolution to read it at) is a hint: see the module doc.
                    Some(v @ Value::Object(_)) => typed::<wire::ImageUrlIn>(v, "messages")?.url,
                    _ => {
                        return Err(bad(format!(
                            "`messages[{i}].content[{j}].image_url` is required"
                        ))
                        .param("messages"))
                    }
                };
                let cache = part_cache(&mut p);
                leftover_part_keys(i, j, &p, &[], untranslatable);
                let source = media_source(&url, "image/png")
                    .ok_or_else(|| bad(format!("`messages[{i}].content[{j}].image_url.url` is not a base64 data URL or an http(s) URL")).param("messages"))?;
                parts.push(Part::Image { source, cache });
            }
            "file" => {
                let file: wire::FileIn = match p.remove("file") {
                    Some(v) => typed(v, "messages")?,
                    None => {
                        return Err(
                            bad(format!("`messages[{i}].content[{j}].file` is required"))
                                .param("messages"),
                        )
                    }
                };
                let cache = part_cache(&mut p);
                leftover_part_keys(i, j, &p, &[], untranslatable);
                match file.file_data {
                    Some(data) => parts.push(Part::Document {
                        source: file_source(data, file.filename.as_deref()),
                        cache,
                    }),
                    // An uploaded file lives at OpenAI only.
                    None => untranslatable.push(format!("messages[{i}].content[{j}].file.file_id")),
                }
            }
            other => untranslatable.push(format!(
                "messages[{i}].content[{j}].type={}",
                clip(other, 64)
            )),
        }
        Ok(())
    })?;
    Ok(parts)
}

fn assistant_parts(
    i: usize,
    content: Option<Value>,
    mut m: Map<String, Value>,
    untranslatable: &mut Vec<String>,
) -> Result<Vec<Part>, GatewayError> {
    let mut parts = Vec::new();
    let reasoning = match m.remove("reasoning_content") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let blocks: Option<Vec<wire::ThinkingBlockIn>> = match m.remove("thinking_blocks") {
        Some(v) if !v.is_null() => Some(typed(v, "messages")?),
        _ => None,
    };
    thinking_parts(reasoning.as_deref(), blocks.as_deref(), &mut parts);
    each_part(i, content, |j, kind, mut p| {
        match kind {
            "text" | "refusal" => {
                let text = part_text(i, j, &mut p, kind)?;
                let cache = part_cache(&mut p);
                leftover_part_keys(i, j, &p, &[], untranslatable);
                if !text.is_empty() {
                    parts.push(Part::Text { text, cache });
                }
            }
            "thinking" => {
                let text = part_text(i, j, &mut p, "thinking")?;
                let signature = p
                    .remove("signature")
                    .and_then(|s| s.as_str().map(str::to_string));
                parts.push(Part::Thinking { text, signature });
            }
            "redacted_thinking" => {
                let data = part_text(i, j, &mut p, "data")?;
                parts.push(Part::RedactedThinking { data });
            }
            other => untranslatable.push(format!(
                "messages[{i}].content[{j}].type={}",
                clip(other, 64)
            )),
        }
        Ok(())
    })?;
    if let Some(Value::String(r)) = m.remove("refusal") {
        if !r.is_empty() {
            parts.push(Part::Text {
                text: r,
                cache: None,
            });
        }
    }
    if let Some(v) = m.remove("tool_calls").filter(|v| !v.is_null()) {
        let calls: Vec<wire::ToolCallIn> = typed(v, "messages")?;
        for (k, call) in calls.into_iter().enumerate() {
            if call.kind.as_deref().is_some_and(|t| t != "function") {
                untranslatable.push(format!("messages[{i}].tool_calls[{k}].type"));
                continue;
            }
            let id = call.id.ok_or_else(|| {
                bad(format!("`messages[{i}].tool_calls[{k}].id` is required")).param("messages")
            })?;
            let f = call.function.ok_or_else(|| {
                bad(format!(
                    "`messages[{i}].tool_calls[{k}].function` is required"
                ))
                .param("messages")
            })?;
            parts.push(Part::ToolUse {
                id,
                name: f.name.unwrap_or_default(),
                input: arguments_value(f.arguments.as_ref(), true),
                cache: None,
            });
        }
    }
    Ok(parts)
}

/// `data:<type>;base64,<data>` → Base64, `http(s)://` → Url; anything else is not a source.
fn media_source(url: &str, default_type: &str) -> Option<MediaSource> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',')?;
        let media_type = meta.strip_suffix(";base64")?;
        let media_type = if media_type.is_empty() {
            default_type
        } else {
            media_type
        };
        return Some(MediaSource::Base64 {
            media_type: media_type.to_string(),
            data: data.to_string(),
        });
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        .then(|| MediaSource::Url(url.to_string()))
}

/// `file.file_data`: a data URL, or bare base64 (then typed by the file name; PDF when unknown).
fn file_source(data: String, filename: Option<&str>) -> MediaSource {
    if data.starts_with("data:") {
        if let Some(s) = media_source(&data, "application/pdf") {
            return s;
        }
    }
    let media_type = match filename
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
    {
        Some(ext) if ext == "txt" => "text/plain",
        _ => "application/pdf",
    };
    MediaSource::Base64 {
        media_type: media_type.to_string(),
        data,
    }
}

// ───────────────────────────── encode (neutral → upstream) ─────────────────────────────

fn refuse(what: &str, target: &Target) -> GatewayError {
    GatewayError::bad_request(format!(
        "`{what}` cannot be translated for provider `{}`",
        target.provider
    ))
}

fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

/// Text parts joined; any other part is refused (`what` names where it was).
fn joined_text(
    parts: &[Part],
    sep: &str,
    what: &str,
    target: &Target,
) -> Result<String, GatewayError> {
    let mut out = String::new();
    for (n, p) in parts.iter().enumerate() {
        match p {
            Part::Text { text, .. } => {
                if n > 0 {
                    out.push_str(sep);
                }
                out.push_str(text)
            }
            _ => return Err(refuse(&format!("{what} with non-text content"), target)),
        }
    }
    Ok(out)
}

pub fn encode_request(req: &Request, target: &Target) -> Result<Vec<u8>, GatewayError> {
    // OpenAI's own API rejects `top_k`; self-hosted servers (vLLM, llama-server) honour it.
    if req.top_k.is_some() && target.provider == "openai" {
        return Err(refuse("top_k", target));
    }
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        let text = joined_text(&req.system, "\n\n", "system", target)?;
        messages.push(plain("system", Some(wire::ContentOut::Text(text))));
    }
    for m in &req.messages {
        match m.role {
            Role::System => {
                let text = joined_text(&m.content, "\n\n", "a system message", target)?;
                messages.push(plain("system", Some(wire::ContentOut::Text(text))));
            }
            Role::User => encode_user(&m.content, &mut messages, target)?,
            Role::Assistant => messages.push(encode_assistant(&m.content, target)?),
        }
    }
    let has_tools = !req.tools.is_empty();
    let body = wire::ChatRequestOut {
        model: target.model,
        messages,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop: &req.stop,
        stream: req.stream,
        // Always: the gateway bills from the usage chunk (the client's encoder drops it
        // again when the client did not ask).
        stream_options: req.stream.then_some(wire::StreamOptionsOut {
            include_usage: true,
        }),
        tools: req
            .tools
            .iter()
            .map(|t| wire::ToolOut {
                kind: "function",
                function: wire::FunctionDefOut {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters: &t.schema,
                    strict: t.strict,
                },
            })
            .collect(),
        // OpenAI rejects both without `tools`.
        tool_choice: if has_tools {
            req.tool_choice.as_ref().map(tool_choice_out)
        } else {
            None
        },
        parallel_tool_calls: if has_tools {
            req.parallel_tool_calls
        } else {
            None
        },
        response_format: req.response_format.as_ref().map(response_format_out),
        user: req.user.as_deref(),
        reasoning_effort: req
            .reasoning_effort
            .as_deref()
            .or_else(|| effort_from_thinking(req.thinking.as_ref())),
    };
    serde_json::to_vec(&body)
        .map_err(|e| GatewayError::new(500, format!("could not write the upstream request: {e}")))
}

fn plain<'a>(role: &'static str, content: Option<wire::ContentOut<'a>>) -> wire::MessageOut<'a> {
    wire::MessageOut {
        role,
        content,
        reasoning_content: None,
        tool_calls: None,
        tool_call_id: None,
    }
}

/// A user message: its tool results first, each as a `tool` message (OpenAI wants them
/// right after the assistant turn that called); images or documents inside tool results
/// (a `tool` message carries text only) in one user message after them; then the rest.
fn encode_user<'a>(
    parts: &'a [Part],
    out: &mut Vec<wire::MessageOut<'a>>,
    target: &Target,
) -> Result<(), GatewayError> {
    let mut rest = Vec::new();
    let mut from_results = Vec::new();
    let mut only_text = true;
    for p in parts {
        match p {
            Part::ToolResult {
                tool_use_id,
                content,
                ..
            } => {
                let mut text = String::new();
                for c in content {
                    match c {
                        Part::Text { text: t, .. } => {
                            if !text.is_empty() {
                                text.push_str("\n\n");
                            }
                            text.push_str(t);
                        }
                        other => from_results.push(media_part(other, target)?),
                    }
                }
                out.push(wire::MessageOut {
                    role: "tool",
                    content: Some(wire::ContentOut::Text(text)),
                    reasoning_content: None,
                    tool_calls: None,
                    tool_call_id: Some(tool_use_id),
                });
            }
            Part::Text { .. } => rest.push(p),
            _ => {
                only_text = false;
                rest.push(p)
            }
        }
    }
    if !from_results.is_empty() {
        out.push(plain("user", Some(wire::ContentOut::Parts(from_results))));
    }
    if rest.is_empty() {
        // A user turn with no content at all stays a turn (the upstream judges it).
        if parts.is_empty() {
            out.push(plain("user", Some(wire::ContentOut::Text(String::new()))));
        }
        return Ok(());
    }
    let content = if only_text {
        let mut s = String::new();
        for (n, p) in rest.iter().enumerate() {
            if let Part::Text { text, .. } = p {
                if n > 0 {
                    s.push_str("\n\n");
                }
                s.push_str(text);
            }
        }
        wire::ContentOut::Text(s)
    } else {
        wire::ContentOut::Parts(
            rest.into_iter()
                .map(|p| media_part(p, target))
                .collect::<Result<_, _>>()?,
        )
    };
    out.push(plain("user", Some(content)));
    Ok(())
}

/// One user content part in OpenAI's shape.
fn media_part<'a>(p: &'a Part, target: &Target) -> Result<wire::PartOut<'a>, GatewayError> {
    Ok(match p {
        Part::Text { text, .. } => wire::PartOut::Text { text },
        Part::Image {
            source: MediaSource::Base64 { media_type, data },
            ..
        } => wire::PartOut::ImageUrl {
            image_url: wire::UrlOut {
                url: data_url(media_type, data),
            },
        },
        Part::Image {
            source: MediaSource::Url(u),
            ..
        } => wire::PartOut::ImageUrl {
            image_url: wire::UrlOut { url: u.clone() },
        },
        Part::Document {
            source: MediaSource::Base64 { media_type, data },
            ..
        } => wire::PartOut::File {
            file: wire::FileOut {
                file_data: data_url(media_type, data),
            },
        },
        Part::Document {
            source: MediaSource::Url(_),
            ..
        } => return Err(refuse("a document given by URL", target)),
        Part::ToolUse { .. }
        | Part::Thinking { .. }
        | Part::RedactedThinking { .. }
        | Part::ToolResult { .. } => {
            return Err(refuse(
                "a tool call or thinking block in a user message",
                target,
            ))
        }
    })
}

/// An assistant turn: text joined as `content`, thinking as `reasoning_content`, tool uses
/// as `tool_calls`. Redacted thinking is encrypted for Anthropic only: it cannot mean
/// anything to another upstream and is left out; signatures are left out likewise.
fn encode_assistant<'a>(
    parts: &'a [Part],
    target: &Target,
) -> Result<wire::MessageOut<'a>, GatewayError> {
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut calls = Vec::new();
    for p in parts {
        match p {
            Part::Text { text: t, .. } => text.get_or_insert_with(String::new).push_str(t),
            Part::Thinking { text: t, .. } => reasoning.get_or_insert_with(String::new).push_str(t),
            Part::RedactedThinking { .. } => {}
            Part::ToolUse {
                id, name, input, ..
            } => calls.push(wire::ToolCallOut {
                id,
                kind: "function",
                function: wire::FunctionCallOut {
                    name,
                    arguments: arguments_string(input),
                },
            }),
            Part::Image { .. } | Part::Document { .. } | Part::ToolResult { .. } => {
                return Err(refuse(
                    "an image, document or tool result in an assistant message",
                    target,
                ))
            }
        }
    }
    // OpenAI accepts a null `content` only beside tool calls (a thinking-only turn has none).
    if text.is_none() && calls.is_empty() {
        text = Some(String::new());
    }
    Ok(wire::MessageOut {
        role: "assistant",
        content: text.map(wire::ContentOut::Text),
        reasoning_content: reasoning,
        tool_calls: (!calls.is_empty()).then_some(calls),
        tool_call_id: None,
    })
}

fn tool_choice_out(c: &ToolChoice) -> Value {
    match c {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::Any => json!("required"),
        ToolChoice::None => json!("none"),
        ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

fn response_format_out(f: &ResponseFormat) -> Value {
    match f {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            // OpenAI requires a name; Anthropic's and Bedrock's formats have none.
            let mut js = json!({"name": name.as_deref().unwrap_or("response"), "schema": schema});
            if let (Some(s), Some(o)) = (strict, js.as_object_mut()) {
                o.insert("strict".into(), Value::Bool(*s));
            }
            json!({"type": "json_schema", "json_schema": js})
        }
    }
}

/// Anthropic-style `thinking` → `reasoning_effort` by budget: ≤1024 low, ≤8192 medium, else
/// high. `adaptive` and `disabled` (and a budget-less `enabled`) name no effort: none is sent.
fn effort_from_thinking(thinking: Option<&Value>) -> Option<&'static str> {
    let t = thinking?;
    if t.get("type").and_then(Value::as_str) != Some("enabled") {
        return None;
    }
    let budget = t.get("budget_tokens").and_then(Value::as_u64)?;
    Some(match budget {
        0..=1024 => "low",
        1025..=8192 => "medium",
        _ => "high",
    })
}

#[cfg(test)]
mod tests;
