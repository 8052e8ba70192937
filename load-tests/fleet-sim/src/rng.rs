//! A small seeded PRNG (splitmix64): workloads are reproducible from `--seed`, and the crate
//! needs no `rand`.

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi] (inclusive).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Exponential with the given rate (mean 1/rate): Poisson arrivals.
    pub fn exp(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }
}

/// Pseudo-English text of exactly `bytes` bytes (ASCII letters, spaces, a few punctuation
/// marks and newlines; nothing that JSON must escape except `\n`).
pub fn text(rng: &mut Rng, bytes: usize) -> String {
    const WORDS: &[&str] = &[
        "the",
        "model",
        "request",
        "cache",
        "token",
        "replica",
        "prefix",
        "block",
        "answer",
        "return",
        "value",
        "function",
        "file",
        "line",
        "error",
        "test",
        "config",
        "server",
        "client",
        "stream",
        "batch",
        "queue",
        "memory",
        "latency",
        "throughput",
        "policy",
        "route",
        "session",
        "agent",
        "tool",
        "result",
        "output",
        "input",
        "table",
        "index",
        "search",
        "build",
        "deploy",
        "check",
        "update",
        "and",
        "of",
        "to",
        "in",
        "is",
        "for",
        "with",
        "on",
        "that",
        "this",
        "from",
        "by",
        "we",
        "it",
        "a",
        "an",
        "be",
        "as",
        "at",
        "or",
        "not",
        "if",
        "then",
        "else",
    ];
    let mut out = String::with_capacity(bytes + 16);
    let mut since_nl = 0usize;
    while out.len() < bytes {
        let w = WORDS[(rng.next_u64() % WORDS.len() as u64) as usize];
        out.push_str(w);
        since_nl += 1;
        let r = rng.next_u64() % 100;
        if since_nl > 12 && r < 8 {
            out.push_str(".\n");
            since_nl = 0;
        } else if r < 6 {
            out.push_str(", ");
        } else {
            out.push(' ');
        }
    }
    out.truncate(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_exact_length_and_is_reproducible() {
        let a = text(&mut Rng::new(7), 1001);
        let b = text(&mut Rng::new(7), 1001);
        assert_eq!(a.len(), 1001);
        assert_eq!(a, b);
        assert!(a
            .bytes()
            .all(|c| c == b'\n' || (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\'));
    }

    #[test]
    fn exp_has_the_right_mean() {
        let mut r = Rng::new(1);
        let n = 20_000;
        let mean: f64 = (0..n).map(|_| r.exp(4.0)).sum::<f64>() / n as f64;
        assert!((mean - 0.25).abs() < 0.01, "{mean}");
    }
}
