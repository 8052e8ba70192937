//! `ratelimit.store: redis`: every replica counts in one Redis, each check-and-count one Lua
//! script (`lua/admit.lua`), so N replicas enforce one limit, and nothing is leased locally.
//!
//! Round trips: admission is one `EVALSHA` on the request path. Settlements never wait on
//! Redis: `settle` queues them and a background task sends whatever has queued as one
//! `EVALSHA` (`lua/settle.lua`); idle, that is right away, under load many requests share one.
//!
//! The client is `redis`'s `ConnectionManager`, created lazily: the process starts with Redis
//! down, and the manager reconnects by itself when Redis comes back. Every call is bounded
//! (connect 500 ms, response 1 s, and [`CALL_TIMEOUT`] over the whole call) so with Redis
//! unreachable a request is still answered within `CALL_TIMEOUT`, by `on_store_error`.

use super::bucket;
use super::store::{Ask, Kind, Settlement, Store, StoreError, Verdict};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// The longest a request waits for Redis before `on_store_error` decides.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1500);
/// Settlements waiting to be sent; beyond this (Redis down for long) new ones are dropped.
const QUEUE_MAX: usize = 65_536;
/// Settlements sent in one script call at most.
const BATCH_MAX: usize = 128;

static ADMIT: &str = include_str!("lua/admit.lua");
static SETTLE: &str = include_str!("lua/settle.lua");

pub struct RedisStore {
    conn: ConnectionManager,
    admit: redis::Script,
    queue: mpsc::Sender<Settlement>,
    dropped: AtomicU64,
}

impl RedisStore {
    /// A store for `url` (checked by the config). Connects lazily: never fails on Redis
    /// being down, only on a URL the client cannot use.
    pub fn new(url: &str) -> Result<RedisStore, String> {
        let client = redis::Client::open(url).map_err(|e| format!("ratelimit.url: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("switchyard-redis")
            .enable_all()
            .build()
            .map_err(|e| format!("redis runtime: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(250));
        let conn = {
            let _in = runtime.enter();
            ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| format!("redis client: {e}"))?
        };
        // The runtime that drives the connection and the settlement task is never dropped: a
        // store replaced by a reload may be dropped last inside a request's task, where
        // dropping a runtime panics. A reload that changes `ratelimit` leaves one idle thread.
        let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(runtime));
        let (queue, rx) = mpsc::channel(QUEUE_MAX);
        runtime.spawn(settle_loop(conn.clone(), rx));
        Ok(RedisStore {
            conn,
            admit: redis::Script::new(ADMIT),
            queue,
            dropped: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn admit(&self, ask: &Ask) -> Result<Verdict, StoreError> {
        let mut call = self.admit.prepare_invoke();
        call.arg(ask.buckets.len());
        for b in &ask.buckets {
            call.key(&*b.id).arg(b.limit).arg(b.cost);
        }
        for b in &ask.budgets {
            call.key(&*b.id).arg(b.cap_nano).arg(b.left_s);
        }
        let mut conn = self.conn.clone();
        let reply: Vec<String> = tokio::time::timeout(CALL_TIMEOUT, call.invoke_async(&mut conn))
            .await
            .map_err(|_| StoreError("redis did not answer in time".into()))?
            .map_err(|e| StoreError(format!("redis: {e}")))?;
        verdict(ask, &reply).ok_or_else(|| StoreError("redis: unexpected script reply".into()))
    }

    fn settle(&self, s: Settlement) {
        if s.is_empty() {
            return;
        }
        if self.queue.try_send(s).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                log::warn!(
                    "ratelimit: {} settlement(s) dropped: the Redis queue is full (Redis down?)",
                    n + 1
                );
            }
        }
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

/// The script's reply, read back: `[refused, wait, level...]`.
fn verdict(ask: &Ask, reply: &[String]) -> Option<Verdict> {
    let refused: usize = reply.first()?.parse().ok()?;
    let wait: f64 = reply.get(1)?.parse().ok().filter(|w: &f64| w.is_finite())?;
    let levels = reply.get(2..)?;
    if levels.len() != ask.buckets.len() {
        return None;
    }
    let shown = ask
        .buckets
        .iter()
        .zip(levels)
        .map(|(b, l)| {
            let units: f64 = l.parse().ok().filter(|u: &f64| u.is_finite())?;
            Some(bucket::shown(units, b.limit))
        })
        .collect::<Option<Vec<_>>>()?;
    let refused = match refused {
        0 => None,
        i if i <= ask.buckets.len() => Some((i - 1, ask.buckets[i - 1].kind, wait)),
        i if i <= ask.buckets.len() + ask.budgets.len() => Some((i - 1, Kind::Budget, wait)),
        _ => return None,
    };
    Some(Verdict { shown, refused })
}

/// Sends queued settlements, batched, until the store is dropped.
async fn settle_loop(mut conn: ConnectionManager, mut rx: mpsc::Receiver<Settlement>) {
    let script = redis::Script::new(SETTLE);
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while rx.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let mut buckets = Vec::new();
        let mut budgets = Vec::new();
        for s in batch.drain(..) {
            buckets.extend(s.buckets.into_iter().filter(|b| b.2 != 0));
            budgets.extend(s.budgets.into_iter().filter(|b| b.1 != 0));
        }
        let mut call = script.prepare_invoke();
        call.arg(buckets.len());
        for (id, limit, delta) in &buckets {
            call.key(&**id).arg(limit).arg(delta);
        }
        for (id, nano, ttl) in &budgets {
            call.key(&**id).arg(nano).arg(ttl);
        }
        // One retry covers a reconnect; past that the settlement is lost (logged), never
        // blocking the ones behind it for long.
        for attempt in 0..2 {
            let sent =
                tokio::time::timeout(CALL_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await;
            match sent {
                Ok(Ok(_)) => break,
                Ok(Err(e)) if attempt == 1 => log::warn!("ratelimit: settlement lost: redis: {e}"),
                Err(_) if attempt == 1 => log::warn!("ratelimit: settlement lost: redis timed out"),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::BucketAsk;
    use super::*;

    #[test]
    fn script_replies_are_read_back() {
        let ask = Ask {
            buckets: vec![BucketAsk {
                id: "k".into(),
                kind: Kind::Tokens,
                limit: 100,
                cost: 10,
            }],
            budgets: vec![],
        };
        let ok = verdict(&ask, &["0".into(), "0".into(), "25.5".into()]).unwrap();
        assert_eq!(ok.refused, None);
        assert_eq!(ok.shown[0].remaining, 74);
        let no = verdict(&ask, &["1".into(), "3.5".into(), "95".into()]).unwrap();
        assert_eq!(no.refused, Some((0, Kind::Tokens, 3.5)));
        assert!(
            verdict(&ask, &["0".into(), "0".into()]).is_none(),
            "a level missing"
        );
        assert!(verdict(&ask, &["7".into(), "0".into(), "1".into()]).is_none());
    }

    proptest::proptest! {
        // The reply comes over the network: whatever Redis (or something posing as it) sends,
        // reading it never panics, and an accepted reply has one state per bucket.
        #[test]
        fn any_reply_is_read_without_panic(reply in proptest::collection::vec(".{0,12}", 0..6),
                                           buckets in 0usize..3) {
            let ask = Ask {
                buckets: (0..buckets)
                    .map(|i| BucketAsk { id: format!("k{i}").into(), kind: Kind::Requests, limit: i as u64, cost: 1 })
                    .collect(),
                budgets: vec![],
            };
            if let Some(v) = verdict(&ask, &reply) {
                proptest::prop_assert_eq!(v.shown.len(), buckets);
            }
        }
    }
}
