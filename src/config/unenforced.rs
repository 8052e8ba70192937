//! Settings this build reads and checks but does not act on yet. Each one is
//! reported as a warning at its line, by `switchyard check`, at startup and on
//! reload, so that an operator never believes a limit holds when it does not
//! (issue 7, defect 14).
//!
//! The issue that enforces a setting deletes its row from [`UNENFORCED`] (and
//! the test line that names it); nothing else refers to the rows.

use serde_yaml_ng::Value;

use super::diagnostic::Problem;
use super::locate;
use super::tree::NodePath;

/// One setting that is accepted but not enforced.
struct Unenforced {
    /// Where it sits; `*` stands for any key (a provider id, a model name) or list index.
    pattern: &'static [&'static str],
    /// Whether the value written there is one this build ignores.
    ignored: fn(&Value) -> Option<&'static str>,
    /// The issue that will enforce it.
    issue: u32,
    /// What happens meanwhile, said plainly.
    effect: &'static str,
}

const UNENFORCED: &[Unenforced] = &[];

/// A warning for every setting in `root` (read from `text`) that this build ignores,
/// in line order. Messages name the setting's path and, for `balance`, its (known) value;
/// never any other value, so no secret reaches a log.
pub(crate) fn warnings(root: &Value, text: &str) -> Vec<Problem> {
    let mut found = Vec::new();
    for row in UNENFORCED {
        let mut hits = Vec::new();
        matches(root, row.pattern, NodePath::default(), &mut hits);
        for (at, value) in hits {
            let Some(shown) = (row.ignored)(value) else {
                continue;
            };
            let line = locate::line_for(text, &at.segs());
            found.push(Problem::new(
                line,
                format!(
                    "{at}{shown} is not enforced yet by this build (issue {}): {}",
                    row.issue, row.effect
                ),
            ));
        }
    }
    found.sort_by_key(|p| p.line);
    found
}

/// Every node under `value` that `pattern` reaches, with its path.
fn matches<'v>(
    value: &'v Value,
    pattern: &[&str],
    at: NodePath,
    hits: &mut Vec<(NodePath, &'v Value)>,
) {
    let Some((first, rest)) = pattern.split_first() else {
        hits.push((at, value));
        return;
    };
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                let Some(key) = key.as_str() else { continue };
                if *first == "*" || *first == key {
                    matches(child, rest, at.key(key), hits);
                }
            }
        }
        Value::Sequence(items) if *first == "*" => {
            for (i, child) in items.iter().enumerate() {
                matches(child, rest, at.index(i), hits);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> Vec<String> {
        let root: Value = serde_yaml_ng::from_str(text).unwrap();
        warnings(&root, text)
            .into_iter()
            .map(|p| format!("{}: {}", p.line, p.message))
            .collect()
    }

    #[test]
    fn settings_once_unenforced_are_all_enforced_now() {
        let text = "\
limits: { default_max_tokens: 4096, connect_timeout: 2s }
auth:
  keys:
    - name: a
      key: sk-secret-value
      limits: { requests_per_minute: 600 }
      budget: { usd: 100 }
    - { name: b, key: other-secret }
providers:
  fleet: { type: openai, endpoints: [\"a:1\"], balance: least-loaded }
  rr: { type: openai, endpoints: [\"b:1\"], balance: round_robin }
  pa: { type: openai, endpoints: [\"c:1\"], balance: prefix_affinity }
models:
  m:
    limits: { tokens_per_minute: 1000 }
    targets: [ { provider: fleet } ]
ratelimit: { store: redis, url: \"redis://x:6379\" }
";
        let warnings = shown(text);
        // Issue 9 enforced limits, budgets and the store; issue 10 the fleet balancers:
        // nothing in this file is accepted and ignored any more.
        assert_eq!(warnings, Vec::<String>::new());
        assert!(!warnings.iter().any(|w| w.contains("secret")));
    }

    #[test]
    fn enforced_and_empty_settings_pass_quietly() {
        let text = "\
limits: { max_request_body: 1MiB, header_read_timeout: 5s, body_read_timeout: 9s, max_stream_event: 1MiB }
auth:
  keys:
    - { name: a, key: k, models: [\"x*\"], limits: }
providers:
  fleet: { type: openai, endpoints: [\"a:1\"], balance: round-robin }
ratelimit: { store: memory }
";
        assert_eq!(shown(text), Vec::<String>::new());
    }
}
