//! Accounting: what a request may take (limits, budgets) and what it cost (contract §6, §7,
//! §12). The proxy calls three things, in this order:
//!
//! 1. [`Accounting::admit`] in `request_filter`, once the key, the model and the body are
//!    known: reserves one request and `prompt estimate + max_tokens` tokens in every bucket
//!    that applies (the key's, the model's) and checks the key's budget, all or nothing.
//! 2. [`Admitted::headers`] on the response: `x-ratelimit-*` of the key's limits.
//! 3. [`Admitted::settle`] from `logging`, which runs once on every path (success, upstream
//!    failure, client gone): the token reservation is replaced by real usage (0 when nothing
//!    was served, the estimate of a cut stream), the cost is added to the budget.

pub mod bucket;
pub mod cost;
pub mod memory;
pub mod period;
pub mod redis_store;
pub mod store;

use crate::config::{BudgetPeriod, GatewayKey, RateLimitStore, RateLimits};
use crate::errors::GatewayError;
use bucket::Shown;
use std::sync::{Arc, Mutex};
use store::{Ask, BucketAsk, BudgetAsk, Kind, Settlement, Store};

/// The limit store of the running config, with what to do when it fails.
pub struct Accounting {
    store: Arc<dyn Store>,
    fail_open: bool,
}

/// The store of the last config, kept across reloads while `ratelimit` is unchanged, so a
/// reload that changes a key's limits keeps the counts already taken.
static CURRENT: Mutex<Option<(RateLimitStore, Arc<Accounting>)>> = Mutex::new(None);

impl Accounting {
    /// The accounting for `config`: the running one when the store settings are the same.
    pub fn for_config(config: &RateLimitStore) -> Arc<Accounting> {
        let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cfg, acc)) = current.as_ref() {
            if cfg == config {
                return acc.clone();
            }
        }
        let acc = Arc::new(match config {
            RateLimitStore::Memory => Accounting {
                store: Arc::new(memory::MemoryStore::default()),
                fail_open: false,
            },
            RateLimitStore::Redis { url, fail_open } => Accounting {
                store: match redis_store::RedisStore::new(url) {
                    Ok(s) => Arc::new(s),
                    Err(e) => {
                        log::error!("ratelimit: {e}; every limit check fails (on_store_error)");
                        Arc::new(store::Broken(e))
                    }
                },
                fail_open: *fail_open,
            },
        });
        *current = Some((config.clone(), acc.clone()));
        acc
    }

    /// An accounting over a given store (tests).
    pub fn with_store(store: Arc<dyn Store>, fail_open: bool) -> Accounting {
        Accounting { store, fail_open }
    }

    /// Reserve what a request may take, or refuse it (429, or 503 when the store failed and
    /// `on_store_error` is `fail_closed`).
    pub async fn admit(
        self: &Arc<Self>,
        request: &Request<'_>,
        now_s: u64,
    ) -> Result<Option<Admitted>, Refusal> {
        let plan = Plan::new(request, now_s);
        if plan.ask.is_empty() {
            return Ok(None);
        }
        // A reservation no bucket could ever hold: refused before any upstream. The store is
        // still asked (it counts nothing, all or nothing) for the headers of the answer.
        let too_large = plan
            .ask
            .buckets
            .iter()
            .find(|b| b.kind == Kind::Tokens && b.cost > b.limit)
            .map(|b| {
                format!(
                    "Request too large for {}: this request may use {} tokens (prompt estimate + max_tokens), more than its whole limit of {} tokens per minute; lower max_tokens or shorten the prompt",
                    plan.owner_of(b),
                    b.cost,
                    b.limit
                )
            });
        let verdict = match self.store.admit(&plan.ask).await {
            Ok(v) => v,
            Err(_) if too_large.is_some() => {
                let msg = too_large.unwrap_or_default();
                return Err(Refusal::limited(Kind::Tokens, msg, 60.0, Vec::new()));
            }
            Err(e) if self.fail_open => {
                log::warn!(
                    "ratelimit store failed, request admitted (fail_open): {}",
                    e.0
                );
                return Ok(None);
            }
            Err(e) => {
                log::warn!(
                    "ratelimit store failed, request refused (fail_closed): {}",
                    e.0
                );
                return Err(Refusal {
                    error: GatewayError::new(
                        503,
                        "The rate limit store is unavailable; try again shortly",
                    )
                    .code("ratelimit_store_unavailable"),
                    kind: None,
                    shown: Vec::new(),
                });
            }
        };
        let shown = plan.shown(&verdict.shown);
        if let Some(msg) = too_large {
            return Err(Refusal::limited(Kind::Tokens, msg, 60.0, shown));
        }
        if let Some((i, kind, wait)) = verdict.refused {
            let msg = match kind {
                Kind::Budget => format!(
                    "Budget exceeded for key `{}`: its spend this {} has reached its budget of ${}",
                    request.key.map_or("", |k| k.name.as_str()),
                    request
                        .key
                        .and_then(|k| k.budget.as_ref())
                        .map_or("period", |b| period_name(b.period)),
                    request
                        .key
                        .and_then(|k| k.budget.as_ref())
                        .map_or(0.0, |b| b.usd)
                ),
                _ => {
                    let b = &plan.ask.buckets[i];
                    format!(
                        "Rate limit reached for {}: {} per minute (limit {}); this request needs {}",
                        plan.owner_of(b),
                        kind.as_str(),
                        b.limit,
                        b.cost
                    )
                }
            };
            return Err(Refusal::limited(kind, msg, wait, shown));
        }
        Ok(Some(Admitted {
            accounting: self.clone(),
            reserved: request.reserve_tokens,
            token_buckets: plan
                .ask
                .buckets
                .iter()
                .filter(|b| b.kind == Kind::Tokens)
                .map(|b| (b.id.clone(), b.limit))
                .collect(),
            budgets: plan
                .ask
                .budgets
                .iter()
                .map(|b| (b.id.clone(), b.left_s))
                .collect(),
            shown,
        }))
    }
}

fn period_name(p: BudgetPeriod) -> &'static str {
    match p {
        BudgetPeriod::Day => "day",
        BudgetPeriod::Week => "week",
        BudgetPeriod::Month => "month",
    }
}

/// What admission needs to know of a request.
pub struct Request<'a> {
    pub key: Option<&'a GatewayKey>,
    /// The model name the client asked for (after alias resolution), and its limits.
    pub model: &'a str,
    pub model_limits: Option<&'a RateLimits>,
    /// Tokens to reserve: prompt estimate + `max_tokens` (or `limits.default_max_tokens`).
    pub reserve_tokens: u64,
}

/// Tokens to reserve for a request body: ~4 bytes a token of the whole body (an estimate
/// that errs high, never low, on JSON), plus what it may generate.
pub fn reservation(body_len: usize, max_tokens: u64) -> u64 {
    (body_len as u64).div_ceil(4).saturating_add(max_tokens)
}

/// The store's question for one request, with whose bucket each one is.
struct Plan {
    ask: Ask,
    /// `true` for the buckets whose state the response headers show (the key's; the model's
    /// when the key has none).
    shown: Vec<bool>,
    owners: Vec<String>,
}

impl Plan {
    fn new(r: &Request<'_>, now_s: u64) -> Plan {
        let mut plan = Plan {
            ask: Ask::default(),
            shown: Vec::new(),
            owners: Vec::new(),
        };
        let key_limited = r.key.and_then(|k| k.limits.as_ref()).is_some();
        if let Some(k) = r.key {
            if let Some(l) = &k.limits {
                plan.buckets("key", &k.name, l, r.reserve_tokens, true);
            }
        }
        if let Some(l) = r.model_limits {
            plan.buckets("model", r.model, l, r.reserve_tokens, !key_limited);
        }
        if let Some((k, b)) = r.key.and_then(|k| Some((k, k.budget.as_ref()?))) {
            let p = period::current(b.period, now_s);
            plan.ask.budgets.push(BudgetAsk {
                id: format!("switchyard:budget:{}:{}", k.name, p.id),
                cap_nano: cost::nano(b.usd),
                left_s: p.left_s,
            });
        }
        plan
    }

    fn buckets(&mut self, scope: &str, name: &str, l: &RateLimits, tokens: u64, shown: bool) {
        for (kind, limit, cost) in [
            (Kind::Requests, l.requests_per_minute, 1),
            (Kind::Tokens, l.tokens_per_minute, tokens),
        ] {
            let Some(limit) = limit else { continue };
            self.ask.buckets.push(BucketAsk {
                id: format!("switchyard:{scope}:{name}:{}", kind.as_str()),
                kind,
                limit,
                cost,
            });
            self.shown.push(shown);
            self.owners.push(format!("{scope} `{name}`"));
        }
    }

    fn owner_of(&self, b: &BucketAsk) -> &str {
        self.ask
            .buckets
            .iter()
            .position(|x| std::ptr::eq(x, b))
            .map_or("", |i| self.owners[i].as_str())
    }

    fn shown(&self, states: &[Shown]) -> Vec<(Kind, Shown)> {
        self.ask
            .buckets
            .iter()
            .zip(states)
            .zip(&self.shown)
            .filter(|(_, show)| **show)
            .map(|((b, s), _)| (b.kind, *s))
            .collect()
    }
}

/// A refused request: its error (429 with `Retry-After`, or 503) and the limit that refused.
pub struct Refusal {
    pub error: GatewayError,
    /// `None` for a store failure (not a rejection by a limit).
    pub kind: Option<Kind>,
    pub shown: Vec<(Kind, Shown)>,
}

impl Refusal {
    fn limited(kind: Kind, message: String, wait_s: f64, shown: Vec<(Kind, Shown)>) -> Refusal {
        let mut error = GatewayError::new(429, message).code(match kind {
            Kind::Budget => "budget_exceeded",
            _ => "rate_limit_exceeded",
        });
        // Whole seconds, never 0: a client that retries at once would only be refused again.
        error.retry_after = Some((wait_s.ceil() as u64).max(1));
        Refusal {
            error,
            kind: Some(kind),
            shown,
        }
    }
}

/// An admitted request's reservation, settled once from `logging`.
pub struct Admitted {
    accounting: Arc<Accounting>,
    reserved: u64,
    token_buckets: Vec<(String, u64)>,
    budgets: Vec<(String, u64)>,
    /// The key's buckets after this request was counted, for the response headers.
    pub shown: Vec<(Kind, Shown)>,
}

impl Admitted {
    /// Replace the reservation with `used` tokens (prompt + completion; 0 when nothing was
    /// served) and add `cost_nano` to the budgets.
    pub fn settle(self, used: u64, cost_nano: u64) {
        let delta = used as i64 - self.reserved as i64;
        let s = Settlement {
            buckets: self
                .token_buckets
                .into_iter()
                .map(|(id, limit)| (id, limit, delta))
                .collect(),
            // The key outlives its period by a day, then Redis forgets it.
            budgets: self
                .budgets
                .into_iter()
                .map(|(id, left)| (id, cost_nano, left + 86_400))
                .collect(),
        };
        self.accounting.store.settle(s);
    }
}

/// `x-ratelimit-*` headers for bucket states (contract §12): plain numbers, reset in seconds.
pub fn headers(shown: &[(Kind, Shown)]) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(shown.len() * 3);
    for (kind, s) in shown {
        let (limit, remaining, reset) = match kind {
            Kind::Requests => (
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ),
            Kind::Tokens => (
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ),
            Kind::Budget => continue,
        };
        out.push((limit, s.limit.to_string()));
        out.push((remaining, s.remaining.to_string()));
        out.push((reset, format!("{:.3}", s.reset_s)));
    }
    out
}

#[cfg(test)]
mod tests;
