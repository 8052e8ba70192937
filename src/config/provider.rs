//! One provider entry (from the file, or made up from the environment in
//! zero-config mode) turned into a [`Provider`]: the preset fills in what the
//! entry leaves out, then everything is checked.
//!
//! Precedence, for the place a provider lives: `endpoints` (a pool), then
//! `base_url`/`endpoint`, then the preset's override variable
//! (`<ID>_BASE_URL`, the Azure endpoint, `OLLAMA_HOST`), then the preset's
//! default (or one derived from the region for Bedrock and Vertex).
//!
//! For the secret: `api_key`, else the preset's key variable. A pool the
//! operator lists by hand (`endpoints`) gets only the key written for it, so
//! that a cloud key never travels to a self-hosted server by accident.
//!
//! In a file, a preset fills in only its base URL and key variable; settings
//! such as Azure's `api_version` are taken from the entry alone, so that a
//! stray variable cannot change how a configured provider is called.

use std::time::Duration;

use super::address::{self, BaseUrl};
use super::env::var;
use super::file::{HealthCheckFile, ProviderFile, RoutingFile};
use super::locate::Seg;
use super::model::{Balance, Dialect, Endpoint, HealthCheck, Provider, Routing};
use super::presets::{self, Kind, Preset};
use super::units;

/// A problem with one provider entry: where in the entry (a key path
/// relative to it; empty = the entry itself) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderProblem {
    pub at: Vec<Seg<'static>>,
    pub message: String,
}

fn problem(at: &[Seg<'static>], message: String) -> ProviderProblem {
    ProviderProblem {
        at: at.to_vec(),
        message,
    }
}

/// The health check a provider gets unless its entry says otherwise: a TCP
/// connect for cloud APIs (never spend money or quota on probes), HTTP for the
/// self-hosted servers whose health path is known.
fn default_health_check(kind: Kind) -> HealthCheck {
    match kind {
        Kind::Vllm => HealthCheck {
            path: Some("/health".into()),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
        },
        // Ollama answers `GET /` with "Ollama is running".
        Kind::Ollama => HealthCheck {
            path: Some("/".into()),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
        },
        _ => HealthCheck {
            path: None,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
        },
    }
}

/// Resolves the entry `spec` of provider `id`, looking variables up in `env`.
/// Collects every problem rather than stopping at the first.
pub(crate) fn resolve(
    id: &str,
    spec: &ProviderFile,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Provider, Vec<ProviderProblem>> {
    let mut problems = Vec::new();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        problems.push(problem(
            &[],
            format!("provider id `{id}` may only hold letters, digits, `.`, `_` and `-` (it is used in `provider/model`)"),
        ));
    }
    let preset = match spec.kind.as_deref() {
        Some(kind) => presets::for_type(kind).ok_or_else(|| {
            problem(
                &[Seg::Key("type")],
                format!(
                    "unknown provider type `{kind}`: use {}",
                    presets::type_names()
                ),
            )
        }),
        None => presets::for_type(id).ok_or_else(|| {
            problem(
                &[],
                format!("provider `{id}` needs a `type`: {}", presets::type_names()),
            )
        }),
    };
    let preset = match preset {
        Ok(preset) => preset,
        Err(p) => {
            problems.push(p);
            return Err(problems);
        }
    };

    let region = region(preset, spec, env, &mut problems);
    let location = location(id, preset, spec, region.as_deref(), env, &mut problems);
    let pool = spec.endpoints.is_some();
    let api_key = api_key(id, preset, spec, pool, env, &mut problems);
    // A fleet: more than one server to choose between.
    let fleet = matches!(&location, Some((endpoints, _)) if endpoints.len() > 1);
    let balance = balance(spec.balance.as_deref(), fleet, &mut problems);
    let routing = routing(spec.routing.as_ref(), &mut problems);
    let round_robin = match spec.balance.as_deref().map(|v| v.replace('-', "_")) {
        Some(v) => v == "round_robin",
        None => !fleet,
    };
    if spec.routing.is_some() && round_robin {
        // Nothing would read them: refused rather than accepted and ignored.
        problems.push(problem(
            &[Seg::Key("routing")],
            "routing applies to balance least_loaded or prefix_affinity (the default for a pool of more than one endpoint); this provider is balanced round robin".into(),
        ));
    }
    let health_check = health_check(preset.kind, spec.health_check.as_ref(), &mut problems);

    match location {
        Some((endpoints, base_path)) if problems.is_empty() => Ok(Provider {
            id: id.to_string(),
            dialect: preset.dialect,
            endpoints,
            base_path,
            discover_models: preset.dialect == Dialect::OpenAi && api_key.is_none(),
            api_key,
            balance,
            routing,
            health_check,
            api_version: non_empty(&spec.api_version),
            region,
            aws: aws_keys(preset, env),
        }),
        _ => Err(problems),
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|v| !v.trim().is_empty()).cloned()
}

/// The region: the entry's, else the variable its dialect reads.
fn region(
    preset: &Preset,
    spec: &ProviderFile,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<ProviderProblem>,
) -> Option<String> {
    let region = non_empty(&spec.region).or_else(|| match preset.kind {
        Kind::Bedrock => var(env, "AWS_REGION"),
        Kind::Vertex => var(env, "VERTEX_AI_REGION"),
        _ => None,
    })?;
    if region
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some(region)
    } else {
        problems.push(problem(
            &[Seg::Key("region")],
            format!("region `{region}` is not a region name (e.g. us-east-1, europe-west4)"),
        ));
        None
    }
}

/// Where the provider lives: its endpoints and base path.
fn location(
    id: &str,
    preset: &Preset,
    spec: &ProviderFile,
    region: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<ProviderProblem>,
) -> Option<(Vec<Endpoint>, String)> {
    // Pool entries written as bare host:port get the dialect's usual prefix.
    let pool_prefix = if preset.dialect == Dialect::OpenAi {
        "/v1"
    } else {
        ""
    };
    let base_url = non_empty(&spec.base_url);
    let endpoint = non_empty(&spec.endpoint);
    if base_url.is_some() && endpoint.is_some() {
        problems.push(problem(
            &[Seg::Key("endpoint")],
            "base_url and endpoint mean the same here: give only one".into(),
        ));
        return None;
    }
    let single = base_url
        .map(|url| (url, Seg::Key("base_url")))
        .or(endpoint.map(|url| (url, Seg::Key("endpoint"))));

    if let Some(entries) = &spec.endpoints {
        if single.is_some() {
            problems.push(problem(
                &[Seg::Key("endpoints")],
                "give either endpoints (a pool) or base_url/endpoint (one server), not both".into(),
            ));
            return None;
        }
        return pool(entries, pool_prefix, &[Seg::Key("endpoints")], "", problems);
    }
    if let Some((url, field)) = single {
        return one_url(preset, &url, problems, &[field], "");
    }
    if let Some(name) = preset.base_url_var {
        if let Some(url) = var(env, name) {
            return one_url(preset, &url, problems, &[], &format!("{name}: "));
        }
    }
    if preset.kind == Kind::Vllm {
        let Some(list) = var(env, "VLLM_ENDPOINTS") else {
            problems.push(problem(
                &[Seg::Key("endpoints")],
                format!("provider `{id}` needs its servers: write `endpoints: [\"10.0.0.1:8000\", ...]` or set VLLM_ENDPOINTS"),
            ));
            return None;
        };
        let entries: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        return pool(&entries, pool_prefix, &[], "VLLM_ENDPOINTS: ", problems);
    }
    if let Some(url) = preset.base_url {
        return one_url(preset, url, problems, &[], "");
    }
    let derived = match (preset.kind, region) {
        (Kind::Bedrock, Some(region)) => format!("https://bedrock-runtime.{region}.amazonaws.com"),
        (Kind::Vertex, Some("global")) => "https://aiplatform.googleapis.com".to_string(),
        (Kind::Vertex, Some(region)) => format!("https://{region}-aiplatform.googleapis.com"),
        (Kind::Bedrock, None) => {
            problems.push(problem(
                &[Seg::Key("region")],
                format!(
                    "provider `{id}` needs a region: write `region: us-east-1` or set AWS_REGION"
                ),
            ));
            return None;
        }
        (Kind::Vertex, None) => {
            problems.push(problem(
                &[Seg::Key("region")],
                format!("provider `{id}` needs a region: write `region: us-central1` or set VERTEX_AI_REGION"),
            ));
            return None;
        }
        _ => {
            let var_hint = preset
                .base_url_var
                .map(|v| format!(" or set {v}"))
                .unwrap_or_default();
            let example = if preset.dialect == Dialect::AzureFoundry {
                "https://<resource>.services.ai.azure.com"
            } else {
                "https://<resource>.openai.azure.com"
            };
            problems.push(problem(
                &[Seg::Key("endpoint")],
                format!(
                    "provider `{id}` needs its resource URL: write `endpoint: {example}`{var_hint}"
                ),
            ));
            return None;
        }
    };
    one_url(preset, &derived, problems, &[], "")
}

/// One URL. Ollama's is a host (`OLLAMA_HOST` style: `host:port` or a URL
/// without a path), under which its OpenAI API sits at `/v1`.
fn one_url(
    preset: &Preset,
    url: &str,
    problems: &mut Vec<ProviderProblem>,
    at: &[Seg<'static>],
    prefix: &str,
) -> Option<(Vec<Endpoint>, String)> {
    let parsed = if preset.kind == Kind::Ollama {
        address::parse_pool_entry(url, "/v1").map(|mut base| {
            if base.base_path.is_empty() {
                base.base_path = "/v1".into();
            }
            base
        })
    } else {
        address::parse_url(url)
    };
    match parsed {
        Ok(BaseUrl {
            endpoint,
            base_path,
        }) => Some((vec![endpoint], base_path)),
        Err(why) => {
            problems.push(problem(at, format!("{prefix}{why}")));
            None
        }
    }
}

/// A pool: every entry parsed, all under one base path.
fn pool(
    entries: &[String],
    default_prefix: &str,
    at: &[Seg<'static>],
    prefix: &str,
    problems: &mut Vec<ProviderProblem>,
) -> Option<(Vec<Endpoint>, String)> {
    if entries.is_empty() {
        problems.push(problem(
            at,
            format!("{prefix}the endpoint list is empty: name at least one host:port"),
        ));
        return None;
    }
    let mut endpoints = Vec::new();
    let mut base_path: Option<String> = None;
    let mut ok = true;
    for (i, entry) in entries.iter().enumerate() {
        let mut here = at.to_vec();
        if !at.is_empty() {
            here.push(Seg::Index(i));
        }
        match address::parse_pool_entry(entry, default_prefix) {
            Ok(base) => {
                match &base_path {
                    Some(path) if *path != base.base_path => {
                        problems.push(problem(
                            &here,
                            format!("{prefix}endpoint `{entry}` has path `{}` but the others have `{path}`: one pool serves one path prefix", base.base_path),
                        ));
                        ok = false;
                    }
                    Some(_) => {}
                    None => base_path = Some(base.base_path),
                }
                endpoints.push(base.endpoint);
            }
            Err(why) => {
                problems.push(problem(&here, format!("{prefix}{why}")));
                ok = false;
            }
        }
    }
    match base_path {
        Some(path) if ok => Some((endpoints, path)),
        _ => None,
    }
}

/// The secret: the entry's, else the preset's variable; checks that the
/// credentials a dialect needs are there.
fn api_key(
    id: &str,
    preset: &Preset,
    spec: &ProviderFile,
    pool: bool,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<ProviderProblem>,
) -> Option<String> {
    if let Some(key) = non_empty(&spec.api_key) {
        return Some(key);
    }
    if pool {
        return None;
    }
    // Points at `api_key:` when it is written (an unset `${VAR}` leaves it
    // empty), else, since the line lookup falls back, at the entry.
    let at: &[Seg<'static>] = &[Seg::Key("api_key")];
    match preset.kind {
        Kind::Hosted | Kind::Azure => {
            let name = preset.key_var?;
            let key = var(env, name);
            if key.is_none() {
                let keyless_hint = if preset.dialect == Dialect::OpenAi {
                    " (a keyless self-hosted server goes under `endpoints:` instead)"
                } else {
                    ""
                };
                problems.push(problem(
                    at,
                    format!("provider `{id}` has no API key: set {name}, or write `api_key: ${{{name}}}`{keyless_hint}"),
                ));
            }
            key
        }
        Kind::Bedrock => {
            let bearer = var(env, "AWS_BEARER_TOKEN_BEDROCK");
            let signing = var(env, "AWS_ACCESS_KEY_ID").is_some()
                && var(env, "AWS_SECRET_ACCESS_KEY").is_some();
            if bearer.is_none() && !signing {
                problems.push(problem(
                    at,
                    format!("provider `{id}` has no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if temporary), or AWS_BEARER_TOKEN_BEDROCK"),
                ));
            }
            bearer
        }
        Kind::Vertex => {
            if var(env, "GOOGLE_APPLICATION_CREDENTIALS").is_none() {
                problems.push(problem(
                    at,
                    format!("provider `{id}` has no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account JSON file"),
                ));
            }
            None
        }
        Kind::Ollama | Kind::Vllm => None,
    }
}

/// SigV4 keys for Bedrock, when no bearer token replaces signing.
fn aws_keys(
    preset: &Preset,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<super::model::AwsKeys> {
    if preset.kind != Kind::Bedrock || var(env, "AWS_BEARER_TOKEN_BEDROCK").is_some() {
        return None;
    }
    Some(super::model::AwsKeys {
        access_key_id: var(env, "AWS_ACCESS_KEY_ID")?,
        secret_access_key: var(env, "AWS_SECRET_ACCESS_KEY")?,
        session_token: var(env, "AWS_SESSION_TOKEN"),
    })
}

/// `balance`, with its default: `prefix_affinity` for an endpoint pool (a fleet), where it
/// costs nothing without prefix reuse (it falls back to least-loaded) and saves prefill with it;
/// round robin for a single API endpoint, where there is nothing to choose between.
fn balance(value: Option<&str>, pool: bool, problems: &mut Vec<ProviderProblem>) -> Balance {
    match value.map(|v| v.replace('-', "_")).as_deref() {
        None if pool => Balance::PrefixAffinity,
        None | Some("round_robin") => Balance::RoundRobin,
        Some("least_loaded") => Balance::LeastLoaded,
        Some("prefix_affinity") => Balance::PrefixAffinity,
        Some(_) => {
            problems.push(problem(
                &[Seg::Key("balance")],
                format!(
                    "unknown balance `{}`: use round_robin, least_loaded or prefix_affinity",
                    value.unwrap_or_default()
                ),
            ));
            Balance::RoundRobin
        }
    }
}

fn routing(file: Option<&RoutingFile>, problems: &mut Vec<ProviderProblem>) -> Routing {
    let mut r = Routing::default();
    let Some(file) = file else {
        return r;
    };
    let at = |field| [Seg::Key("routing"), Seg::Key(field)];
    if let Some(v) = &file.scrape_interval {
        match units::parse_duration(&v.0) {
            Ok(d) if d < std::time::Duration::from_millis(50) => problems.push(problem(
                &at("scrape_interval"),
                "routing.scrape_interval must be at least 50ms (250ms is the default)".into(),
            )),
            Ok(d) => r.scrape_interval = d,
            Err(why) => problems.push(problem(
                &at("scrape_interval"),
                format!("routing.scrape_interval: {why}"),
            )),
        }
    }
    if let Some(path) = &file.metrics_path {
        if path.starts_with('/') && !path.contains(char::is_whitespace) {
            r.metrics_path = path.clone();
        } else {
            problems.push(problem(
                &at("metrics_path"),
                format!("routing.metrics_path `{path}` must be a path starting with `/`"),
            ));
        }
    }
    if let Some(v) = &file.block_size {
        match units::parse_size(&v.0) {
            Ok(n) if (16..=65_536).contains(&n) => r.block_size = n as usize,
            Ok(n) => problems.push(problem(
                &at("block_size"),
                format!("routing.block_size {n}B is out of range: use 16B to 64KiB (256B is the default, ~64 tokens)"),
            )),
            Err(why) => problems.push(problem(
                &at("block_size"),
                format!("routing.block_size: {why}"),
            )),
        }
    }
    if let Some(n) = file.index_size {
        if (1..=16_777_216).contains(&n) {
            r.index_size = n as usize;
        } else {
            problems.push(problem(
                &at("index_size"),
                format!("routing.index_size {n} is out of range: use 1 to 16777216 blocks (65536 is the default)"),
            ));
        }
    }
    if let Some(n) = file.spill_threshold {
        match u32::try_from(n) {
            Ok(n) if n >= 1 => r.spill_threshold = n,
            _ => problems.push(problem(
                &at("spill_threshold"),
                format!("routing.spill_threshold {n} is out of range: use 1 or more requests (4 is the default)"),
            )),
        }
    }
    if let Some(on) = file.session_affinity {
        r.session_affinity = on;
    }
    if let Some(h) = &file.session_header {
        if !h.is_empty() && http::HeaderName::from_bytes(h.as_bytes()).is_ok() {
            r.session_header = h.to_ascii_lowercase();
        } else {
            problems.push(problem(
                &at("session_header"),
                format!("routing.session_header `{h}` is not a header name"),
            ));
        }
    }
    r
}

fn health_check(
    kind: Kind,
    file: Option<&HealthCheckFile>,
    problems: &mut Vec<ProviderProblem>,
) -> HealthCheck {
    let mut check = default_health_check(kind);
    let Some(file) = file else {
        return check;
    };
    if let Some(path) = &file.path {
        if path.starts_with('/') && !path.contains(char::is_whitespace) {
            check.path = Some(path.clone());
        } else {
            problems.push(problem(
                &[Seg::Key("health_check"), Seg::Key("path")],
                format!(
                    "health_check.path `{path}` must be a path starting with `/` (e.g. /health)"
                ),
            ));
        }
    }
    for (field, value, slot) in [
        ("interval", &file.interval, &mut check.interval),
        ("timeout", &file.timeout, &mut check.timeout),
    ] {
        let Some(value) = value else { continue };
        let at = [Seg::Key("health_check"), Seg::Key(field)];
        match units::parse_duration(&value.0) {
            Ok(d) if d.is_zero() => problems.push(problem(
                &at,
                format!("health_check.{field} must be more than 0 (e.g. 5s)"),
            )),
            Ok(d) => *slot = d,
            Err(why) => problems.push(problem(&at, format!("health_check.{field}: {why}"))),
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::Humane;

    fn env_with(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn typed(kind: &str) -> ProviderFile {
        ProviderFile {
            kind: Some(kind.into()),
            ..ProviderFile::default()
        }
    }

    fn messages(result: Result<Provider, Vec<ProviderProblem>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn preset_fills_url_and_key() {
        let env = env_with(&[("GROQ_API_KEY", "gsk")]);
        let p = resolve("groq", &typed("groq"), &env).unwrap();
        assert_eq!(p.dialect, Dialect::OpenAi);
        assert_eq!(p.endpoints[0].host, "api.groq.com");
        assert_eq!(p.endpoints[0].port, 443);
        assert!(p.endpoints[0].tls);
        assert_eq!(p.base_path, "/openai/v1");
        assert_eq!(p.api_key.as_deref(), Some("gsk"));
        assert!(!p.discover_models);
        assert_eq!(p.health_check, default_health_check(Kind::Hosted));
        // The type may be left out when the id is a preset.
        let p = resolve("groq", &ProviderFile::default(), &env).unwrap();
        assert_eq!(p.base_path, "/openai/v1");
    }

    #[test]
    fn base_url_moves_a_preset_and_keeps_its_key() {
        let env = env_with(&[
            ("OPENAI_API_KEY", "sk"),
            ("OPENAI_BASE_URL", "http://env:1/v1"),
        ]);
        let p = resolve("openai", &typed("openai"), &env).unwrap();
        assert_eq!(p.endpoints[0].host, "env");
        let spec = ProviderFile {
            base_url: Some("http://127.0.0.1:9000/proxy/v1/".into()),
            ..typed("openai")
        };
        let p = resolve("openai", &spec, &env).unwrap();
        assert_eq!(p.endpoints[0].host, "127.0.0.1");
        assert_eq!(p.base_path, "/proxy/v1");
        assert_eq!(p.api_key.as_deref(), Some("sk"));
    }

    #[test]
    fn missing_key_names_the_variable() {
        let env = env_with(&[]);
        let m = messages(resolve("mistral", &typed("mistral"), &env));
        assert_eq!(
            m,
            vec!["provider `mistral` has no API key: set MISTRAL_API_KEY, or write `api_key: ${MISTRAL_API_KEY}` (a keyless self-hosted server goes under `endpoints:` instead)"]
        );
        let spec = ProviderFile {
            api_key: Some(String::new()),
            ..typed("hugging-face")
        };
        let err = resolve("hf", &spec, &env).unwrap_err();
        assert_eq!(err[0].at, vec![Seg::Key("api_key")]);
        assert!(err[0].message.contains("HUGGING_FACE_API_KEY"));
    }

    #[test]
    fn pools_are_keyless_unless_told() {
        let env = env_with(&[("OPENAI_API_KEY", "sk")]);
        let spec = ProviderFile {
            endpoints: Some(vec!["10.1.0.11:8000".into(), "[fd00::2]:8000".into()]),
            balance: Some("least_loaded".into()),
            health_check: Some(HealthCheckFile {
                path: Some("/health".into()),
                interval: Some(Humane("5s".into())),
                timeout: Some(Humane("1s".into())),
            }),
            ..typed("openai")
        };
        let p = resolve("fleet", &spec, &env).unwrap();
        assert_eq!(p.api_key, None);
        assert!(p.discover_models);
        assert_eq!(p.base_path, "/v1");
        assert_eq!(p.endpoints.len(), 2);
        assert_eq!(p.endpoints[1].host, "fd00::2");
        assert!(!p.endpoints[0].tls);
        assert_eq!(p.balance, Balance::LeastLoaded);
        assert_eq!(
            p.health_check,
            HealthCheck {
                path: Some("/health".into()),
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn pool_problems_point_at_entries() {
        let env = env_with(&[]);
        let spec = ProviderFile {
            endpoints: Some(vec![
                "10.0.0.1:8000".into(),
                "nope".into(),
                "http://10.0.0.3:8000/other".into(),
            ]),
            ..typed("openai")
        };
        let err = resolve("fleet", &spec, &env).unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].at, vec![Seg::Key("endpoints"), Seg::Index(1)]);
        assert!(err[0].message.contains("needs a port"));
        assert_eq!(err[1].at, vec![Seg::Key("endpoints"), Seg::Index(2)]);
        assert!(err[1].message.contains("one path prefix"));
        let spec = ProviderFile {
            endpoints: Some(vec![]),
            base_url: Some("http://x/v1".into()),
            ..typed("openai")
        };
        assert!(messages(resolve("f", &spec, &env))[0].contains("not both"));
    }

    #[test]
    fn azure_needs_its_endpoint() {
        let env = env_with(&[("AZURE_OPENAI_API_KEY", "az")]);
        let m = messages(resolve("azure", &typed("azure_openai"), &env));
        assert!(m[0].contains("AZURE_OPENAI_ENDPOINT"), "{m:?}");
        let spec = ProviderFile {
            endpoint: Some("https://x.openai.azure.com".into()),
            api_version: Some("2025-01-01-preview".into()),
            ..typed("azure_openai")
        };
        let p = resolve("azure", &spec, &env).unwrap();
        assert_eq!(p.dialect, Dialect::AzureOpenAi);
        assert_eq!(p.endpoints[0].host, "x.openai.azure.com");
        assert_eq!(p.base_path, "");
        assert_eq!(p.api_key.as_deref(), Some("az"));
        assert_eq!(p.api_version.as_deref(), Some("2025-01-01-preview"));
    }

    #[test]
    fn bedrock_and_vertex_derive_their_hosts() {
        let env = env_with(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "s")]);
        let spec = ProviderFile {
            region: Some("us-east-1".into()),
            ..typed("bedrock")
        };
        let p = resolve("bedrock", &spec, &env).unwrap();
        assert_eq!(
            p.endpoints[0].host,
            "bedrock-runtime.us-east-1.amazonaws.com"
        );
        assert_eq!(p.region.as_deref(), Some("us-east-1"));
        assert_eq!(p.api_key, None);
        let m = messages(resolve("bedrock", &typed("bedrock"), &env_with(&[])));
        assert!(
            m[0].contains("AWS_REGION") && m[1].contains("AWS_ACCESS_KEY_ID"),
            "{m:?}"
        );

        let env = env_with(&[
            ("VERTEX_AI_REGION", "europe-west4"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "/sa.json"),
        ]);
        let p = resolve("vertex", &typed("vertex"), &env).unwrap();
        assert_eq!(p.dialect, Dialect::Vertex);
        assert_eq!(
            p.endpoints[0].host,
            "europe-west4-aiplatform.googleapis.com"
        );
        let spec = ProviderFile {
            region: Some("global".into()),
            ..typed("vertex")
        };
        let p = resolve("vertex", &spec, &env).unwrap();
        assert_eq!(p.endpoints[0].host, "aiplatform.googleapis.com");
    }

    #[test]
    fn ollama_and_vllm_are_self_hosted() {
        let env = env_with(&[
            ("OLLAMA_HOST", "0.0.0.0:11434"),
            ("VLLM_ENDPOINTS", "a:1, b:2"),
        ]);
        let p = resolve("ollama", &typed("ollama"), &env).unwrap();
        assert_eq!(p.endpoints[0].authority(), "0.0.0.0:11434");
        assert_eq!(p.base_path, "/v1");
        assert!(p.discover_models);
        assert_eq!(p.health_check.path.as_deref(), Some("/"));
        let p = resolve("vllm", &typed("vllm"), &env).unwrap();
        assert_eq!(p.endpoints.len(), 2);
        assert_eq!(p.base_path, "/v1");
        assert_eq!(p.health_check, default_health_check(Kind::Vllm));
        let m = messages(resolve("vllm", &typed("vllm"), &env_with(&[])));
        assert!(m[0].contains("VLLM_ENDPOINTS"));
        let p = resolve("ollama", &typed("ollama"), &env_with(&[])).unwrap();
        assert_eq!(p.endpoints[0].authority(), "127.0.0.1:11434");
    }

    #[test]
    fn bad_settings_are_each_reported() {
        let env = env_with(&[("OPENAI_API_KEY", "sk")]);
        let spec = ProviderFile {
            balance: Some("random".into()),
            health_check: Some(HealthCheckFile {
                path: Some("health".into()),
                interval: Some(Humane("0s".into())),
                timeout: Some(Humane("soon".into())),
            }),
            ..typed("openai")
        };
        let err = resolve("bad id!", &spec, &env).unwrap_err();
        let at: Vec<_> = err.iter().map(|p| p.at.clone()).collect();
        assert_eq!(
            at,
            vec![
                vec![],
                vec![Seg::Key("balance")],
                vec![Seg::Key("health_check"), Seg::Key("path")],
                vec![Seg::Key("health_check"), Seg::Key("interval")],
                vec![Seg::Key("health_check"), Seg::Key("timeout")],
            ]
        );
        let rr = ProviderFile {
            endpoints: Some(vec!["10.0.0.1:8000".into(), "10.0.0.2:8000".into()]),
            balance: Some("round_robin".into()),
            routing: Some(RoutingFile::default()),
            ..typed("openai")
        };
        let m = messages(resolve("rr", &rr, &env));
        assert!(
            m[0].starts_with("routing applies to balance least_loaded"),
            "{m:?}"
        );
        let fleet = ProviderFile {
            balance: None,
            ..rr
        };
        let p = resolve("fleet", &fleet, &env).unwrap();
        assert_eq!(p.balance, Balance::PrefixAffinity, "the default for a pool");
        let m = messages(resolve("x", &typed("gpt"), &env));
        assert!(m[0].starts_with("unknown provider type `gpt`: use openai, anthropic"));
        let m = messages(resolve("mine", &ProviderFile::default(), &env));
        assert!(m[0].contains("needs a `type`"));
    }
}
