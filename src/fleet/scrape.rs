//! Background scraping of each fleet endpoint's `/metrics` (vLLM's load signals), from the
//! control task, every `routing.scrape_interval`. A scrape that fails or times out changes
//! nothing but the freshness of the signals: the endpoint is then judged by this gateway's
//! own in-flight count until it answers again. Health checks alone mark endpoints down.

use crate::gateway::ProviderRuntime;
use std::sync::Arc;
use std::time::Duration;

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
}

/// Per-endpoint gauges of the signals the picks use.
fn publish(p: &ProviderRuntime, addr: std::net::SocketAddr) {
    use crate::metrics::{
        FLEET_IN_FLIGHT, FLEET_KV_USAGE, FLEET_PREFIX_HIT_RATIO, FLEET_RUNNING, FLEET_WAITING,
    };
    let fleet = &p.pool.fleet;
    let endpoint = addr.to_string();
    let labels = [p.provider.id.as_str(), endpoint.as_str()];
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
        None => {
            for g in [
                &*FLEET_RUNNING,
                &*FLEET_WAITING,
                &*FLEET_KV_USAGE,
                &*FLEET_PREFIX_HIT_RATIO,
            ] {
                let _ = g.remove_label_values(&labels);
            }
        }
    }
}
