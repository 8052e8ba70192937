//! Whole-file tests: the spec's example loads into the expected [`Config`],
//! and a bad file yields every problem at its line.

use std::net::SocketAddr;
use std::time::Duration;

use super::keys::hash_secret;
use super::*;

/// The example of the spec's section 3, plus a hashed key and per-model limits.
const EXAMPLE: &str = r#"listen: ["0.0.0.0:8080"]
admin: { listen: "127.0.0.1:9090" }        # /metrics, /healthz, /readyz
server: { threads: 2, grace_period: 30s, shutdown_timeout: 10s, pid_file: /run/switchyard/switchyard.pid, upgrade_sock: /run/switchyard/upgrade.sock }
limits: { max_request_body: 32MiB, connect_timeout: 2s, first_byte_timeout: 60s, idle_timeout: 60s, default_max_tokens: 4096 }

auth:
  keys:                                     # gateway keys
    - name: team-a
      key: ${TEAM_A_KEY}                    # or key_sha256: <hex>
      models: ["gpt-4o*", "llama-*"]       # glob allow-list; absent = all models
      limits: { requests_per_minute: 600, tokens_per_minute: 200000 }
      budget: { usd: 100, period: month }  # period: day | week | month
    - name: team-b
      key_sha256: BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD
      budget: { usd: 0.5, period: day }

providers:                                  # named upstream accounts and fleets
  openai:   { type: openai, api_key: ${OPENAI_API_KEY} }
  claude:   { type: anthropic, api_key: ${ANTHROPIC_API_KEY} }
  bedrock:  { type: bedrock, region: us-east-1 }                     # credentials from the AWS env vars
  azure:    { type: azure_openai, endpoint: https://x.openai.azure.com, api_key: ${AZURE_OPENAI_API_KEY}, api_version: 2025-01-01-preview }
  groq:     { type: groq }
  fleet:
    type: openai                            # any OpenAI-compatible server
    endpoints: ["10.1.0.11:8000", "10.1.0.12:8000"]
    balance: least_loaded                   # round_robin | least_loaded | prefix_affinity
    health_check: { path: /health, interval: 5s, timeout: 1s }

models:                                     # what clients may ask for, and where it goes
  gpt-4o-mini:
    limits: { requests_per_minute: 6000, tokens_per_minute: 2000000 }
    targets:
      - { provider: openai, weight: 3 }                               # model name passes through unchanged
      - { provider: azure, model: prod-4o-mini, weight: 1 }
      - { provider: bedrock, model: "anthropic.claude-3-5-haiku-20241022-v1:0", priority: 1 }   # fallback tier
  llama-3.1-8b:
    targets: [ { provider: fleet, model: meta-llama/Llama-3.1-8B-Instruct } ]

ratelimit: { store: memory }                # or: { store: redis, url: "redis://127.0.0.1:6379", on_store_error: fail_closed }
"#;

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn example_env() -> impl Fn(&str) -> Option<String> {
    env_of(&[
        ("TEAM_A_KEY", "sk-team-a"),
        ("OPENAI_API_KEY", "sk-openai"),
        ("ANTHROPIC_API_KEY", "sk-ant"),
        ("AZURE_OPENAI_API_KEY", "az-key"),
        ("GROQ_API_KEY", "gsk"),
        ("AWS_ACCESS_KEY_ID", "AKIA"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ])
}

fn endpoint(host: &str, port: u16, tls: bool) -> Endpoint {
    Endpoint {
        host: host.into(),
        port,
        tls,
    }
}

fn messages(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_spec_example_loads() {
    let config = load_str("example.yaml", EXAMPLE, &example_env())
        .unwrap_or_else(|d| panic!("{}", messages(&d)));

    assert_eq!(
        config.listen,
        vec!["0.0.0.0:8080".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(config.admin_listen, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(
        config.server,
        ServerSettings {
            threads: 2,
            grace_period: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            pid_file: "/run/switchyard/switchyard.pid".into(),
            upgrade_sock: "/run/switchyard/upgrade.sock".into(),
        }
    );
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.ratelimit, RateLimitStore::Memory);
    assert_eq!(config.access_log, None);

    // Keys: only digests are kept.
    assert_eq!(config.keys.len(), 2);
    let a = &config.keys[0];
    assert_eq!(a.name, "team-a");
    assert_eq!(a.sha256, hash_secret("sk-team-a"));
    assert_eq!(a.models, vec!["gpt-4o*", "llama-*"]);
    assert_eq!(
        a.limits,
        Some(RateLimits {
            requests_per_minute: Some(600),
            tokens_per_minute: Some(200_000)
        })
    );
    assert_eq!(
        a.budget,
        Some(Budget {
            usd: 100.0,
            period: BudgetPeriod::Month
        })
    );
    let b = &config.keys[1];
    assert_eq!(b.sha256, hash_secret("abc"));
    assert!(b.models.is_empty());
    assert_eq!(b.limits, None);
    assert_eq!(
        b.budget,
        Some(Budget {
            usd: 0.5,
            period: BudgetPeriod::Day
        })
    );
    assert!(!format!("{:?}", config).contains("sk-team-a"));

    // Providers.
    let ids: Vec<&str> = config.providers.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        vec!["azure", "bedrock", "claude", "fleet", "groq", "openai"]
    );
    let cloud_check = HealthCheck {
        path: None,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
    };
    let openai = &config.providers["openai"];
    assert_eq!(openai.id, "openai");
    assert_eq!(openai.dialect, Dialect::OpenAi);
    assert_eq!(
        openai.endpoints,
        vec![endpoint("api.openai.com", 443, true)]
    );
    assert_eq!(openai.base_path, "/v1");
    assert_eq!(openai.api_key.as_deref(), Some("sk-openai"));
    assert_eq!(openai.health_check, cloud_check);
    assert_eq!(openai.balance, Balance::RoundRobin);
    assert!(!openai.discover_models);

    let claude = &config.providers["claude"];
    assert_eq!(claude.dialect, Dialect::Anthropic);
    assert_eq!(
        claude.endpoints,
        vec![endpoint("api.anthropic.com", 443, true)]
    );
    assert_eq!(claude.base_path, "");
    assert_eq!(claude.api_key.as_deref(), Some("sk-ant"));

    let bedrock = &config.providers["bedrock"];
    assert_eq!(bedrock.dialect, Dialect::Bedrock);
    assert_eq!(bedrock.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        bedrock.endpoints,
        vec![endpoint(
            "bedrock-runtime.us-east-1.amazonaws.com",
            443,
            true
        )]
    );
    assert_eq!(bedrock.api_key, None);

    let azure = &config.providers["azure"];
    assert_eq!(azure.dialect, Dialect::AzureOpenAi);
    assert_eq!(
        azure.endpoints,
        vec![endpoint("x.openai.azure.com", 443, true)]
    );
    assert_eq!(azure.base_path, "");
    assert_eq!(azure.api_key.as_deref(), Some("az-key"));
    assert_eq!(azure.api_version.as_deref(), Some("2025-01-01-preview"));

    // A preset type without api_key takes its variable.
    let groq = &config.providers["groq"];
    assert_eq!(groq.endpoints, vec![endpoint("api.groq.com", 443, true)]);
    assert_eq!(groq.base_path, "/openai/v1");
    assert_eq!(groq.api_key.as_deref(), Some("gsk"));

    let fleet = &config.providers["fleet"];
    assert_eq!(
        fleet.endpoints,
        vec![
            endpoint("10.1.0.11", 8000, false),
            endpoint("10.1.0.12", 8000, false)
        ]
    );
    assert_eq!(fleet.base_path, "/v1");
    assert_eq!(fleet.api_key, None);
    assert!(fleet.discover_models);
    assert_eq!(fleet.balance, Balance::LeastLoaded);
    assert_eq!(
        fleet.health_check,
        HealthCheck {
            path: Some("/health".into()),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
        }
    );

    // Models.
    let mini = &config.models["gpt-4o-mini"];
    assert_eq!(
        mini.targets,
        vec![
            Target {
                provider: "openai".into(),
                model: None,
                weight: 3,
                priority: 0
            },
            Target {
                provider: "azure".into(),
                model: Some("prod-4o-mini".into()),
                weight: 1,
                priority: 0
            },
            Target {
                provider: "bedrock".into(),
                model: Some("anthropic.claude-3-5-haiku-20241022-v1:0".into()),
                weight: 1,
                priority: 1
            },
        ]
    );
    assert_eq!(
        mini.limits,
        Some(RateLimits {
            requests_per_minute: Some(6000),
            tokens_per_minute: Some(2_000_000)
        })
    );
    let llama = &config.models["llama-3.1-8b"];
    assert_eq!(llama.targets.len(), 1);
    assert_eq!(
        llama.targets[0].model.as_deref(),
        Some("meta-llama/Llama-3.1-8B-Instruct")
    );
    assert_eq!(llama.limits, None);
}

#[test]
fn a_minimal_file_takes_the_defaults() {
    let config = load_str("min.yaml", "providers: { ollama: {} }\n", &env_of(&[])).unwrap();
    assert_eq!(
        config.listen,
        vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(config.admin_listen, None);
    assert_eq!(config.server, ServerSettings::default());
    assert_eq!(config.limits, Limits::default());
    assert!(config.keys.is_empty());
    assert_eq!(config.providers["ollama"].base_path, "/v1");
    assert!(load_str("empty.yaml", "", &env_of(&[])).is_ok());
}

#[test]
fn humane_units_and_redis() {
    let text = "\
listen: 127.0.0.1:1
server: { grace_period: 1m30s, shutdown_timeout: 0 }
limits: { max_request_body: 64KiB, connect_timeout: 250ms, first_byte_timeout: 5m, idle_timeout: 1h, header_read_timeout: 3s, body_read_timeout: 20s, max_stream_event: 1MiB }
ratelimit: { store: redis, url: \"redis://${REDIS_HOST:-127.0.0.1}:6379\", on_store_error: fail_open }
access_log: /var/log/switchyard/access.log
";
    let config = load_str("u.yaml", text, &env_of(&[])).unwrap();
    assert_eq!(config.server.grace_period, Duration::from_secs(90));
    assert_eq!(config.server.shutdown_timeout, Duration::ZERO);
    assert_eq!(config.limits.max_request_body, 64 * 1024);
    assert_eq!(config.limits.connect_timeout, Duration::from_millis(250));
    assert_eq!(config.limits.first_byte_timeout, Duration::from_secs(300));
    assert_eq!(config.limits.idle_timeout, Duration::from_secs(3600));
    assert_eq!(config.limits.header_read_timeout, Duration::from_secs(3));
    assert_eq!(config.limits.body_read_timeout, Duration::from_secs(20));
    assert_eq!(config.limits.max_stream_event, 1024 * 1024);
    assert_eq!(
        config.ratelimit,
        RateLimitStore::Redis {
            url: "redis://127.0.0.1:6379".into(),
            fail_open: true
        }
    );
    assert_eq!(
        config.access_log,
        Some("/var/log/switchyard/access.log".into())
    );
}

#[test]
fn a_bad_file_reports_everything_at_its_line() {
    let text = "\
listen: [\"0.0.0.0:8080\"]
colour: blue
auth:
  keys:
    - name: a
      key: ${MISSING_KEY}
providers:
  openai: { type: openai, api_key: sk, timeout: 5s }
  groq: { type: groq }
models:
  m:
    targets:
      - { provider: openai }
      - { provider: nope, weight: 0 }
";
    let diagnostics = load_str("bad.yaml", text, &env_of(&[])).unwrap_err();
    let shown = messages(&diagnostics);
    let lines: Vec<usize> = diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![2, 6, 8, 9, 14, 14], "{shown}");
    assert!(
        shown.contains("bad.yaml:2: unknown key `colour`"),
        "{shown}"
    );
    assert!(
        shown.contains("bad.yaml:6: environment variable MISSING_KEY is not set"),
        "{shown}"
    );
    assert!(
        shown.contains("bad.yaml:8: providers.openai: unknown key `timeout`"),
        "{shown}"
    );
    assert!(
        shown.contains("bad.yaml:9: provider `groq` has no API key: set GROQ_API_KEY"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "bad.yaml:14: model `m` targets unknown provider `nope` (defined: groq, openai)"
        ),
        "{shown}"
    );
    assert!(shown.contains("bad.yaml:14: weight 0"), "{shown}");
    // `openai` did not parse but exists: its target is not "unknown".
    assert!(!shown.contains("`openai` (defined"), "{shown}");
}

#[test]
fn semantic_problems_point_at_their_keys() {
    let text = "\
listen:
  - 0.0.0.0:8080
  - nowhere
admin: { listen: \"127.0.0.1\" }
server:
  threads: 0
  grace_period: soon
limits:
  max_request_body: 32M
auth:
  keys:
    - { name: a, key: same }
    - { name: a, key: same }
    - { name: c, key: x, key_sha256: abcd }
    - { name: d, key_sha256: xyz }
    - name: e
      budget: { usd: 0, period: year }
      models: []
providers:
  fleet:
    type: openai
    endpoints: [\"10.0.0.1\"]
    balance: random
    health_check: { interval: 0s }
  weird: { type: gpt }
models:
  empty: { targets: [] }
ratelimit: { store: redis }
";
    let diagnostics = load_str("s.yaml", text, &env_of(&[])).unwrap_err();
    let shown = messages(&diagnostics);
    let expect = [
        "s.yaml:3: listen address `nowhere`",
        "s.yaml:4: admin.listen: listen address `127.0.0.1`",
        "s.yaml:6: server.threads must be at least 1",
        "s.yaml:7: server.grace_period: invalid duration `soon`",
        "s.yaml:9: limits.max_request_body: ambiguous size `32M`",
        "s.yaml:13: duplicate key name `a`",
        "s.yaml:13: key `a` has the same secret as key `a`",
        "s.yaml:14: key `c` has both key and key_sha256",
        "s.yaml:15: key `d`: key_sha256 must be 64 hex digits",
        "s.yaml:16: key `e` has no secret",
        "s.yaml:17: budget.usd must be more than 0",
        "s.yaml:17: unknown budget period `year`",
        "s.yaml:18: key `e` has `models: []`",
        "s.yaml:22: endpoint `10.0.0.1` needs a port",
        "s.yaml:23: unknown balance `random`",
        "s.yaml:24: health_check.interval must be more than 0",
        "s.yaml:25: unknown provider type `gpt`",
        "s.yaml:27: model `empty` has no targets",
        "s.yaml:28: `store: redis` needs a url",
    ];
    for line in expect {
        assert!(shown.contains(line), "missing {line:?} in\n{shown}");
    }
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error);
    assert_eq!(errors.count(), expect.len(), "{shown}");
}

#[test]
fn an_open_gateway_must_stay_on_loopback() {
    let text = "listen: [\"127.0.0.1:8080\", \"0.0.0.0:8081\"]\n";
    let diagnostics = load_str("open.yaml", text, &env_of(&[])).unwrap_err();
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].line, 1);
    assert!(
        diagnostics[0].message.starts_with(
            "no auth.keys: an open gateway may only listen on loopback (127.0.0.1/::1)"
        ),
        "{}",
        diagnostics[0]
    );
    assert!(load_str("ok.yaml", "listen: [\"[::1]:8080\"]\n", &env_of(&[])).is_ok());
}

#[test]
fn syntax_errors_stop_with_their_line() {
    let text = "providers:\n  openai: { type: openai\nmodels: {}\n";
    let diagnostics = load_str("y.yaml", text, &env_of(&[])).unwrap_err();
    assert_eq!(diagnostics.len(), 1);
    assert!(diagnostics[0].line >= 2, "{}", diagnostics[0]);
    assert!(
        diagnostics[0].message.starts_with("not valid YAML"),
        "{}",
        diagnostics[0]
    );
}

/// Found by `fuzz/fuzz_targets/config_loader.rs`: the YAML scanner puts the end of a file
/// without a final line break on the line after it, which the file does not have.
#[test]
fn an_error_at_the_end_of_a_file_is_on_its_last_line() {
    for text in [
        "listen: [\"0.0.0.0:8080\"]\naccess_ ",
        "a: 1\nb",
        "a: 1\r\nb",
    ] {
        let diagnostics = load_str("y.yaml", text, &env_of(&[])).unwrap_err();
        let last = text.split('\n').count();
        assert!(
            diagnostics.iter().all(|d| (1..=last).contains(&d.line)),
            "{text:?}: {}",
            messages(&diagnostics)
        );
        assert_eq!(diagnostics.last().map(|d| d.line), Some(last), "{text:?}");
    }
}

#[test]
fn load_file_names_the_file() {
    let missing = Path::new("/nonexistent/switchyard.yaml");
    let diagnostics = load_file(missing, &env_of(&[])).unwrap_err();
    assert_eq!(diagnostics[0].file, "/nonexistent/switchyard.yaml");
    assert_eq!(diagnostics[0].line, 1);
    assert!(diagnostics[0].message.contains("cannot read"));

    let path = std::env::temp_dir().join(format!(
        "switchyard-config-test-{}.yaml",
        std::process::id()
    ));
    std::fs::write(&path, "colour: blue\n").unwrap();
    let diagnostics = load_file(&path, &env_of(&[])).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(diagnostics[0].to_string(), format!("{}:1: unknown key `colour`; expected one of: listen, admin, server, limits, auth, providers, models, ratelimit, access_log", path.display()));
}

#[test]
fn an_unset_variable_is_reported_once() {
    let text = "providers:\n  openai: { type: openai, api_key: \"${OPENAI_API_KEY}\" }\n";
    let diagnostics = load_str("v.yaml", text, &env_of(&[])).unwrap_err();
    assert_eq!(diagnostics.len(), 1, "{}", messages(&diagnostics));
    assert_eq!(diagnostics[0].line, 2);
    assert!(diagnostics[0].message.contains("OPENAI_API_KEY is not set"));
}

#[test]
fn admin_needs_its_own_address() {
    let text = "listen: 127.0.0.1:8080\nadmin: { listen: \"127.0.0.1:8080\" }\n";
    let diagnostics = load_str("a.yaml", text, &env_of(&[])).unwrap_err();
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].line, 2);
    assert!(diagnostics[0].message.contains("its own port"));
}

#[test]
fn base_urls_and_pools_from_the_file() {
    let text = "\
providers:
  pplx: { type: perplexity, api_key: k }
  mock: { type: groq, base_url: \"http://[::1]:9000/openai/v1/\" }
  local:
    type: vllm
    endpoints: [\"[::1]:8000\", \"http://gpu-2:8000/v1\"]
";
    let env = env_of(&[("GROQ_API_KEY", "gsk")]);
    let config = load_str("b.yaml", text, &env).unwrap_or_else(|d| panic!("{}", messages(&d)));
    let pplx = &config.providers["pplx"];
    assert_eq!(
        pplx.endpoints,
        vec![endpoint("api.perplexity.ai", 443, true)]
    );
    assert_eq!(pplx.base_path, "");
    let mock = &config.providers["mock"];
    assert_eq!(mock.endpoints, vec![endpoint("::1", 9000, false)]);
    assert_eq!(mock.endpoints[0].authority(), "[::1]:9000");
    assert_eq!(mock.base_path, "/openai/v1");
    assert_eq!(mock.api_key.as_deref(), Some("gsk"));
    let local = &config.providers["local"];
    assert_eq!(
        local.endpoints,
        vec![endpoint("::1", 8000, false), endpoint("gpu-2", 8000, false)]
    );
    assert_eq!(local.base_path, "/v1");
    assert_eq!(local.health_check.path.as_deref(), Some("/health"));
    assert!(local.discover_models);
}

/// Issue 7, defect 15: several independent problems inside one block (a key, a
/// provider, a model, a section) are all reported in one run, each at its line.
#[test]
fn every_problem_in_one_pass() {
    let text = "\
listen: [\"0.0.0.0:8080\", nowhere]
server: { threads: 0, grace_period: 60, colour: red }
limits: { max_request_body: 32M, idle_timeout: \"2 s\", header_read_timeout: 0 }
auth:
  keys:
    - name: ops
      key_sha256: not-hex
      modles: [\"gpt-4o\"]
      models: [\"gpt-[45]*\", \"\"]
      limits: { requests_per_minute: 0, burst: 5 }
      budget: { usd: -1, period: year }
providers:
  fleet:
    type: openai
    endpoints: [\"10.0.0.1\", \"http://10.0.0.2:8000/v1\"]
    timeout: 5s
    balance: fastest
    health_check: { path: health, interval: soon, retries: 3 }
  cloud:
    type: openai
    base_url: api.example.com/v1
    api_key: ${CLOUD_KEY:-k}
    health_check: { timeout: 1.5s }
models:
  m:
    targets:
      - { provider: fleet, wieght: 2, weight: 0 }
      - { provider: nope, priority: high }
    limits: { tokens_per_minute: lots }
ratelimit: { store: redis, url: http://x, on_store_error: shrug }
";
    let diagnostics = load_str("many.yaml", text, &env_of(&[])).unwrap_err();
    let shown = messages(&diagnostics);
    let expect = [
        "many.yaml:1: listen address `nowhere`",
        "many.yaml:2: server.threads must be at least 1",
        "many.yaml:2: server.grace_period: invalid duration `60`",
        "many.yaml:2: server: unknown key `colour`",
        "many.yaml:3: limits.max_request_body: ambiguous size `32M`",
        "many.yaml:3: limits.idle_timeout: invalid duration `2 s`",
        "many.yaml:3: limits.header_read_timeout must be more than 0",
        "many.yaml:7: key `ops`: key_sha256 must be 64 hex digits",
        "many.yaml:8: auth.keys[0]: unknown key `modles` (did you mean `models`?)",
        "many.yaml:9: key `ops`: model pattern `gpt-[45]*`",
        "many.yaml:9: key `ops` lists an empty model pattern",
        "many.yaml:10: requests_per_minute 0 would refuse every request",
        "many.yaml:10: auth.keys[0].limits: unknown key `burst`",
        "many.yaml:11: budget.usd must be more than 0",
        "many.yaml:11: unknown budget period `year`",
        "many.yaml:15: endpoint `10.0.0.1` needs a port",
        "many.yaml:16: providers.fleet: unknown key `timeout`",
        "many.yaml:17: unknown balance `fastest`",
        "many.yaml:18: health_check.path `health` must be a path",
        "many.yaml:18: health_check.interval: invalid duration `soon`",
        "many.yaml:18: providers.fleet.health_check: unknown key `retries`",
        "many.yaml:21: `api.example.com/v1` is not a URL",
        "many.yaml:23: health_check.timeout: invalid duration `1.5s`",
        "many.yaml:27: models.m.targets[0]: unknown key `wieght` (did you mean `weight`?)",
        "many.yaml:27: weight 0 sends no traffic",
        "many.yaml:28: model `m` targets unknown provider `nope`",
        "many.yaml:28: models.m.targets[1].priority must be a whole number",
        "many.yaml:29: models.m.limits.tokens_per_minute must be a whole number",
        "many.yaml:30: unknown on_store_error `shrug`",
        "many.yaml:30: ratelimit.url `http://x` is not a Redis URL",
    ];
    let errors: Vec<&Diagnostic> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    for line in expect {
        assert!(shown.contains(line), "missing {line:?} in\n{shown}");
    }
    assert_eq!(errors.len(), expect.len(), "{shown}");
}

/// Problems and warnings name settings, never the secrets written in them.
#[test]
fn diagnostics_never_quote_secrets() {
    let text = "\
listen: 127.0.0.1:8080
auth:
  keys:
    - { name: a, key: ${SECRET}, models: { x: 1 }, limits: { requests_per_minute: 5 } }
    - { name: b, key: ${SECRET} }
    - { name: c, key_sha256: ${SECRET} }
    - { name: d, key: [ ${SECRET} ] }
providers:
  p: { type: openai, api_key: ${SECRET}, base_url: \"https://u:${SECRET}@x/v1\" }
  q: { type: openai, endpoints: [\"u:${SECRET}@x\"], api_key: { k: ${SECRET} } }
  r: { type: openai, base_url: \"ftp://u:${SECRET}@x\" }
ratelimit: { store: redis, url: \"http://:${SECRET}@r:6379\" }
";
    let env = env_of(&[("SECRET", "s3cr3t-value")]);
    let diagnostics = load_str("secret.yaml", text, &env).unwrap_err();
    let shown = messages(&diagnostics);
    assert!(diagnostics.len() >= 8, "{shown}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

/// The files people copy: every example in `conf/` and the load rig's configuration.
fn shipped_configs() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("conf"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files.push(root.join("load-tests/realistic.yaml"));
    files
}

/// Issue 7, defect 16: no shipped config holds a usable credential. Every gateway key
/// (`key`, `key_sha256`) and provider `api_key` must be exactly one `${VAR}` without a
/// default, so the secret comes from the operator's environment, never from the file.
#[test]
fn shipped_configs_hold_no_credential() {
    let files = shipped_configs();
    assert!(files.len() >= 3, "{files:?}");
    let is_reference = |v: &str| {
        v.strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .is_some_and(|name| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    };
    let mut literal = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // The raw file, before expansion: `${VAR}` is still text here.
        let root: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let mut secrets = Vec::new();
        for key in root["auth"]["keys"].as_sequence().into_iter().flatten() {
            secrets.extend([&key["key"], &key["key_sha256"]]);
        }
        for provider in root["providers"].as_mapping().into_iter().flatten() {
            secrets.push(&provider.1["api_key"]);
        }
        for secret in secrets.into_iter().filter(|s| !s.is_null()) {
            if !secret.as_str().is_some_and(is_reference) {
                literal.push(format!("{}: {secret:?}", file.display()));
            }
        }
    }
    assert!(literal.is_empty(), "literal credentials: {literal:#?}");
}

/// The examples in `conf/` load, with a distinct placeholder for every secret they read.
#[test]
fn examples_load() {
    for file in shipped_configs()
        .iter()
        .filter(|f| !f.ends_with("realistic.yaml"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        let named: Vec<String> = text
            .split("${")
            .skip(1)
            .filter_map(|rest| rest.split_once('}'))
            .map(|(name, _)| name.to_string())
            .collect();
        // A preset's key variable (`groq` reads GROQ_API_KEY) is named by no `${}`.
        let env = |name: &str| {
            (named.iter().any(|n| n == name) || name.ends_with("_API_KEY"))
                .then(|| format!("{name}-placeholder"))
        };
        if let Err(d) = load_file(file, &env) {
            panic!("{}", messages(&d));
        }
    }
}
