//! The user-facing face of the configuration: the YAML of the spec's section
//! 3 as plain structs, and the parse that reads them (with `tree.rs`).
//!
//! Every block knows its keys and reports the others. Values whose syntax is
//! ours (durations, sizes, enums such as `balance`) are kept as written and
//! checked while lowering (`validate.rs`), so that their messages say how to
//! fix them. Every value is read on its own: a wrong one is reported and
//! counts as absent, and reading goes on, so one run reports every problem.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;

use super::diagnostic::Problem;
use super::locate;
use super::tree::{Block, NodePath, Reader};

/// The whole file.
#[derive(Debug, Default)]
pub struct FileConfig {
    pub listen: Option<ListenFile>,
    pub admin: Option<AdminFile>,
    pub server: Option<ServerFile>,
    pub limits: Option<LimitsFile>,
    pub auth: Option<AuthFile>,
    pub providers: Option<BTreeMap<String, ProviderFile>>,
    pub models: Option<BTreeMap<String, ModelFile>>,
    pub ratelimit: Option<RateLimitFile>,
    /// Path of the JSON access log; absent means stderr.
    pub access_log: Option<String>,
}

/// The top-level keys of [`FileConfig`], for the entry-by-entry parse.
const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "admin",
    "server",
    "limits",
    "auth",
    "providers",
    "models",
    "ratelimit",
    "access_log",
];

/// `listen:` as one address or a list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenFile(pub Vec<String>);

/// `admin:`: a separate listener for `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug)]
pub struct AdminFile {
    /// Required; `None` when missing (already reported).
    pub listen: Option<String>,
}

/// `server:`: process settings; absent values take `ServerSettings::default()`.
#[derive(Debug, Default)]
pub struct ServerFile {
    pub threads: Option<usize>,
    pub grace_period: Option<Humane>,
    pub shutdown_timeout: Option<Humane>,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
}

/// `limits:`: request limits; absent values take `Limits::default()`.
#[derive(Debug, Default)]
pub struct LimitsFile {
    pub max_request_body: Option<Humane>,
    pub connect_timeout: Option<Humane>,
    pub first_byte_timeout: Option<Humane>,
    pub idle_timeout: Option<Humane>,
    pub default_max_tokens: Option<u64>,
    pub header_read_timeout: Option<Humane>,
    pub body_read_timeout: Option<Humane>,
    pub max_stream_event: Option<Humane>,
}

/// `auth:`: the gateway keys; none means an open gateway (loopback only).
#[derive(Debug, Default)]
pub struct AuthFile {
    pub keys: Option<Vec<KeyFile>>,
}

/// One gateway key: a secret (`key`) or its SHA-256 (`key_sha256`).
#[derive(Debug)]
pub struct KeyFile {
    /// Empty when missing: lowering says why a key needs one.
    pub name: String,
    pub key: Option<String>,
    pub key_sha256: Option<String>,
    /// Glob allow-list; absent means every model.
    pub models: Option<Vec<String>>,
    pub limits: Option<RateLimitsFile>,
    pub budget: Option<BudgetFile>,
}

/// Per-key or per-model limits, per minute.
#[derive(Debug, Default)]
pub struct RateLimitsFile {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
}

/// A key's spending cap per calendar period.
#[derive(Debug)]
pub struct BudgetFile {
    /// Required; `None` when missing or unreadable (already reported).
    pub usd: Option<f64>,
    /// `day`, `week` or `month`; absent means `month`.
    pub period: Option<String>,
}

/// One provider account or fleet.
#[derive(Debug, Default, Clone)]
pub struct ProviderFile {
    /// A dialect (`openai`, `azure_openai`, ...) or a preset id (`groq`, ...);
    /// absent means the provider's id, when that is a preset.
    pub kind: Option<String>,
    pub api_key: Option<String>,
    /// Where the preset's paths are appended, as `<ID>_BASE_URL` would set it.
    pub base_url: Option<String>,
    /// The same as `base_url`, in the words Azure uses for its resource URL.
    pub endpoint: Option<String>,
    /// A pool of servers (`host:port` or URLs) that is health-checked and balanced.
    pub endpoints: Option<Vec<String>>,
    pub api_version: Option<String>,
    pub region: Option<String>,
    pub balance: Option<String>,
    pub health_check: Option<HealthCheckFile>,
    pub routing: Option<RoutingFile>,
}

/// A fleet's routing knobs (issue 10); absent values take `Routing::default()`.
#[derive(Debug, Default, Clone)]
pub struct RoutingFile {
    pub scrape_interval: Option<Humane>,
    pub metrics_path: Option<String>,
    pub block_size: Option<Humane>,
    pub index_size: Option<u64>,
    pub spill_threshold: Option<u64>,
    pub session_header: Option<String>,
    pub session_affinity: Option<bool>,
}

/// A provider's active health check; absent values take the provider's defaults.
#[derive(Debug, Default, Clone)]
pub struct HealthCheckFile {
    /// HTTP path to GET; absent means a TCP connect check.
    pub path: Option<String>,
    pub interval: Option<Humane>,
    pub timeout: Option<Humane>,
}

/// One client-facing model name and where it goes.
#[derive(Debug)]
pub struct ModelFile {
    pub targets: Vec<TargetFile>,
    pub limits: Option<RateLimitsFile>,
}

/// One target of a model: a provider, the upstream model id (absent = the
/// client's name), a weight within its tier (default 1) and a tier (default 0).
#[derive(Debug)]
pub struct TargetFile {
    /// Required; `None` when missing or unreadable (already reported).
    pub provider: Option<String>,
    pub model: Option<String>,
    pub weight: Option<u32>,
    pub priority: Option<u32>,
}

/// `ratelimit:`: where the limit counters live.
#[derive(Debug, Default)]
pub struct RateLimitFile {
    /// `memory` (the default) or `redis`.
    pub store: Option<String>,
    pub url: Option<String>,
    /// `fail_closed` (the default) or `fail_open`.
    pub on_store_error: Option<String>,
}

/// A duration or a size as written (`30s`, `32MiB`, or a bare number), parsed
/// by `units.rs` while lowering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Humane(pub String);

/// The outcome of reading the file: what parsed, and what did not.
#[derive(Debug, Default)]
pub struct Parsed {
    pub file: FileConfig,
    /// Problems found while reading (unknown keys, wrong types, ...).
    pub problems: Vec<Problem>,
    /// Providers whose entries did not parse: they exist, so a target naming
    /// them is not "unknown".
    pub broken_providers: BTreeSet<String>,
    /// `providers` as a whole did not parse: no provider name can be checked.
    pub providers_broken: bool,
    /// `auth` or one of its keys did not parse: the gateway is not known to be open.
    pub auth_broken: bool,
    /// The whole tree as read, for checks that look at what is written (`unenforced.rs`).
    pub root: Value,
}

/// Reads the (already expanded) text. `Err` is a file that is not YAML or not
/// a mapping at all; nothing more can be said about it.
pub fn parse(text: &str) -> Result<Parsed, Problem> {
    let root: Value = serde_yaml_ng::from_str(text).map_err(|err| {
        let (line, message) = locate::describe(&err);
        Problem::new(line.unwrap_or(1), format!("not valid YAML: {message}"))
    })?;
    if !matches!(root, Value::Mapping(_) | Value::Null) {
        return Err(Problem::new(
            1,
            "the file must be a mapping of settings (listen:, providers:, models:, ...)",
        ));
    }
    let mut r = Reader::new(text);
    let mut parsed = Parsed::default();
    if let Some(top) = r.block(Some(&root), NodePath::default(), TOP_LEVEL_KEYS) {
        read_file(&mut r, &top, &mut parsed);
    }
    parsed.problems = r.problems;
    parsed.root = root;
    Ok(parsed)
}

/// Every section of the file.
fn read_file(r: &mut Reader, top: &Block, parsed: &mut Parsed) {
    let file = &mut parsed.file;
    file.listen = r
        .texts(top.get("listen"), &top.field("listen"), true)
        .map(ListenFile);
    file.admin = section(r, top, "admin", &["listen"]).map(|admin| {
        let listen = r.text(admin.get("listen"), &admin.field("listen"));
        if admin.lacks("listen") {
            r.report(
                &admin.at,
                "admin needs `listen`, e.g. admin: { listen: \"127.0.0.1:9090\" }",
            );
        }
        AdminFile { listen }
    });
    file.server = section(
        r,
        top,
        "server",
        &[
            "threads",
            "grace_period",
            "shutdown_timeout",
            "pid_file",
            "upgrade_sock",
        ],
    )
    .map(|b| ServerFile {
        threads: r.whole(b.get("threads"), &b.field("threads")),
        grace_period: humane(r, &b, "grace_period"),
        shutdown_timeout: humane(r, &b, "shutdown_timeout"),
        pid_file: r.text(b.get("pid_file"), &b.field("pid_file")),
        upgrade_sock: r.text(b.get("upgrade_sock"), &b.field("upgrade_sock")),
    });
    file.limits = section(
        r,
        top,
        "limits",
        &[
            "max_request_body",
            "connect_timeout",
            "first_byte_timeout",
            "idle_timeout",
            "default_max_tokens",
            "header_read_timeout",
            "body_read_timeout",
            "max_stream_event",
        ],
    )
    .map(|b| LimitsFile {
        max_request_body: humane(r, &b, "max_request_body"),
        connect_timeout: humane(r, &b, "connect_timeout"),
        first_byte_timeout: humane(r, &b, "first_byte_timeout"),
        idle_timeout: humane(r, &b, "idle_timeout"),
        default_max_tokens: r.whole(b.get("default_max_tokens"), &b.field("default_max_tokens")),
        header_read_timeout: humane(r, &b, "header_read_timeout"),
        body_read_timeout: humane(r, &b, "body_read_timeout"),
        max_stream_event: humane(r, &b, "max_stream_event"),
    });
    file.ratelimit =
        section(r, top, "ratelimit", &["store", "url", "on_store_error"]).map(|b| RateLimitFile {
            store: r.text(b.get("store"), &b.field("store")),
            url: r.text(b.get("url"), &b.field("url")),
            on_store_error: r.text(b.get("on_store_error"), &b.field("on_store_error")),
        });
    file.access_log = r.text(top.get("access_log"), &top.field("access_log"));

    match section(r, top, "auth", &["keys"]) {
        None if !top.lacks("auth") => parsed.auth_broken = true,
        None => {}
        Some(auth) => {
            let at = auth.field("keys");
            let keys = match (auth.get("keys"), r.list(auth.get("keys"), &at)) {
                (Some(Value::Null) | None, _) => None,
                (Some(_), None) => {
                    parsed.auth_broken = true;
                    None
                }
                (Some(_), Some(items)) => Some(
                    items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, item)| {
                            let key = read_key(r, item, at.index(i));
                            parsed.auth_broken |= key.is_none();
                            key
                        })
                        .collect(),
                ),
            };
            file.auth = Some(AuthFile { keys });
        }
    }

    match r.names(top.get("providers"), top.field("providers")) {
        None => parsed.providers_broken = true,
        Some(_) if !top.has("providers") => {}
        Some(block) => {
            let mut providers = BTreeMap::new();
            for (id, value) in block.entries() {
                match read_provider(r, value, block.field(&id)) {
                    Some(provider) => {
                        providers.insert(id, provider);
                    }
                    None => {
                        parsed.broken_providers.insert(id);
                    }
                }
            }
            file.providers = Some(providers);
        }
    }
    if let Some(block) = r.names(top.get("models"), top.field("models")) {
        if top.has("models") {
            file.models = Some(
                block
                    .entries()
                    .filter_map(|(name, value)| {
                        let model = read_model(r, value, block.field(&name))?;
                        Some((name, model))
                    })
                    .collect(),
            );
        }
    }
}

/// A top-level block: `None` when absent, empty (`admin:` alone) or not a
/// mapping (reported).
fn section<'v>(r: &mut Reader, top: &Block<'v>, name: &str, known: &[&str]) -> Option<Block<'v>> {
    let value = top.get(name).filter(|v| !v.is_null())?;
    r.block(Some(value), top.field(name), known)
}

fn humane(r: &mut Reader, block: &Block, key: &str) -> Option<Humane> {
    r.text(block.get(key), &block.field(key)).map(Humane)
}

/// One entry of `auth.keys`; `None` when it is not a mapping (reported).
fn read_key(r: &mut Reader, value: &Value, at: NodePath) -> Option<KeyFile> {
    let b = r.block(
        Some(value),
        at,
        &["name", "key", "key_sha256", "models", "limits", "budget"],
    )?;
    Some(KeyFile {
        name: r.text(b.get("name"), &b.field("name")).unwrap_or_default(),
        key: r.text(b.get("key"), &b.field("key")),
        key_sha256: r.text(b.get("key_sha256"), &b.field("key_sha256")),
        models: r.texts(b.get("models"), &b.field("models"), false),
        limits: read_rate_limits(r, &b, "limits"),
        budget: b.get("budget").and_then(|value| {
            let budget = r.block(Some(value), b.field("budget"), &["usd", "period"])?;
            let usd = r.number(budget.get("usd"), &budget.field("usd"));
            if budget.lacks("usd") {
                r.report(
                    &budget.at,
                    format!(
                        "{} needs `usd`, e.g. budget: {{ usd: 100, period: month }}",
                        budget.at
                    ),
                );
            }
            Some(BudgetFile {
                usd,
                period: r.text(budget.get("period"), &budget.field("period")),
            })
        }),
    })
}

/// `limits:` of a key or a model.
fn read_rate_limits(r: &mut Reader, parent: &Block, key: &str) -> Option<RateLimitsFile> {
    let value = parent.get(key)?;
    let b = r.block(
        Some(value),
        parent.field(key),
        &["requests_per_minute", "tokens_per_minute"],
    )?;
    Some(RateLimitsFile {
        requests_per_minute: r.whole(
            b.get("requests_per_minute"),
            &b.field("requests_per_minute"),
        ),
        tokens_per_minute: r.whole(b.get("tokens_per_minute"), &b.field("tokens_per_minute")),
    })
}

/// One provider; `None` when the entry is not a mapping (reported). `openai:`
/// with nothing after it is a preset with all its defaults.
fn read_provider(r: &mut Reader, value: &Value, at: NodePath) -> Option<ProviderFile> {
    let b = r.block(
        Some(value),
        at,
        &[
            "type",
            "api_key",
            "base_url",
            "endpoint",
            "endpoints",
            "api_version",
            "region",
            "balance",
            "health_check",
            "routing",
        ],
    )?;
    let text = |r: &mut Reader, key: &str| r.text(b.get(key), &b.field(key));
    Some(ProviderFile {
        kind: text(r, "type"),
        api_key: text(r, "api_key"),
        base_url: text(r, "base_url"),
        endpoint: text(r, "endpoint"),
        endpoints: r.texts(b.get("endpoints"), &b.field("endpoints"), false),
        api_version: text(r, "api_version"),
        region: text(r, "region"),
        balance: text(r, "balance"),
        health_check: b.get("health_check").and_then(|value| {
            let hc = r.block(
                Some(value),
                b.field("health_check"),
                &["path", "interval", "timeout"],
            )?;
            Some(HealthCheckFile {
                path: r.text(hc.get("path"), &hc.field("path")),
                interval: humane(r, &hc, "interval"),
                timeout: humane(r, &hc, "timeout"),
            })
        }),
        routing: b.get("routing").and_then(|value| {
            let rb = r.block(
                Some(value),
                b.field("routing"),
                &[
                    "scrape_interval",
                    "metrics_path",
                    "block_size",
                    "index_size",
                    "spill_threshold",
                    "session_header",
                    "session_affinity",
                ],
            )?;
            Some(RoutingFile {
                scrape_interval: humane(r, &rb, "scrape_interval"),
                metrics_path: r.text(rb.get("metrics_path"), &rb.field("metrics_path")),
                block_size: humane(r, &rb, "block_size"),
                index_size: r.whole(rb.get("index_size"), &rb.field("index_size")),
                spill_threshold: r.whole(rb.get("spill_threshold"), &rb.field("spill_threshold")),
                session_header: r.text(rb.get("session_header"), &rb.field("session_header")),
                session_affinity: r.flag(rb.get("session_affinity"), &rb.field("session_affinity")),
            })
        }),
    })
}

/// One model; `None` when the entry is not a mapping (reported).
fn read_model(r: &mut Reader, value: &Value, at: NodePath) -> Option<ModelFile> {
    let b = r.block(Some(value), at, &["targets", "limits"])?;
    let at = b.field("targets");
    let items = r.list(b.get("targets"), &at).unwrap_or_default();
    let targets = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let t = r.block(
                Some(item),
                at.index(i),
                &["provider", "model", "weight", "priority"],
            )?;
            let provider = r.text(t.get("provider"), &t.field("provider"));
            if t.lacks("provider") {
                r.report(
                    &t.at,
                    format!(
                        "{} needs `provider`: the id of an entry under providers:",
                        t.at
                    ),
                );
            }
            Some(TargetFile {
                provider,
                model: r.text(t.get("model"), &t.field("model")),
                weight: r.whole(t.get("weight"), &t.field("weight")),
                priority: r.whole(t.get("priority"), &t.field("priority")),
            })
        })
        .collect();
    Some(ModelFile {
        targets,
        limits: read_rate_limits(r, &b, "limits"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_top_level_key_may_be_empty() {
        let text: String = TOP_LEVEL_KEYS.iter().map(|k| format!("{k}:\n")).collect();
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.problems, vec![]);
        assert!(!parsed.auth_broken && !parsed.providers_broken);
    }

    #[test]
    fn listen_takes_one_or_many() {
        let one = parse("listen: 0.0.0.0:1").unwrap().file;
        assert_eq!(one.listen, Some(ListenFile(vec!["0.0.0.0:1".into()])));
        let many = parse("listen: [a, b]").unwrap().file;
        assert_eq!(many.listen, Some(ListenFile(vec!["a".into(), "b".into()])));
    }

    #[test]
    fn humane_values_are_kept_as_written() {
        let server = parse("server: {grace_period: 30s, shutdown_timeout: 10, threads: 3}")
            .unwrap()
            .file
            .server
            .unwrap();
        assert_eq!(server.grace_period, Some(Humane("30s".into())));
        assert_eq!(server.shutdown_timeout, Some(Humane("10".into())));
        assert_eq!(server.threads, Some(3));
    }

    #[test]
    fn a_clean_file_has_no_problems() {
        let parsed = parse("providers:\n  openai: { type: openai }\n  ollama:\n").unwrap();
        assert!(parsed.problems.is_empty());
        let providers = parsed.file.providers.unwrap();
        assert!(providers.contains_key("openai") && providers.contains_key("ollama"));
    }

    #[test]
    fn bad_values_are_reported_and_the_rest_is_read() {
        let text = "\
listen: [\"127.0.0.1:8080\"]
colour: blue
server: { threads: many }
providers:
  good: { type: openai }
  bad:
    type: openai
    endpoint_list: [x]
  worse: 5
models:
  m1:
    targets: [ { provider: good, wieght: 2 } ]
  m2:
    targets: [ { provider: bad } ]
auth:
  keys:
    - { name: a, key: x }
    - { name: b, key: y, extra: 1 }
    - just-a-string
";
        let parsed = parse(text).unwrap();
        let lines: Vec<usize> = parsed.problems.iter().map(|p| p.line).collect();
        assert_eq!(
            lines,
            vec![2, 3, 18, 19, 8, 9, 12],
            "{:#?}",
            parsed.problems
        );
        let message = |i: usize| parsed.problems[i].message.as_str();
        assert!(message(0).starts_with("unknown key `colour`"));
        assert_eq!(
            message(1),
            "server.threads must be a whole number (0, 1, 2, ...), not text"
        );
        assert!(message(2).starts_with("auth.keys[1]: unknown key `extra`"));
        assert_eq!(
            message(3),
            "auth.keys[2] must be a mapping (key: value, ...), not text"
        );
        assert!(message(4).starts_with("providers.bad: unknown key `endpoint_list`"));
        assert!(message(6).contains("unknown key `wieght` (did you mean `weight`?)"));
        // A provider that is not a mapping still exists, for the target check.
        assert!(parsed.broken_providers.contains("worse"));
        assert!(parsed.auth_broken);
        let file = parsed.file;
        let providers = file.providers.unwrap();
        assert!(providers.contains_key("good") && providers.contains_key("bad"));
        assert_eq!(file.models.unwrap().len(), 2);
        let keys = file.auth.unwrap().keys.unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].key.as_deref(), Some("y"));
    }

    #[test]
    fn required_keys_are_named() {
        let text = "admin: {}\nmodels:\n  m:\n    targets: [ { model: x } ]\nauth:\n  keys:\n    - { name: a, key: k, budget: { period: day } }\n";
        let parsed = parse(text).unwrap();
        let shown: Vec<String> = parsed
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.line, p.message))
            .collect();
        assert_eq!(
            shown,
            vec![
                "1: admin needs `listen`, e.g. admin: { listen: \"127.0.0.1:9090\" }",
                "7: auth.keys[0].budget needs `usd`, e.g. budget: { usd: 100, period: month }",
                "4: models.m.targets[0] needs `provider`: the id of an entry under providers:",
            ]
        );
    }

    #[test]
    fn not_yaml_or_not_a_mapping_stops_at_once() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.starts_with("not valid YAML"), "{}", err.message);
        let err = parse("- 1\n- 2\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(parse("").unwrap().problems.is_empty());
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("duplicate"), "{}", err.message);
    }
}
