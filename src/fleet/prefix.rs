//! The prompt as a chain of block hashes (prefix affinity).
//!
//! The prompt's raw bytes (the `system` and `messages` values as the client sent them, found by
//! the head scan: nothing is parsed) are cut into fixed-size blocks and hashed as a chain:
//! block `i`'s hash covers block `i` and the hash of block `i - 1`, so two prompts share the
//! first `k` hashes exactly when they share their first `k` blocks, and a change in any block
//! changes every later hash. Only whole blocks count: a trailing partial block is the part most
//! likely to differ between turns. This mirrors what vLLM's prefix cache keys on (token blocks
//! chained by hash), in bytes instead of tokens, so no tokenizer runs in the gateway.

use std::hash::Hasher;

/// Blocks hashed at most: 64 KiB of prompt at the default 256-byte block. A longer shared
/// prefix is no less shared; past this the chain just stops growing (bounded work per request).
pub const MAX_BLOCKS: usize = 256;

/// The block chain of `parts` (concatenated), `block` bytes a block.
pub fn chain(parts: &[&[u8]], block: usize) -> Vec<u64> {
    let block = block.max(1);
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let n = (total / block).min(MAX_BLOCKS);
    let mut out = Vec::with_capacity(n);
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut filled = 0usize;
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() && out.len() < n {
            let take = (block - filled).min(rest.len());
            h.write(&rest[..take]);
            filled += take;
            rest = &rest[take..];
            if filled == block {
                let prev = h.finish();
                out.push(prev);
                h = xxhash_rust::xxh3::Xxh3::new();
                h.write_u64(prev);
                filled = 0;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_prefix_gives_the_same_chain() {
        let a = chain(&[b"system prompt, long enough ", b"and the first turn"], 8);
        let b = chain(&[b"system prompt, long enough and the first turn"], 8);
        assert_eq!(a, b, "how the bytes are split into parts does not matter");
        assert_eq!(a.len(), 45 / 8);
    }

    #[test]
    fn a_change_in_a_block_changes_it_and_every_later_one() {
        let base = chain(&[b"0123456789abcdefghijklmnopqrstuv"], 8);
        let changed = chain(&[b"0123456789abcdeXghijklmnopqrstuv"], 8);
        assert_eq!(base.len(), 4);
        assert_eq!(base[0], changed[0]);
        for i in 1..4 {
            assert_ne!(base[i], changed[i], "block {i}");
        }
        // A longer prompt with the same start extends the chain.
        let longer = chain(&[b"0123456789abcdefghijklmnopqrstuvwxyz012345"], 8);
        assert_eq!(&longer[..4], &base[..]);
        assert_eq!(longer.len(), 5);
    }

    #[test]
    fn equal_blocks_at_different_places_hash_differently() {
        let c = chain(&[b"abcdabcdabcd"], 4);
        assert_ne!(c[0], c[1]);
        assert_ne!(c[1], c[2]);
    }

    #[test]
    fn bounded_and_partial_blocks_ignored() {
        assert!(chain(&[b"short"], 256).is_empty());
        let big = vec![b'x'; 1 << 20];
        assert_eq!(chain(&[&big], 256).len(), MAX_BLOCKS);
    }
}
