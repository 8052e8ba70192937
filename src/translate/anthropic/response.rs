//! Whole (non-streamed) answers: an Anthropic message → [`Response`] (decode), and
//! [`Response`] → the message JSON an Anthropic client gets (encode).
//!
//! Decoding keeps text, thinking, redacted_thinking and tool_use blocks. Server-tool
//! blocks (`server_tool_use`, `web_search_tool_result`, ...) and other block types are
//! skipped: they only appear when the request named server tools, which no other dialect
//! can send, and their results were already read by the model.

use super::super::ir::*;
use super::error::decode_error;
use super::usage::from_wire;
use crate::errors::GatewayError;
use crate::wire::anthropic::*;
use serde_json::Value;
use std::borrow::Cow;

pub fn decode_response(body: &[u8]) -> Result<Response, GatewayError> {
    let m: Msg = serde_json::from_slice(body).map_err(|e| {
        GatewayError::new(
            502,
            format!("upstream answer is not an Anthropic message: {e}"),
        )
    })?;
    if m.kind.as_deref() == Some("error") || m.error.is_some() {
        return Err(decode_error(502, body));
    }
    let mut content = Vec::with_capacity(m.content.len());
    for b in m.content {
        match b.kind.as_str() {
            "text" => content.push(Part::Text {
                text: b.text.unwrap_or_default(),
                cache: None,
            }),
            "thinking" => content.push(Part::Thinking {
                text: b.thinking.unwrap_or_default(),
                signature: b.signature.filter(|s| !s.is_empty()),
            }),
            "redacted_thinking" => content.push(Part::RedactedThinking {
                data: b.data.unwrap_or_default(),
            }),
            "tool_use" => content.push(Part::ToolUse {
                id: b.id.unwrap_or_default(),
                name: b.name.unwrap_or_default(),
                input: b.input.unwrap_or_else(|| Value::Object(Default::default())),
                cache: None,
            }),
            _ => {}
        }
    }
    Ok(Response {
        id: m.id.unwrap_or_default(),
        model: m.model.unwrap_or_default(),
        content,
        stop: m
            .stop_reason
            .as_deref()
            .map(stop_from_wire)
            .unwrap_or_default(),
        stop_sequence: m.stop_sequence,
        usage: m.usage.map(|u| from_wire(&u)).unwrap_or_default(),
    })
}

/// Anthropic's `stop_reason` → neutral (translation.md §9).
pub fn stop_from_wire(s: &str) -> StopReason {
    match s {
        "end_turn" => StopReason::EndTurn,
        "stop_sequence" => StopReason::StopSequence,
        "max_tokens" => StopReason::MaxTokens,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::Refusal,
        "pause_turn" => StopReason::PauseTurn,
        other => StopReason::Other(other.to_string()),
    }
}

/// Neutral → Anthropic's `stop_reason`; a reason no table knows reads as `end_turn`.
pub fn stop_to_wire(s: &StopReason) -> &'static str {
    match s {
        StopReason::EndTurn | StopReason::Other(_) => "end_turn",
        StopReason::StopSequence => "stop_sequence",
        StopReason::MaxTokens => "max_tokens",
        StopReason::ToolUse => "tool_use",
        StopReason::Refusal => "refusal",
        StopReason::PauseTurn => "pause_turn",
    }
}

/// Neutral usage → Anthropic's, whose `input_tokens` excludes cache reads and writes.
pub fn usage_to_wire(u: &UsageUpdate) -> OutUsage {
    let cached = u.cached_input.unwrap_or(0);
    let creation = u.cache_creation_input.unwrap_or(0);
    OutUsage {
        input_tokens: u
            .input
            .unwrap_or(0)
            .saturating_sub(cached)
            .saturating_sub(creation),
        output_tokens: u.output.unwrap_or(0),
        cache_read_input_tokens: cached,
        cache_creation_input_tokens: creation,
    }
}

pub fn encode_response(resp: &Response, opts: &ClientOpts) -> Vec<u8> {
    let id: Cow<str> = if resp.id.is_empty() {
        Cow::Owned(format!("msg_{}", opts.fallback_id))
    } else {
        Cow::Borrowed(&resp.id)
    };
    let model = if resp.model.is_empty() {
        &opts.model
    } else {
        &resp.model
    };
    let content = resp
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text { text, .. } => Some(OutBlock::Text {
                text,
                cache_control: None,
            }),
            Part::Thinking { text, signature } => Some(OutBlock::Thinking {
                thinking: text,
                signature: signature.as_deref().unwrap_or(""),
            }),
            Part::RedactedThinking { data } => Some(OutBlock::RedactedThinking { data }),
            Part::ToolUse {
                id, name, input, ..
            } => Some(OutBlock::ToolUse {
                id,
                name,
                input: if input.is_object() {
                    input.clone()
                } else {
                    Value::Object(Default::default())
                },
                cache_control: None,
            }),
            // Answers carry no images, documents or tool results.
            _ => None,
        })
        .collect();
    let msg = OutMsg {
        id,
        kind: "message",
        role: "assistant",
        model,
        content,
        stop_reason: Some(stop_to_wire(&resp.stop)),
        stop_sequence: resp.stop_sequence.as_deref(),
        usage: usage_to_wire(&resp.usage),
    };
    serde_json::to_vec(&msg).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fallbacks_and_usage() {
        let resp = Response {
            content: vec![
                Part::Thinking {
                    text: "t".into(),
                    signature: Some("s".into()),
                },
                Part::ToolUse {
                    id: "c1".into(),
                    name: "f".into(),
                    input: json!("oops"),
                    cache: None,
                },
            ],
            stop: StopReason::Other("weird".into()),
            usage: UsageUpdate {
                input: Some(100),
                cached_input: Some(60),
                cache_creation_input: Some(10),
                output: Some(5),
                reasoning: None,
            },
            ..Default::default()
        };
        let v: Value = serde_json::from_slice(&encode_response(
            &resp,
            &ClientOpts {
                model: "cm".into(),
                fallback_id: "req1".into(),
                ..Default::default()
            },
        ))
        .unwrap();
        assert_eq!(v["id"], "msg_req1");
        assert_eq!(v["model"], "cm");
        assert_eq!(v["stop_reason"], "end_turn");
        assert_eq!(
            v["content"][0],
            json!({"type": "thinking", "thinking": "t", "signature": "s"})
        );
        assert_eq!(v["content"][1]["input"], json!({}));
        assert_eq!(
            v["usage"],
            json!({"input_tokens": 30, "output_tokens": 5, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 10})
        );
    }

    #[test]
    fn decode_keeps_reasoning_tokens_and_stop() {
        let body = br#"{"id":"m1","model":"c","content":[{"type":"redacted_thinking","data":"x"},{"type":"web_search_tool_result","tool_use_id":"s"}],
            "stop_reason":"pause_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":9,"output_tokens_details":{"thinking_tokens":4}}}"#;
        let r = decode_response(body).unwrap();
        assert_eq!(r.content, vec![Part::RedactedThinking { data: "x".into() }]);
        assert_eq!(r.stop, StopReason::PauseTurn);
        assert_eq!(r.usage.reasoning, Some(4));
        assert_eq!(decode_response(b"<html>").unwrap_err().status, 502);
    }
}
