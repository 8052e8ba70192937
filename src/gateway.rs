//! The hot state the proxy runs on: config, keys, providers with their pools.
//!
//! Built whole from a validated `Config` and published through one `ArcSwap`: a SIGHUP
//! reload builds a new `Gateway` and swaps it in atomically; each request holds the
//! `Arc<Gateway>` it started with, so in-flight requests finish on their own config.

use crate::auth::KeyRing;
use crate::config::{Config, Provider};
use crate::pool::Pool;
use arc_swap::ArcSwap;
use once_cell::sync::Lazy;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// A provider with its endpoint pool.
pub struct ProviderRuntime {
    pub provider: Provider,
    pub pool: Pool,
}

pub struct Gateway {
    pub config: Config,
    pub keys: KeyRing,
    pub providers: BTreeMap<String, Arc<ProviderRuntime>>,
    /// Limits and budgets; the same store across reloads while `ratelimit` is unchanged.
    pub accounting: Arc<crate::accounting::Accounting>,
    /// This config's limits and budgets with their store ids.
    pub limits: crate::accounting::Table,
    pub(crate) round_robin: AtomicU64,
    /// (provider, upstream model) → resting until, after a 429/503 with `Retry-After`.
    set_aside: Mutex<HashMap<(String, String), Instant>>,
    /// Models that self-hosted pools report on `GET /v1/models`: model → provider id.
    discovered: RwLock<HashMap<String, String>>,
}

static CURRENT: Lazy<ArcSwap<Option<Arc<Gateway>>>> = Lazy::new(|| ArcSwap::from_pointee(None));

impl Gateway {
    pub fn new(config: Config) -> Gateway {
        Gateway::after(config, None)
    }

    /// The gateway of a reloaded `config`, keeping what `previous` learned that is still valid
    /// (each fleet's prefix index and sessions, when its routing settings are unchanged).
    pub fn after(config: Config, previous: Option<&Gateway>) -> Gateway {
        let providers = config
            .providers
            .iter()
            .map(|(id, p)| {
                let old = previous.and_then(|g| g.providers.get(id)).map(|r| &r.pool);
                (
                    id.clone(),
                    Arc::new(ProviderRuntime {
                        provider: p.clone(),
                        pool: Pool::with_fleet(p, old),
                    }),
                )
            })
            .collect();
        Gateway {
            keys: KeyRing::new(config.keys.clone()),
            accounting: crate::accounting::Accounting::for_config(&config.ratelimit),
            limits: crate::accounting::Table::new(&config.keys, &config.models),
            config,
            providers,
            round_robin: AtomicU64::new(0),
            set_aside: Mutex::new(HashMap::new()),
            discovered: RwLock::new(HashMap::new()),
        }
    }

    /// The gateway now serving. `None` only before the first install.
    pub fn current() -> Option<Arc<Gateway>> {
        CURRENT.load().as_ref().clone()
    }

    /// Publish `g` as the gateway serving new requests.
    pub fn install(g: Arc<Gateway>) {
        CURRENT.store(Arc::new(Some(g)));
    }

    /// Put a target aside for `for_` (an upstream's `Retry-After`).
    pub fn set_aside(&self, provider: &str, model: &str, for_: Duration) {
        if let Ok(mut m) = self.set_aside.lock() {
            m.insert(
                (provider.to_string(), model.to_string()),
                Instant::now() + for_,
            );
        }
    }

    pub fn is_set_aside(&self, provider: &str, model: &str, now: Instant) -> bool {
        let Ok(m) = self.set_aside.lock() else {
            return false;
        };
        // Checked for every target of every request: no key allocation in the common case.
        if m.is_empty() {
            return false;
        }
        m.get(&(provider.to_string(), model.to_string()))
            .is_some_and(|until| *until > now)
    }

    pub fn is_discovered(&self, model: &str) -> bool {
        self.discovered.read().is_ok_and(|m| m.contains_key(model))
    }

    pub fn discovered_provider(&self, model: &str) -> Option<String> {
        self.discovered.read().ok()?.get(model).cloned()
    }

    /// Replace what `provider` reports serving.
    pub fn set_discovered(&self, provider: &str, models: Vec<String>) {
        if let Ok(mut m) = self.discovered.write() {
            m.retain(|_, p| p != provider);
            for model in models {
                m.entry(model).or_insert_with(|| provider.to_string());
            }
        }
    }

    /// All discovered (model, provider) pairs.
    pub fn discovered_models(&self) -> Vec<(String, String)> {
        self.discovered
            .read()
            .map(|m| m.iter().map(|(a, b)| (a.clone(), b.clone())).collect())
            .unwrap_or_default()
    }

    /// Ready when every provider has at least one healthy endpoint.
    pub fn ready(&self) -> bool {
        self.providers.values().all(|p| p.pool.healthy_count() > 0)
    }
}
