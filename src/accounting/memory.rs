//! `ratelimit.store: memory`: counters in this process (one instance; lost on restart).
//!
//! Names come from the config (key names, model names), never from clients, so the maps are
//! bounded by the config; budgets of past periods are dropped when a new period starts.

use super::bucket::{self, Level};
use super::store::{Ask, Id, Kind, Settlement, Store, StoreError, Verdict};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct MemoryStore {
    state: Mutex<State>,
    /// Milliseconds now: the wall clock, or a frozen one in tests (a millisecond passing
    /// between two calls drains a bucket a little and changes the numbers shown).
    clock: fn() -> u64,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::with_clock(now_ms)
    }
}

/// Ids are the config's own strings, never a client's: a fast unkeyed hash is enough.
type Map<V> = HashMap<Id, V, foldhash::fast::FixedState>;

#[derive(Default)]
struct State {
    buckets: Map<Level>,
    /// Budget id → spend in nano-dollars.
    spend: Map<u64>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl MemoryStore {
    pub fn with_clock(clock: fn() -> u64) -> MemoryStore {
        MemoryStore {
            state: Mutex::default(),
            clock,
        }
    }

    /// `admit` at a given time (tests drive the clock).
    pub fn admit_at(&self, ask: &Ask, now: u64) -> Verdict {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // First: would every bucket take its charge, and is every budget below its cap?
        let mut refused = None;
        for (i, b) in ask.buckets.iter().enumerate() {
            let level = st.buckets.get(&*b.id).copied().unwrap_or_default();
            if let Err(wait) = bucket::take(level, now, b.limit, b.cost) {
                refused = Some((i, b.kind, wait));
                break;
            }
        }
        if refused.is_none() {
            for (i, b) in ask.budgets.iter().enumerate() {
                if st.spend.get(&*b.id).copied().unwrap_or(0) >= b.cap_nano {
                    refused = Some((ask.buckets.len() + i, Kind::Budget, b.left_s as f64));
                    break;
                }
            }
        }
        // Then count (all or nothing); the headers show the levels after this request, or
        // as they are when it was refused.
        let mut shown = Vec::with_capacity(ask.buckets.len());
        for b in &ask.buckets {
            let level = st.buckets.get(&*b.id).copied().unwrap_or_default();
            let units = match refused {
                Some(_) => level.drained(now, b.limit),
                None => {
                    let units = bucket::take(level, now, b.limit, b.cost)
                        .unwrap_or_else(|_| level.drained(now, b.limit));
                    let level = Level { units, at_ms: now };
                    match st.buckets.get_mut(&*b.id) {
                        Some(l) => *l = level,
                        None => {
                            st.buckets.insert(b.id.clone(), level);
                        }
                    }
                    units
                }
            };
            shown.push(bucket::shown(units, b.limit));
        }
        Verdict { shown, refused }
    }

    pub fn settle_at(&self, s: &Settlement, now: u64) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (id, limit, delta) in &s.buckets {
            if *delta == 0 {
                continue;
            }
            let level = st.buckets.get(&**id).copied().unwrap_or_default();
            let units = (level.drained(now, *limit) + *delta as f64).max(0.0);
            match st.buckets.get_mut(&**id) {
                Some(l) => *l = Level { units, at_ms: now },
                None => {
                    st.buckets.insert(id.clone(), Level { units, at_ms: now });
                }
            }
        }
        for (id, nano, _) in &s.budgets {
            if *nano == 0 {
                continue;
            }
            if let Some(spent) = st.spend.get_mut(&**id) {
                *spent += nano;
                continue;
            }
            {
                // A new period: the spend of the key's earlier periods is done with.
                if let Some(prefix) = id.rsplit_once(':').map(|(p, _)| p) {
                    st.spend
                        .retain(|k: &Id, _| k.rsplit_once(':').map(|(p, _)| p) != Some(prefix));
                }
            }
            st.spend.insert(id.clone(), *nano);
        }
    }

    /// Spend recorded for a budget id, in nano-dollars.
    pub fn spend(&self, id: &str) -> u64 {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.spend.get(id).copied().unwrap_or(0)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn admit(&self, ask: &Ask) -> Result<Verdict, StoreError> {
        Ok(self.admit_at(ask, (self.clock)()))
    }

    fn admit_now(&self, ask: &Ask) -> Option<Result<Verdict, StoreError>> {
        Some(Ok(self.admit_at(ask, (self.clock)())))
    }

    fn settle(&self, s: Settlement) {
        self.settle_at(&s, (self.clock)());
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::{BucketAsk, BudgetAsk};
    use super::*;

    fn ask(tokens: u64) -> Ask {
        Ask {
            buckets: vec![
                BucketAsk {
                    id: "sy:key:a:requests".into(),
                    kind: Kind::Requests,
                    limit: 10,
                    cost: 1,
                },
                BucketAsk {
                    id: "sy:key:a:tokens".into(),
                    kind: Kind::Tokens,
                    limit: 1000,
                    cost: tokens,
                },
            ],
            budgets: vec![BudgetAsk {
                id: "sy:budget:a:2026-12".into(),
                cap_nano: 1_000,
                left_s: 99,
            }],
        }
    }

    #[test]
    fn all_or_nothing() {
        let s = MemoryStore::default();
        let v = s.admit_at(&ask(900), 0);
        assert_eq!(v.refused, None);
        assert_eq!((v.shown[0].remaining, v.shown[1].remaining), (9, 100));
        // The token bucket refuses: the request bucket is not charged either.
        let v = s.admit_at(&ask(200), 0);
        assert_eq!(v.refused.map(|r| (r.0, r.1)), Some((1, Kind::Tokens)));
        assert_eq!(s.admit_at(&ask(1), 0).shown[0].remaining, 8);
    }

    #[test]
    fn settlement_replaces_the_reservation_with_usage() {
        let s = MemoryStore::default();
        s.admit_at(&ask(900), 0);
        s.settle_at(
            &Settlement {
                buckets: vec![("sy:key:a:tokens".into(), 1000, 30 - 900)],
                budgets: vec![],
            },
            0,
        );
        assert_eq!(s.admit_at(&ask(100), 0).shown[1].remaining, 870);
    }

    #[test]
    fn budgets_admit_while_spend_is_below_the_cap() {
        let s = MemoryStore::default();
        let settle = |nano| Settlement {
            buckets: vec![],
            budgets: vec![("sy:budget:a:2026-12".into(), nano, 99)],
        };
        s.settle_at(&settle(999), 0);
        assert_eq!(s.admit_at(&ask(1), 0).refused, None);
        s.settle_at(&settle(1), 0);
        let v = s.admit_at(&ask(1), 0);
        assert_eq!(v.refused, Some((2, Kind::Budget, 99.0)));
        // Next month starts from zero, and the old month is dropped.
        s.settle_at(
            &Settlement {
                buckets: vec![],
                budgets: vec![("sy:budget:a:2027-01".into(), 5, 99)],
            },
            0,
        );
        assert_eq!(s.spend("sy:budget:a:2026-12"), 0);
        assert_eq!(s.spend("sy:budget:a:2027-01"), 5);
    }
}
