//! Gateway keys: who is calling, and which models they may use.
//!
//! Keys are held only as SHA-256 digests and looked up by the digest of what the client
//! presents, so no comparison runs over the secret itself (nothing to time) and the secret
//! is never kept, logged or counted.
//!
//! SHA-256 of every presented secret was the largest single cost of a proxied request
//! (~4,400 of its ~185,000 instructions). A secret that verified once is remembered as a
//! 128-bit keyed hash (SipHash-1-3 under this process's random key, a PRF, over the secret
//! with two different prefixes: forging an entry means matching 128 pseudo-random bits under
//! an unknown key), and later requests with it skip the digest. Only verified secrets are
//! remembered, so the memo holds at most one entry per configured key; a reload starts anew.

use crate::config::GatewayKey;
use pingora_http::RequestHeader;
use sha2::{Digest, Sha256};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::RwLock;

pub struct KeyRing {
    keys: Vec<GatewayKey>,
    by_digest: HashMap<[u8; 32], usize>,
    /// Keyed hashes of secrets that verified, to their key (see the module docs).
    verified: RwLock<HashMap<u128, usize>>,
    hasher: RandomState,
}

/// Outcome of authenticating a request.
#[derive(Debug, PartialEq)]
pub enum Caller<'a> {
    /// The gateway is open (no keys configured).
    Open,
    Key(&'a GatewayKey),
    Missing,
    Unknown,
}

impl KeyRing {
    pub fn new(keys: Vec<GatewayKey>) -> KeyRing {
        let by_digest = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.sha256, i))
            .collect();
        KeyRing {
            keys,
            by_digest,
            verified: RwLock::new(HashMap::new()),
            hasher: RandomState::new(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key from `Authorization: Bearer` or `x-api-key` (what the Anthropic SDK sends).
    pub fn identify(&self, req: &RequestHeader) -> Caller<'_> {
        if self.is_open() {
            return Caller::Open;
        }
        let presented = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let v = v.trim();
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .or_else(|| req.headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let Some(secret) = presented else {
            return Caller::Missing;
        };
        let memo = (u128::from(self.hasher.hash_one((0u8, secret))) << 64)
            | u128::from(self.hasher.hash_one((1u8, secret)));
        let known = self
            .verified
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&memo)
            .copied();
        if let Some(i) = known {
            return Caller::Key(&self.keys[i]);
        }
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        match self.by_digest.get(&digest) {
            Some(&i) => {
                let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
                // One secret per digest, so at most one entry per key.
                if verified.len() < self.keys.len() {
                    verified.insert(memo, i);
                }
                Caller::Key(&self.keys[i])
            }
            None => Caller::Unknown,
        }
    }
}

/// May `key` use `model`? An empty allow-list allows every model. The patterns are
/// matched against the model name with and without a `provider/` prefix.
pub fn allows(key: &GatewayKey, model: &str, bare_model: &str) -> bool {
    key.models.is_empty()
        || key.models.iter().any(|p| {
            glob(p.as_bytes(), model.as_bytes()) || glob(p.as_bytes(), bare_model.as_bytes())
        })
}

/// Shell-style glob with `*` (any run) and `?` (one byte).
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, secret: &str, models: &[&str]) -> GatewayKey {
        GatewayKey {
            name: name.into(),
            sha256: Sha256::digest(secret.as_bytes()).into(),
            models: models.iter().map(|s| s.to_string()).collect(),
            limits: None,
            budget: None,
        }
    }

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/v1/chat/completions", None).unwrap();
        for (k, v) in headers {
            r.insert_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn identifies_bearer_and_x_api_key() {
        let ring = KeyRing::new(vec![key("team-a", "sk-a", &[]), key("team-b", "sk-b", &[])]);
        assert!(
            matches!(ring.identify(&req(&[("authorization", "Bearer sk-b")])), Caller::Key(k) if k.name == "team-b")
        );
        assert!(
            matches!(ring.identify(&req(&[("x-api-key", "sk-a")])), Caller::Key(k) if k.name == "team-a")
        );
        assert_eq!(ring.identify(&req(&[])), Caller::Missing);
        assert_eq!(
            ring.identify(&req(&[("authorization", "Bearer nope")])),
            Caller::Unknown
        );
        assert_eq!(KeyRing::new(vec![]).identify(&req(&[])), Caller::Open);
    }

    #[test]
    fn a_verified_secret_is_remembered_and_nothing_else_is() {
        let ring = KeyRing::new(vec![key("team-a", "sk-a", &[]), key("team-b", "sk-b", &[])]);
        for _ in 0..3 {
            assert!(
                matches!(ring.identify(&req(&[("authorization", "Bearer sk-a")])), Caller::Key(k) if k.name == "team-a")
            );
            assert!(
                matches!(ring.identify(&req(&[("x-api-key", "sk-a")])), Caller::Key(k) if k.name == "team-a")
            );
        }
        for i in 0..100 {
            let wrong = format!("Bearer sk-{i}");
            assert_eq!(
                ring.identify(&req(&[("authorization", &wrong)])),
                Caller::Unknown
            );
        }
        assert_eq!(
            ring.verified.read().unwrap().len(),
            1,
            "one entry for sk-a, none for refused secrets"
        );
        // A remembered secret is still told apart from its neighbours.
        assert!(
            matches!(ring.identify(&req(&[("authorization", "Bearer sk-a ")])), Caller::Key(k) if k.name == "team-a"),
            "trimmed like before"
        );
        assert_eq!(
            ring.identify(&req(&[("authorization", "Bearer sk-aa")])),
            Caller::Unknown
        );
        assert!(
            matches!(ring.identify(&req(&[("authorization", "Bearer sk-b")])), Caller::Key(k) if k.name == "team-b")
        );
    }

    #[test]
    fn globs() {
        assert!(glob(b"gpt-4o*", b"gpt-4o-mini"));
        assert!(glob(b"*", b""));
        assert!(glob(b"llama-?-8b", b"llama-3-8b"));
        assert!(!glob(b"gpt-4o*", b"gpt-3.5"));
        assert!(glob(b"*mini*", b"gpt-4o-mini-2024"));
        assert!(!glob(b"a*b", b"acbd"));
    }

    #[test]
    fn allow_list_checks_bare_name_too() {
        let k = key("k", "s", &["gpt-4o*"]);
        assert!(allows(&k, "openai/gpt-4o", "gpt-4o"));
        assert!(!allows(&k, "llama-3", "llama-3"));
        assert!(allows(&key("k", "s", &[]), "anything", "anything"));
    }
}
