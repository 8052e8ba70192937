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
