//! Fleet routing (issue 10): which endpoint of a self-hosted pool takes a request, by load and
//! by which replica most likely holds the prompt's prefix in its KV cache. In process: no
//! sidecar, no extra hop. Per pool, one [`Fleet`]:
//!
//! - signals: this gateway's in-flight requests per endpoint (`pingora-limits`' `Inflight`,
//!   a guard per attempt), and each endpoint's vLLM `/metrics` scraped in the background
//!   (`scrape`; never on the request path);
//! - `prefix`: the prompt as a chain of block hashes; `index`: which endpoint was sent which
//!   blocks (bounded); `pick`: the decision; sessions pinned to an endpoint (bounded).
//!
//! Locks are std mutexes held for a few microseconds inside the (synchronous) pick, never
//! across an await.

pub mod index;
pub mod pick;
pub mod prefix;
pub mod scrape;
pub mod vllm_metrics;

use crate::config::{Balance, Routing};
use index::{EndpointId, PrefixIndex};
use pick::{Candidate, Reason};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Sessions remembered per fleet at most (oldest forgotten first).
const SESSIONS_MAX: usize = 65_536;
/// Endpoint addresses remembered per fleet at most (ids are `u16`; DNS may keep adding).
const ENDPOINTS_MAX: usize = 4_096;

/// One endpoint's scraped signals (f64 bits in atomics: written by the scraper, read by picks).
#[derive(Debug, Default)]
pub struct Signals {
    /// Running + waiting beyond this gateway's own in-flight requests, at the scrape.
    foreign: AtomicU64,
    running: AtomicU64,
    waiting: AtomicU64,
    kv_usage: AtomicU64,
    prefix_queries: AtomicU64,
    prefix_hits: AtomicU64,
    /// Milliseconds since the fleet started when the last scrape that had vLLM's numbers
    /// landed; 0 = never (a server without them: local counts only).
    fresh_at: AtomicU64,
}

fn f(a: &AtomicU64) -> f64 {
    f64::from_bits(a.load(Ordering::Relaxed))
}

fn set(a: &AtomicU64, v: f64) {
    a.store(v.to_bits(), Ordering::Relaxed)
}

#[derive(Debug)]
pub struct EndpointState {
    pub id: EndpointId,
    pub signals: Signals,
    /// The fleet's pick sequence number when this endpoint was last picked (0 = never).
    last_pick: AtomicU64,
}

/// What a request brings to the pick.
#[derive(Debug, Default, Clone, Copy)]
pub struct Hint<'a> {
    /// The prompt's block chain (empty: nothing to match).
    pub chain: &'a [u64],
    /// The conversation's key (hash of the session header or the `user` field).
    pub session: Option<u64>,
}

pub struct Fleet {
    pub balance: Balance,
    pub routing: Routing,
    inflight: pingora_limits::inflight::Inflight,
    endpoints: RwLock<HashMap<SocketAddr, Arc<EndpointState>>>,
    index: Mutex<PrefixIndex>,
    sessions: Mutex<Sessions>,
    started: Instant,
    /// Picks so far (the sequence `EndpointState::last_pick` is read against).
    picks: AtomicU64,
}

#[derive(Default)]
struct Sessions {
    pinned: HashMap<u64, EndpointId>,
    order: VecDeque<u64>,
}

/// Counts a request on an endpoint while it lives (dropped when the attempt ends).
pub type InFlight = pingora_limits::inflight::Guard;

impl Fleet {
    pub fn new(balance: Balance, routing: &Routing) -> Fleet {
        Fleet {
            balance,
            routing: routing.clone(),
            inflight: pingora_limits::inflight::Inflight::new(),
            endpoints: RwLock::new(HashMap::new()),
            index: Mutex::new(PrefixIndex::new(routing.index_size)),
            sessions: Mutex::new(Sessions::default()),
            started: Instant::now(),
            picks: AtomicU64::new(0),
        }
    }

    /// Does this fleet pick by load (and so needs signals, hints, in-flight counts)?
    pub fn by_load(&self) -> bool {
        self.balance != Balance::RoundRobin
    }

    /// The state of `addr`, created on first sight (ids are never reused: a replica that
    /// comes back under the same address keeps its id, a new one gets a new id).
    pub fn endpoint(&self, addr: SocketAddr) -> Arc<EndpointState> {
        if let Some(e) = self
            .endpoints
            .read()
            .ok()
            .and_then(|m| m.get(&addr).cloned())
        {
            return e;
        }
        let mut m = self.endpoints.write().unwrap_or_else(|p| p.into_inner());
        if m.len() >= ENDPOINTS_MAX && !m.contains_key(&addr) {
            // Names re-resolving to ever new addresses: start the fleet's picture over rather
            // than grow it without bound (ids index the prefix index and sessions, so they go too).
            m.clear();
            if let Ok(mut ix) = self.index.lock() {
                *ix = PrefixIndex::new(self.routing.index_size);
            }
            if let Ok(mut sessions) = self.sessions.lock() {
                *sessions = Sessions::default();
            }
        }
        let next = m.len() as EndpointId;
        m.entry(addr)
            .or_insert_with(|| {
                Arc::new(EndpointState {
                    id: next,
                    signals: Signals::default(),
                    last_pick: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// This gateway's requests in flight on `addr`.
    pub fn in_flight(&self, addr: SocketAddr) -> f64 {
        self.inflight.incr(addr, 0).1.max(0) as f64
    }

    /// Count a request on `addr` until the guard is dropped.
    pub fn begin(&self, addr: SocketAddr) -> InFlight {
        self.inflight.incr(addr, 1).0
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// Record a scrape of `addr`.
    pub fn scraped(&self, addr: SocketAddr, s: &vllm_metrics::Scraped) {
        let e = self.endpoint(addr);
        let sig = &e.signals;
        if s.running.is_none() && s.waiting.is_none() && s.kv_usage.is_none() {
            return; // not vLLM: local counts only
        }
        let queue = s.running.unwrap_or(0.0) + s.waiting.unwrap_or(0.0);
        set(&sig.foreign, (queue - self.in_flight(addr)).max(0.0));
        set(&sig.running, s.running.unwrap_or(0.0));
        set(&sig.waiting, s.waiting.unwrap_or(0.0));
        set(&sig.kv_usage, s.kv_usage.unwrap_or(0.0));
        set(&sig.prefix_queries, s.prefix_queries.unwrap_or(0.0));
        set(&sig.prefix_hits, s.prefix_hits.unwrap_or(0.0));
        sig.fresh_at.store(self.now_ms(), Ordering::Relaxed);
    }

    /// (running, waiting, kv usage, prefix queries, prefix hits) when the last scrape is
    /// recent (4 intervals), else `None`: a server that stopped answering its metrics page
    /// is judged by local counts alone (its health check decides whether it is down).
    pub fn signals(&self, addr: SocketAddr) -> Option<[f64; 5]> {
        self.fresh(addr).map(|(s, _)| s)
    }

    /// The signals with the foreign load, when fresh.
    fn fresh(&self, addr: SocketAddr) -> Option<([f64; 5], f64)> {
        let e = self.endpoints.read().ok()?.get(&addr)?.clone();
        let s = &e.signals;
        let at = s.fresh_at.load(Ordering::Relaxed);
        let stale = self.routing.scrape_interval.as_millis() as u64 * 4;
        (at > 0 && self.now_ms().saturating_sub(at) <= stale).then(|| {
            (
                [
                    f(&s.running),
                    f(&s.waiting),
                    f(&s.kv_usage),
                    f(&s.prefix_queries),
                    f(&s.prefix_hits),
                ],
                f(&s.foreign),
            )
        })
    }

    /// The load score of `addr` (see `pick`).
    pub fn load(&self, addr: SocketAddr) -> f64 {
        let local = self.in_flight(addr);
        match self.fresh(addr) {
            Some(([_, waiting, kv, ..], foreign)) => pick::load(local, foreign, waiting, kv),
            None => pick::load(local, 0.0, 0.0, 0.0),
        }
    }

    /// Choose among `eligible` (healthy, not tried, not ejected; not empty) for a request,
    /// and remember the choice (its prefix blocks, its session).
    pub fn choose(&self, eligible: &[SocketAddr], hint: &Hint) -> Option<(SocketAddr, Reason)> {
        if eligible.is_empty() {
            return None;
        }
        let states: Vec<Arc<EndpointState>> = eligible.iter().map(|a| self.endpoint(*a)).collect();
        let mut cands: Vec<Candidate> = eligible
            .iter()
            .zip(&states)
            .map(|(a, st)| Candidate {
                load: self.load(*a),
                last_pick: st.last_pick.load(Ordering::Relaxed),
                ..Default::default()
            })
            .collect();
        let prefix = self.balance == Balance::PrefixAffinity && !hint.chain.is_empty();
        let ids: Vec<EndpointId> = states.iter().map(|s| s.id).collect();
        let mut popularity = 0;
        if prefix {
            let mut matched = vec![0usize; ids.len()];
            if let Ok(mut ix) = self.index.lock() {
                popularity = ix.matched(
                    hint.chain,
                    &ids,
                    &mut matched,
                    self.picks.load(Ordering::Relaxed),
                );
            }
            for (c, m) in cands.iter_mut().zip(matched) {
                c.matched = m;
            }
        }
        let session = hint.session.filter(|_| self.routing.session_affinity);
        if let Some(key) = session {
            if let Some(id) = self
                .sessions
                .lock()
                .ok()
                .and_then(|s| s.pinned.get(&key).copied())
            {
                if let Some(i) = ids.iter().position(|x| *x == id) {
                    cands[i].pinned = true;
                }
            }
        }
        let (i, reason) = pick::decide(
            &cands,
            pick::spill_threshold(f64::from(self.routing.spill_threshold), popularity),
            fastrand::u64(..),
        )?;
        let seq = self.picks.fetch_add(1, Ordering::Relaxed) + 1;
        states[i].last_pick.store(seq, Ordering::Relaxed);
        if prefix {
            if let Ok(mut ix) = self.index.lock() {
                ix.record(hint.chain, ids[i]);
            }
        }
        if let Some(key) = session {
            self.pin(key, ids[i]);
        }
        Some((eligible[i], reason))
    }

    fn pin(&self, key: u64, id: EndpointId) {
        let Ok(mut s) = self.sessions.lock() else {
            return;
        };
        if s.pinned.insert(key, id).is_none() {
            s.order.push_back(key);
            while s.pinned.len() > SESSIONS_MAX {
                match s.order.pop_front() {
                    Some(old) => {
                        s.pinned.remove(&old);
                    }
                    None => break,
                }
            }
        }
    }

    /// An attempt on `addr` with `chain` failed before any answer: it does not hold that
    /// prefix, so the next turn does not try it first again.
    pub fn failed(&self, addr: SocketAddr, chain: &[u64]) {
        if chain.is_empty() {
            return;
        }
        let id = self.endpoint(addr).id;
        if let Ok(mut ix) = self.index.lock() {
            ix.unrecord(chain, id);
        }
    }

    /// Prefix blocks the index holds (for tests and the README's bound).
    pub fn indexed_blocks(&self) -> usize {
        self.index.lock().map_or(0, |ix| ix.len())
    }
}

/// The session key of a request: its session header, else the OpenAI `user` field (raw bytes).
pub fn session_key(header: Option<&[u8]>, user: Option<&[u8]>) -> Option<u64> {
    let raw = header.filter(|h| !h.is_empty()).or(user)?;
    Some(xxhash_rust::xxh3::xxh3_64(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    fn fleet(balance: Balance) -> Fleet {
        Fleet::new(balance, &Routing::default())
    }

    #[test]
    fn a_conversation_stays_where_its_prefix_is() {
        let f = fleet(Balance::PrefixAffinity);
        let eps = [addr(1), addr(2), addr(3)];
        let turn1 = prefix::chain(&[&[b'a'; 2048]], 256);
        let (first, reason) = f
            .choose(
                &eps,
                &Hint {
                    chain: &turn1,
                    session: None,
                },
            )
            .unwrap();
        assert_eq!(reason, Reason::LeastLoaded);
        let mut turn2_bytes = vec![b'a'; 2048];
        turn2_bytes.extend_from_slice(&[b'b'; 1024]);
        let turn2 = prefix::chain(&[&turn2_bytes], 256);
        for _ in 0..5 {
            let (again, reason) = f
                .choose(
                    &eps,
                    &Hint {
                        chain: &turn2,
                        session: None,
                    },
                )
                .unwrap();
            assert_eq!((again, reason), (first, Reason::PrefixHit));
        }
    }

    #[test]
    fn a_hot_prefix_spills_when_its_holder_is_loaded() {
        let f = fleet(Balance::PrefixAffinity);
        let eps = [addr(11), addr(12)];
        let chain = prefix::chain(&[&[b'h'; 1024]], 256);
        let (holder, _) = f
            .choose(
                &eps,
                &Hint {
                    chain: &chain,
                    session: None,
                },
            )
            .unwrap();
        let guards: Vec<_> = (0..5).map(|_| f.begin(holder)).collect();
        let (other, reason) = f
            .choose(
                &eps,
                &Hint {
                    chain: &chain,
                    session: None,
                },
            )
            .unwrap();
        assert_ne!(other, holder);
        assert_eq!(reason, Reason::Spill);
        drop(guards);
        assert_eq!(f.in_flight(holder), 0.0);
    }

    #[test]
    fn least_loaded_reads_scraped_queues() {
        let f = fleet(Balance::LeastLoaded);
        let eps = [addr(21), addr(22)];
        f.scraped(
            addr(21),
            &vllm_metrics::Scraped {
                running: Some(8.0),
                waiting: Some(3.0),
                kv_usage: Some(0.5),
                ..Default::default()
            },
        );
        for _ in 0..4 {
            assert_eq!(
                f.choose(&eps, &Hint::default()).unwrap(),
                (addr(22), Reason::LeastLoaded)
            );
        }
        assert_eq!(
            f.signals(addr(22)),
            None,
            "never scraped: local counts only"
        );
    }

    #[test]
    fn endpoint_addresses_are_bounded() {
        let f = fleet(Balance::PrefixAffinity);
        for p in 0..(ENDPOINTS_MAX as u16 + 10) {
            f.endpoint(addr(p));
        }
        let n = f.endpoints.read().unwrap().len();
        assert!(n <= ENDPOINTS_MAX, "{n}");
        assert_eq!(
            f.endpoint(addr(1)).id,
            f.endpoint(addr(1)).id,
            "ids stay stable between resets"
        );
    }

    #[test]
    fn sessions_pin_and_are_bounded() {
        let f = fleet(Balance::LeastLoaded);
        let eps = [addr(31), addr(32), addr(33)];
        let s = session_key(Some(b"conv-1"), None);
        let (first, _) = f
            .choose(
                &eps,
                &Hint {
                    chain: &[],
                    session: s,
                },
            )
            .unwrap();
        let _g = f.begin(first); // a little load does not move it
        for _ in 0..4 {
            assert_eq!(
                f.choose(
                    &eps,
                    &Hint {
                        chain: &[],
                        session: s
                    }
                )
                .unwrap(),
                (first, Reason::Session)
            );
        }
        for i in 0..(SESSIONS_MAX as u64 + 10) {
            f.pin(i, 0);
        }
        assert!(f.sessions.lock().unwrap().pinned.len() <= SESSIONS_MAX);
        assert_eq!(
            session_key(None, Some(b"\"u1\"")),
            session_key(Some(b""), Some(b"\"u1\""))
        );
        assert_eq!(session_key(None, None), None);
    }
}
