//! Background scraping of each fleet endpoint's `/metrics` (vLLM's load signals), from the
//! control task, every `routing.scrape_interval`. A scrape that fails or times out changes
//! nothing but the freshness of the signals: the endpoint is then judged by this gateway's
//! own in-flight count until it answers again. Health checks alone mark endpoints down.

use crate::gateway::ProviderRuntime;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The (provider, endpoint) pairs whose gauges were published, with the models of their
/// per-model series. An endpoint that leaves its pool (a reload, a name that resolves
/// elsewhere) or a provider that leaves the config has its series removed, instead of
/// showing its last values until a restart; so has a model its fleet no longer counts (a
/// reload that made a new fleet).
type Published = BTreeMap<(String, SocketAddr), BTreeSet<Arc<str>>>;
static PUBLISHED: Mutex<Published> = Mutex::new(BTreeMap::new());

/// The longest a scrape may take (a slow metrics page must not pile up scrapes).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(1);

/// Scrape every resolved endpoint of `p`'s pool once, concurrently, and publish the gauges.
pub async fn scrape(p: Arc<ProviderRuntime>) {
    let fleet = &p.pool.fleet;
    let timeout = fleet.routing.scrape_interval.min(SCRAPE_TIMEOUT);
    let mut tasks = tokio::task::JoinSet::new();
    for (addr, _) in p.pool.resolved() {
        let Some(ep) = p.pool.endpoint_for(addr) else {
            continue;
        };
        if ep.endpoint.tls {
            continue; // self-hosted fleets speak plain HTTP
        }
        let host = crate::providers::host_header(&ep.endpoint);
        let path = fleet.routing.metrics_path.clone();
        tasks.spawn(async move {
            let page =
                tokio::time::timeout(timeout, crate::control::http_get(addr, &host, &path)).await;
            (addr, page)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let Ok((addr, page)) = done else { continue };
        if let Ok(Ok(body)) = page {
            fleet.scraped(addr, &super::vllm_metrics::parse(&body));
        }
        publish(&p, addr);
    }
    let current: HashSet<SocketAddr> = p.pool.resolved().into_iter().map(|(a, _)| a).collect();
    retire(&|provider, addr| provider != p.provider.id || current.contains(&addr));
}

/// Forget the published endpoints `keep` says are gone and remove their series (the same
/// shape as `control::retire_health` for `switchyard_upstream_up`).
pub fn retire(keep: &dyn Fn(&str, SocketAddr) -> bool) {
    let mut published = PUBLISHED.lock().unwrap_or_else(|p| p.into_inner());
    published.retain(|(provider, addr), models| {
        if keep(provider, *addr) {
            return true;
        }
        let endpoint = addr.to_string();
        let labels = [provider.as_str(), endpoint.as_str()];
        let _ = crate::metrics::FLEET_IN_FLIGHT.remove_label_values(&labels);
        for m in models.iter() {
            let _ = crate::metrics::FLEET_MODEL_IN_FLIGHT.remove_label_values(&[
                provider.as_str(),
                endpoint.as_str(),
                m,
            ]);
        }
        remove_signals(&labels);
        false
    });
}

/// Remove the scraped-signal gauges of one (provider, endpoint).
fn remove_signals(labels: &[&str; 2]) {
    use crate::metrics::{FLEET_KV_USAGE, FLEET_PREFIX_HIT_RATIO, FLEET_RUNNING, FLEET_WAITING};
    for g in [
        &*FLEET_RUNNING,
        &*FLEET_WAITING,
        &*FLEET_KV_USAGE,
        &*FLEET_PREFIX_HIT_RATIO,
    ] {
        let _ = g.remove_label_values(labels);
    }
}

/// Per-endpoint gauges of the signals the picks use.
fn publish(p: &ProviderRuntime, addr: std::net::SocketAddr) {
    use crate::metrics::{
        FLEET_IN_FLIGHT, FLEET_KV_USAGE, FLEET_MODEL_IN_FLIGHT, FLEET_PREFIX_HIT_RATIO,
        FLEET_RUNNING, FLEET_WAITING,
    };
    let fleet = &p.pool.fleet;
    let endpoint = addr.to_string();
    let labels = [p.provider.id.as_str(), endpoint.as_str()];
    let by_model = fleet.in_flight_by_model(addr);
    {
        let mut published = PUBLISHED.lock().unwrap_or_else(|p| p.into_inner());
        let models = published.entry((p.provider.id.clone(), addr)).or_default();
        models.retain(|m| {
            let counted = by_model.iter().any(|(n, _)| n == m);
            if !counted {
                let _ = FLEET_MODEL_IN_FLIGHT.remove_label_values(&[labels[0], labels[1], m]);
            }
            counted
        });
        for (model, n) in &by_model {
            FLEET_MODEL_IN_FLIGHT
                .with_label_values(&[labels[0], labels[1], model])
                .set(*n as i64);
            models.insert(model.clone());
        }
    }
    FLEET_IN_FLIGHT
        .with_label_values(&labels)
        .set(fleet.in_flight(addr) as i64);
    match fleet.signals(addr) {
        Some([running, waiting, kv, queries, hits]) => {
            FLEET_RUNNING.with_label_values(&labels).set(running);
            FLEET_WAITING.with_label_values(&labels).set(waiting);
            FLEET_KV_USAGE.with_label_values(&labels).set(kv);
            if queries > 0.0 {
                FLEET_PREFIX_HIT_RATIO
                    .with_label_values(&labels)
                    .set(hits / queries);
            }
        }
        // Stale or never scraped: no series, rather than an old load the picks ignore.
        None => remove_signals(&labels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{FLEET_IN_FLIGHT, FLEET_MODEL_IN_FLIGHT, FLEET_RUNNING};

    fn text() -> String {
        String::from_utf8(crate::metrics::render()).unwrap()
    }

    #[test]
    fn series_of_endpoints_and_providers_that_left_are_removed() {
        let a: SocketAddr = "127.0.0.1:64001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:64002".parse().unwrap();
        for addr in [a, b] {
            let e = addr.to_string();
            FLEET_IN_FLIGHT.with_label_values(&["retire-p", &e]).set(1);
            FLEET_RUNNING.with_label_values(&["retire-p", &e]).set(2.0);
            FLEET_MODEL_IN_FLIGHT
                .with_label_values(&["retire-p", &e, "retire-m"])
                .set(1);
        }
        let models: BTreeSet<Arc<str>> = ["retire-m".into()].into();
        PUBLISHED.lock().unwrap().extend([
            (("retire-p".to_string(), a), models.clone()),
            (("retire-p".to_string(), b), models),
        ]);
        assert!(text().contains("127.0.0.1:64002"));
        // A reload drops b: its series go, a's stay.
        retire(&|p, addr| p != "retire-p" || addr == a);
        let t = text();
        assert!(!t.contains("127.0.0.1:64002"), "{t}");
        assert!(t.contains("127.0.0.1:64001"));
        // The provider leaves the config: a's go too.
        retire(&|p, _| p != "retire-p");
        assert!(!text().contains("127.0.0.1:64001"));
    }
}
