//! Lowering the parsed file into the internal [`Config`], checking every
//! section and the references between them.
//!
//! Each problem is reported at the line of the key it is about (found with
//! `locate.rs`), and checking goes on after it, so that one run of
//! `switchyard check` lists everything there is to fix.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::address::parse_listen;
use super::diagnostic::Problem;
use super::file::{
    Humane, LimitsFile, ModelFile, Parsed, RateLimitFile, RateLimitsFile, ServerFile,
};
use super::keys::lower_keys;
use super::locate::{self, Seg};
use super::model::{
    Config, Limits, ModelRoute, RateLimitStore, RateLimits, ServerSettings, Target,
};
use super::provider;
use super::units;

/// Where lowering reports its problems: the text to find lines in, and the
/// problems so far.
pub(crate) struct Checker<'t> {
    text: &'t str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    /// Records `message` at the line of `path` (or of its nearest ancestor).
    pub fn report(&mut self, path: &[Seg], message: impl Into<String>) {
        let line = locate::line_for(self.text, path);
        self.problems.push(Problem::new(line, message));
    }
}

/// Why an open gateway (no keys) may not listen on `listen`, if it may not.
pub(crate) fn open_gateway_problem(listen: &[SocketAddr]) -> Option<String> {
    let exposed = listen
        .iter()
        .find(|addr| !addr.ip().to_canonical().is_loopback())?;
    Some(format!(
        "an open gateway may only listen on loopback (127.0.0.1/::1), not on {exposed}"
    ))
}

/// Lowers `parsed` (read from `text`, already expanded), resolving provider
/// presets against `env`. Returns the config, or every problem found,
/// including those `parsed` already carries.
pub(crate) fn lower(
    parsed: Parsed,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<Problem>> {
    let mut check = Checker {
        text,
        problems: parsed.problems,
    };
    let file = parsed.file;

    let listen = listen(file.listen.as_ref().map(|l| l.0.as_slice()), &mut check);
    let admin_listen = file.admin.as_ref().and_then(|admin| {
        parse_listen(admin.listen.as_deref()?)
            .map_err(|why| {
                check.report(
                    &[Seg::Key("admin"), Seg::Key("listen")],
                    format!("admin.listen: {why}"),
                )
            })
            .ok()
    });
    if let Some(admin) = admin_listen.filter(|a| listen.contains(a)) {
        check.report(
            &[Seg::Key("admin"), Seg::Key("listen")],
            format!("admin.listen {admin} is also a main listen address: give the admin listener its own port, or leave admin out"),
        );
    }
    let server = server(file.server.unwrap_or_default(), &mut check);
    let limits = limits(file.limits.unwrap_or_default(), &mut check);

    let key_entries = file.auth.and_then(|auth| auth.keys).unwrap_or_default();
    let keys = lower_keys(&key_entries, &mut check);
    if key_entries.is_empty() && !parsed.auth_broken {
        if let Some(why) = open_gateway_problem(&listen) {
            check.report(
                &[Seg::Key("listen")],
                format!("no auth.keys: {why}; add auth.keys, or listen on 127.0.0.1"),
            );
        }
    }

    // Every provider the file names, broken entries included: a target that
    // names a broken provider is not also "unknown".
    let mut declared: Vec<String> = parsed.broken_providers.iter().cloned().collect();
    let mut providers = BTreeMap::new();
    for (id, spec) in file.providers.unwrap_or_default() {
        declared.push(id.clone());
        match provider::resolve(&id, &spec, env) {
            Ok(p) => {
                providers.insert(id, p);
            }
            Err(problems) => {
                for p in problems {
                    let mut path = vec![Seg::Key("providers"), Seg::Key(&id)];
                    path.extend(p.at);
                    check.report(&path, p.message);
                }
            }
        }
    }
    declared.sort();

    let mut models = BTreeMap::new();
    for (name, model) in file.models.unwrap_or_default() {
        let providers_known = !parsed.providers_broken;
        let route = model_route(
            &name,
            &model,
            providers_known.then_some(&declared[..]),
            &mut check,
        );
        models.insert(name, route);
    }

    let ratelimit = ratelimit(file.ratelimit.unwrap_or_default(), &mut check);
    let access_log = match file.access_log {
        Some(path) if path.trim().is_empty() => {
            check.report(
                &[Seg::Key("access_log")],
                "access_log is empty: give a file path, or leave it out to log to stderr",
            );
            None
        }
        other => other.map(PathBuf::from),
    };

    if !check.problems.is_empty() {
        return Err(check.problems);
    }
    Ok(Config {
        listen,
        admin_listen,
        server,
        limits,
        keys,
        providers,
        models,
        ratelimit,
        access_log,
        warnings: Vec::new(),
    })
}

fn listen(addresses: Option<&[String]>, check: &mut Checker) -> Vec<SocketAddr> {
    let Some(addresses) = addresses else {
        return vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080)];
    };
    if addresses.is_empty() {
        check.report(
            &[Seg::Key("listen")],
            "listen is empty: give at least one address, e.g. 127.0.0.1:8080",
        );
    }
    addresses
        .iter()
        .enumerate()
        .filter_map(|(i, address)| {
            parse_listen(address)
                .map_err(|why| check.report(&[Seg::Key("listen"), Seg::Index(i)], why))
                .ok()
        })
        .collect()
}

/// A duration setting: `default` when absent; reported when malformed or,
/// unless `zero_ok`, zero.
fn duration(
    value: Option<&Humane>,
    path: &[Seg],
    default: Duration,
    zero_ok: bool,
    check: &mut Checker,
) -> Duration {
    let Some(value) = value else { return default };
    let name = dotted(path);
    match units::parse_duration(&value.0) {
        Ok(d) if d.is_zero() && !zero_ok => {
            check.report(path, format!("{name} must be more than 0 (e.g. 30s)"));
            default
        }
        Ok(d) => d,
        Err(why) => {
            check.report(path, format!("{name}: {why}"));
            default
        }
    }
}

/// `server.threads` style name of a key path, for messages.
fn dotted(path: &[Seg]) -> String {
    path.iter()
        .map(|seg| match seg {
            Seg::Key(k) => k.to_string(),
            Seg::Index(i) => format!("[{i}]"),
        })
        .collect::<Vec<_>>()
        .join(".")
        .replace(".[", "[")
}

fn server(file: ServerFile, check: &mut Checker) -> ServerSettings {
    let defaults = ServerSettings::default();
    let at = |field| [Seg::Key("server"), Seg::Key(field)];
    let threads = match file.threads {
        Some(0) => {
            check.report(&at("threads"), "server.threads must be at least 1");
            defaults.threads
        }
        Some(n) => n,
        None => defaults.threads,
    };
    let mut path_setting = |value: Option<String>, field: &'static str, default: String| match value
    {
        Some(p) if p.trim().is_empty() => {
            check.report(
                &at(field),
                format!("server.{field} is empty: give a file path, or leave it out"),
            );
            default
        }
        Some(p) => p,
        None => default,
    };
    let pid_file = path_setting(file.pid_file, "pid_file", defaults.pid_file);
    let upgrade_sock = path_setting(file.upgrade_sock, "upgrade_sock", defaults.upgrade_sock);
    ServerSettings {
        threads,
        // Zero grace is allowed: stop at once.
        grace_period: duration(
            file.grace_period.as_ref(),
            &at("grace_period"),
            defaults.grace_period,
            true,
            check,
        ),
        shutdown_timeout: duration(
            file.shutdown_timeout.as_ref(),
            &at("shutdown_timeout"),
            defaults.shutdown_timeout,
            true,
            check,
        ),
        pid_file,
        upgrade_sock,
    }
}

fn limits(file: LimitsFile, check: &mut Checker) -> Limits {
    let defaults = Limits::default();
    let at = |field| [Seg::Key("limits"), Seg::Key(field)];
    let max_request_body = size(
        file.max_request_body.as_ref(),
        "max_request_body",
        defaults.max_request_body,
        check,
    );
    let max_stream_event = size(
        file.max_stream_event.as_ref(),
        "max_stream_event",
        defaults.max_stream_event,
        check,
    );
    let default_max_tokens = match file.default_max_tokens {
        Some(0) => {
            check.report(
                &at("default_max_tokens"),
                "limits.default_max_tokens must be at least 1",
            );
            defaults.default_max_tokens
        }
        Some(n) => n,
        None => defaults.default_max_tokens,
    };
    Limits {
        max_request_body,
        connect_timeout: duration(
            file.connect_timeout.as_ref(),
            &at("connect_timeout"),
            defaults.connect_timeout,
            false,
            check,
        ),
        first_byte_timeout: duration(
            file.first_byte_timeout.as_ref(),
            &at("first_byte_timeout"),
            defaults.first_byte_timeout,
            false,
            check,
        ),
        idle_timeout: duration(
            file.idle_timeout.as_ref(),
            &at("idle_timeout"),
            defaults.idle_timeout,
            false,
            check,
        ),
        default_max_tokens,
        header_read_timeout: duration(
            file.header_read_timeout.as_ref(),
            &at("header_read_timeout"),
            defaults.header_read_timeout,
            false,
            check,
        ),
        body_read_timeout: duration(
            file.body_read_timeout.as_ref(),
            &at("body_read_timeout"),
            defaults.body_read_timeout,
            false,
            check,
        ),
        max_stream_event,
    }
}

/// A `limits.<field>` size in bytes, more than 0; the default when absent or wrong.
fn size(value: Option<&Humane>, field: &'static str, default: usize, check: &mut Checker) -> usize {
    let at = [Seg::Key("limits"), Seg::Key(field)];
    let Some(value) = value else {
        return default;
    };
    match units::parse_size(&value.0).map(usize::try_from) {
        Ok(Ok(bytes)) if bytes > 0 => bytes,
        Ok(Ok(_)) => {
            check.report(
                &at,
                format!("limits.{field} must be more than 0 (e.g. 32MiB)"),
            );
            default
        }
        Ok(Err(_)) => {
            check.report(&at, format!("limits.{field} is too large for this machine"));
            default
        }
        Err(why) => {
            check.report(&at, format!("limits.{field}: {why}"));
            default
        }
    }
}

/// Per-key or per-model limits; `None` when none is set. A limit of 0 would
/// refuse everything, which is never what was meant.
pub(crate) fn rate_limits(
    file: &RateLimitsFile,
    at: &[Seg],
    check: &mut Checker,
) -> Option<RateLimits> {
    for (field, value) in [
        ("requests_per_minute", file.requests_per_minute),
        ("tokens_per_minute", file.tokens_per_minute),
    ] {
        if value == Some(0) {
            let mut path = at.to_vec();
            path.push(Seg::Key(field));
            check.report(
                &path,
                format!("{field} 0 would refuse every request: leave it out for no limit"),
            );
        }
    }
    if file.requests_per_minute.is_none() && file.tokens_per_minute.is_none() {
        return None;
    }
    Some(RateLimits {
        requests_per_minute: file.requests_per_minute,
        tokens_per_minute: file.tokens_per_minute,
    })
}

/// One model. `declared` is every provider id the file names, or `None` when
/// the providers section is too broken to tell.
fn model_route(
    name: &str,
    model: &ModelFile,
    declared: Option<&[String]>,
    check: &mut Checker,
) -> ModelRoute {
    let entry = [Seg::Key("models"), Seg::Key(name)];
    if name.trim().is_empty() {
        check.report(&entry, "a model needs a name");
    }
    if model.targets.is_empty() {
        check.report(
            &[Seg::Key("models"), Seg::Key(name), Seg::Key("targets")],
            format!("model `{name}` has no targets: add at least one `{{ provider: <id> }}`"),
        );
    }
    let mut targets = Vec::new();
    for (i, target) in model.targets.iter().enumerate() {
        let at = |field| {
            [
                Seg::Key("models"),
                Seg::Key(name),
                Seg::Key("targets"),
                Seg::Index(i),
                Seg::Key(field),
            ]
        };
        let provider = target.provider.as_deref().unwrap_or_default();
        if let Some(declared) =
            declared.filter(|d| target.provider.is_some() && !d.iter().any(|p| p == provider))
        {
            let known = if declared.is_empty() {
                "no providers are defined".to_string()
            } else {
                format!("defined: {}", declared.join(", "))
            };
            check.report(
                &at("provider"),
                format!(
                    "model `{name}` targets unknown provider `{provider}` ({known}): define it under providers:"
                ),
            );
        }
        if target.weight == Some(0) {
            check.report(
                &at("weight"),
                format!("weight 0 sends no traffic to `{provider}`: give it a weight of at least 1, or remove the target"),
            );
        }
        if target.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            check.report(
                &at("model"),
                "the target's model is empty: name the upstream model, or leave model out to pass the name through",
            );
        }
        targets.push(Target {
            provider: provider.to_string(),
            model: target.model.clone(),
            weight: target.weight.unwrap_or(1),
            priority: target.priority.unwrap_or(0),
        });
    }
    let limits = model.limits.as_ref().and_then(|l| {
        rate_limits(
            l,
            &[Seg::Key("models"), Seg::Key(name), Seg::Key("limits")],
            check,
        )
    });
    ModelRoute { targets, limits }
}

fn ratelimit(file: RateLimitFile, check: &mut Checker) -> RateLimitStore {
    let at = |field| [Seg::Key("ratelimit"), Seg::Key(field)];
    let fail_open = match file.on_store_error.as_deref() {
        None | Some("fail_closed") => false,
        Some("fail_open") => true,
        Some(other) => {
            check.report(
                &at("on_store_error"),
                format!("unknown on_store_error `{other}`: use fail_closed or fail_open"),
            );
            false
        }
    };
    match file.store.as_deref() {
        None | Some("memory") => {
            if file.url.is_some() {
                check.report(&at("url"), "ratelimit.url is only used with `store: redis`");
            }
            RateLimitStore::Memory
        }
        Some("redis") => match file.url {
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                RateLimitStore::Redis { url, fail_open }
            }
            Some(url) => {
                check.report(
                    &at("url"),
                    format!(
                        "ratelimit.url `{}` is not a Redis URL: write redis://host:6379 (or rediss:// for TLS)",
                        super::address::shown(&url)
                    ),
                );
                RateLimitStore::Memory
            }
            None => {
                check.report(
                    &at("store"),
                    "`store: redis` needs a url: write `url: redis://127.0.0.1:6379`",
                );
                RateLimitStore::Memory
            }
        },
        Some(other) => {
            check.report(
                &at("store"),
                format!("unknown ratelimit store `{other}`: use memory or redis"),
            );
            RateLimitStore::Memory
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_when_open() {
        let addrs = |list: &[&str]| -> Vec<SocketAddr> {
            list.iter().map(|a| a.parse().unwrap()).collect()
        };
        assert_eq!(
            open_gateway_problem(&addrs(&["127.0.0.1:8080", "[::1]:8080"])),
            None
        );
        assert_eq!(
            open_gateway_problem(&addrs(&["[::ffff:127.0.0.1]:8080"])),
            None
        );
        let why = open_gateway_problem(&addrs(&["127.0.0.1:1", "0.0.0.0:8080"])).unwrap();
        assert!(why.ends_with("not on 0.0.0.0:8080"), "{why}");
    }

    #[test]
    fn dotted_names() {
        assert_eq!(
            dotted(&[Seg::Key("a"), Seg::Index(2), Seg::Key("b")]),
            "a[2].b"
        );
    }
}
