//! Normalised token usage (contract §7): every dialect's counters map onto one shape.

use memchr::memmem::FinderRev;
use once_cell::sync::Lazy;
use serde::Deserialize;

/// Token usage of one request. `input` includes cache reads and writes; a cached token
/// is counted once, in `input` and again in `cached_input` only as a breakdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub cached_input: u64,
    pub cache_creation_input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub total: u64,
    /// True when the numbers were estimated by the gateway (the upstream never sent
    /// usage, e.g. the client went away before the final usage chunk).
    pub estimated: bool,
}

/// OpenAI's `usage` object (chat, completions, embeddings, vLLM and most compatible servers).
#[derive(Debug, Deserialize, Default)]
pub struct OpenAiUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize, Default)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    /// Non-standard, sent by some compatible servers.
    #[serde(default)]
    pub cache_creation_tokens: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
pub struct CompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        let (cached, creation) = u
            .prompt_tokens_details
            .map(|d| {
                (
                    d.cached_tokens.unwrap_or(0),
                    d.cache_creation_tokens.unwrap_or(0),
                )
            })
            .unwrap_or_default();
        let reasoning = u
            .completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0);
        Usage {
            input: u.prompt_tokens,
            cached_input: cached,
            cache_creation_input: creation,
            output: u.completion_tokens,
            reasoning,
            total: u
                .total_tokens
                .unwrap_or(u.prompt_tokens + u.completion_tokens),
            estimated: false,
        }
    }
}

/// Find the last top-level-looking `"usage": {...}` object in an OpenAI JSON body
/// (non-streaming answers put it last) and read it. Returns `None` when absent or
/// `null`. Only the usage object is parsed, never the whole body.
pub fn openai_usage_in(body: &[u8]) -> Option<Usage> {
    // Built once: constructing the searcher cost more than the search on small bodies.
    static USAGE_KEY: Lazy<FinderRev<'static>> = Lazy::new(|| FinderRev::new(b"\"usage\""));
    let finder = &*USAGE_KEY;
    let mut end = body.len();
    while let Some(pos) = finder.rfind(&body[..end]) {
        let rest = &body[pos + 7..];
        let rest = skip_ws(rest);
        if let Some(after_colon) = rest.strip_prefix(b":") {
            let value = skip_ws(after_colon);
            if value.first() == Some(&b'{') {
                let mut de = serde_json::Deserializer::from_slice(value).into_iter::<OpenAiUsage>();
                if let Some(Ok(u)) = de.next() {
                    return Some(u.into());
                }
            }
            if value.starts_with(b"null") {
                return None;
            }
        }
        end = pos;
    }
    None
}

fn skip_ws(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
        .count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_at_end_of_chat_body() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"the word \"usage\": here"}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2}}}"#;
        let u = openai_usage_in(body).unwrap();
        assert_eq!(
            u,
            Usage {
                input: 12,
                cached_input: 4,
                cache_creation_input: 0,
                output: 5,
                reasoning: 2,
                total: 17,
                estimated: false
            }
        );
    }

    #[test]
    fn null_or_missing_usage_is_none() {
        assert_eq!(openai_usage_in(br#"{"usage":null}"#), None);
        assert_eq!(openai_usage_in(br#"{"choices":[]}"#), None);
    }

    #[test]
    fn embeddings_usage_without_completion() {
        let u = openai_usage_in(br#"{"data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}"#)
            .unwrap();
        assert_eq!((u.input, u.output, u.total), (8, 0, 8));
    }
}
