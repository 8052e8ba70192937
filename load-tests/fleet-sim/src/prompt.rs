//! What a replica sees of a chat request: the prompt's bytes, its token count and the chain
//! of hashes of its full KV blocks (the prefix-cache keys).
//!
//! The prompt is the `messages` array rendered by a fixed chat template, one message after the
//! other: `<|ROLE|>\nCONTENT\n` (content parts of type `text` are concatenated; `tool_calls` are
//! appended as their JSON). A conversation that appends messages therefore extends its earlier
//! prompt byte for byte, which is what makes multi-turn sessions share a prefix. Nothing else in
//! the body (model, max_tokens, user, tools, sampling) enters the prompt.
//!
//! Tokens: `ceil(bytes / 4)`, so a 16-token block is 64 bytes of prompt. Block `i`'s key hashes
//! block `i - 1`'s key with its own 64 bytes (as vLLM's block hashes chain over token ids), so a
//! block only matches when everything before it matches too.

use serde_json::Value;
use sha2::{Digest, Sha256};

pub const BYTES_PER_TOKEN: usize = 4;
pub const BLOCK_TOKENS: usize = 16;
pub const BLOCK_BYTES: usize = BYTES_PER_TOKEN * BLOCK_TOKENS;

/// A prompt as the replica's cache sees it.
#[derive(Clone, Debug, Default)]
pub struct Prompt {
    pub tokens: usize,
    /// Chain hashes of the prompt's full blocks, in order.
    pub blocks: Vec<u64>,
    /// A digest of the whole prompt: seeds the (deterministic) generated text.
    pub digest: u64,
}

impl Prompt {
    pub fn from_bytes(text: &[u8]) -> Prompt {
        let tokens = text.len().div_ceil(BYTES_PER_TOKEN);
        let mut blocks = Vec::with_capacity(text.len() / BLOCK_BYTES);
        let mut prev = [0u8; 32];
        for chunk in text.chunks_exact(BLOCK_BYTES) {
            let mut h = Sha256::new();
            h.update(prev);
            h.update(chunk);
            prev = h.finalize().into();
            blocks.push(u64::from_le_bytes(prev[..8].try_into().expect("8 bytes")));
        }
        let whole: [u8; 32] = Sha256::digest(text).into();
        Prompt {
            tokens,
            blocks,
            digest: u64::from_le_bytes(whole[..8].try_into().expect("8 bytes")),
        }
    }
}

/// The prompt text of a chat completions body (see the module doc), or what is wrong with it.
pub fn render(body: &Value) -> Result<Vec<u8>, String> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("`messages` must be an array")?;
    if messages.is_empty() {
        return Err("`messages` must not be empty".into());
    }
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("messages[{i}].role must be a string"))?;
        out.extend_from_slice(b"<|");
        out.extend_from_slice(role.as_bytes());
        out.extend_from_slice(b"|>\n");
        match m.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => out.extend_from_slice(s.as_bytes()),
            Some(Value::Array(parts)) => {
                for p in parts {
                    if let Some(t) = p.get("text").and_then(Value::as_str) {
                        out.extend_from_slice(t.as_bytes());
                    }
                }
            }
            Some(_) => {
                return Err(format!(
                    "messages[{i}].content must be a string or an array"
                ))
            }
        }
        if let Some(calls) = m.get("tool_calls") {
            out.extend_from_slice(calls.to_string().as_bytes());
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// The text of generated token `index` for a prompt: one 4-byte word, so a reply of `n` tokens
/// is `4 n` bytes and counts as `n` tokens again when a client sends it back.
pub fn token_text(digest: u64, index: usize) -> &'static str {
    const WORDS: [&str; 32] = [
        "the ", "and ", "for ", "you ", "not ", "are ", "but ", "can ", "all ", "was ", "one ",
        "our ", "out ", "use ", "new ", "now ", "way ", "may ", "see ", "two ", "how ", "its ",
        "who ", "did ", "get ", "let ", "put ", "say ", "too ", "old ", "any ", "run ",
    ];
    let mut z = digest ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    WORDS[(z >> 59) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn appending_messages_extends_the_prompt() {
        let a =
            json!({"messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"}]});
        let b = json!({"messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"},
            {"role":"assistant","content":"yo"},{"role":"user","content":[{"type":"text","text":"more"}]}]});
        let (ra, rb) = (render(&a).unwrap(), render(&b).unwrap());
        assert_eq!(ra, b"<|system|>\nS\n<|user|>\nhi\n");
        assert!(rb.starts_with(&ra));
    }

    #[test]
    fn block_hashes_chain() {
        let x = vec![b'x'; 64 * 3 + 10];
        let mut y = x.clone();
        y[0] = b'y'; // first block differs: every later key differs too
        let (px, py) = (Prompt::from_bytes(&x), Prompt::from_bytes(&y));
        assert_eq!(px.tokens, (64 * 3 + 10usize).div_ceil(4));
        assert_eq!(px.blocks.len(), 3);
        assert!(px.blocks.iter().zip(&py.blocks).all(|(a, b)| a != b));
        // Identical block contents at different positions get different keys.
        assert_ne!(px.blocks[1], px.blocks[2]);
        let mut z = x.clone();
        z[64 * 2] = b'z'; // third block differs: the first two keys still match
        let pz = Prompt::from_bytes(&z);
        assert_eq!(px.blocks[..2], pz.blocks[..2]);
        assert_ne!(px.blocks[2], pz.blocks[2]);
    }

    #[test]
    fn bad_bodies_are_refused() {
        assert!(render(&json!({"messages":"hi"})).is_err());
        assert!(render(&json!({"messages":[]})).is_err());
        assert!(render(&json!({"messages":[{"content":"x"}]})).is_err());
    }
}
