//! The Anthropic Messages dialect: `POST /v1/messages` (JSON or SSE) and
//! `POST /v1/messages/count_tokens`, answered deterministically from the request.
//!
//! * A key is required (401 `authentication_error`): `x-api-key`, or `Authorization: Bearer` as the
//!   `anthropic` SDK 2.x sends it; `x-mock-anthropic-auth` says which (`x-api-key` / `bearer`).
//!   `anthropic-version` is required too (400 `invalid_request_error`).
//! * The answer is `echo: <text of the last user message>` (its text blocks joined by a space),
//!   or, when the request has `tools` and the last user message holds no `tool_result`, one
//!   `tool_use` block `{id: "toolu_mock_<n>", name: <first tool>, input: {"q": <that text>}}` with
//!   `stop_reason: tool_use`. With `thinking.type` `enabled` or `adaptive`, a thinking block
//!   `{thinking: "mock reasoning", signature: "sig_mock"}` comes first.
//! * usage: `input_tokens` = request body bytes / 4, `output_tokens` = answer bytes / 4 (at least
//!   1), `cache_read_input_tokens` = `cache_creation_input_tokens` = 0.
//!
//! `x-mock` behaviours: `anthropic-overloaded-early`, `anthropic-error-mid`,
//! `status:CODE[:RETRY]` (Anthropic's error envelope), `sse:N:MS` (text in N pieces, MS ms apart).

use crate::{stream_head, write_chunk, write_whole, Seen};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

static SEQ: AtomicU64 = AtomicU64::new(1);

/// Anthropic's error type for a status.
pub(crate) fn error_type(code: u16) -> &'static str {
    match code {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

fn error_body(kind: &str, message: &str) -> String {
    json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
}

async fn error(
    sock: &mut TcpStream,
    common: &str,
    code: u16,
    message: &str,
) -> std::io::Result<bool> {
    let body = error_body(error_type(code), message);
    write_whole(sock, code, "application/json", common, body.as_bytes()).await?;
    Ok(true)
}

/// What the request asks for, as far as the mock answers it.
struct Ask {
    model: String,
    user_text: String,
    tool: Option<String>,
    thinking: bool,
    stream: bool,
}

fn parse(body: &Value) -> Ask {
    let model = body["model"].as_str().unwrap_or("mock-model").to_string();
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"));
    let (user_text, has_tool_result) = match last_user.map(|m| &m["content"]) {
        Some(Value::String(s)) => (s.clone(), false),
        Some(Value::Array(blocks)) => (
            blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join(" "),
            blocks.iter().any(|b| b["type"] == "tool_result"),
        ),
        _ => (String::new(), false),
    };
    let tool = if has_tool_result {
        None
    } else {
        body["tools"]
            .as_array()
            .and_then(|t| t.first())
            .and_then(|t| t["name"].as_str())
            .map(str::to_string)
    };
    let thinking = matches!(
        body["thinking"]["type"].as_str(),
        Some("enabled" | "adaptive")
    );
    let stream = body["stream"].as_bool().unwrap_or(false);
    Ask {
        model,
        user_text,
        tool,
        thinking,
        stream,
    }
}

/// `s` cut into `n` pieces at char boundaries (the last ones may be empty for a short `s`).
fn pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let n = n.max(1);
    let per = chars.len().div_ceil(n).max(1);
    let mut out: Vec<String> = chars.chunks(per).map(|c| c.iter().collect()).collect();
    while out.len() < n {
        out.push(String::new());
    }
    out
}

fn sse(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

pub(crate) async fn respond(
    sock: &mut TcpStream,
    id: &str,
    req: &Seen,
    route: &str,
    mut common: String,
) -> std::io::Result<bool> {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    common.push_str(&format!("request-id: req_mock_{n}\r\n"));
    if req.method != "POST" {
        return error(sock, &common, 405, "Method not allowed").await;
    }
    // The API takes the key in `x-api-key`; the `anthropic` SDK 2.x sends it as
    // `Authorization: Bearer`, which the API accepts too. Which one came is echoed.
    let scheme = if req.header("x-api-key").is_some_and(|v| !v.is_empty()) {
        "x-api-key"
    } else if req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|v| !v.trim().is_empty())
    {
        "bearer"
    } else {
        return error(sock, &common, 401, "x-api-key header is required").await;
    };
    common.push_str(&format!("x-mock-anthropic-auth: {scheme}\r\n"));
    if req.header("anthropic-version").is_none_or(str::is_empty) {
        return error(sock, &common, 400, "anthropic-version: header is required").await;
    }
    let input_tokens = req.body.len() / 4;
    if route == "/v1/messages/count_tokens" {
        let body = json!({"input_tokens": input_tokens}).to_string();
        write_whole(sock, 200, "application/json", &common, body.as_bytes()).await?;
        return Ok(true);
    }
    if route != "/v1/messages" {
        return error(sock, &common, 404, &format!("Not found: {route}")).await;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return error(
            sock,
            &common,
            400,
            "messages: request body is not valid JSON",
        )
        .await;
    };
    if !body["messages"].is_array() {
        return error(sock, &common, 400, "messages: Field required").await;
    }
    let ask = parse(&body);
    let behaviour = crate::behaviour(req, id);
    let mut parts = behaviour.split(':');
    let (mut text_pieces, mut gap_ms) = (0usize, 0u64);
    match parts.next().unwrap_or("") {
        "status" => {
            let code: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(500);
            if let Some(ra) = parts.next() {
                common.push_str(&format!("retry-after: {ra}\r\n"));
            }
            let message = match code {
                529 => "Overloaded".to_string(),
                _ => format!("mock {id} answered {code}"),
            };
            return error(sock, &common, code, &message).await;
        }
        "anthropic-overloaded-early" => {
            return failing_stream(sock, &common, &ask, n, input_tokens, false).await
        }
        "anthropic-error-mid" => {
            return failing_stream(sock, &common, &ask, n, input_tokens, true).await
        }
        "sse" => {
            text_pieces = parts.next().and_then(|c| c.parse().ok()).unwrap_or(5);
            gap_ms = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        }
        _ => {}
    }

    let text = format!("echo: {}", ask.user_text);
    let tool_id = format!("toolu_mock_{n}");
    let tool_input = json!({"q": ask.user_text});
    let answer_len = match &ask.tool {
        Some(_) => tool_input.to_string().len(),
        None => text.len(),
    } + if ask.thinking {
        "mock reasoning".len()
    } else {
        0
    };
    let output_tokens = (answer_len / 4).max(1);
    let stop_reason = if ask.tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    let msg_id = format!("msg_mock_{n}");

    if !ask.stream {
        let mut content = Vec::new();
        if ask.thinking {
            content.push(
                json!({"type": "thinking", "thinking": "mock reasoning", "signature": "sig_mock"}),
            );
        }
        match &ask.tool {
            Some(name) => content.push(
                json!({"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}),
            ),
            None => content.push(json!({"type": "text", "text": text})),
        }
        let body = json!({
            "id": msg_id, "type": "message", "role": "assistant", "model": ask.model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
        })
        .to_string();
        write_whole(sock, 200, "application/json", &common, body.as_bytes()).await?;
        return Ok(true);
    }

    stream_head(sock, &common).await?;
    let mut events = vec![sse(
        "message_start",
        &message_start(&msg_id, &ask.model, input_tokens),
    )];
    let mut index = 0;
    if ask.thinking {
        events.push(sse(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ));
        for p in ["mock ", "reasoning"] {
            events.push(sse(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "thinking_delta", "thinking": p}}),
            ));
        }
        events.push(sse(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "signature_delta", "signature": "sig_mock"}}),
        ));
        events.push(sse(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    match &ask.tool {
        Some(name) => {
            events.push(sse(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}}}),
            ));
            events.push(sse("ping", &json!({"type": "ping"})));
            for p in pieces(&tool_input.to_string(), 3) {
                events.push(sse(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": p}}),
                ));
            }
        }
        None => {
            events.push(sse(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "text", "text": ""}}),
            ));
            events.push(sse("ping", &json!({"type": "ping"})));
            let k = if text_pieces > 0 {
                text_pieces
            } else {
                (text.chars().count() / 8).clamp(3, 12)
            };
            for p in pieces(&text, k) {
                events.push(sse(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": p}}),
                ));
            }
        }
    }
    events.push(sse(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    ));
    events.push(sse(
        "message_delta",
        &json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": output_tokens}}),
    ));
    events.push(sse("message_stop", &json!({"type": "message_stop"})));
    for (i, ev) in events.iter().enumerate() {
        if i > 0 && gap_ms > 0 && ev.starts_with("event: content_block_delta") {
            sock.flush().await?;
            tokio::time::sleep(Duration::from_millis(gap_ms)).await;
        }
        write_chunk(sock, ev.as_bytes()).await?;
    }
    sock.write_all(b"0\r\n\r\n").await?;
    Ok(true)
}

fn message_start(msg_id: &str, model: &str, input_tokens: usize) -> Value {
    json!({"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                  "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}})
}

/// HTTP 200, then `event: error`: overloaded right after `message_start` (`mid` false), or
/// `api_error` after two text deltas (`mid` true). No `message_stop`.
async fn failing_stream(
    sock: &mut TcpStream,
    common: &str,
    ask: &Ask,
    n: u64,
    input_tokens: usize,
    mid: bool,
) -> std::io::Result<bool> {
    stream_head(sock, common).await?;
    let mut events = vec![sse(
        "message_start",
        &message_start(&format!("msg_mock_{n}"), &ask.model, input_tokens),
    )];
    let err = if mid {
        events.push(sse(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ));
        events.push(sse("ping", &json!({"type": "ping"})));
        for p in ["echo: ", "partial"] {
            events.push(sse(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": p}}),
            ));
        }
        error_body("api_error", "Internal server error")
    } else {
        error_body("overloaded_error", "Overloaded")
    };
    events.push(format!("event: error\ndata: {err}\n\n"));
    for ev in &events {
        write_chunk(sock, ev.as_bytes()).await?;
    }
    sock.write_all(b"0\r\n\r\n").await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason;

    #[test]
    fn pieces_cover_the_text() {
        for (s, n) in [
            ("echo: hi", 3),
            ("", 3),
            ("ab", 3),
            ("echo: a longer sentence here", 4),
        ] {
            let p = pieces(s, n);
            assert!(p.len() >= n, "{p:?}");
            assert_eq!(p.concat(), s);
        }
        assert!(pieces("echo: hi", 3).iter().all(|p| !p.is_empty()));
    }

    #[test]
    fn parse_reads_the_last_user_message() {
        let body: Value = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},
               {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
               "tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"thinking":{"type":"adaptive"}}"#,
        )
        .unwrap();
        let a = parse(&body);
        assert_eq!(a.user_text, "a b");
        assert_eq!(a.tool.as_deref(), Some("get_weather"));
        assert!(a.thinking && !a.stream);
        let body: Value = serde_json::from_str(
            r#"{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"9"}]}],
               "tools":[{"name":"t"}],"stream":true}"#,
        )
        .unwrap();
        let a = parse(&body);
        assert!(a.tool.is_none() && a.stream && !a.thinking);
        assert_eq!(a.model, "mock-model");
    }

    #[test]
    fn statuses_have_anthropic_types() {
        assert_eq!(error_type(529), "overloaded_error");
        assert_eq!(error_type(500), "api_error");
        assert_eq!(reason(529), "Overloaded");
    }
}
