//! Fleet routing (issue 10): which endpoint of a self-hosted pool takes a request, by load and
//! by which replica most likely holds the prompt's prefix in its KV cache. In process: no
//! sidecar, no extra hop. Per pool, one [`Fleet`]:
//!
//! - signals: this gateway's in-flight requests per endpoint and per (endpoint, model)
//!   (`pingora-limits`' `Inflight`, guards per attempt; the endpoint's total is its load, the
//!   per-model counts are published), and each endpoint's vLLM `/metrics` scraped in the
//!   background (`scrape`; never on the request path);
//! - `prefix`: the prompt as a chain of block hashes; `index`: which endpoint was sent which
//!   blocks (bounded); `pick`: the decision; sessions pinned to an endpoint (bounded).
//!
//! Locks are std mutexes held for a few microseconds inside the (synchronous) pick, never
//! across an await.

pub mod index;
pub mod pick;
pub mod prefill;
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
/// Model names counted apart per fleet at most. A route such as `fleet/<any name>` lets a
/// client choose the name sent upstream; past this many, the rest count together as
/// [`crate::metrics::OTHER_MODEL`] (the endpoint's total is exact either way). Names are kept
/// as their label values ([`crate::metrics::label_value`]: clipped, no control characters).
const MODELS_MAX: usize = 64;

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
    /// Requests in flight per (endpoint, index in `models`).
    by_model: pingora_limits::inflight::Inflight,
    /// Model names as sent upstream, in order of first sight (at most `MODELS_MAX`).
    models: RwLock<Vec<Arc<str>>>,
    /// Prompt blocks sent to each endpoint that it had not cached, until their first token.
    prefills: prefill::Prefills,
    endpoints: RwLock<HashMap<SocketAddr, Arc<EndpointState>>>,
    index: Mutex<PrefixIndex>,
    sessions: Mutex<Sessions>,
    started: Instant,
    /// Picks so far (the sequence `EndpointState::last_pick` is read against).
    picks: AtomicU64,
    /// Held from reading the loads to counting the pick: two requests decided at once (one
    /// per worker thread) would otherwise both see the same endpoint least loaded, or picked
    /// longest ago, and both go there (two arrivals in the same millisecond on one replica
    /// while others idled, on the simulator).
    deciding: Mutex<()>,
}

#[derive(Default)]
struct Sessions {
    pinned: HashMap<u64, EndpointId>,
    order: VecDeque<u64>,
}

/// Counts a request on an endpoint while it lives.
pub type InFlight = pingora_limits::inflight::Guard;

pub use prefill::Prefilling;

/// Counts a request on an endpoint, and on (endpoint, model), while it lives (dropped when
/// the attempt ends).
pub struct Attempted {
    _endpoint: InFlight,
    _model: InFlight,
}

impl std::fmt::Debug for Attempted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attempted")
    }
}

/// A pick's count on its endpoint, taken inside the decision (see `Fleet::deciding`); an
/// attempt keeps it ([`Fleet::attempt`]).
pub struct Claim(InFlight);

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Claim")
    }
}

/// What [`Fleet::choose_for`] decided.
#[derive(Debug)]
pub struct Choice {
    pub addr: SocketAddr,
    pub reason: Reason,
    /// The prompt's blocks the endpoint does not hold yet (the prefill it is sent; 0 when
    /// nothing is matched by prefix): counted with [`Fleet::begin_prefill`] until the first
    /// token.
    pub unmatched: u32,
    /// The request counted on `addr` already.
    pub claim: Claim,
}

/// Prompt bytes of pending prefill that weigh as much as one more request in flight. A
/// replica prefilling an uncached prompt holds every request that arrives behind it for the
/// whole prefill (chunked prefill shares each step's token budget), while one more request
/// decoding costs the others little: ~4 KiB (~1,000 tokens) of prefill ≈ one request.
pub const PREFILL_BYTES_PER_LOAD: f64 = 4096.0;

impl Fleet {
    pub fn new(balance: Balance, routing: &Routing) -> Fleet {
        Fleet {
            balance,
            routing: routing.clone(),
            inflight: pingora_limits::inflight::Inflight::new(),
            by_model: pingora_limits::inflight::Inflight::new(),
            models: RwLock::new(Vec::new()),
            prefills: prefill::Prefills::default(),
            endpoints: RwLock::new(HashMap::new()),
            index: Mutex::new(PrefixIndex::new(routing.index_size)),
            sessions: Mutex::new(Sessions::default()),
            started: Instant::now(),
            picks: AtomicU64::new(0),
            deciding: Mutex::new(()),
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

    /// Count a request for `model` on `addr` until the guard is dropped.
    pub fn begin(&self, addr: SocketAddr, model: &str) -> Attempted {
        self.attempt(Claim(self.inflight.incr(addr, 1).0), addr, model)
    }

    /// The attempt of a pick already counted on `addr` (its `claim`), for `model`.
    pub fn attempt(&self, claim: Claim, addr: SocketAddr, model: &str) -> Attempted {
        let m = self.model_slot(model);
        Attempted {
            _endpoint: claim.0,
            _model: self.by_model.incr((addr, m), 1).0,
        }
    }

    /// `model`'s place in `models`, added on first sight while there is room; `MODELS_MAX`
    /// for every name past the bound.
    fn model_slot(&self, model: &str) -> usize {
        let model = crate::metrics::label_value(model);
        let find = |v: &Vec<Arc<str>>| v.iter().position(|m| **m == *model);
        if let Some(i) = self.models.read().ok().as_deref().and_then(find) {
            return i;
        }
        let Ok(mut v) = self.models.write() else {
            return MODELS_MAX;
        };
        match find(&v) {
            Some(i) => i,
            None if v.len() < MODELS_MAX => {
                v.push(Arc::from(&*model));
                v.len() - 1
            }
            None => MODELS_MAX,
        }
    }

    /// This gateway's requests in flight on `addr` per model (names past the bound under
    /// [`crate::metrics::OTHER_MODEL`]), for the gauges.
    pub fn in_flight_by_model(&self, addr: SocketAddr) -> Vec<(Arc<str>, f64)> {
        let models = self.models.read().map(|v| v.clone()).unwrap_or_default();
        let count = |i: usize| self.by_model.incr((addr, i), 0).1.max(0) as f64;
        let mut out: Vec<(Arc<str>, f64)> = models
            .into_iter()
            .enumerate()
            .map(|(i, m)| (m, count(i)))
            .collect();
        if out.len() == MODELS_MAX {
            out.push((crate::metrics::OTHER_MODEL.into(), count(MODELS_MAX)));
        }
        out
    }

    /// The last `unmatched` blocks of `chain` are what `addr` must prefill (not cached there,
    /// as far as the index knows): they weigh on its load, and do not count as held there,
    /// until the guard is dropped at the request's first token.
    pub fn begin_prefill(
        &self,
        addr: SocketAddr,
        chain: &[u64],
        unmatched: u32,
    ) -> Option<Prefilling> {
        let from = chain.len().checked_sub(unmatched as usize)?;
        self.prefills.begin(addr, chain, from)
    }

    /// Load units of the prefill pending on `addr` (see [`PREFILL_BYTES_PER_LOAD`]).
    fn prefill_load(&self, addr: SocketAddr) -> f64 {
        let blocks = self.prefills.blocks(addr) as f64;
        blocks * self.routing.block_size as f64 / PREFILL_BYTES_PER_LOAD
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
        self.fresh_of(&e)
    }

    /// [`Fleet::fresh`] of an endpoint's state already at hand.
    fn fresh_of(&self, e: &EndpointState) -> Option<([f64; 5], f64)> {
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
        self.load_with(addr, self.fresh(addr))
    }

    /// The load score of `addr` from its fresh signals (the pick has each endpoint's state at
    /// hand: one table lookup each, not two).
    fn load_with(&self, addr: SocketAddr, fresh: Option<([f64; 5], f64)>) -> f64 {
        let local = self.in_flight(addr) + self.prefill_load(addr);
        match fresh {
            Some(([_, waiting, kv, ..], foreign)) => pick::load(local, foreign, waiting, kv),
            None => pick::load(local, 0.0, 0.0, 0.0),
        }
    }

    /// Choose among `eligible` (healthy, not tried, not ejected; not empty) for a request,
    /// and remember the choice (its prefix blocks, its session).
    pub fn choose(&self, eligible: &[SocketAddr], hint: &Hint) -> Option<(SocketAddr, Reason)> {
        self.choose_for(eligible, hint).map(|c| (c.addr, c.reason))
    }

    /// [`Fleet::choose`], with the request counted on the endpoint (it counts until the
    /// claim is dropped) and the prefill it is sent.
    pub fn choose_for(&self, eligible: &[SocketAddr], hint: &Hint) -> Option<Choice> {
        if eligible.is_empty() {
            return None;
        }
        let _deciding = self.deciding.lock().unwrap_or_else(|p| p.into_inner());
        let states: Vec<Arc<EndpointState>> = eligible.iter().map(|a| self.endpoint(*a)).collect();
        let mut cands: Vec<Candidate> = eligible
            .iter()
            .zip(&states)
            .map(|(a, st)| Candidate {
                load: self.load_with(*a, self.fresh_of(st)),
                last_pick: st.last_pick.load(Ordering::Relaxed),
                ..Default::default()
            })
            .collect();
        let prefix = self.balance == Balance::PrefixAffinity && !hint.chain.is_empty();
        let ids: Vec<EndpointId> = states.iter().map(|s| s.id).collect();
        let mut popularity = 0;
        let mut hot = false;
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
            hot = popularity >= pick::HOT_PREFIX_HITS;
            // Blocks an endpoint was sent but is still computing are not there yet (`prefill`):
            // a request for them now would compute them again, behind the first.
            self.prefills.computed(eligible, hint.chain, &mut matched);
            // What the request itself would make each endpoint prefill counts with its load:
            // a conversation's holder is compared with the others as they would be with this
            // request on them. Not for a hot prefix: its one miss on a new holder is paid back
            // by the many requests after it (`pick::spill_threshold`).
            let per_block = self.routing.block_size as f64 / PREFILL_BYTES_PER_LOAD;
            for (c, m) in cands.iter_mut().zip(matched) {
                c.matched = m;
                if !hot {
                    c.load += hint.chain.len().saturating_sub(c.matched) as f64 * per_block;
                }
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
            hot,
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
        let unmatched = if prefix {
            hint.chain.len().saturating_sub(cands[i].matched) as u32
        } else {
            0
        };
        Some(Choice {
            addr: eligible[i],
            reason,
            unmatched,
            claim: Claim(self.inflight.incr(eligible[i], 1).0),
        })
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

    /// A request with this prompt chain and no session.
    fn prompt(chain: &[u64]) -> Hint<'_> {
        Hint {
            chain,
            session: None,
        }
    }

    #[test]
    fn a_conversation_stays_where_its_prefix_is() {
        let f = fleet(Balance::PrefixAffinity);
        let eps = [addr(1), addr(2), addr(3)];
        let turn1 = prefix::chain(&[&[b'a'; 2048]], 256);
        let (first, reason) = f.choose(&eps, &prompt(&turn1)).unwrap();
        assert_eq!(reason, Reason::LeastLoaded);
        let mut turn2_bytes = vec![b'a'; 2048];
        turn2_bytes.extend_from_slice(&[b'b'; 1024]);
        let turn2 = prefix::chain(&[&turn2_bytes], 256);
        for _ in 0..5 {
            let (again, reason) = f.choose(&eps, &prompt(&turn2)).unwrap();
            assert_eq!((again, reason), (first, Reason::PrefixHit));
        }
    }

    #[test]
    fn uncached_prefill_weighs_until_the_first_token() {
        let f = fleet(Balance::PrefixAffinity);
        let eps = [addr(21), addr(22)];
        // A 16 KiB prompt nobody holds: all 64 blocks are prefill, 4 loads' worth.
        let long = prefix::chain(&[&[b'p'; 16 * 1024]], 256);
        let Choice {
            addr: first,
            reason,
            unmatched: blocks,
            ..
        } = f.choose_for(&eps, &prompt(&long)).unwrap(); // its claim dropped at once
        assert_eq!((reason, blocks), (Reason::LeastLoaded, 64));
        let prefilling = f.begin_prefill(first, &long, blocks);
        let other = if first == eps[0] { eps[1] } else { eps[0] };
        assert_eq!(f.load(first), 4.0);
        assert_eq!(f.load(other), 0.0);
        // An unrelated prompt goes to the other endpoint, though both have nothing in flight.
        let short = prefix::chain(&[&[b'q'; 512]], 256);
        let (next, _) = f.choose(&eps, &prompt(&short)).unwrap();
        assert_eq!(next, other);
        // The same prompt again while the first is still prefilling: its holder has not
        // computed it yet (this request would compute it again there, behind the first), so
        // it goes where nothing is pending, prefilling all of it.
        let second = f.choose_for(&eps, &prompt(&long)).unwrap();
        assert_eq!(
            (second.addr, second.reason, second.unmatched),
            (other, Reason::LeastLoaded, 64)
        );
        drop(second);
        // First token: the prefill no longer counts, and the holder has the prompt.
        drop(prefilling);
        assert_eq!(f.load(first), 0.0);
        let third = f.choose_for(&eps, &prompt(&long)).unwrap();
        assert_eq!(third.reason, Reason::PrefixHit);
        assert_eq!(third.unmatched, 0);
        assert!(f.begin_prefill(third.addr, &long, 0).is_none());
    }

    #[test]
    fn a_holder_still_computing_a_prefix_has_only_what_it_computed() {
        let f = fleet(Balance::PrefixAffinity);
        let eps = [addr(23), addr(24)];
        // 8 KiB of shared system prompt, held (computed) by the first endpoint.
        let system = [b's'; 8 * 1024];
        let held = prefix::chain(&[&system], 256);
        let first = f.choose_for(&eps, &prompt(&held)).unwrap();
        let holder = first.addr;
        drop(first);
        // The conversation grows by 8 KiB there; that part is being computed.
        let turn = [&system[..], &[b't'; 8 * 1024]];
        let longer = prefix::chain(&turn, 256);
        let pick = f.choose_for(&eps, &prompt(&longer)).unwrap();
        assert_eq!((pick.addr, pick.unmatched), (holder, 32));
        let _computing = f.begin_prefill(holder, &longer, pick.unmatched);
        drop(pick);
        // The same turn again: only the system prompt counts as held there, so it is sent
        // the 32 blocks still being computed (they would be sent as held otherwise).
        let again = f.choose_for(&eps, &prompt(&longer)).unwrap();
        assert_eq!((again.addr, again.unmatched), (holder, 32));
        assert_eq!(again.reason, Reason::PrefixHit);
    }

    #[test]
    fn a_pick_counts_on_its_endpoint_when_decided() {
        // Two decisions before either attempt starts (two worker threads at once): the
        // second sees the first's request, not the loads from before it.
        let f = fleet(Balance::LeastLoaded);
        let (a, b) = (addr(81), addr(82));
        let eight = [1, 2, 3, 4, 5, 6, 7, 8];
        let _half = f.begin_prefill(b, &eight, 8); // 8 blocks x 256 B = half a load unit
        let first = f.choose_for(&[a, b], &Hint::default()).unwrap();
        assert_eq!(first.addr, a);
        let second = f.choose_for(&[a, b], &Hint::default()).unwrap();
        assert_eq!(
            second.addr, b,
            "both went to the endpoint least loaded before either"
        );
        // The claim is the attempt's count: kept, not counted twice.
        let attempt = f.attempt(first.claim, a, "m");
        assert_eq!(f.in_flight(a), 1.0);
        drop(attempt);
        drop(second);
        assert_eq!((f.in_flight(a), f.in_flight(b)), (0.0, 0.0));
    }

    #[test]
    fn requests_are_counted_per_endpoint_and_per_model_within_a_bound() {
        let f = fleet(Balance::LeastLoaded);
        let (a, b) = (addr(91), addr(92));
        let g = [
            f.begin(a, "m1"),
            f.begin(a, "m1"),
            f.begin(a, "m2"),
            f.begin(b, "m2"),
        ];
        assert_eq!(f.in_flight(a), 3.0, "the endpoint's total is its load");
        let counts = |x| {
            f.in_flight_by_model(x)
                .into_iter()
                .map(|(m, n)| (m.to_string(), n))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(a), [("m1".into(), 2.0), ("m2".into(), 1.0)]);
        assert_eq!(counts(b), [("m1".into(), 0.0), ("m2".into(), 1.0)]);
        drop(g);
        assert_eq!(counts(a), [("m1".into(), 0.0), ("m2".into(), 0.0)]);
        // A name is kept as its label value: clipped, control characters replaced (a CR
        // would corrupt a scrape; a name of megabytes would be held and printed as it is).
        let long = format!("evil\r{}", "x".repeat(10_000));
        let g = f.begin(b, &long);
        let (name, n) = counts(b).pop().unwrap();
        assert_eq!(n, 1.0);
        assert!(name.starts_with("evil?x"), "{name}");
        assert!(name.len() <= crate::metrics::LABEL_MAX + '…'.len_utf8());
        let again = f.begin(b, &long);
        assert_eq!(
            counts(b).pop().unwrap(),
            (name, 2.0),
            "the same name, the same slot"
        );
        drop((g, again));
        // Names a client can choose are bounded: past MODELS_MAX they count together.
        let many: Vec<_> = (0..MODELS_MAX + 10)
            .map(|i| f.begin(a, &format!("x{i}")))
            .collect();
        let c = counts(a);
        assert_eq!(c.len(), MODELS_MAX + 1);
        assert_eq!(
            c.last().unwrap(),
            &(crate::metrics::OTHER_MODEL.to_string(), 13.0),
            "3 names before these: 61 of them fit, 13 do not"
        );
        assert_eq!(f.in_flight(a), (MODELS_MAX + 10) as f64);
        drop(many);
    }

    #[test]
    fn a_hot_prefix_spills_when_its_holder_is_loaded() {
        let f = fleet(Balance::PrefixAffinity);
        let eps = [addr(11), addr(12)];
        let chain = prefix::chain(&[&[b'h'; 1024]], 256);
        let (holder, _) = f.choose(&eps, &prompt(&chain)).unwrap();
        let guards: Vec<_> = (0..5).map(|_| f.begin(holder, "m")).collect();
        let (other, reason) = f.choose(&eps, &prompt(&chain)).unwrap();
        assert_ne!(other, holder);
        assert_eq!(reason, Reason::Spill);
        drop(guards);
        assert_eq!(f.in_flight(holder), 0.0);
    }

    #[test]
    fn a_long_conversation_stays_on_its_holder_past_the_threshold() {
        let f = fleet(Balance::PrefixAffinity);
        let eps = [addr(31), addr(32)];
        // 32 KiB of conversation: 8 loads' worth of prefill anywhere but its holder.
        let convo = prefix::chain(&[&[b'c'; 32 * 1024]], 256);
        let hint = Hint {
            chain: &convo,
            session: None,
        };
        let (holder, _) = f.choose(&eps, &hint).unwrap();
        // 6 requests on the holder, 0 elsewhere: more than spill_threshold (4) above, but
        // less than re-reading the conversation elsewhere would cost.
        let busy: Vec<_> = (0..6).map(|_| f.begin(holder, "m")).collect();
        assert_eq!(f.choose(&eps, &hint).unwrap(), (holder, Reason::PrefixHit));
        // 13 on it: now the other endpoint, prefill included, is the better place.
        let more: Vec<_> = (0..7).map(|_| f.begin(holder, "m")).collect();
        let (other, reason) = f.choose(&eps, &hint).unwrap();
        assert_ne!(other, holder);
        assert_eq!(reason, Reason::Spill);
        drop((busy, more));
    }

    #[test]
    fn a_hot_prefix_spreads_at_one_above_the_least_loaded() {
        let f = fleet(Balance::PrefixAffinity);
        let eps = [addr(41), addr(42), addr(43)];
        let system = [b's'; 2048];
        let ask = |q: u8| {
            let mut p = system.to_vec();
            p.extend_from_slice(&[q; 600]);
            prefix::chain(&[&p], 256)
        };
        let first = ask(0);
        let (holder, _) = f.choose(&eps, &prompt(&first)).unwrap();
        let _busy: Vec<_> = (0..2).map(|_| f.begin(holder, "m")).collect();
        // While few requests share the system prompt, its holder keeps it at +2.
        let q1 = ask(1);
        let (again, reason) = f.choose(&eps, &prompt(&q1)).unwrap();
        assert_eq!((again, reason), (holder, Reason::PrefixHit));
        // More requests on the same system prompt: to its holder while the prompt is not
        // hot; from the 8th (its deepest block the deepest match of 8), +2 is too much.
        let mut picks = Vec::new();
        for q in 2..10 {
            let chain = ask(q);
            let (p, r) = f.choose(&eps, &prompt(&chain)).unwrap();
            picks.push((p == holder, r));
        }
        assert!(
            picks[..6].iter().all(|p| *p == (true, Reason::PrefixHit)),
            "{picks:?}"
        );
        assert_eq!(picks[6], (false, Reason::Spill), "{picks:?}");
        // The new holder takes the prompt from then on (it is idle, the first is not).
        assert_eq!(picks[7], (false, Reason::PrefixHit), "{picks:?}");
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
        let _g = f.begin(first, "m"); // a little load does not move it
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
