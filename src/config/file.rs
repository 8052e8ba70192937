//! The user-facing face of the configuration: serde structs for the YAML of
//! the spec's section 3, and the parse that reads them.
//!
//! Every struct denies unknown keys. Values whose syntax is ours (durations,
//! sizes, enums such as `balance`) are kept as written and checked while
//! lowering (`validate.rs`), so that their messages say how to fix them.
//!
//! A file that parses cleanly is read in one go. One that does not is read
//! again entry by entry (each provider, model and key on its own), so that
//! every bad entry is reported, each at its own line, and the good entries
//! can still be cross-checked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use super::diagnostic::Problem;
use super::locate::{self, Seg};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: String,
}

/// `server:`: process settings; absent values take `ServerSettings::default()`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub threads: Option<usize>,
    pub grace_period: Option<Humane>,
    pub shutdown_timeout: Option<Humane>,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
}

/// `limits:`: request limits; absent values take `Limits::default()`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    pub keys: Option<Vec<KeyFile>>,
}

/// One gateway key: a secret (`key`) or its SHA-256 (`key_sha256`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub name: String,
    pub key: Option<String>,
    pub key_sha256: Option<String>,
    /// Glob allow-list; absent means every model.
    pub models: Option<Vec<String>>,
    pub limits: Option<RateLimitsFile>,
    pub budget: Option<BudgetFile>,
}

/// Per-key or per-model limits, per minute.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsFile {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
}

/// A key's spending cap per calendar period.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetFile {
    pub usd: f64,
    /// `day`, `week` or `month`; absent means `month`.
    pub period: Option<String>,
}

/// One provider account or fleet.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderFile {
    /// A dialect (`openai`, `azure_openai`, ...) or a preset id (`groq`, ...);
    /// absent means the provider's id, when that is a preset.
    #[serde(rename = "type")]
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
}

/// A provider's active health check; absent values take the provider's defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    /// HTTP path to GET; absent means a TCP connect check.
    pub path: Option<String>,
    pub interval: Option<Humane>,
    pub timeout: Option<Humane>,
}

/// One client-facing model name and where it goes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub targets: Vec<TargetFile>,
    pub limits: Option<RateLimitsFile>,
}

/// One target of a model: a provider, the upstream model id (absent = the
/// client's name), a weight within its tier (default 1) and a tier (default 0).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    pub provider: String,
    pub model: Option<String>,
    pub weight: Option<u32>,
    pub priority: Option<u32>,
}

/// `ratelimit:`: where the limit counters live.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
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

impl<'de> Deserialize<'de> for Humane {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HumaneVisitor;
        impl Visitor<'_> for HumaneVisitor {
            type Value = Humane;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like `30s` or a size like `32MiB`")
            }
            fn visit_str<E>(self, v: &str) -> Result<Humane, E> {
                Ok(Humane(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Humane, E> {
                Ok(Humane(v.to_string()))
            }
            // Kept as text so that units.rs explains what is wrong with them.
            fn visit_i64<E>(self, v: i64) -> Result<Humane, E> {
                Ok(Humane(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Humane, E> {
                Ok(Humane(v.to_string()))
            }
        }
        d.deserialize_any(HumaneVisitor)
    }
}

impl<'de> Deserialize<'de> for ListenFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListenVisitor;
        impl<'de> Visitor<'de> for ListenVisitor {
            type Value = ListenFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an address like \"0.0.0.0:8080\" or a list of them")
            }
            fn visit_str<E>(self, v: &str) -> Result<ListenFile, E> {
                Ok(ListenFile(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListenFile, A::Error> {
                let mut all = Vec::new();
                while let Some(address) = seq.next_element::<String>()? {
                    all.push(address);
                }
                Ok(ListenFile(all))
            }
        }
        d.deserialize_any(ListenVisitor)
    }
}

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
}

/// Reads the (already expanded) text. `Err` is a file that is not YAML or not
/// a mapping at all; nothing more can be said about it.
pub fn parse(text: &str) -> Result<Parsed, Problem> {
    let strict_error = match serde_yaml_ng::from_str::<FileConfig>(text) {
        Ok(file) => {
            return Ok(Parsed {
                file,
                ..Parsed::default()
            })
        }
        Err(err) => err,
    };
    let mut parsed = parse_by_entry(text)?;
    if parsed.problems.is_empty() {
        // Safety net: the entry-by-entry read must never pass what the whole
        // read refused.
        let (line, message) = locate::describe(&strict_error);
        parsed
            .problems
            .push(Problem::new(line.unwrap_or(1), message));
    }
    Ok(parsed)
}

/// The slow path: every section, provider, model and key on its own.
fn parse_by_entry(text: &str) -> Result<Parsed, Problem> {
    let top: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|err| {
        let (line, message) = locate::describe(&err);
        Problem::new(line.unwrap_or(1), format!("not valid YAML: {message}"))
    })?;
    let top = match top {
        serde_yaml_ng::Value::Mapping(top) => top,
        serde_yaml_ng::Value::Null => serde_yaml_ng::Mapping::new(),
        _ => {
            return Err(Problem::new(
                1,
                "the file must be a mapping of settings (listen:, providers:, models:, ...)",
            ))
        }
    };
    let mut parsed = Parsed::default();
    for key in top.keys() {
        match key.as_str() {
            Some(k) if TOP_LEVEL_KEYS.contains(&k) => {}
            _ => {
                let name = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_string);
                let line = locate::line_for(text, &[Seg::Key(&name)]);
                parsed.problems.push(Problem::new(
                    line,
                    format!(
                        "unknown key `{name}`; expected one of: {}",
                        TOP_LEVEL_KEYS.join(", ")
                    ),
                ));
            }
        }
    }

    let problems = &mut parsed.problems;
    let file = &mut parsed.file;
    file.listen = read(text, &[Seg::Key("listen")], problems).flatten();
    file.admin = read(text, &[Seg::Key("admin")], problems).flatten();
    file.server = read(text, &[Seg::Key("server")], problems).flatten();
    file.limits = read(text, &[Seg::Key("limits")], problems).flatten();
    file.ratelimit = read(text, &[Seg::Key("ratelimit")], problems).flatten();
    file.access_log = read(text, &[Seg::Key("access_log")], problems).flatten();

    // auth: the list first, then each key.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AuthOutline {
        keys: Option<Vec<IgnoredAny>>,
    }
    match read::<Option<AuthOutline>>(text, &[Seg::Key("auth")], problems) {
        None => parsed.auth_broken = true,
        Some(None) => {}
        Some(Some(outline)) => {
            let count = outline.keys.as_ref().map_or(0, Vec::len);
            let mut keys = Vec::new();
            for i in 0..count {
                let path = [Seg::Key("auth"), Seg::Key("keys"), Seg::Index(i)];
                match read::<KeyFile>(text, &path, problems) {
                    Some(key) => keys.push(key),
                    None => parsed.auth_broken = true,
                }
            }
            file.auth = Some(AuthFile {
                keys: outline.keys.map(|_| keys),
            });
        }
    }

    match read_entries::<ProviderFile>(text, "providers", problems) {
        None => parsed.providers_broken = true,
        Some(entries) => {
            let mut providers = BTreeMap::new();
            for (id, entry) in entries {
                match entry {
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
    if let Some(entries) = read_entries::<ModelFile>(text, "models", problems) {
        file.models = Some(
            entries
                .into_iter()
                .filter_map(|(name, model)| Some((name, model?)))
                .collect(),
        );
    }
    Ok(parsed)
}

/// Reads the node at `path` as `T`. `None` when it did not parse (the problem
/// is recorded); `Some(None)`-like absence is up to `T` (use `Option<_>`).
fn read<T: DeserializeOwned>(text: &str, path: &[Seg], problems: &mut Vec<Problem>) -> Option<T> {
    match locate::deserialize_at::<T>(text, path) {
        Ok(Some(value)) => Some(value),
        // Absent: let `T` decide what an absent node means (None for Option).
        Ok(None) => T::deserialize(de::value::UnitDeserializer::<de::value::Error>::new()).ok(),
        Err(err) => {
            let (line, message) = locate::describe(&err);
            let line = line.unwrap_or_else(|| locate::line_for(text, path));
            problems.push(Problem::new(line, message));
            None
        }
    }
}

/// Reads a mapping section (`providers`, `models`) entry by entry: `None` when
/// the section itself is malformed, else each name with its entry (`None`
/// where that entry did not parse).
fn read_entries<T: DeserializeOwned>(
    text: &str,
    section: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<(String, Option<T>)>> {
    let names = read::<Option<BTreeMap<String, IgnoredAny>>>(text, &[Seg::Key(section)], problems)?;
    Some(
        names
            .unwrap_or_default()
            .into_keys()
            .map(|name| {
                let entry = read::<T>(text, &[Seg::Key(section), Seg::Key(&name)], problems);
                (name, entry)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_keys_match_the_struct() {
        // A file naming every top-level key with a null value parses both ways.
        let text: String = TOP_LEVEL_KEYS.iter().map(|k| format!("{k}:\n")).collect();
        assert!(serde_yaml_ng::from_str::<FileConfig>(&text).is_ok());
        let parsed = parse_by_entry(&text).unwrap();
        assert_eq!(parsed.problems, vec![]);
    }

    #[test]
    fn listen_takes_one_or_many() {
        let one: FileConfig = serde_yaml_ng::from_str("listen: 0.0.0.0:1").unwrap();
        assert_eq!(one.listen, Some(ListenFile(vec!["0.0.0.0:1".into()])));
        let many: FileConfig = serde_yaml_ng::from_str("listen: [a, b]").unwrap();
        assert_eq!(many.listen, Some(ListenFile(vec!["a".into(), "b".into()])));
    }

    #[test]
    fn humane_values_accept_strings_and_numbers() {
        let s: ServerFile =
            serde_yaml_ng::from_str("{grace_period: 30s, shutdown_timeout: 10}").unwrap();
        assert_eq!(s.grace_period, Some(Humane("30s".into())));
        assert_eq!(s.shutdown_timeout, Some(Humane("10".into())));
    }

    #[test]
    fn a_clean_file_is_read_in_one_go() {
        let parsed = parse("providers:\n  openai: { type: openai }\n").unwrap();
        assert!(parsed.problems.is_empty());
        assert!(parsed.file.providers.unwrap().contains_key("openai"));
    }

    #[test]
    fn every_bad_entry_is_reported_at_its_line() {
        let text = "\
listen: [\"127.0.0.1:8080\"]
colour: blue
server: { threads: many }
providers:
  good: { type: openai }
  bad:
    type: openai
    endpoint_list: [x]
models:
  m1:
    targets: [ { provider: good, wieght: 2 } ]
  m2:
    targets: [ { provider: bad } ]
auth:
  keys:
    - { name: a, key: x }
    - { name: b, key: y, extra: 1 }
";
        let parsed = parse(text).unwrap();
        let lines: Vec<usize> = parsed.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 17, 8, 11], "{:#?}", parsed.problems);
        assert!(parsed.problems[0].message.contains("unknown key `colour`"));
        assert!(parsed.problems[1]
            .message
            .starts_with("server.threads: invalid type"));
        assert!(parsed.problems[3]
            .message
            .contains("unknown field `endpoint_list`"));
        assert!(parsed.problems[4]
            .message
            .contains("unknown field `wieght`"));
        assert!(parsed.broken_providers.contains("bad"));
        assert!(parsed.auth_broken);
        let file = parsed.file;
        assert!(file.providers.unwrap().contains_key("good"));
        assert_eq!(file.models.unwrap().len(), 1);
        assert_eq!(file.auth.unwrap().keys.unwrap().len(), 1);
        assert!(file.listen.is_some());
    }

    #[test]
    fn not_yaml_or_not_a_mapping_stops_at_once() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.starts_with("not valid YAML"), "{}", err.message);
        let err = parse("- 1\n- 2\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(parse("").unwrap().problems.is_empty());
    }
}
