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

use crate::config::{BudgetPeriod, GatewayKey, ModelRoute, RateLimitStore, RateLimits};
use crate::errors::GatewayError;
use bucket::Shown;
use http::HeaderName;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use store::{Ask, BucketAsk, BudgetAsk, Id, Kind, Settlement, Store};

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
            .position(|b| b.kind == Kind::Tokens && b.cost > b.limit)
            .map(|i| {
                let b = &plan.ask.buckets[i];
                format!(
                    "Request too large for {}: this request may use {} tokens (prompt estimate + max_tokens), more than its whole limit of {} tokens per minute; lower max_tokens or shorten the prompt",
                    plan.spec(i).owner, b.cost, b.limit
                )
            });
        // The memory store answers at once: no boxed future on the request path.
        let answer = match self.store.admit_now(&plan.ask) {
            Some(answer) => answer,
            None => self.store.admit(&plan.ask).await,
        };
        let verdict = match answer {
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
            let msg = match (kind, request.key.and_then(|k| k.budget.as_ref())) {
                (Kind::Budget, Some(b)) => format!(
                    "Budget exceeded for key `{}`: its spend this {} has reached its budget of ${}",
                    b.key,
                    period_name(b.period),
                    b.usd
                ),
                _ => {
                    let (b, spec) = (&plan.ask.buckets[i], plan.spec(i));
                    format!(
                        "Rate limit reached for {}: {} per minute (limit {}); this request needs {}",
                        spec.owner,
                        kind.as_str(),
                        b.limit,
                        b.cost
                    )
                }
            };
            return Err(Refusal::limited(kind, msg, wait, shown));
        }
        let mut token_buckets = Vec::new();
        for b in plan.ask.buckets.iter().filter(|b| b.kind == Kind::Tokens) {
            token_buckets.push((b.id.clone(), b.limit));
        }
        Ok(Some(Admitted {
            accounting: self.clone(),
            reserved: request.reserve_tokens,
            token_buckets,
            budgets: plan
                .ask
                .budgets
                .into_iter()
                .map(|b| (b.id, b.left_s))
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

/// The limits of one config with their store ids, built once per config (not per request).
#[derive(Default)]
pub struct Table {
    keys: HashMap<String, Limited>,
    models: HashMap<String, Limited>,
}

/// The limits of one key or one model.
pub struct Limited {
    buckets: Vec<Spec>,
    budget: Option<BudgetSpec>,
}

/// One per-minute limit.
struct Spec {
    id: Id,
    kind: Kind,
    limit: u64,
    /// Who it limits, for messages: "key `team-a`".
    owner: Arc<str>,
}

struct BudgetSpec {
    key: Arc<str>,
    usd: f64,
    cap_nano: u64,
    period: BudgetPeriod,
    /// The id of the current period and when it ends (seconds): formatted once a period.
    current: Mutex<Option<(u64, Id)>>,
}

impl Table {
    pub fn new(keys: &[GatewayKey], models: &BTreeMap<String, ModelRoute>) -> Table {
        let mut t = Table::default();
        for k in keys {
            let mut l = Limited {
                buckets: specs("key", &k.name, k.limits.as_ref()),
                budget: k.budget.as_ref().map(|b| BudgetSpec {
                    key: k.name.as_str().into(),
                    usd: b.usd,
                    cap_nano: cost::nano(b.usd),
                    period: b.period,
                    current: Mutex::new(None),
                }),
            };
            l.buckets.shrink_to_fit();
            if !l.buckets.is_empty() || l.budget.is_some() {
                t.keys.insert(k.name.clone(), l);
            }
        }
        for (name, route) in models {
            let buckets = specs("model", name, route.limits.as_ref());
            if !buckets.is_empty() {
                t.models.insert(
                    name.clone(),
                    Limited {
                        buckets,
                        budget: None,
                    },
                );
            }
        }
        t
    }

    pub fn key(&self, name: &str) -> Option<&Limited> {
        if self.keys.is_empty() {
            return None;
        }
        self.keys.get(name)
    }

    pub fn model(&self, name: &str) -> Option<&Limited> {
        if self.models.is_empty() {
            return None;
        }
        self.models.get(name)
    }
}

fn specs(scope: &str, name: &str, l: Option<&RateLimits>) -> Vec<Spec> {
    let Some(l) = l else { return Vec::new() };
    let owner: Arc<str> = format!("{scope} `{name}`").into();
    [
        (Kind::Requests, l.requests_per_minute),
        (Kind::Tokens, l.tokens_per_minute),
    ]
    .into_iter()
    .filter_map(|(kind, limit)| {
        Some(Spec {
            id: format!("switchyard:{scope}:{name}:{}", kind.as_str()).into(),
            kind,
            limit: limit?,
            owner: owner.clone(),
        })
    })
    .collect()
}

impl BudgetSpec {
    /// The store id of the period holding `now_s`, and the seconds left in it.
    fn period(&self, now_s: u64) -> (Id, u64) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((end, id)) = cur.as_ref() {
            if now_s < *end {
                return (id.clone(), end - now_s);
            }
        }
        let p = period::current(self.period, now_s);
        let id: Id = format!("switchyard:budget:{}:{}", self.key, p.id).into();
        *cur = Some((now_s + p.left_s, id.clone()));
        (id, p.left_s)
    }
}

/// What admission needs to know of a request.
pub struct Request<'a> {
    /// The calling key's limits and budget (`Table::key`).
    pub key: Option<&'a Limited>,
    /// The requested model's limits, across all keys (`Table::model`).
    pub model: Option<&'a Limited>,
    /// Tokens to reserve: prompt estimate + `max_tokens` (or `limits.default_max_tokens`).
    pub reserve_tokens: u64,
}

/// Tokens to reserve for a request body: ~4 bytes a token of the whole body (an estimate
/// that errs high, never low, on JSON), plus what it may generate.
pub fn reservation(body_len: usize, max_tokens: u64) -> u64 {
    (body_len as u64).div_ceil(4).saturating_add(max_tokens)
}

/// The store's question for one request, with the limits behind its buckets (the key's,
/// then the model's).
struct Plan<'a> {
    ask: Ask,
    key: &'a [Spec],
    model: &'a [Spec],
    /// How many leading buckets the response headers show: the key's (the model's when the
    /// key has none).
    shown: usize,
}

impl<'a> Plan<'a> {
    fn new(r: &Request<'a>, now_s: u64) -> Plan<'a> {
        let key = r.key.map_or(&[][..], |k| &k.buckets[..]);
        let model = r.model.map_or(&[][..], |m| &m.buckets[..]);
        let mut plan = Plan {
            ask: Ask {
                buckets: Vec::with_capacity(key.len() + model.len()),
                budgets: Vec::new(),
            },
            key,
            model,
            shown: if key.is_empty() {
                model.len()
            } else {
                key.len()
            },
        };
        for spec in key.iter().chain(model) {
            plan.ask.buckets.push(BucketAsk {
                id: spec.id.clone(),
                kind: spec.kind,
                limit: spec.limit,
                cost: match spec.kind {
                    Kind::Tokens => r.reserve_tokens,
                    _ => 1,
                },
            });
        }
        if let Some(b) = r.key.and_then(|k| k.budget.as_ref()) {
            let (id, left_s) = b.period(now_s);
            plan.ask.budgets.push(BudgetAsk {
                id,
                cap_nano: b.cap_nano,
                left_s,
            });
        }
        plan
    }

    /// The limit behind bucket `i` (for messages: only refusals ask).
    fn spec(&self, i: usize) -> &'a Spec {
        self.key
            .iter()
            .chain(self.model)
            .nth(i)
            .expect("one spec per bucket")
    }

    fn shown(&self, states: &[Shown]) -> Vec<(Kind, Shown)> {
        self.ask
            .buckets
            .iter()
            .zip(states)
            .take(self.shown)
            .map(|(b, s)| (b.kind, *s))
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
    token_buckets: Vec<(Id, u64)>,
    budgets: Vec<(Id, u64)>,
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

/// `x-ratelimit-*` headers for bucket states (contract §12): plain numbers, reset in seconds
/// with three decimals. Built without text formatting and without a list: this runs on every
/// response to a key with limits.
pub fn headers(shown: &[(Kind, Shown)]) -> RateHeaders {
    // All values are written into one buffer and handed out as slices of it: one allocation
    // for the six values instead of one each (they are on every response to a limited key).
    let mut buf = bytes::BytesMut::with_capacity(shown.len() * 3 * 24);
    let mut out = RateHeaders::default();
    let mut n = 0;
    for (kind, s) in shown {
        let names = match kind {
            Kind::Requests => [
                HeaderName::from_static("x-ratelimit-limit-requests"),
                HeaderName::from_static("x-ratelimit-remaining-requests"),
                HeaderName::from_static("x-ratelimit-reset-requests"),
            ],
            Kind::Tokens => [
                HeaderName::from_static("x-ratelimit-limit-tokens"),
                HeaderName::from_static("x-ratelimit-remaining-tokens"),
                HeaderName::from_static("x-ratelimit-reset-tokens"),
            ],
            Kind::Budget => continue,
        };
        let mut values = [0u8; 3 * 24];
        let a = write_u64(&mut values, 0, s.limit);
        let b = write_u64(&mut values, a, s.remaining);
        let c = write_millis(&mut values, b, s.reset_s);
        buf.extend_from_slice(&values[..c]);
        let mut all = buf.split().freeze();
        for (name, len) in names.into_iter().zip([a, b - a, c - b]) {
            let value = all.split_to(len);
            // Digits and a dot only: always a valid header value.
            if let (Some(slot), Ok(v)) = (
                out.0.get_mut(n),
                http::HeaderValue::from_maybe_shared(value),
            ) {
                *slot = Some((name, v));
                n += 1;
            }
        }
    }
    out
}

/// The `x-ratelimit-*` headers of a response (at most two limits of three headers each).
#[derive(Default, Debug, PartialEq)]
pub struct RateHeaders([Option<(HeaderName, http::HeaderValue)>; 6]);

impl IntoIterator for RateHeaders {
    type Item = (HeaderName, http::HeaderValue);
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Self::Item>, 6>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

/// Write `v` in decimal at `at`; returns the end.
fn write_u64(buf: &mut [u8], at: usize, v: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = v;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    buf[at..at + len].copy_from_slice(&digits[i..]);
    at + len
}

/// Write a non-negative number of seconds as `x.yyy` at `at`; returns the end.
fn write_millis(buf: &mut [u8], at: usize, seconds: f64) -> usize {
    let millis = (seconds.max(0.0) * 1000.0).round().min(1e15) as u64;
    let end = write_u64(buf, at, millis / 1000);
    buf[end] = b'.';
    let frac = millis % 1000;
    buf[end + 1] = b'0' + (frac / 100) as u8;
    buf[end + 2] = b'0' + (frac / 10 % 10) as u8;
    buf[end + 3] = b'0' + (frac % 10) as u8;
    end + 4
}

/// `x.yyy` for a non-negative number of seconds.
#[cfg(test)]
fn decimal3(v: f64) -> String {
    let mut buf = [0u8; 24];
    let end = write_millis(&mut buf, 0, v);
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests;
