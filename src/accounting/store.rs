//! Where limit counters live: one interface, two stores (memory, Redis).
//!
//! An [`Ask`] names every counter a request touches; [`Store::admit`] checks them all and
//! counts them all, or none (so a request refused by one limit leaves no charge on another).
//! [`Store::settle`] replaces a token reservation with real usage and adds spend to budgets.

use super::bucket::Shown;
use async_trait::async_trait;

/// A counter's name in the store, shared (built once per config, cloned per request).
pub type Id = std::sync::Arc<str>;

/// The kind of limit, as in messages and the `kind` label of
/// `switchyard_ratelimit_rejections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Requests,
    Tokens,
    Budget,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Requests => "requests",
            Kind::Tokens => "tokens",
            Kind::Budget => "budget",
        }
    }
}

/// One per-minute bucket a request is charged to.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketAsk {
    /// The store key (`switchyard:key:team-a:tokens`).
    pub id: Id,
    pub kind: Kind,
    pub limit: u64,
    pub cost: u64,
}

/// One budget a request must be under.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetAsk {
    /// The store key, period included (`switchyard:budget:team-a:2026-12`).
    pub id: Id,
    /// The budget in nano-dollars (integers add exactly, in Redis too).
    pub cap_nano: u64,
    /// Seconds until the period ends (the `Retry-After` of a refusal; the key's expiry).
    pub left_s: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ask {
    pub buckets: Vec<BucketAsk>,
    pub budgets: Vec<BudgetAsk>,
}

impl Ask {
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty() && self.budgets.is_empty()
    }
}

/// A store's answer: every bucket's state (in `Ask::buckets` order), and the refusal if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub shown: Vec<Shown>,
    /// The first limit that refused, and seconds until it would admit.
    pub refused: Option<(usize, Kind, f64)>,
}

/// What a finished request changes: token buckets by `delta` (real usage − reservation),
/// budgets by the request's cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settlement {
    /// (bucket id, its limit, delta in tokens).
    pub buckets: Vec<(Id, u64, i64)>,
    /// (budget id, cost in nano-dollars, seconds the key should live).
    pub budgets: Vec<(Id, u64, u64)>,
}

impl Settlement {
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.2 == 0) && self.budgets.iter().all(|b| b.1 == 0)
    }
}

/// The store could not answer (Redis down, timed out).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreError(pub String);

#[async_trait]
pub trait Store: Send + Sync {
    /// Check every limit of `ask` and, when all admit, count them all: one atomic step.
    async fn admit(&self, ask: &Ask) -> Result<Verdict, StoreError>;
    /// The answer without awaiting, from a store that has it at once (the memory store):
    /// spares the request path the boxed future of [`Store::admit`]. `None`: await `admit`.
    fn admit_now(&self, _ask: &Ask) -> Option<Result<Verdict, StoreError>> {
        None
    }
    /// Apply a settlement. Never waits on the network: a remote store queues it.
    fn settle(&self, s: Settlement);
    /// Which store this is, for logs.
    fn name(&self) -> &'static str;
}

/// A store that could not be built (a Redis URL the client refuses): every check fails, so
/// `on_store_error` decides, as it would with Redis down.
pub struct Broken(pub String);

#[async_trait]
impl Store for Broken {
    async fn admit(&self, _: &Ask) -> Result<Verdict, StoreError> {
        Err(StoreError(self.0.clone()))
    }
    fn settle(&self, _: Settlement) {}
    fn name(&self) -> &'static str {
        "unavailable"
    }
}
