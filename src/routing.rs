//! Model name → ordered list of upstream candidates.
//!
//! Resolution order (contract §4): `X-Provider` header; a configured model name; a
//! `provider/model` prefix; a model a self-hosted pool reported on `GET /v1/models`; the
//! model catalogue (if its provider is active); else 404.
//!
//! Ordering: priority tiers first (0 before 1); inside a tier a weighted round-robin picks
//! which target leads and the rest follow as fallbacks. Targets set aside by an upstream's
//! `Retry-After` go last: skipped while others remain, still tried when they are all there is.

use crate::errors::GatewayError;
use crate::gateway::{Gateway, ProviderRuntime};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// One upstream to try.
#[derive(Clone)]
pub struct Candidate {
    pub provider: Arc<ProviderRuntime>,
    /// The model id sent upstream.
    pub upstream_model: String,
}

impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider.provider.id, self.upstream_model)
    }
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The model as the client named it, after alias resolution and without a `provider/`
    /// prefix: the `model` label of metrics.
    pub model: String,
    pub candidates: Vec<Candidate>,
    /// The names are from a bounded set (configured, discovered or catalogued), so they may
    /// become metric label values; a name only a client made up may not (issue 7: one
    /// request with a 1 MiB model name made every later scrape 292 MB).
    pub known_names: bool,
}

impl Gateway {
    /// Resolve a requested model (and optional `X-Provider`) into a plan.
    pub fn plan(&self, requested: &str, x_provider: Option<&str>) -> Result<Plan, GatewayError> {
        if let Some(pid) = x_provider {
            let provider = self.providers.get(pid).ok_or_else(|| {
                GatewayError::not_found(format!(
                    "unknown provider `{}` in X-Provider",
                    crate::errors::clip(pid, 128)
                ))
                .code("provider_not_found")
            })?;
            let bare = requested
                .strip_prefix(pid)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or(requested);
            let bare = non_empty(bare, requested)?;
            return Ok(single(provider, bare, self.is_known_model(bare)));
        }
        if let Some(route) = self.config.models.get(requested) {
            return Ok(Plan {
                model: requested.to_string(),
                candidates: self.order_targets(requested, route),
                known_names: true,
            });
        }
        if let Some((pid, rest)) = requested.split_once('/') {
            if let Some(provider) = self.providers.get(pid) {
                let rest = non_empty(rest, requested)?;
                return Ok(single(provider, rest, self.is_known_model(rest)));
            }
        }
        if let Some(pid) = self.discovered_provider(requested) {
            if let Some(provider) = self.providers.get(&pid) {
                return Ok(single(provider, requested, true));
            }
        }
        if let Some(pid) = crate::catalog::global().provider_of(requested) {
            if let Some(provider) = self.providers.get(pid) {
                return Ok(single(provider, requested, true));
            }
        }
        Err(GatewayError::not_found(format!(
            "The model `{}` does not exist or no active provider serves it",
            crate::errors::clip(requested, 256)
        ))
        .param("model")
        .code("model_not_found"))
    }

    fn order_targets(&self, model: &str, route: &crate::config::ModelRoute) -> Vec<Candidate> {
        if let [only] = route.targets.as_slice() {
            // The common route: one target, nothing to order (and no tier vectors to build).
            return self
                .providers
                .get(&only.provider)
                .map(|p| Candidate {
                    provider: p.clone(),
                    upstream_model: only.model.clone().unwrap_or_else(|| model.to_string()),
                })
                .into_iter()
                .collect();
        }
        let mut tiers: Vec<u32> = route.targets.iter().map(|t| t.priority).collect();
        tiers.sort_unstable();
        tiers.dedup();
        let tick = self.round_robin.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::with_capacity(route.targets.len());
        for tier in tiers {
            let members: Vec<_> = route
                .targets
                .iter()
                .filter(|t| t.priority == tier)
                .collect();
            let total: u64 = members.iter().map(|t| t.weight.max(1) as u64).sum();
            // The leader of the tier: weighted by position of `tick` in the cumulative weights.
            let mut at = tick % total.max(1);
            let mut lead = 0;
            for (i, t) in members.iter().enumerate() {
                let w = t.weight.max(1) as u64;
                if at < w {
                    lead = i;
                    break;
                }
                at -= w;
            }
            for i in 0..members.len() {
                let t = members[(lead + i) % members.len()];
                if let Some(p) = self.providers.get(&t.provider) {
                    out.push(Candidate {
                        provider: p.clone(),
                        upstream_model: t.model.clone().unwrap_or_else(|| model.to_string()),
                    });
                }
            }
        }
        // Targets resting after a Retry-After go last (stable order otherwise).
        let now = Instant::now();
        out.sort_by_key(|c| self.is_set_aside(&c.provider.provider.id, &c.upstream_model, now));
        out
    }
}

fn single(provider: &Arc<ProviderRuntime>, model: &str, known_names: bool) -> Plan {
    Plan {
        model: model.to_string(),
        candidates: vec![Candidate {
            provider: provider.clone(),
            upstream_model: model.to_string(),
        }],
        known_names,
    }
}

/// The model after a `provider/` prefix or `X-Provider`: `pa/` names no model at all, and
/// an empty model must not reach an upstream.
fn non_empty<'a>(model: &'a str, requested: &str) -> Result<&'a str, GatewayError> {
    if model.is_empty() {
        return Err(GatewayError::bad_request(format!(
            "`{}` names a provider but no model: write `provider/model`",
            crate::errors::clip(requested, 128)
        ))
        .param("model"));
    }
    Ok(model)
}

impl Gateway {
    /// A model name from a bounded set: configured, reported by a self-hosted pool, or in
    /// the catalogue.
    pub fn is_known_model(&self, name: &str) -> bool {
        self.config.models.contains_key(name)
            || self.is_discovered(name)
            || crate::catalog::global().get(name).is_some()
    }
}
