//! The control task: one background service for everything off the request path.
//!
//! - resolves endpoint names and runs active health checks for every pool (one loop for
//!   all pools, not one runtime thread per pool: pingora-notes pitfall 24);
//! - asks self-hosted pools for their models (`GET {base}/models`) with each check;
//! - reloads the config file on SIGHUP: a new `Gateway` is built, its pools resolved and
//!   checked, then swapped in whole; a bad file is logged and the last good config stays.

use crate::config::{self, Config};
use crate::gateway::Gateway;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_core::services::ServiceReadyNotifier;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Control {
    /// The config file to reload on SIGHUP (`None` in zero-config mode: reload re-reads env).
    pub config_path: Option<PathBuf>,
}

#[async_trait]
impl BackgroundService for Control {
    /// Ready (and the proxy starts, which depends on this) once every pool was resolved
    /// and checked once, so the first request finds its endpoints.
    async fn start_with_ready_notifier(
        &self,
        shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        if let Some(gw) = Gateway::current() {
            prepare(&gw).await;
        }
        ready.notify_ready();
        self.start(shutdown).await;
    }

    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                log::error!("cannot listen for SIGHUP: {e}");
                None
            }
        };
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        // Fleet metrics scrapes: each pool at its own `routing.scrape_interval` (≥ 50 ms).
        let mut scrape_tick = tokio::time::interval(Duration::from_millis(50));
        scrape_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    // Lines of requests that already finished reach the sink before exit.
                    let _ = tokio::task::spawn_blocking(|| crate::access_log::flush(Duration::from_secs(1))).await;
                    return;
                }
                _ = tick.tick() => {
                    if let Some(gw) = Gateway::current() {
                        check_due(&gw).await;
                    }
                }
                _ = scrape_tick.tick() => {
                    if let Some(gw) = Gateway::current() {
                        scrape_due(&gw);
                    }
                }
                Some(_) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    self.reload().await;
                }
            }
        }
    }
}

impl Control {
    async fn reload(&self) {
        let loaded = load(self.config_path.as_deref());
        match loaded {
            Ok(cfg) => {
                cfg.warnings.iter().for_each(|w| log::warn!("{w}"));
                // Listeners and other process settings stay as they are until a restart.
                let old = Gateway::current();
                if let Some(old) = &old {
                    for w in config::restart_needed(&old.config, &cfg) {
                        log::warn!("{w}");
                    }
                }
                let gw = Arc::new(Gateway::after(cfg, old.as_deref()));
                prepare(&gw).await;
                Gateway::install(gw);
                log::info!("configuration reloaded");
            }
            Err(problems) => {
                log::error!(
                    "reload rejected, the last good configuration keeps serving:\n{problems}"
                );
            }
        }
    }
}

/// Load the configuration from a file or, without one, from the environment.
pub fn load(path: Option<&std::path::Path>) -> Result<Config, String> {
    let env = |k: &str| std::env::var(k).ok();
    match path {
        Some(p) => config::load_file(p, &env).map_err(|diags| {
            diags
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        }),
        None => config::from_env(&env),
    }
}

/// Resolve and check every pool once, and ask self-hosted pools for their models.
pub async fn prepare(gw: &Arc<Gateway>) {
    let now = Instant::now();
    let mut tasks = Vec::new();
    for p in gw.providers.values() {
        let p = p.clone();
        let gw = gw.clone();
        let _ = p.pool.health_check_due(now);
        tasks.push(tokio::spawn(async move {
            p.pool.refresh().await;
            publish_health(&p);
            discover(&gw, &p).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn check_due(gw: &Arc<Gateway>) {
    retire_health(&|provider, _| gw.providers.contains_key(provider));
    let now = Instant::now();
    for p in gw.providers.values() {
        if p.pool.health_check_due(now) {
            let p = p.clone();
            let gw = gw.clone();
            tokio::spawn(async move {
                p.pool.refresh().await;
                publish_health(&p);
                discover(&gw, &p).await;
            });
        }
    }
}

/// Start the metrics scrape of every fleet whose interval has passed (each runs on its own
/// task; a pool's next scrape waits for its previous one to finish).
fn scrape_due(gw: &Arc<Gateway>) {
    crate::fleet::scrape::retire(&|id, _| {
        gw.providers.get(id).is_some_and(|p| p.pool.fleet.by_load())
    });
    let now = Instant::now();
    for p in gw.providers.values() {
        if p.pool.scrape_due(now) {
            let p = p.clone();
            tokio::spawn(async move {
                crate::fleet::scrape::scrape(p.clone()).await;
                p.pool.scrape_done();
            });
        }
    }
}

/// Last published state per (provider, endpoint), kept across reloads: one short log line
/// per change (Pingora's own line is a ~1 KB dump of the backend, filtered in `main`).
static HEALTH: once_cell::sync::Lazy<
    std::sync::Mutex<std::collections::HashMap<(String, std::net::SocketAddr), bool>>,
> = once_cell::sync::Lazy::new(Default::default);

fn publish_health(p: &crate::gateway::ProviderRuntime) {
    for (addr, up) in p.pool.resolved() {
        crate::metrics::UPSTREAM_UP
            .with_label_values(&[&p.provider.id, &addr.to_string()])
            .set(up as i64);
        let was = HEALTH
            .lock()
            .ok()
            .and_then(|mut h| h.insert((p.provider.id.clone(), addr), up));
        match (was, up) {
            (Some(true) | None, false) => log::warn!(
                "provider {}: endpoint {addr} is down (failed health checks)",
                p.provider.id
            ),
            (Some(false), true) => {
                log::info!("provider {}: endpoint {addr} is up again", p.provider.id)
            }
            _ => {}
        }
    }
    let current: std::collections::HashSet<_> =
        p.pool.resolved().into_iter().map(|(a, _)| a).collect();
    retire_health(&|provider, addr| provider != p.provider.id || current.contains(&addr));
}

/// Forget the endpoints `keep` says are gone, and remove their `switchyard_upstream_up` series
/// (an endpoint dropped by a reload or a re-resolved name, a provider that left the config),
/// instead of showing their last state until a restart. Also bounds `HEALTH`.
fn retire_health(keep: &dyn Fn(&str, std::net::SocketAddr) -> bool) {
    let Ok(mut h) = HEALTH.lock() else { return };
    h.retain(|(provider, addr), _| {
        if keep(provider, *addr) {
            return true;
        }
        let _ = crate::metrics::UPSTREAM_UP.remove_label_values(&[provider, &addr.to_string()]);
        false
    });
}

/// Self-hosted OpenAI-compatible pools report what they serve on `GET {base}/models`.
async fn discover(gw: &Gateway, p: &crate::gateway::ProviderRuntime) {
    if !p.provider.discover_models {
        return;
    }
    // Ask each endpoint in turn (healthy first) until one answers: a dead member of the
    // fleet must not hide the models of the others.
    let mut endpoints = p.pool.resolved();
    endpoints.sort_by_key(|(_, up)| !*up);
    let path = format!("{}/models", p.provider.base_path);
    for (addr, _) in endpoints {
        let Some(ep) = p.pool.endpoint_for(addr) else {
            continue;
        };
        if ep.endpoint.tls {
            continue; // self-hosted fleets speak plain HTTP; TLS discovery is not needed yet
        }
        let host = crate::providers::host_header(&ep.endpoint);
        match tokio::time::timeout(Duration::from_secs(2), http_get(addr, &host, &path)).await {
            Ok(Ok(body)) => {
                #[derive(serde::Deserialize)]
                struct List {
                    data: Vec<Item>,
                }
                #[derive(serde::Deserialize)]
                struct Item {
                    id: String,
                }
                if let Ok(list) = serde_json::from_slice::<List>(&body) {
                    gw.set_discovered(
                        &p.provider.id,
                        list.data.into_iter().map(|i| i.id).collect(),
                    );
                    return;
                }
            }
            Ok(Err(e)) => log::debug!("model discovery on {} ({addr}): {e}", p.provider.id),
            Err(_) => log::debug!("model discovery on {} ({addr}) timed out", p.provider.id),
        }
    }
}

/// A minimal HTTP/1.1 GET for discovery (off the request path; plain HTTP only). Reads the
/// body by `Content-Length` or chunked framing, not until close: servers may keep alive.
pub(crate) async fn http_get(
    addr: std::net::SocketAddr,
    host: &str,
    path: &str,
) -> std::io::Result<Vec<u8>> {
    const MAX: usize = 4 * 1024 * 1024;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let split = loop {
        if let Some(p) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 || buf.len() > MAX {
            return Err(std::io::Error::other("no header end"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") && !head.starts_with("http/1.0 200") {
        return Err(std::io::Error::other("status not 200"));
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    let mut body = buf[split + 4..].to_vec();
    loop {
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => {
                memchr::memmem::find(&body, b"\r\n0\r\n").is_some() || body.starts_with(b"0\r\n")
            }
            None => false,
        };
        if complete || body.len() > MAX {
            break;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if chunked {
        return Ok(dechunk(&body));
    }
    if let Some(n) = length {
        body.truncate(n);
    }
    Ok(body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = memchr::memmem::find(b, b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn upstream_up_of_endpoints_and_providers_that_left_is_removed() {
        use crate::metrics::UPSTREAM_UP;
        let a: std::net::SocketAddr = "127.0.0.1:64101".parse().unwrap();
        let b: std::net::SocketAddr = "127.0.0.1:64102".parse().unwrap();
        for addr in [a, b] {
            UPSTREAM_UP
                .with_label_values(&["retire-h", &addr.to_string()])
                .set(1);
            super::HEALTH
                .lock()
                .unwrap()
                .insert(("retire-h".to_string(), addr), true);
        }
        let text = || String::from_utf8(crate::metrics::render()).unwrap();
        super::retire_health(&|p, addr| p != "retire-h" || addr == a);
        assert!(!text().contains("127.0.0.1:64102"));
        assert!(text().contains("127.0.0.1:64101"));
        super::retire_health(&|p, _| p != "retire-h");
        assert!(!text().contains("127.0.0.1:64101"));
        assert!(!super::HEALTH
            .lock()
            .unwrap()
            .keys()
            .any(|(p, _)| p == "retire-h"));
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            super::dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            b"abcde"
        );
    }
}
