//! `POST /v1/messages/count_tokens` for targets that cannot count tokens themselves: an
//! estimate from the request's text, marked as one in the `x-switchyard-token-count`
//! header (`exact` answers come from Anthropic's and Bedrock's own counting APIs).
//!
//! The estimate is ~4 characters a token over everything the model reads (system, message
//! text, tool names, descriptions and schemas), plus a few tokens a message for the chat
//! template. Good to ±25 % on English prose with the common tokenizers; it is meant for
//! budgeting a context window, not for billing.

use crate::errors::{ClientDialect, GatewayError};
use crate::translate::ir::{Part, Request};

/// The response header that says how a count was made.
pub const HEADER: &str = "x-switchyard-token-count";

/// Tokens a message costs beyond its text (role markers of a chat template).
const PER_MESSAGE: u64 = 4;
/// Images are priced by the provider by size; a typical image.
const PER_IMAGE: u64 = 1_000;

pub fn estimate(body: &[u8]) -> Result<u64, GatewayError> {
    let req = crate::translate::decode_request(ClientDialect::Anthropic, body)?;
    Ok(estimate_request(&req))
}

pub fn estimate_request(req: &Request) -> u64 {
    let mut chars = 0u64;
    let mut extra = 0u64;
    for p in &req.system {
        count_part(p, &mut chars, &mut extra);
    }
    for m in &req.messages {
        extra += PER_MESSAGE;
        for p in &m.content {
            count_part(p, &mut chars, &mut extra);
        }
    }
    for t in &req.tools {
        chars += t.name.chars().count() as u64;
        chars += t
            .description
            .as_deref()
            .map_or(0, |d| d.chars().count() as u64);
        chars += t.schema.to_string().len() as u64;
    }
    chars.div_ceil(4) + extra
}

/// The body of a `/tokenize` request that both common servers read: vLLM takes the chat
/// request's `messages` and `tools` (its chat template applied: exact), llama-server takes
/// `content` (the text, without its template) and ignores the rest, as vLLM ignores `content`.
pub fn tokenize_body(chat: &serde_json::Value, req: &Request) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    for key in ["model", "messages", "tools"] {
        if let Some(v) = chat.get(key) {
            body.insert(key.to_string(), v.clone());
        }
    }
    let mut text = String::new();
    let mut push = |t: &str| {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(t);
    };
    for p in req
        .system
        .iter()
        .chain(req.messages.iter().flat_map(|m| m.content.iter()))
    {
        match p {
            Part::Text { text, .. } | Part::Thinking { text, .. } => push(text),
            Part::ToolResult { content, .. } => {
                for c in content {
                    if let Part::Text { text, .. } = c {
                        push(text);
                    }
                }
            }
            Part::ToolUse { name, input, .. } => push(&format!("{name} {input}")),
            _ => {}
        }
    }
    body.insert("content".into(), serde_json::Value::String(text));
    serde_json::Value::Object(body)
}

fn count_part(p: &Part, chars: &mut u64, extra: &mut u64) {
    match p {
        Part::Text { text, .. } => *chars += text.chars().count() as u64,
        Part::Thinking { text, .. } => *chars += text.chars().count() as u64,
        Part::Image { .. } | Part::Document { .. } => *extra += PER_IMAGE,
        Part::ToolUse { name, input, .. } => {
            *chars += name.len() as u64 + input.to_string().len() as u64
        }
        Part::ToolResult { content, .. } => {
            for c in content {
                count_part(c, chars, extra);
            }
        }
        Part::RedactedThinking { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_body_serves_vllm_and_llama_server() {
        let req = crate::translate::decode_request(
            ClientDialect::Anthropic,
            br#"{"model":"m","system":"be brief","messages":[{"role":"user","content":"hello there"}]}"#,
        )
        .unwrap();
        let chat = serde_json::json!({"model":"up","messages":[{"role":"user","content":"hello there"}],"max_tokens":5});
        let b = tokenize_body(&chat, &req);
        assert_eq!(b["model"], "up");
        assert_eq!(b["messages"][0]["content"], "hello there");
        assert_eq!(b["content"], "be brief\nhello there");
        assert!(b.get("max_tokens").is_none());
    }

    #[test]
    fn estimate_grows_with_the_text() {
        let short =
            estimate(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        let long = estimate(
            format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
                "word ".repeat(400)
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(short < 10 && long > 400, "{short} {long}");
    }
}
