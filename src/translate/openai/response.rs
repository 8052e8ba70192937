//! Whole (non-streamed) answers: an upstream `chat.completion` → `ir::Response`, and
//! `ir::Response` → the client's `chat.completion`. The usage and finish-reason tables here
//! are shared with the stream sides.

use super::error::decode_error;
use crate::errors::{clip, GatewayError};
use crate::translate::ir::*;
use crate::wire::openai as wire;
use serde_json::Value;

// ───────────────────────────── shared tables ─────────────────────────────

/// OpenAI `finish_reason` → neutral. vLLM names the stop string that matched in
/// `stop_reason`: then `stop` is a stop sequence, not the end of the turn.
pub(crate) fn stop_from(finish: &str, vllm_stop: Option<&Value>) -> (StopReason, Option<String>) {
    match finish {
        "stop" => match vllm_stop {
            Some(Value::String(s)) => (StopReason::StopSequence, Some(s.clone())),
            _ => (StopReason::EndTurn, None),
        },
        "length" => (StopReason::MaxTokens, None),
        "tool_calls" | "function_call" => (StopReason::ToolUse, None),
        "content_filter" => (StopReason::Refusal, None),
        other => (StopReason::Other(other.to_string()), None),
    }
}

/// Neutral → OpenAI `finish_reason`. A reason OpenAI has no name for reads `stop`.
pub(crate) fn finish_of(stop: &StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn
        | StopReason::StopSequence
        | StopReason::PauseTurn
        | StopReason::Other(_) => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::Refusal => "content_filter",
    }
}

/// `prompt_tokens` already includes cached tokens (contract §7), so it is `input` as is.
pub(crate) fn usage_from(u: &wire::UsageIn) -> UsageUpdate {
    UsageUpdate {
        input: u.prompt_tokens,
        cached_input: u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens),
        cache_creation_input: u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cache_creation_tokens),
        output: u.completion_tokens,
        reasoning: u
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens),
    }
}

/// The client's `usage` object: unknown counts read 0; `cache_creation_tokens` (not
/// OpenAI's) only when non-zero, so plain OpenAI clients see OpenAI's shape.
pub(crate) fn usage_out(u: &UsageUpdate) -> wire::UsageOut {
    let input = u.input.unwrap_or(0);
    let output = u.output.unwrap_or(0);
    wire::UsageOut {
        prompt_tokens: input,
        completion_tokens: output,
        total_tokens: input.saturating_add(output),
        prompt_tokens_details: wire::PromptDetailsOut {
            cached_tokens: u.cached_input.unwrap_or(0),
            cache_creation_tokens: u.cache_creation_input.filter(|n| *n != 0),
        },
        completion_tokens_details: wire::CompletionDetailsOut {
            reasoning_tokens: u.reasoning.unwrap_or(0),
        },
    }
}

/// Text of a message/delta `content`: a string, or (Mistral) an array of parts where
/// `text` parts are answer text and `thinking` parts (text nested as parts or a string)
/// are reasoning. Calls `each(is_thinking, text)` in order.
pub(crate) fn content_pieces(content: &Value, mut each: impl FnMut(bool, &str)) {
    match content {
        Value::String(s) => each(false, s),
        Value::Array(parts) => {
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = p.get("text").and_then(Value::as_str) {
                            each(false, t)
                        }
                    }
                    Some("thinking") => match p.get("thinking") {
                        Some(Value::String(t)) => each(true, t),
                        Some(Value::Array(inner)) => {
                            for i in inner {
                                if let Some(t) = i.get("text").and_then(Value::as_str) {
                                    each(true, t)
                                }
                            }
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Tool-call arguments as a value: the JSON string parsed. In an upstream's answer an
/// unparsable string becomes `{}` (a client's tool input must be an object); a client's
/// request keeps it as a string value (so it goes back out unchanged).
pub(crate) fn arguments_value(args: Option<&Value>, keep_raw: bool) -> Value {
    match args {
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Default::default()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => v,
            Err(_) if keep_raw => Value::String(s.clone()),
            Err(_) => Value::Object(Default::default()),
        },
        Some(Value::Null) | None => Value::Object(Default::default()),
        Some(other) => other.clone(),
    }
}

/// Tool input → OpenAI's `arguments` string: compact JSON, or a raw string kept as is.
pub(crate) fn arguments_string(input: &Value) -> String {
    match input {
        Value::String(raw) => raw.clone(),
        other => serde_json::to_string(other).unwrap_or_else(|_| "{}".to_string()),
    }
}

/// Thinking parts from `thinking_blocks` (preferred: they carry signatures) or the plain
/// `reasoning_content` / `reasoning` string; redacted blocks kept in their place.
pub(crate) fn thinking_parts(
    reasoning: Option<&str>,
    blocks: Option<&[wire::ThinkingBlockIn]>,
    out: &mut Vec<Part>,
) {
    let blocks = blocks.unwrap_or(&[]);
    let blocks_have_text = blocks.iter().any(|b| b.kind.as_deref() == Some("thinking"));
    if !blocks_have_text {
        if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
            out.push(Part::Thinking {
                text: r.to_string(),
                signature: None,
            });
        }
    }
    for b in blocks {
        match b.kind.as_deref() {
            Some("thinking") => out.push(Part::Thinking {
                text: b.thinking.clone().unwrap_or_default(),
                signature: b.signature.clone(),
            }),
            Some("redacted_thinking") => {
                if let Some(data) = &b.data {
                    out.push(Part::RedactedThinking { data: data.clone() })
                }
            }
            _ => {}
        }
    }
}

// ───────────────────────────── upstream answer ─────────────────────────────

/// An upstream's `chat.completion`. Only `choices[0]` is read (the gateway never asks for
/// `n > 1`). A body that is an error envelope is that error (status 502: the upstream said
/// 200 but failed).
pub fn decode_response(body: &[u8]) -> Result<Response, GatewayError> {
    let parsed: wire::ChatCompletionIn = serde_json::from_slice(body).map_err(|e| {
        GatewayError::new(
            502,
            format!(
                "upstream answer is not a chat completion: {}",
                clip(&e.to_string(), 200)
            ),
        )
    })?;
    if parsed.error.as_ref().is_some_and(|e| !e.is_null()) && parsed.choices.is_none() {
        return Err(decode_error(502, body));
    }
    let choice = parsed
        .choices
        .and_then(|c| c.into_iter().next())
        .ok_or_else(|| GatewayError::new(502, "upstream answer has no choices"))?;
    let msg = choice.message.unwrap_or_default();

    let mut content = Vec::new();
    let reasoning = msg
        .reasoning_content
        .as_deref()
        .or(msg.reasoning.as_deref());
    thinking_parts(reasoning, msg.thinking_blocks.as_deref(), &mut content);
    let mut text = String::new();
    if let Some(c) = &msg.content {
        content_pieces(c, |thinking, t| {
            if thinking {
                content.push(Part::Thinking {
                    text: t.to_string(),
                    signature: None,
                });
            } else {
                text.push_str(t);
            }
        });
    }
    if let Some(r) = &msg.refusal {
        text.push_str(r);
    }
    if !text.is_empty() {
        content.push(Part::Text { text, cache: None });
    }
    for (i, call) in msg.tool_calls.unwrap_or_default().into_iter().enumerate() {
        let f = call.function;
        content.push(Part::ToolUse {
            // A server that names no id still needs one for the client to answer.
            id: call
                .id
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("call_{i}")),
            name: f.as_ref().and_then(|f| f.name.clone()).unwrap_or_default(),
            input: arguments_value(f.as_ref().and_then(|f| f.arguments.as_ref()), false),
            cache: None,
        });
    }
    let (stop, stop_sequence) = match choice.finish_reason.as_deref() {
        Some(f) => stop_from(f, choice.stop_reason.as_ref()),
        None => (StopReason::EndTurn, None),
    };
    Ok(Response {
        id: parsed.id.unwrap_or_default(),
        model: parsed.model.unwrap_or_default(),
        content,
        stop,
        stop_sequence,
        usage: parsed.usage.as_ref().map(usage_from).unwrap_or_default(),
    })
}

// ───────────────────────────── client answer ─────────────────────────────

/// The client's `chat.completion`. Reasoning goes in `reasoning_content` (never mixed into
/// `content`); `thinking_blocks` only when a signature or redacted block must survive the
/// client's next turn.
pub fn encode_response(resp: &Response, opts: &ClientOpts) -> Vec<u8> {
    let fallback_id;
    let id = if resp.id.is_empty() {
        fallback_id = format!("chatcmpl-{}", opts.fallback_id);
        fallback_id.as_str()
    } else {
        resp.id.as_str()
    };
    let model = if resp.model.is_empty() {
        &opts.model
    } else {
        &resp.model
    };

    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut blocks = Vec::new();
    let mut keep_blocks = false;
    let mut calls = Vec::new();
    for part in &resp.content {
        match part {
            Part::Text { text: t, .. } => text.get_or_insert_with(String::new).push_str(t),
            Part::Thinking { text: t, signature } => {
                reasoning.get_or_insert_with(String::new).push_str(t);
                keep_blocks |= signature.is_some();
                blocks.push(wire::ThinkingBlockOut::Thinking {
                    thinking: t,
                    signature: signature.as_deref(),
                });
            }
            Part::RedactedThinking { data } => {
                keep_blocks = true;
                blocks.push(wire::ThinkingBlockOut::Redacted { data });
            }
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
            // Not produced by any decoder for an answer.
            Part::Image { .. } | Part::Document { .. } | Part::ToolResult { .. } => {}
        }
    }
    // OpenAI writes `null` only beside tool calls; an answer with nothing to say is "".
    if text.is_none() && calls.is_empty() {
        text = Some(String::new());
    }
    let out = wire::ChatCompletionOut {
        id,
        object: "chat.completion",
        created: opts.created,
        model,
        choices: [wire::ChoiceOut {
            index: 0,
            message: wire::AssistantMessageOut {
                role: "assistant",
                content: text,
                reasoning_content: reasoning,
                thinking_blocks: keep_blocks.then_some(blocks),
                tool_calls: (!calls.is_empty()).then_some(calls),
            },
            finish_reason: finish_of(&resp.stop),
            logprobs: None,
        }],
        usage: usage_out(&resp.usage),
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts() -> ClientOpts {
        ClientOpts {
            model: "m".into(),
            fallback_id: "req1".into(),
            include_usage: false,
            created: 7,
        }
    }

    #[test]
    fn decodes_reasoning_tools_and_usage() {
        let body = json!({
            "id": "chatcmpl-1", "model": "qwen",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "hi", "reasoning": "think",
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{bad"}}
                ]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 2},
                "completion_tokens_details": {"reasoning_tokens": 3}}
        });
        let r = decode_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.id, "chatcmpl-1");
        assert_eq!(r.stop, StopReason::ToolUse);
        assert_eq!(
            r.content[0],
            Part::Thinking {
                text: "think".into(),
                signature: None
            }
        );
        assert_eq!(
            r.content[1],
            Part::Text {
                text: "hi".into(),
                cache: None
            }
        );
        assert!(
            matches!(&r.content[2], Part::ToolUse { id, input, .. } if id == "call_a" && input == &json!({"x":1}))
        );
        assert!(matches!(&r.content[3], Part::ToolUse { input, .. } if input == &json!({})));
        assert_eq!(
            r.usage,
            UsageUpdate {
                input: Some(10),
                cached_input: Some(4),
                cache_creation_input: Some(2),
                output: Some(5),
                reasoning: Some(3)
            }
        );
    }

    #[test]
    fn thinking_blocks_win_over_reasoning_content() {
        let body = json!({"choices": [{"finish_reason": "stop", "message": {
            "content": "a", "reasoning_content": "t",
            "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "sig"}, {"type": "redacted_thinking", "data": "xx"}]}}]});
        let r = decode_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            r.content[0],
            Part::Thinking {
                text: "t".into(),
                signature: Some("sig".into())
            }
        );
        assert_eq!(r.content[1], Part::RedactedThinking { data: "xx".into() });
        assert_eq!(r.content.len(), 3);
    }

    #[test]
    fn finish_reasons() {
        for (f, s) in [
            ("stop", StopReason::EndTurn),
            ("length", StopReason::MaxTokens),
            ("function_call", StopReason::ToolUse),
            ("content_filter", StopReason::Refusal),
            ("weird", StopReason::Other("weird".into())),
        ] {
            assert_eq!(stop_from(f, None).0, s);
        }
        assert_eq!(
            stop_from("stop", Some(&json!("###"))),
            (StopReason::StopSequence, Some("###".into()))
        );
    }

    #[test]
    fn error_envelope_and_garbage() {
        let e = decode_response(br#"{"error":{"message":"overloaded","type":"x"}}"#).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (502, "overloaded"));
        assert_eq!(decode_response(b"nope").unwrap_err().status, 502);
        assert_eq!(
            decode_response(br#"{"choices":[]}"#).unwrap_err().status,
            502
        );
    }

    #[test]
    fn encodes_with_fallbacks_and_thinking_blocks() {
        let resp = Response {
            content: vec![
                Part::Thinking {
                    text: "hm".into(),
                    signature: Some("s".into()),
                },
                Part::Text {
                    text: "a".into(),
                    cache: None,
                },
                Part::Text {
                    text: "b".into(),
                    cache: None,
                },
                Part::ToolUse {
                    id: "toolu_1".into(),
                    name: "f".into(),
                    input: json!({"k": "v"}),
                    cache: None,
                },
            ],
            stop: StopReason::ToolUse,
            usage: UsageUpdate {
                input: Some(100),
                cached_input: Some(80),
                cache_creation_input: Some(0),
                output: Some(9),
                reasoning: None,
            },
            ..Default::default()
        };
        let v: Value = serde_json::from_slice(&encode_response(&resp, &opts())).unwrap();
        assert_eq!(v["id"], "chatcmpl-req1");
        assert_eq!(v["model"], "m");
        assert_eq!(v["created"], 7);
        let m = &v["choices"][0]["message"];
        assert_eq!(m["content"], "ab");
        assert_eq!(m["reasoning_content"], "hm");
        assert_eq!(
            m["thinking_blocks"],
            json!([{"type": "thinking", "thinking": "hm", "signature": "s"}])
        );
        assert_eq!(
            m["tool_calls"][0],
            json!({"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{\"k\":\"v\"}"}})
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["choices"][0]["logprobs"], Value::Null);
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 100, "completion_tokens": 9, "total_tokens": 109,
            "prompt_tokens_details": {"cached_tokens": 80}, "completion_tokens_details": {"reasoning_tokens": 0}})
        );
    }

    #[test]
    fn encodes_empty_content_and_no_blocks_without_signature() {
        let resp = Response {
            id: "x".into(),
            content: vec![Part::Thinking {
                text: "t".into(),
                signature: None,
            }],
            ..Default::default()
        };
        let v: Value = serde_json::from_slice(&encode_response(&resp, &opts())).unwrap();
        let m = &v["choices"][0]["message"];
        assert_eq!(m["content"], "");
        assert_eq!(m["reasoning_content"], "t");
        assert!(m.get("thinking_blocks").is_none());
        assert!(m.get("tool_calls").is_none());
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
    }
}
