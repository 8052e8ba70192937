//! Gateway keys from `auth.keys`: secrets become SHA-256 digests at once, so
//! the running config never holds a client's plain key.

use sha2::{Digest, Sha256};

use super::file::{BudgetFile, KeyFile};
use super::locate::Seg;
use super::model::{Budget, BudgetPeriod, GatewayKey};
use super::validate::{rate_limits, Checker};

/// The SHA-256 of a key as the client sends it.
pub(crate) fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Lowers `auth.keys`, reporting every bad entry; keys whose secret is
/// unusable are left out (the load fails anyway).
pub(crate) fn lower_keys(keys: &[KeyFile], check: &mut Checker) -> Vec<GatewayKey> {
    let mut lowered: Vec<GatewayKey> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let at = |field: &'static str| {
            [
                Seg::Key("auth"),
                Seg::Key("keys"),
                Seg::Index(i),
                Seg::Key(field),
            ]
        };
        let entry = [Seg::Key("auth"), Seg::Key("keys"), Seg::Index(i)];
        let name = key.name.trim();
        if name.is_empty() {
            check.report(
                &at("name"),
                "a key needs a name: it labels metrics and the access log",
            );
        } else if lowered.iter().any(|k| k.name == name) {
            check.report(
                &at("name"),
                format!("duplicate key name `{name}`: each key needs its own name"),
            );
        }
        if key.models.as_ref().is_some_and(Vec::is_empty) {
            check.report(
                &at("models"),
                format!("key `{name}` has `models: []`, which allows no model: leave models out to allow every model"),
            );
        }
        for (j, pattern) in key.models.iter().flatten().enumerate() {
            let mut path = at("models").to_vec();
            path.push(Seg::Index(j));
            if pattern.trim().is_empty() {
                check.report(&path, format!("key `{name}` lists an empty model pattern"));
            } else if let Some(why) = pattern_problem(pattern) {
                check.report(
                    &path,
                    format!("key `{name}`: model pattern `{pattern}` {why}"),
                );
            }
        }
        let limits = key
            .limits
            .as_ref()
            .and_then(|l| rate_limits(l, &at("limits"), check));
        let budget = key
            .budget
            .as_ref()
            .and_then(|b| budget(b, &at("budget"), check));
        let Some((sha256, secret_at)) = secret(key, name, &entry, check) else {
            continue;
        };
        if let Some(twin) = lowered.iter().find(|k| k.sha256 == sha256) {
            check.report(
                &at(secret_at),
                format!(
                    "key `{name}` has the same secret as key `{}`: every key needs its own",
                    twin.name
                ),
            );
        }
        lowered.push(GatewayKey {
            name: name.to_string(),
            sha256,
            models: key.models.clone().unwrap_or_default(),
            limits,
            budget,
        });
    }
    lowered
}

/// Why a model pattern can never mean what it seems to, if it cannot. Patterns are
/// globs with `*` (any run) and `?` (one character) only (`auth::glob`): a `[a-z]` class
/// or a `{a,b}` choice would match its brackets literally, and no model name holds white
/// space or control characters.
fn pattern_problem(pattern: &str) -> Option<&'static str> {
    if pattern.contains(['[', ']', '{', '}']) {
        Some("uses `[`, `]`, `{` or `}`: only `*` (any run) and `?` (one character) are wildcards; list each pattern on its own")
    } else if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("holds white space: model names never do")
    } else {
        None
    }
}

/// The digest of a key's secret, and which field gave it.
fn secret(
    key: &KeyFile,
    name: &str,
    entry: &[Seg],
    check: &mut Checker,
) -> Option<([u8; 32], &'static str)> {
    let field = |f: &'static str| {
        let mut path = entry.to_vec();
        path.push(Seg::Key(f));
        path
    };
    match (&key.key, &key.key_sha256) {
        (Some(_), Some(_)) => {
            check.report(
                &field("key_sha256"),
                format!("key `{name}` has both key and key_sha256: give only one"),
            );
            None
        }
        (None, None) => {
            // At `key:` when written (an unset `${VAR}` leaves it empty),
            // else the line lookup falls back to the entry.
            check.report(
                &field("key"),
                format!("key `{name}` has no secret: write `key: ${{SOME_VAR}}` or `key_sha256: <64 hex digits>`"),
            );
            None
        }
        (Some(secret), None) if secret.is_empty() => {
            check.report(&field("key"), format!("key `{name}` is empty"));
            None
        }
        (Some(secret), None) => Some((hash_secret(secret), "key")),
        (None, Some(hex_digest)) => {
            let mut digest = [0u8; 32];
            match hex::decode_to_slice(hex_digest.trim(), &mut digest) {
                Ok(()) => Some((digest, "key_sha256")),
                Err(_) => {
                    check.report(
                        &field("key_sha256"),
                        format!("key `{name}`: key_sha256 must be 64 hex digits, the SHA-256 of the key (printf %s \"$KEY\" | sha256sum)"),
                    );
                    None
                }
            }
        }
    }
}

fn budget(file: &BudgetFile, at: &[Seg], check: &mut Checker) -> Option<Budget> {
    // A missing `usd` was reported while reading.
    let usd = file.usd?;
    let mut ok = true;
    let mut field = |f: &'static str, message: String, check: &mut Checker| {
        let mut path = at.to_vec();
        path.push(Seg::Key(f));
        check.report(&path, message);
        ok = false;
    };
    if !(usd.is_finite() && usd > 0.0) {
        field(
            "usd",
            format!("budget.usd must be more than 0 (got {usd}); leave budget out for no budget"),
            check,
        );
    }
    let period = match file.period.as_deref().map(str::trim) {
        None | Some("month") => BudgetPeriod::Month,
        Some("week") => BudgetPeriod::Week,
        Some("day") => BudgetPeriod::Day,
        Some(other) => {
            field(
                "period",
                format!("unknown budget period `{other}`: use day, week or month"),
                check,
            );
            BudgetPeriod::Month
        }
    };
    ok.then_some(Budget { usd, period })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256() {
        assert_eq!(
            hex::encode(hash_secret("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
