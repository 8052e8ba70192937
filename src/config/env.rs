//! Zero-config mode (spec section 2): providers, keys and the listener from
//! environment variables alone, no file.
//!
//! Each preset becomes active when its variables are set, and is then built
//! exactly as a file entry `{type: <id>}` would be, so both modes agree on
//! every default. No models are configured: requests go by `provider/model`,
//! by the models self-hosted servers report, and by the catalogue.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::address::parse_listen;
use super::file::ProviderFile;
use super::keys::hash_secret;
use super::model::{Config, GatewayKey, Limits, RateLimitStore, ServerSettings};
use super::presets::{Kind, Preset, PRESETS};
use super::provider;
use super::validate::open_gateway_problem;

/// The listener when `SWITCHYARD_LISTEN` is not set.
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// A variable that is set to something other than white space. An empty
/// variable counts as unset, the usual way to switch one off (`FOO=`).
pub(crate) fn var(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.trim().is_empty())
}

/// Builds the zero-config [`Config`] from `env` (the process environment in
/// production, a closure in tests).
///
/// Fails, naming the variable, when an active provider's variables are
/// malformed, when `SWITCHYARD_LISTEN` does not parse, or when there are no
/// keys (`SWITCHYARD_API_KEYS`) and the listener is not on loopback.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    let mut errors = Vec::new();

    let listen = match var(env, "SWITCHYARD_LISTEN") {
        None => vec![DEFAULT_LISTEN],
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .filter_map(|address| match parse_listen(address) {
                Ok(addr) => Some(addr),
                Err(why) => {
                    errors.push(format!("SWITCHYARD_LISTEN: {why}"));
                    None
                }
            })
            .collect(),
    };

    if listen.is_empty() && errors.is_empty() {
        errors.push("SWITCHYARD_LISTEN names no address: write e.g. 127.0.0.1:8080".into());
    }
    let keys = keys(var(env, "SWITCHYARD_API_KEYS").as_deref(), &mut errors);

    let mut providers = BTreeMap::new();
    for preset in PRESETS.iter().filter(|p| is_active(p, env)) {
        let spec = ProviderFile {
            kind: Some(preset.id.to_string()),
            api_version: match preset.id {
                "azure-openai" => var(env, "AZURE_OPENAI_API_VERSION"),
                _ => None,
            },
            ..ProviderFile::default()
        };
        match provider::resolve(preset.id, &spec, env) {
            Ok(p) => {
                providers.insert(preset.id.to_string(), p);
            }
            Err(problems) => errors.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{}: {}", preset.id, p.message)),
            ),
        }
    }

    if keys.is_empty() {
        if let Some(why) = open_gateway_problem(&listen) {
            errors.push(format!(
                "SWITCHYARD_API_KEYS is not set: {why}; set SWITCHYARD_API_KEYS, or SWITCHYARD_LISTEN=127.0.0.1:8080"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    Ok(Config {
        listen,
        admin_listen: None,
        server: ServerSettings::default(),
        limits: Limits::default(),
        keys,
        providers,
        models: BTreeMap::new(),
        ratelimit: RateLimitStore::Memory,
        access_log: None,
        warnings: Vec::new(),
    })
}

/// `SWITCHYARD_API_KEYS` (comma-separated) as keys `key-1`, `key-2`, ...,
/// each allowed every model.
fn keys(list: Option<&str>, errors: &mut Vec<String>) -> Vec<GatewayKey> {
    let mut keys: Vec<GatewayKey> = Vec::new();
    let secrets = list.unwrap_or_default().split(',').map(str::trim);
    for secret in secrets.filter(|s| !s.is_empty()) {
        let name = format!("key-{}", keys.len() + 1);
        let sha256 = hash_secret(secret);
        if let Some(twin) = keys.iter().find(|k| k.sha256 == sha256) {
            errors.push(format!(
                "SWITCHYARD_API_KEYS lists the same key twice ({} and {name})",
                twin.name
            ));
        }
        keys.push(GatewayKey {
            name,
            sha256,
            models: Vec::new(),
            limits: None,
            budget: None,
        });
    }
    keys
}

/// Whether the variables that switch `preset` on are set. A half-configured
/// provider stays off, with a warning that says what is missing.
fn is_active(preset: &Preset, env: &dyn Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(env, name).is_some();
    match preset.kind {
        Kind::Hosted => preset.key_var.is_some_and(set),
        Kind::Azure => {
            let (Some(key), Some(endpoint)) = (preset.key_var, preset.base_url_var) else {
                return false;
            };
            match (set(key), set(endpoint)) {
                (true, true) => true,
                (true, false) => {
                    log::warn!(
                        "{key} is set but {endpoint} is not: {} stays off",
                        preset.id
                    );
                    false
                }
                _ => false,
            }
        }
        Kind::Bedrock => {
            let credentials = set("AWS_BEARER_TOKEN_BEDROCK")
                || (set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"));
            if set("AWS_BEARER_TOKEN_BEDROCK") && !set("AWS_REGION") {
                log::warn!(
                    "AWS_BEARER_TOKEN_BEDROCK is set but AWS_REGION is not: bedrock stays off"
                );
            }
            set("AWS_REGION") && credentials
        }
        Kind::Vertex => {
            let needed = [
                "VERTEX_AI_PROJECT_ID",
                "VERTEX_AI_REGION",
                "GOOGLE_APPLICATION_CREDENTIALS",
            ];
            let missing: Vec<&str> = needed.into_iter().filter(|n| !set(n)).collect();
            if set("VERTEX_AI_PROJECT_ID") && !missing.is_empty() {
                log::warn!("vertex-ai stays off: {} not set", missing.join(", "));
            }
            missing.is_empty()
        }
        Kind::Ollama => set("OLLAMA_HOST"),
        Kind::Vllm => set("VLLM_ENDPOINTS"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Dialect, HealthCheck};
    use std::time::Duration;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn nothing_set_is_an_open_loopback_gateway_with_no_providers() {
        let config = from_env(&env_of(&[])).unwrap();
        assert_eq!(config.listen, vec![DEFAULT_LISTEN]);
        assert!(config.keys.is_empty());
        assert!(config.providers.is_empty());
        assert!(config.models.is_empty());
        assert_eq!(config.server, ServerSettings::default());
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.ratelimit, RateLimitStore::Memory);
    }

    #[test]
    fn presets_switch_on_by_their_variables() {
        let env = env_of(&[
            ("OPENAI_API_KEY", "sk-o"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1"),
            ("ANTHROPIC_API_KEY", "sk-a"),
            ("HUGGING_FACE_API_KEY", "hf"),
            ("TENCENT_LKE_API_KEY", "t"),
            ("GROQ_API_KEY", ""), // empty: off
            ("AZURE_OPENAI_API_KEY", "az"),
            ("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com"),
            ("AZURE_OPENAI_API_VERSION", "2025-01-01-preview"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("REPLICATE_API_TOKEN", "r8"),
            ("OLLAMA_HOST", "http://localhost:11434"),
            ("VLLM_ENDPOINTS", "10.0.0.1:8000,10.0.0.2:8000"),
        ]);
        let config = from_env(&env).unwrap();
        let ids: Vec<&str> = config.providers.keys().map(String::as_str).collect();
        assert_eq!(
            ids,
            vec![
                "anthropic",
                "azure-openai",
                "bedrock",
                "hugging-face",
                "ollama",
                "openai",
                "replicate",
                "tencent-lke",
                "vllm"
            ]
        );
        let openai = &config.providers["openai"];
        assert_eq!(openai.endpoints[0].authority(), "127.0.0.1:9999");
        assert!(!openai.endpoints[0].tls);
        assert_eq!(openai.base_path, "/v1");
        assert_eq!(openai.api_key.as_deref(), Some("sk-o"));
        assert_eq!(
            openai.health_check,
            HealthCheck {
                path: None,
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(2)
            }
        );
        let anthropic = &config.providers["anthropic"];
        assert_eq!(anthropic.dialect, Dialect::Anthropic);
        assert_eq!(anthropic.endpoints[0].authority(), "api.anthropic.com:443");
        assert_eq!(anthropic.base_path, "");
        let hf = &config.providers["hugging-face"];
        assert_eq!(hf.endpoints[0].host, "router.huggingface.co");
        assert_eq!(hf.api_key.as_deref(), Some("hf"));
        let azure = &config.providers["azure-openai"];
        assert_eq!(azure.api_version.as_deref(), Some("2025-01-01-preview"));
        assert_eq!(azure.endpoints[0].host, "r.openai.azure.com");
        let bedrock = &config.providers["bedrock"];
        assert_eq!(bedrock.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            bedrock.endpoints[0].host,
            "bedrock-runtime.eu-west-1.amazonaws.com"
        );
        assert_eq!(config.providers["replicate"].api_key.as_deref(), Some("r8"));
        let ollama = &config.providers["ollama"];
        assert_eq!(ollama.endpoints[0].authority(), "localhost:11434");
        assert_eq!(ollama.base_path, "/v1");
        assert!(ollama.discover_models && ollama.api_key.is_none());
        let vllm = &config.providers["vllm"];
        assert_eq!(vllm.endpoints.len(), 2);
        assert_eq!(vllm.base_path, "/v1");
        assert!(vllm.discover_models);
        assert_eq!(
            vllm.health_check,
            HealthCheck {
                path: Some("/health".into()),
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn half_configured_providers_stay_off() {
        let env = env_of(&[
            ("AZURE_OPENAI_API_KEY", "az"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("VERTEX_AI_PROJECT_ID", "p"),
        ]);
        assert!(from_env(&env).unwrap().providers.is_empty());
    }

    #[test]
    fn keys_and_listen() {
        let env = env_of(&[
            ("SWITCHYARD_API_KEYS", "alpha, beta,,"),
            ("SWITCHYARD_LISTEN", "0.0.0.0:9000"),
        ]);
        let config = from_env(&env).unwrap();
        assert_eq!(config.listen, vec!["0.0.0.0:9000".parse().unwrap()]);
        let names: Vec<&str> = config.keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, vec!["key-1", "key-2"]);
        assert_eq!(config.keys[1].sha256, hash_secret("beta"));
        assert!(config.keys[0].models.is_empty());
    }

    #[test]
    fn open_gateway_off_loopback_is_refused() {
        let err = from_env(&env_of(&[("SWITCHYARD_LISTEN", "0.0.0.0:8080")])).unwrap_err();
        assert!(
            err.contains("only listen on loopback (127.0.0.1/::1)"),
            "{err}"
        );
        assert!(err.contains("SWITCHYARD_API_KEYS"), "{err}");
        assert!(from_env(&env_of(&[("SWITCHYARD_LISTEN", "[::1]:8080")])).is_ok());
    }

    #[test]
    fn malformed_variables_are_named() {
        let env = env_of(&[
            ("SWITCHYARD_LISTEN", "everywhere"),
            ("VLLM_ENDPOINTS", "10.0.0.1"),
            ("SWITCHYARD_API_KEYS", "a,a"),
            ("OPENAI_API_KEY", "sk"),
            ("OPENAI_BASE_URL", "api.openai.com"),
        ]);
        let err = from_env(&env).unwrap_err();
        assert!(
            err.contains("SWITCHYARD_LISTEN: listen address `everywhere`"),
            "{err}"
        );
        assert!(
            err.contains("vllm: VLLM_ENDPOINTS: endpoint `10.0.0.1` needs a port"),
            "{err}"
        );
        assert!(err.contains("same key twice (key-1 and key-2)"), "{err}");
        assert!(
            err.contains("openai: OPENAI_BASE_URL: `api.openai.com` is not a URL"),
            "{err}"
        );
    }
}
