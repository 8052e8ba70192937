//! Requests: a client's `/v1/messages` body → [`Request`] (decode), and [`Request`] → the
//! body an Anthropic upstream gets (encode).
//!
//! Decoding lists in [`Request::untranslatable`] every client field that changes the answer
//! and has no neutral counterpart (server tools and their result blocks, `mcp_servers`,
//! `container.skills`, document `title`/`context`/`citations`, unknown fields, ...). These
//! hints are dropped because they do not change the answer (`cache_control` is not among
//! them: the neutral form keeps it on every part and tool):
//! - `context_management` (server-side context editing: what the upstream keeps of a long
//!   conversation, not what it answers);
//! - `service_tier` (capacity class);
//! - `container` without `skills` (names a code-execution sandbox; without a server tool
//!   it is unused);
//! - `tools[].defer_loading`, `tools[].eager_input_streaming` (tool loading / streaming
//!   granularity);
//! - `metadata` fields other than `user_id`;
//! - `citations` on `text` blocks (source notes of earlier answers in the history).
//!
//! Encoding decisions (Anthropic's API shapes them):
//! - Role::System messages in the middle go to the end of `system`: the Messages API has
//!   no system role inside `messages`.
//! - Consecutive same-role messages are merged; a message left empty is left out (the API
//!   rejects empty content); in a user message `tool_result` blocks come first.
//! - A Thinking part without a signature is left out: it is the model's earlier reasoning
//!   from a non-Anthropic upstream, not client content, and Anthropic refuses it unsigned.
//! - Empty text parts are left out (the API refuses empty text blocks).
//! - A tool call's input that is not an object is sent as `{"value": input}`.
//! - `json_object` becomes `output_config.format` with schema `{"type":"object"}`.
//! - `reasoning_effort` without `thinking` becomes `thinking: {type: enabled,
//!   budget_tokens}` (minimal/low 1024, medium 4096, high and above 16384; `none` sends no
//!   thinking), and `max_tokens` is raised by the budget when it does not exceed it, so the
//!   visible answer keeps the room the client asked for. With `thinking` given as well,
//!   the effort goes to `output_config.effort`.

use super::super::ir::*;
use crate::errors::GatewayError;
use crate::wire::anthropic::*;
use serde_json::Value;
use std::borrow::Cow;

/// Hints dropped at the top level (see the module doc).
fn hint_keys(key: &str) -> bool {
    matches!(key, "context_management" | "service_tier")
}

pub fn decode_request(body: &[u8]) -> Result<Request, GatewayError> {
    let wire: InRequest = serde_json::from_slice(body)
        .map_err(|e| GatewayError::bad_request(format!("invalid request body: {e}")))?;
    let mut req = Request::default();
    let mut untranslatable = Vec::new();

    req.model = wire
        .model
        .ok_or_else(|| GatewayError::bad_request("`model` is required").param("model"))?;
    let messages = wire
        .messages
        .ok_or_else(|| GatewayError::bad_request("`messages` is required").param("messages"))?;
    req.max_tokens = wire.max_tokens;
    req.temperature = wire.temperature;
    req.top_p = wire.top_p;
    req.top_k = wire.top_k;
    req.stop = wire.stop_sequences.unwrap_or_default();
    req.stream = wire.stream.unwrap_or(false);
    // An Anthropic client always gets usage in its stream.
    req.include_usage = true;
    req.thinking = wire.thinking.filter(|v| !v.is_null());

    if let Some(system) = wire.system {
        req.system = match system {
            InContent::Text(t) => vec![Part::Text {
                text: t,
                cache: None,
            }],
            InContent::Blocks(blocks) => {
                let mut parts = Vec::with_capacity(blocks.len());
                for (i, b) in blocks.into_iter().enumerate() {
                    let path = format!("system[{i}]");
                    if b.kind != "text" {
                        untranslatable.push(format!("{path}.type={}", b.kind));
                        continue;
                    }
                    parts.extend(block(b, &path, &mut untranslatable));
                }
                parts
            }
        };
    }

    for (i, m) in messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "system" => Role::System,
            other => {
                return Err(GatewayError::bad_request(format!(
                    "messages[{i}].role: unknown role `{}`",
                    crate::errors::clip(other, 64)
                ))
                .param("messages"))
            }
        };
        unknown_keys(&m.other, &format!("messages[{i}]"), &mut untranslatable);
        let content = match m.content {
            InContent::Text(t) => vec![Part::Text {
                text: t,
                cache: None,
            }],
            InContent::Blocks(blocks) => {
                let mut parts = Vec::with_capacity(blocks.len());
                for (j, b) in blocks.into_iter().enumerate() {
                    let path = format!("messages[{i}].content[{j}]");
                    parts.extend(block(b, &path, &mut untranslatable));
                }
                parts
            }
        };
        req.messages.push(Message { role, content });
    }

    if let Some(tools) = wire.tools {
        for (i, t) in tools.into_iter().enumerate() {
            if let Some(tool) = tool(t, i, &mut untranslatable) {
                req.tools.push(tool);
            }
        }
    }

    if let Some(tc) = wire.tool_choice {
        unknown_keys(&tc.other, "tool_choice", &mut untranslatable);
        req.tool_choice = match tc.kind.as_str() {
            "auto" => Some(ToolChoice::Auto),
            "any" => Some(ToolChoice::Any),
            "none" => Some(ToolChoice::None),
            "tool" => match tc.name {
                Some(n) => Some(ToolChoice::Tool(n)),
                None => {
                    return Err(GatewayError::bad_request(
                        "`tool_choice.name` is required for type `tool`",
                    )
                    .param("tool_choice"))
                }
            },
            other => {
                untranslatable.push(format!("tool_choice.type={other}"));
                None
            }
        };
        if tc.disable_parallel_tool_use == Some(true) {
            req.parallel_tool_calls = Some(false);
        }
    }

    if let Some(meta) = wire.metadata {
        req.user = meta.user_id; // other metadata keys: hints
    }

    if let Some(oc) = wire.output_config {
        unknown_keys(&oc.other, "output_config", &mut untranslatable);
        req.reasoning_effort = oc.effort;
        if let Some(f) = oc.format {
            unknown_keys(&f.other, "output_config.format", &mut untranslatable);
            match (f.kind.as_str(), f.schema) {
                ("json_schema", Some(schema)) => {
                    req.response_format = Some(ResponseFormat::JsonSchema {
                        name: None,
                        schema,
                        strict: None,
                    })
                }
                (kind, _) => untranslatable.push(format!("output_config.format.type={kind}")),
            }
        }
    }

    if let Some(c) = wire.container {
        if c.get("skills").is_some() {
            untranslatable.push("container.skills".into());
        }
    }
    if wire.mcp_servers.is_some_and(|v| !v.is_null()) {
        untranslatable.push("mcp_servers".into());
    }
    // context_management, service_tier: hints.
    let _ = (wire.context_management, wire.service_tier);
    for key in wire.other.keys() {
        if !hint_keys(key) {
            untranslatable.push(key.clone());
        }
    }

    req.untranslatable = untranslatable;
    Ok(req)
}

/// Every field in `other` is one this module does not know: it may change the answer.
fn unknown_keys(other: &serde_json::Map<String, Value>, path: &str, out: &mut Vec<String>) {
    for key in other.keys() {
        out.push(format!("{path}.{key}"));
    }
}

/// One content block. `None` when it has no neutral counterpart (listed in `out`).
fn block(b: InBlock, path: &str, out: &mut Vec<String>) -> Option<Part> {
    unknown_keys(&b.other, path, out);
    let cache = b.cache_control.filter(|v| !v.is_null());
    let missing = |field: &str, out: &mut Vec<String>| out.push(format!("{path}.{field}"));
    match b.kind.as_str() {
        "text" => {
            // Citations on a text block are the history's source notes: a hint.
            match b.text {
                Some(text) => Some(Part::Text { text, cache }),
                None => {
                    missing("text", out);
                    None
                }
            }
        }
        "image" => {
            let source = media(b.source, path, out)?;
            match source {
                Media::Source(source) => Some(Part::Image { source, cache }),
                Media::Text(_) => {
                    out.push(format!("{path}.source.type=text"));
                    None
                }
            }
        }
        "document" => {
            if b.citations
                .as_ref()
                .is_some_and(|c| c.get("enabled") == Some(&Value::Bool(true)))
            {
                out.push(format!("{path}.citations"));
            }
            // `title` and `context` are content the model reads: unknown_keys listed them.
            match media(b.source, path, out)? {
                Media::Source(source) => Some(Part::Document { source, cache }),
                Media::Text(text) => Some(Part::Text { text, cache }),
            }
        }
        "tool_use" => {
            let (Some(id), Some(name)) = (b.id, b.name) else {
                missing("id", out);
                return None;
            };
            Some(Part::ToolUse {
                id,
                name,
                input: b.input.unwrap_or_else(|| Value::Object(Default::default())),
                cache,
            })
        }
        "tool_result" => {
            let Some(tool_use_id) = b.tool_use_id else {
                missing("tool_use_id", out);
                return None;
            };
            let content = match b.content {
                None => Vec::new(),
                Some(InContent::Text(t)) => vec![Part::Text {
                    text: t,
                    cache: None,
                }],
                Some(InContent::Blocks(blocks)) => {
                    let mut parts = Vec::with_capacity(blocks.len());
                    for (k, inner) in blocks.into_iter().enumerate() {
                        let p = format!("{path}.content[{k}]");
                        match inner.kind.as_str() {
                            "text" | "image" | "document" => parts.extend(block(inner, &p, out)),
                            other => out.push(format!("{p}.type={other}")),
                        }
                    }
                    parts
                }
            };
            Some(Part::ToolResult {
                tool_use_id,
                content,
                is_error: b.is_error.unwrap_or(false),
                cache,
            })
        }
        "thinking" => Some(Part::Thinking {
            text: b.thinking.unwrap_or_default(),
            signature: b.signature.filter(|s| !s.is_empty()),
        }),
        "redacted_thinking" => match b.data {
            Some(data) => Some(Part::RedactedThinking { data }),
            None => {
                missing("data", out);
                None
            }
        },
        // server_tool_use, web_search_tool_result, web_fetch_tool_result,
        // code_execution_tool_result, mcp_tool_use, container_upload, search_result, ...
        other => {
            out.push(format!("{path}.type={other}"));
            None
        }
    }
}

enum Media {
    Source(MediaSource),
    /// A document given as plain text.
    Text(String),
}

fn media(source: Option<InSource>, path: &str, out: &mut Vec<String>) -> Option<Media> {
    let Some(s) = source else {
        out.push(format!("{path}.source"));
        return None;
    };
    unknown_keys(&s.other, &format!("{path}.source"), out);
    match (s.kind.as_str(), s.media_type, s.data, s.url) {
        ("base64", Some(media_type), Some(data), _) => {
            Some(Media::Source(MediaSource::Base64 { media_type, data }))
        }
        ("url", _, _, Some(url)) => Some(Media::Source(MediaSource::Url(url))),
        ("text", _, Some(text), _) => Some(Media::Text(text)),
        (kind, ..) => {
            out.push(format!("{path}.source.type={kind}"));
            None
        }
    }
}

/// A client tool, or `None` for a server tool (listed in `out`).
fn tool(t: InTool, i: usize, out: &mut Vec<String>) -> Option<Tool> {
    match t.kind.as_deref() {
        None | Some("custom") => {}
        Some(server) => {
            out.push(format!("tools[{i}].type={server}"));
            return None;
        }
    }
    for key in t.other.keys() {
        // Hints: when the tool's definition loads and how finely its input streams.
        if !matches!(key.as_str(), "defer_loading" | "eager_input_streaming") {
            out.push(format!("tools[{i}].{key}"));
        }
    }
    let Some(name) = t.name else {
        out.push(format!("tools[{i}].name"));
        return None;
    };
    Some(Tool {
        name,
        description: t.description,
        schema: t
            .input_schema
            .unwrap_or_else(|| serde_json::json!({"type": "object"})),
        strict: t.strict,
        cache: t.cache_control.filter(|v| !v.is_null()),
    })
}

// ───────────────────────────── encode ─────────────────────────────

pub fn encode_request(req: &Request, target: &Target) -> Result<Vec<u8>, GatewayError> {
    if let Some(t) = req.temperature {
        if !(0.0..=1.0).contains(&t) {
            return Err(GatewayError::bad_request(format!(
                "`temperature` must be between 0 and 1 for provider `{}`",
                target.provider
            ))
            .param("temperature"));
        }
    }

    let mut system: Vec<OutBlock> = req.system.iter().filter_map(text_block).collect();
    let mut messages: Vec<OutMessage> = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => {
                system.extend(m.content.iter().filter_map(text_block));
                continue;
            }
        };
        let blocks: Vec<OutBlock> = m.content.iter().filter_map(out_block).collect();
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => messages.push(OutMessage {
                role,
                content: blocks,
            }),
        }
    }
    for m in messages.iter_mut().filter(|m| m.role == "user") {
        // Anthropic requires a user message's tool results before anything else; the sort
        // is stable, so each group keeps its order.
        m.content
            .sort_by_key(|b| !matches!(b, OutBlock::ToolResult { .. }));
    }

    let mut max_tokens = req.max_tokens.unwrap_or(target.default_max_tokens);
    let mut thinking = req.thinking.clone();
    let mut effort = None;
    if let Some(e) = req.reasoning_effort.as_deref() {
        if thinking.is_some() {
            effort = Some(e);
        } else if let Some(budget) = budget_for(e, target)? {
            thinking = Some(serde_json::json!({"type": "enabled", "budget_tokens": budget}));
            if max_tokens <= budget {
                max_tokens = max_tokens.saturating_add(budget);
            }
        }
    }

    let format = match &req.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => Some(OutOutputFormat {
            kind: "json_schema",
            schema: Cow::Owned(serde_json::json!({"type": "object"})),
        }),
        Some(ResponseFormat::JsonSchema { schema, .. }) => Some(OutOutputFormat {
            kind: "json_schema",
            schema: Cow::Borrowed(schema),
        }),
    };
    let output_config =
        (effort.is_some() || format.is_some()).then_some(OutOutputConfig { effort, format });

    let tools: Vec<OutTool> = req
        .tools
        .iter()
        .map(|t| OutTool {
            name: &t.name,
            description: t.description.as_deref(),
            input_schema: &t.schema,
            cache_control: t.cache.as_ref(),
            strict: t.strict,
        })
        .collect();

    let no_parallel = (req.parallel_tool_calls == Some(false)).then_some(true);
    let tool_choice = match &req.tool_choice {
        Some(ToolChoice::Auto) => Some(("auto", None)),
        Some(ToolChoice::Any) => Some(("any", None)),
        Some(ToolChoice::None) => Some(("none", None)),
        Some(ToolChoice::Tool(n)) => Some(("tool", Some(n.as_str()))),
        // Only `tool_choice` carries disable_parallel_tool_use.
        None if no_parallel.is_some() && !tools.is_empty() => Some(("auto", None)),
        None => None,
    }
    .map(|(kind, name)| OutToolChoice {
        kind,
        name,
        disable_parallel_tool_use: if kind == "none" { None } else { no_parallel },
    });

    let out = OutRequest {
        model: target.model,
        max_tokens,
        system,
        messages,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop_sequences: req.stop.iter().map(String::as_str).collect(),
        stream: req.stream,
        tools,
        tool_choice,
        metadata: req.user.as_deref().map(|user_id| OutMetadata { user_id }),
        thinking,
        output_config,
    };
    serde_json::to_vec(&out)
        .map_err(|e| GatewayError::new(500, format!("could not encode the Anthropic request: {e}")))
}

/// The thinking budget an effort asks for; `None` for no thinking.
fn budget_for(effort: &str, target: &Target) -> Result<Option<u64>, GatewayError> {
    Ok(match effort {
        "none" => None,
        "minimal" | "low" => Some(1024),
        "medium" => Some(4096),
        "high" | "xhigh" | "max" => Some(16384),
        other => {
            return Err(GatewayError::bad_request(format!(
                "`reasoning_effort` `{}` is not supported by provider `{}`",
                crate::errors::clip(other, 64),
                target.provider
            ))
            .param("reasoning_effort"))
        }
    })
}

/// Empty text is left out: Anthropic refuses empty text blocks, and an OpenAI assistant
/// turn with tool calls often carries `content: ""`.
fn text_block(p: &Part) -> Option<OutBlock<'_>> {
    match p {
        Part::Text { text, cache } if !text.is_empty() => Some(OutBlock::Text {
            text,
            cache_control: cache.as_ref(),
        }),
        _ => None,
    }
}

fn source(s: &MediaSource) -> OutSource<'_> {
    match s {
        MediaSource::Base64 { media_type, data } => OutSource::Base64 { media_type, data },
        MediaSource::Url(url) => OutSource::Url { url },
    }
}

fn out_block(p: &Part) -> Option<OutBlock<'_>> {
    Some(match p {
        Part::Text { .. } => return text_block(p),
        Part::Image { source: s, cache } => OutBlock::Image {
            source: source(s),
            cache_control: cache.as_ref(),
        },
        Part::Document { source: s, cache } => OutBlock::Document {
            source: source(s),
            cache_control: cache.as_ref(),
        },
        Part::ToolUse {
            id,
            name,
            input,
            cache,
        } => OutBlock::ToolUse {
            id,
            name,
            input: match input {
                Value::Object(_) => input.clone(),
                other => serde_json::json!({ "value": other }),
            },
            cache_control: cache.as_ref(),
        },
        Part::ToolResult {
            tool_use_id,
            content,
            is_error,
            cache,
        } => OutBlock::ToolResult {
            tool_use_id,
            content: content
                .iter()
                .filter(|p| {
                    matches!(
                        p,
                        Part::Text { .. } | Part::Image { .. } | Part::Document { .. }
                    )
                })
                .filter_map(out_block)
                .collect(),
            is_error: *is_error,
            cache_control: cache.as_ref(),
        },
        Part::Thinking { text, signature } => OutBlock::Thinking {
            thinking: text,
            signature: signature.as_deref()?,
        },
        Part::RedactedThinking { data } => OutBlock::RedactedThinking { data },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: Target = Target {
        provider: "anthropic",
        model: "claude-up",
        default_max_tokens: 4096,
    };

    fn enc(req: &Request) -> Value {
        serde_json::from_slice(&encode_request(req, &T).unwrap()).unwrap()
    }

    fn user(text: &str) -> Message {
        Message {
            role: Role::User,
            content: vec![Part::Text {
                text: text.into(),
                cache: None,
            }],
        }
    }

    #[test]
    fn malformed_and_missing_fields_are_400() {
        let e = decode_request(b"{not json").unwrap_err();
        assert_eq!(e.status, 400);
        let e = decode_request(br#"{"model":"m","max_tokens":1}"#).unwrap_err();
        assert_eq!((e.status, e.param), (400, Some("messages")));
        let e = decode_request(br#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#)
            .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn blocks_decode() {
        let body = json!({"model":"m","messages":[{"role":"user","content":[
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAA"}},
            {"type":"image","source":{"type":"url","url":"https://x/a.png"}},
            {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}},
            {"type":"document","source":{"type":"text","media_type":"text/plain","data":"plain doc"}},
            {"type":"document","source":{"type":"url","url":"https://x/a.pdf"},"title":"T"},
            {"type":"redacted_thinking","data":"opaque"}
        ]}],"top_k":5,"stop_sequences":["END"],"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}},
        "service_tier":"auto","container":"c1","tool_choice":{"type":"tool","name":"f"}});
        let r = decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
        let c = &r.messages[0].content;
        assert!(
            matches!(&c[0], Part::Image { source: MediaSource::Base64 { media_type, .. }, .. } if media_type == "image/png")
        );
        assert!(
            matches!(&c[1], Part::Image { source: MediaSource::Url(u), .. } if u == "https://x/a.png")
        );
        assert!(matches!(&c[2], Part::Document { .. }));
        assert!(matches!(&c[3], Part::Text { text, .. } if text == "plain doc"));
        assert!(matches!(&c[5], Part::RedactedThinking { data } if data == "opaque"));
        assert_eq!(r.untranslatable, vec!["messages[0].content[4].title"]);
        assert_eq!(r.top_k, Some(5));
        assert_eq!(r.stop, vec!["END"]);
        assert_eq!(r.tool_choice, Some(ToolChoice::Tool("f".into())));
        assert!(matches!(
            r.response_format,
            Some(ResponseFormat::JsonSchema { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_untranslatable() {
        let body = json!({"model":"m","messages":[{"role":"user","content":"hi"}],
            "container":{"skills":[{"type":"anthropic","skill_id":"pptx"}]},"frobnicate":1,
            "tools":[{"name":"f","input_schema":{},"input_examples":[{}]},{"type":"bash_20250124","name":"bash"}]});
        let r = decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(
            r.untranslatable,
            vec![
                "tools[0].input_examples",
                "tools[1].type=bash_20250124",
                "container.skills",
                "frobnicate"
            ]
        );
    }

    #[test]
    fn temperature_outside_range_names_field_and_provider() {
        let req = Request {
            temperature: Some(1.5),
            messages: vec![user("x")],
            ..Default::default()
        };
        let e = encode_request(&req, &T).unwrap_err();
        assert_eq!((e.status, e.param), (400, Some("temperature")));
        assert!(e.message.contains("`anthropic`"));
    }

    #[test]
    fn messages_merge_and_tool_results_come_first() {
        let req = Request {
            messages: vec![
                user("a"),
                Message {
                    role: Role::User,
                    content: vec![Part::ToolResult {
                        tool_use_id: "t1".into(),
                        content: vec![],
                        is_error: false,
                        cache: None,
                    }],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![Part::Thinking {
                        text: "unsigned".into(),
                        signature: None,
                    }],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![Part::ToolUse {
                        id: "t2".into(),
                        name: "f".into(),
                        input: json!([1, 2]),
                        cache: None,
                    }],
                },
            ],
            stop: vec!["X".into()],
            user: Some("u".into()),
            ..Default::default()
        };
        let v = enc(&req);
        assert_eq!(v["max_tokens"], 4096);
        assert_eq!(v["model"], "claude-up");
        let m = v["messages"].as_array().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0]["content"][0]["type"], "tool_result");
        assert_eq!(m[0]["content"][1]["text"], "a");
        // The unsigned thinking is left out; the array input is wrapped.
        assert_eq!(m[1]["content"].as_array().unwrap().len(), 1);
        assert_eq!(m[1]["content"][0]["input"], json!({"value": [1, 2]}));
        assert_eq!(v["stop_sequences"], json!(["X"]));
        let empty = Request {
            messages: vec![
                user("q"),
                Message {
                    role: Role::Assistant,
                    content: vec![
                        Part::Text {
                            text: String::new(),
                            cache: None,
                        },
                        Part::ToolUse {
                            id: "c".into(),
                            name: "f".into(),
                            input: json!({}),
                            cache: None,
                        },
                    ],
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            enc(&empty)["messages"][1]["content"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(v["metadata"]["user_id"], "u");
        assert!(v.get("stream").is_none());
    }

    #[test]
    fn effort_becomes_a_thinking_budget() {
        let req = Request {
            messages: vec![user("x")],
            max_tokens: Some(1000),
            reasoning_effort: Some("medium".into()),
            ..Default::default()
        };
        let v = enc(&req);
        assert_eq!(
            v["thinking"],
            json!({"type": "enabled", "budget_tokens": 4096})
        );
        assert_eq!(v["max_tokens"], 5096);
        let req = Request {
            reasoning_effort: Some("bogus".into()),
            messages: vec![user("x")],
            ..Default::default()
        };
        assert_eq!(
            encode_request(&req, &T).unwrap_err().param,
            Some("reasoning_effort")
        );
        let req = Request {
            reasoning_effort: Some("high".into()),
            thinking: Some(json!({"type": "adaptive"})),
            messages: vec![user("x")],
            ..Default::default()
        };
        let v = enc(&req);
        assert_eq!(v["thinking"], json!({"type": "adaptive"}));
        assert_eq!(v["output_config"]["effort"], "high");
    }

    #[test]
    fn tool_choice_and_formats() {
        let tool = Tool {
            name: "f".into(),
            description: None,
            schema: json!({"type":"object"}),
            strict: Some(true),
            cache: None,
        };
        let mut req = Request {
            messages: vec![user("x")],
            tools: vec![tool],
            tool_choice: Some(ToolChoice::None),
            parallel_tool_calls: Some(false),
            response_format: Some(ResponseFormat::JsonObject),
            ..Default::default()
        };
        let v = enc(&req);
        assert_eq!(v["tool_choice"], json!({"type": "none"}));
        assert_eq!(v["tools"][0]["strict"], true);
        assert_eq!(
            v["output_config"]["format"],
            json!({"type": "json_schema", "schema": {"type": "object"}})
        );
        req.tool_choice = None;
        assert_eq!(
            enc(&req)["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        req.tool_choice = Some(ToolChoice::Tool("f".into()));
        assert_eq!(
            enc(&req)["tool_choice"],
            json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})
        );
    }
}
