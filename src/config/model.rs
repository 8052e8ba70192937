//! The validated, internal form of the configuration: what the proxy runs on.
//!
//! Two faces, as in river: the user-facing YAML (`file.rs`) and the environment
//! (`env.rs`) both lower into these types, which carry no `Option`s that the
//! hot path would have to re-check. Nothing here is deserialised directly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses of the main (client-facing) listener.
    pub listen: Vec<SocketAddr>,
    /// Separate admin listener for `/metrics`, `/healthz`, `/readyz`; `None` serves them on `listen`.
    pub admin_listen: Option<SocketAddr>,
    pub server: ServerSettings,
    pub limits: Limits,
    /// Gateway keys. Empty means an open gateway (allowed only on loopback listeners).
    pub keys: Vec<GatewayKey>,
    /// Provider accounts and fleets, keyed by provider id (`openai`, `fleet`, ...).
    pub providers: BTreeMap<String, Provider>,
    /// Models clients may ask for by name, keyed by that name.
    pub models: BTreeMap<String, ModelRoute>,
    pub ratelimit: RateLimitStore,
    /// Where the JSON access log goes: `None` is stderr.
    pub access_log: Option<std::path::PathBuf>,
    /// What the operator should know about the file that loaded (settings accepted but
    /// not enforced yet), as `FILE:LINE: warning: ...`; `check` prints them, startup and
    /// reload log them. Empty in zero-config mode.
    pub warnings: Vec<super::Diagnostic>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Worker threads of the proxy service.
    pub threads: usize,
    /// How long SIGTERM waits for in-flight requests and streams.
    pub grace_period: Duration,
    /// Hard stop after the grace period.
    pub shutdown_timeout: Duration,
    pub pid_file: String,
    pub upgrade_sock: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            threads: 2,
            grace_period: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            pid_file: "/tmp/switchyard.pid".into(),
            upgrade_sock: "/tmp/switchyard_upgrade.sock".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_request_body: usize,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
    pub default_max_tokens: u64,
    /// Time a client has to send its request headers, from the first byte (slowloris).
    pub header_read_timeout: Duration,
    /// Time a client has to send its whole request body, from the end of its headers.
    pub body_read_timeout: Duration,
    /// The largest single server-sent event relayed from an upstream; beyond it the stream
    /// ends with the terminal error.
    pub max_stream_event: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body: 32 * 1024 * 1024,
            connect_timeout: Duration::from_secs(2),
            first_byte_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            default_max_tokens: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            max_stream_event: 16 * 1024 * 1024,
        }
    }
}

/// A gateway key. Only the SHA-256 of the secret is kept in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayKey {
    pub name: String,
    pub sha256: [u8; 32],
    /// Glob allow-list of model names; empty = every model.
    pub models: Vec<String>,
    pub limits: Option<RateLimits>,
    pub budget: Option<Budget>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub usd: f64,
    pub period: BudgetPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    Day,
    Week,
    Month,
}

/// The wire dialect an upstream speaks. Only `OpenAi` is served by the core;
/// the others are accepted by the config so that later adapters plug in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    OpenAi,
    Anthropic,
    AzureOpenAi,
    AzureFoundry,
    Bedrock,
    Vertex,
    Gemini,
    Replicate,
}

/// How requests are spread over the endpoints of one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    #[default]
    RoundRobin,
    LeastLoaded,
    PrefixAffinity,
}

/// How a fleet picks among its endpoints beyond `balance` (issue 10; README "Fleet routing").
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    /// How often each endpoint's `/metrics` is read in the background.
    pub scrape_interval: Duration,
    /// Where vLLM serves its Prometheus metrics.
    pub metrics_path: String,
    /// Bytes of the prompt hashed as one block of the prefix chain.
    pub block_size: usize,
    /// Prefix blocks the fleet's index remembers (per fleet, over all endpoints).
    pub index_size: usize,
    /// How much more loaded than the fleet's least-loaded endpoint (in requests) the endpoint
    /// holding a prefix or a session may be before the request spills to the least-loaded one.
    pub spill_threshold: u32,
    /// Pin a conversation (`session_header`, else the OpenAI `user` field) to one endpoint.
    pub session_affinity: bool,
    pub session_header: String,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            scrape_interval: Duration::from_millis(250),
            metrics_path: "/metrics".into(),
            block_size: 256,
            index_size: 65_536,
            spill_threshold: 4,
            session_affinity: true,
            session_header: "x-session-id".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// HTTP path to GET; `None` means a TCP connect check (never probe paid APIs over HTTP).
    pub path: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
}

/// One upstream endpoint: where to connect and what to say in Host/SNI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP literal, without port.
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

/// A named upstream account or fleet.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The id used in `provider/model`, `X-Provider` and metrics.
    pub id: String,
    pub dialect: Dialect,
    /// Endpoints of the pool: one for a cloud API, several for a self-hosted fleet.
    pub endpoints: Vec<Endpoint>,
    /// Path prefix that every upstream path starts with (e.g. `/v1`, `/openai/v1`), no trailing `/`.
    pub base_path: String,
    /// The provider's secret, injected upstream; `None` for keyless fleets.
    pub api_key: Option<String>,
    pub balance: Balance,
    pub routing: Routing,
    pub health_check: HealthCheck,
    /// Extra settings some dialects need (Azure `api_version`, Bedrock/Vertex `region`, ...).
    pub api_version: Option<String>,
    pub region: Option<String>,
    /// AWS signing keys (Bedrock without `AWS_BEARER_TOKEN_BEDROCK`), from the environment.
    pub aws: Option<AwsKeys>,
    /// True for self-hosted OpenAI-compatible pools whose `GET /v1/models` is asked for model names.
    pub discover_models: bool,
}

/// AWS credentials for SigV4. `Debug` never prints the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeys")
            .field("access_key_id", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Where one client-facing model name goes.
#[derive(Debug, Clone)]
pub struct ModelRoute {
    pub targets: Vec<Target>,
    pub limits: Option<RateLimits>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub provider: String,
    /// Upstream model id; `None` passes the client's model name through unchanged.
    pub model: Option<String>,
    pub weight: u32,
    /// 0 is the first tier; higher tiers are fallbacks.
    pub priority: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RateLimitStore {
    Memory,
    Redis { url: String, fail_open: bool },
}

#[cfg(test)]
impl Provider {
    /// An OpenAI-compatible fleet with plain-HTTP endpoints and no key, for unit tests.
    pub fn test_fleet(id: &str, endpoints: Vec<Endpoint>) -> Provider {
        Provider {
            id: id.into(),
            dialect: Dialect::OpenAi,
            endpoints,
            base_path: "/v1".into(),
            api_key: None,
            balance: Balance::RoundRobin,
            routing: Routing::default(),
            health_check: HealthCheck {
                path: None,
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(1),
            },
            api_version: None,
            region: None,
            aws: None,
            discover_models: false,
        }
    }
}
