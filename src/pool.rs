//! Endpoint pools: one per provider, on pingora-load-balancing.
//!
//! A pool holds the endpoints of one provider (one for a cloud API, several for a vLLM
//! fleet), resolves their names off the hot path (`DnsDiscovery`, run by the control task,
//! never in `upstream_peer`: `HttpPeer::new(host)` would block and panic on failure,
//! cloudflare/pingora#570), keeps active health checks, and adds passive ejection: an
//! endpoint that fails `EJECT_AFTER` times in a row sits out `EJECT_FOR`, then is tried again.

use crate::config::{Endpoint, Provider};
use async_trait::async_trait;
use http::HeaderValue;
use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_load_balancing::discovery::ServiceDiscovery;
use pingora_load_balancing::health_check::{HttpHealthCheck, TcpHealthCheck};
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, Backends, LoadBalancer};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Consecutive failures that eject an endpoint.
pub const EJECT_AFTER: u32 = 3;
/// How long an ejected endpoint sits out before it is tried again.
pub const EJECT_FOR: Duration = Duration::from_secs(15);

/// Failed active checks that mark an endpoint down. One: the first check runs before the
/// gateway accepts traffic, so a dead endpoint is never handed a request at start; a single
/// transient failure costs that endpoint one check interval, while passive ejection and
/// per-request failover absorb the rest.
pub const HEALTH_FAILURES: usize = 1;

/// Resolved address → index of the configured endpoint it came from. Kept beside the
/// load balancer rather than in `Backend::ext`: pingora-load-balancing clones the picked
/// `Backend` on every selection, and cloning a non-empty `Extensions` allocates.
type AddrIndex = Arc<RwLock<Generations>>;

/// The index of the latest resolution and of the one before it: the load balancer swaps its
/// backends only after discovery returns, and a request may still hold an address of the
/// previous set, which must map back to its endpoint too.
#[derive(Default)]
struct Generations {
    current: HashMap<SocketAddr, usize>,
    previous: HashMap<SocketAddr, usize>,
}

impl Generations {
    fn get(&self, addr: &SocketAddr) -> Option<usize> {
        self.current
            .get(addr)
            .or_else(|| self.previous.get(addr))
            .copied()
    }

    fn replace(&mut self, next: HashMap<SocketAddr, usize>) {
        self.previous = std::mem::replace(&mut self.current, next);
    }
}

/// A configured endpoint with what the request path needs of it, computed once.
#[derive(Debug)]
pub struct PoolEndpoint {
    pub endpoint: Endpoint,
    /// Its `Host` header value (port only when not the scheme's default).
    pub host: HeaderValue,
}

impl PoolEndpoint {
    pub fn new(endpoint: &Endpoint) -> PoolEndpoint {
        let host = crate::providers::host_header(endpoint);
        PoolEndpoint {
            // Config validation admits only host names and IP literals, which are valid
            // header bytes; an empty Host would be refused loudly by the upstream.
            host: HeaderValue::from_str(&host).unwrap_or_else(|_| HeaderValue::from_static("")),
            endpoint: endpoint.clone(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Passive {
    consecutive_failures: u32,
    ejected_until: Option<Instant>,
}

/// The endpoints of one provider.
pub struct Pool {
    pub provider_id: String,
    pub endpoints: Vec<Arc<PoolEndpoint>>,
    index: AddrIndex,
    pub lb: LoadBalancer<RoundRobin>,
    pub health_interval: Duration,
    passive: Mutex<HashMap<SocketAddr, Passive>>,
    last_check: Mutex<Option<Instant>>,
    /// Load- and prefix-aware picking (`balance` other than round robin).
    pub fleet: Arc<crate::fleet::Fleet>,
    /// When the running metrics scrape started (`None`: none running).
    scraping: Mutex<(Option<Instant>, bool)>,
}

/// A picked endpoint.
#[derive(Debug)]
pub struct Picked {
    pub addr: SocketAddr,
    pub endpoint: Arc<PoolEndpoint>,
    pub reason: crate::fleet::pick::Reason,
    /// Prompt blocks the endpoint is not known to hold (fleets that match prefixes).
    pub prefill_blocks: u32,
    /// A fleet that picks by load counted the request on the endpoint when it decided.
    pub claim: Option<crate::fleet::Claim>,
}

impl Pool {
    pub fn new(provider: &Provider) -> Pool {
        Pool::with_fleet(provider, None)
    }

    /// A pool that keeps `previous`'s fleet state (prefix index, sessions, endpoint ids)
    /// when its balance and routing settings are unchanged: a reload that adds or removes an
    /// endpoint moves only that endpoint's share, never every prefix.
    pub fn with_fleet(provider: &Provider, previous: Option<&Pool>) -> Pool {
        let fleet = match previous {
            Some(p)
                if p.fleet.balance == provider.balance && p.fleet.routing == provider.routing =>
            {
                p.fleet.clone()
            }
            _ => Arc::new(crate::fleet::Fleet::new(
                provider.balance,
                &provider.routing,
            )),
        };
        let index = AddrIndex::default();
        let discovery = DnsDiscovery {
            endpoints: provider.endpoints.clone(),
            index: index.clone(),
        };
        let mut lb = LoadBalancer::<RoundRobin>::from_backends(Backends::new(Box::new(discovery)));
        let hc = &provider.health_check;
        let first = provider.endpoints.first();
        match (&hc.path, first) {
            (Some(path), Some(ep)) => {
                let mut check = HttpHealthCheck::new(&ep.host, ep.tls);
                if let Ok(uri) = path.parse() {
                    check.req.set_uri(uri);
                }
                check.consecutive_failure = HEALTH_FAILURES;
                check.peer_template.options.connection_timeout = Some(hc.timeout);
                check.peer_template.options.read_timeout = Some(hc.timeout);
                lb.set_health_check(Box::new(check));
            }
            _ => {
                let mut check = TcpHealthCheck::new();
                check.consecutive_failure = HEALTH_FAILURES;
                check.peer_template.options.connection_timeout = Some(hc.timeout);
                lb.set_health_check(check);
            }
        }
        lb.parallel_health_check = true;
        Pool {
            provider_id: provider.id.clone(),
            endpoints: provider
                .endpoints
                .iter()
                .map(|e| Arc::new(PoolEndpoint::new(e)))
                .collect(),
            index,
            lb,
            health_interval: hc.interval,
            passive: Mutex::new(HashMap::new()),
            last_check: Mutex::new(None),
            fleet,
            scraping: Mutex::new((None, false)),
        }
    }

    /// True when this fleet's metrics scrape is due and none is running (and marks it begun).
    /// Only pools that pick by load and have endpoints of their own are scraped.
    pub fn scrape_due(&self, now: Instant) -> bool {
        if !self.fleet.by_load() {
            return false;
        }
        let Ok(mut s) = self.scraping.lock() else {
            return false;
        };
        let (last, running) = *s;
        if running
            || last.is_some_and(|t| now.duration_since(t) < self.fleet.routing.scrape_interval)
        {
            return false;
        }
        *s = (Some(now), true);
        true
    }

    pub fn scrape_done(&self) {
        if let Ok(mut s) = self.scraping.lock() {
            s.1 = false;
        }
    }

    /// Pick a healthy endpoint not in `avoid`, skipping passively ejected ones unless
    /// `allow_ejected`. The caller asks first without ejected endpoints across every target
    /// of a request, and only then with them, so traffic moves off an ejected endpoint while
    /// any other target remains, and a lone endpoint keeps being tried.
    pub fn pick_with(&self, avoid: &[SocketAddr], allow_ejected: bool) -> Option<Picked> {
        self.pick_for(avoid, allow_ejected, &crate::fleet::Hint::default())
    }

    /// [`pick_with`](Self::pick_with) for a request: a fleet that picks by load and prefix
    /// uses `hint` (the prompt's block chain, the session).
    pub fn pick_for(
        &self,
        avoid: &[SocketAddr],
        allow_ejected: bool,
        hint: &crate::fleet::Hint,
    ) -> Option<Picked> {
        if self.fleet.by_load() {
            return self.pick_by_load(avoid, allow_ejected, hint);
        }
        let now = Instant::now();
        let passive = self.passive.lock().ok()?;
        let usable = |b: &Backend, healthy: bool, allow_ejected: bool| {
            let Some(addr) = b.addr.as_inet() else {
                return false;
            };
            healthy
                && !avoid.contains(addr)
                && (allow_ejected
                    || passive
                        .get(addr)
                        .and_then(|p| p.ejected_until)
                        .is_none_or(|until| until <= now))
        };
        let chosen = self
            .lb
            .select_with(b"", 256, |b, h| usable(b, h, allow_ejected))?;
        drop(passive);
        let addr = *chosen.addr.as_inet()?;
        let endpoint = self.endpoint_for(addr)?;
        Some(Picked {
            addr,
            endpoint,
            reason: crate::fleet::pick::Reason::RoundRobin,
            prefill_blocks: 0,
            claim: None,
        })
    }

    fn pick_by_load(
        &self,
        avoid: &[SocketAddr],
        allow_ejected: bool,
        hint: &crate::fleet::Hint,
    ) -> Option<Picked> {
        let now = Instant::now();
        let backends = self.lb.backends();
        let eligible: Vec<SocketAddr> = {
            let passive = self.passive.lock().ok()?;
            backends
                .get_backend()
                .iter()
                .filter(|b| backends.ready(b))
                .filter_map(|b| b.addr.as_inet().copied())
                .filter(|a| !avoid.contains(a))
                .filter(|a| {
                    allow_ejected
                        || passive
                            .get(a)
                            .and_then(|p| p.ejected_until)
                            .is_none_or(|until| until <= now)
                })
                .collect()
        };
        let choice = self.fleet.choose_for(&eligible, hint)?;
        let endpoint = self.endpoint_for(choice.addr)?;
        Some(Picked {
            addr: choice.addr,
            endpoint,
            reason: choice.reason,
            prefill_blocks: choice.unmatched,
            claim: Some(choice.claim),
        })
    }

    /// Pick from this pool alone: ejected endpoints only when nothing else is left.
    pub fn pick(&self, avoid: &[SocketAddr]) -> Option<Picked> {
        self.pick_with(avoid, false)
            .or_else(|| self.pick_with(avoid, true))
    }

    /// Resolved, enabled endpoints (healthy or not).
    pub fn resolved(&self) -> Vec<(SocketAddr, bool)> {
        self.lb
            .backends()
            .get_backend()
            .iter()
            .filter_map(|b| b.addr.as_inet().map(|a| (*a, self.lb.backends().ready(b))))
            .collect()
    }

    /// The configured endpoint a resolved address belongs to.
    pub fn endpoint_for(&self, addr: SocketAddr) -> Option<Arc<PoolEndpoint>> {
        let idx = if self.endpoints.len() == 1 {
            0 // every resolved address belongs to the one endpoint
        } else {
            self.index.read().ok()?.get(&addr)?
        };
        self.endpoints.get(idx).cloned()
    }

    /// Resolved endpoints, healthy or not (no allocation: on the request path).
    pub fn endpoint_count(&self) -> usize {
        self.lb.backends().get_backend().len()
    }

    /// How many endpoints could serve a request now.
    pub fn healthy_count(&self) -> usize {
        self.resolved().iter().filter(|(_, up)| *up).count()
    }

    pub fn record_success(&self, addr: SocketAddr) {
        if let Ok(mut p) = self.passive.lock() {
            p.remove(&addr);
        }
    }

    pub fn record_failure(&self, addr: SocketAddr) {
        if let Ok(mut p) = self.passive.lock() {
            let e = p.entry(addr).or_default();
            e.consecutive_failures += 1;
            if e.consecutive_failures >= EJECT_AFTER {
                e.ejected_until = Some(Instant::now() + EJECT_FOR);
                e.consecutive_failures = 0;
                log::warn!(
                    "ejecting {addr} of provider {} for {:?}",
                    self.provider_id,
                    EJECT_FOR
                );
            }
        }
    }

    /// True when this pool's health check is due (and marks it as run).
    pub fn health_check_due(&self, now: Instant) -> bool {
        let Ok(mut last) = self.last_check.lock() else {
            return false;
        };
        match *last {
            Some(t) if now.duration_since(t) < self.health_interval => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// Re-resolve names and run the health check once.
    pub async fn refresh(&self) {
        if let Err(e) = self.lb.update().await {
            log::warn!(
                "provider {}: resolving endpoints failed: {e}",
                self.provider_id
            );
        }
        self.lb.backends().run_health_check(true).await;
    }
}

/// Resolves configured host names to addresses, in the background.
pub struct DnsDiscovery {
    endpoints: Vec<Endpoint>,
    index: AddrIndex,
}

#[async_trait]
impl ServiceDiscovery for DnsDiscovery {
    async fn discover(&self) -> pingora_error::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let mut set = BTreeSet::new();
        let mut index = HashMap::new();
        for (i, ep) in self.endpoints.iter().enumerate() {
            let addrs: Vec<SocketAddr> = match ep.host.parse::<std::net::IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, ep.port)],
                Err(_) => match tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::net::lookup_host((ep.host.as_str(), ep.port)),
                )
                .await
                {
                    Ok(Ok(it)) => it.take(4).collect(),
                    Ok(Err(e)) => {
                        log::warn!("cannot resolve {}: {e}", ep.host);
                        vec![]
                    }
                    Err(_) => {
                        log::warn!("resolving {} timed out", ep.host);
                        vec![]
                    }
                },
            };
            for addr in addrs {
                // An address two endpoints share belongs to the first, as in the set.
                index.entry(addr).or_insert(i);
                set.insert(Backend {
                    addr: PingoraAddr::Inet(addr),
                    weight: 1,
                    ext: Default::default(),
                });
            }
        }
        if let Ok(mut shared) = self.index.write() {
            shared.replace(index);
        }
        Ok((set, HashMap::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(ports: &[u16]) -> Provider {
        let endpoints = ports
            .iter()
            .map(|p| Endpoint {
                host: "127.0.0.1".into(),
                port: *p,
                tls: false,
            })
            .collect();
        Provider::test_fleet("fleet", endpoints)
    }

    #[tokio::test]
    async fn failing_endpoint_is_ejected_then_comes_back_as_last_resort() {
        let pool = Pool::new(&provider(&[7001, 7002]));
        pool.lb.update().await.unwrap();
        let bad: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        for _ in 0..EJECT_AFTER {
            pool.record_failure(bad);
        }
        for _ in 0..6 {
            assert_eq!(
                pool.pick(&[]).unwrap().addr.port(),
                7002,
                "ejected endpoint picked"
            );
        }
        // Asked without ejected endpoints, a pool with only the ejected one left has none.
        let good: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        assert!(pool.pick_with(&[good], false).is_none());
        // With the healthy one excluded, the ejected one is still tried rather than nothing.
        assert_eq!(pool.pick(&[good]).unwrap().addr, bad);
        // A success clears the record.
        pool.record_success(bad);
        let ports: std::collections::BTreeSet<u16> = (0..4)
            .map(|_| pool.pick(&[]).unwrap().addr.port())
            .collect();
        assert_eq!(ports.len(), 2);
    }

    #[tokio::test]
    async fn pick_maps_back_to_the_configured_endpoint() {
        let pool = Pool::new(&provider(&[7003]));
        pool.lb.update().await.unwrap();
        let picked = pool.pick(&[]).unwrap();
        assert_eq!(picked.endpoint.endpoint.port, 7003);
        assert_eq!(picked.endpoint.host, "127.0.0.1:7003");
        assert_eq!(pool.endpoint_for(picked.addr).unwrap().endpoint.port, 7003);
        assert!(pool.pick(&[picked.addr]).is_none());
    }

    #[tokio::test]
    async fn each_resolved_address_maps_to_its_own_endpoint() {
        let pool = Pool::new(&provider(&[7004, 7005, 7006]));
        pool.lb.update().await.unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..6 {
            let picked = pool.pick(&[]).unwrap();
            assert_eq!(picked.endpoint.endpoint.port, picked.addr.port());
            seen.insert(picked.addr.port());
        }
        assert_eq!(seen.len(), 3);
        let unknown: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(pool.endpoint_for(unknown).is_none());
    }

    #[test]
    fn a_reload_keeps_the_fleet_state_while_its_routing_is_unchanged() {
        let mut p = provider(&[7011, 7012]);
        p.balance = crate::config::Balance::PrefixAffinity;
        let old = Pool::new(&p);
        let chain = crate::fleet::prefix::chain(&[&[b'x'; 1024]], 256);
        let eps: Vec<SocketAddr> = vec!["127.0.0.1:7011".parse().unwrap()];
        old.fleet.choose(
            &eps,
            &crate::fleet::Hint {
                chain: &chain,
                session: None,
            },
        );
        // One more endpoint: the same fleet (its prefixes stay where they are).
        let mut more = p.clone();
        more.endpoints.push(Endpoint {
            host: "127.0.0.1".into(),
            port: 7013,
            tls: false,
        });
        let kept = Pool::with_fleet(&more, Some(&old));
        assert!(Arc::ptr_eq(&kept.fleet, &old.fleet));
        assert_eq!(kept.fleet.indexed_blocks(), 4);
        // Other routing settings: a fresh fleet.
        let mut other = p.clone();
        other.routing.block_size = 128;
        assert!(!Arc::ptr_eq(
            &Pool::with_fleet(&other, Some(&old)).fleet,
            &old.fleet
        ));
    }

    #[test]
    fn an_address_of_the_previous_resolution_still_maps_back() {
        let mut g = Generations::default();
        let a: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        g.replace([(a, 0)].into());
        g.replace([(b, 1)].into());
        assert_eq!(g.get(&b), Some(1));
        assert_eq!(g.get(&a), Some(0), "picked before the swap");
        g.replace([(b, 1)].into());
        assert_eq!(g.get(&a), None, "two resolutions later it is gone");
    }
}
