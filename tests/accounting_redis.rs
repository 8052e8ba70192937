//! The Redis store against a real `redis-server` (a private instance on a free loopback
//! port, started and stopped here): the Lua scripts do what the in-memory arithmetic does,
//! two stores on one Redis (two replicas) enforce one limit, and the store recovers by
//! itself when Redis comes back.
//!
//! Needs `redis-server` on PATH (`bash tests/run.sh` installs it).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard::accounting::memory::MemoryStore;
use switchyard::accounting::redis_store::{RedisStore, CALL_TIMEOUT};
use switchyard::accounting::store::{Ask, BucketAsk, BudgetAsk, Kind, Settlement, Store};

struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Redis { port, child: None };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (bash tests/run.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ask(name: &str, rpm: u64, tpm: u64, tokens: u64) -> Ask {
    Ask {
        buckets: vec![
            BucketAsk {
                id: format!("switchyard:key:{name}:requests").into(),
                kind: Kind::Requests,
                limit: rpm,
                cost: 1,
            },
            BucketAsk {
                id: format!("switchyard:key:{name}:tokens").into(),
                kind: Kind::Tokens,
                limit: tpm,
                cost: tokens,
            },
        ],
        budgets: Vec::new(),
    }
}

#[test]
fn lua_and_memory_agree_on_a_burst_and_on_all_or_nothing() {
    let redis = Redis::start();
    let store = RedisStore::new(&redis.url()).unwrap();
    let memory = MemoryStore::default();
    let rt = rt();
    for i in 0..30 {
        let tokens = if i % 7 == 3 { 600 } else { 20 };
        let a = ask("agree", 10, 1000, tokens);
        let r = rt.block_on(store.admit(&a)).unwrap();
        let m = memory.admit_at(&a, switchyard::accounting::memory::now_ms());
        assert_eq!(
            r.refused.map(|x| (x.0, x.1)),
            m.refused.map(|x| (x.0, x.1)),
            "request {i}"
        );
        assert_eq!(
            r.shown.iter().map(|s| s.remaining).collect::<Vec<_>>(),
            m.shown.iter().map(|s| s.remaining).collect::<Vec<_>>(),
            "request {i}"
        );
    }
}

#[test]
fn two_replicas_on_one_redis_enforce_one_limit() {
    let redis = Redis::start();
    let a = RedisStore::new(&redis.url()).unwrap();
    let b = RedisStore::new(&redis.url()).unwrap();
    let rt = rt();
    let passed = (0..30)
        .filter(|i| {
            let store = if i % 2 == 0 { &a } else { &b };
            rt.block_on(store.admit(&ask("replicas", 10, 1_000_000, 1)))
                .unwrap()
                .refused
                .is_none()
        })
        .count();
    assert_eq!(passed, 10);
}

#[test]
fn settlement_and_budgets_in_redis() {
    let redis = Redis::start();
    let store = RedisStore::new(&redis.url()).unwrap();
    let rt = rt();
    let v = rt
        .block_on(store.admit(&ask("settle", 100, 1000, 900)))
        .unwrap();
    assert_eq!(v.shown[1].remaining, 100);
    store.settle(Settlement {
        buckets: vec![("switchyard:key:settle:tokens".into(), 1000, 30 - 900)],
        budgets: vec![("switchyard:budget:settle:2026-12".into(), 5_000, 3600)],
    });
    // Settlements are queued, then sent: poll until the tokens come back.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = rt
            .block_on(store.admit(&ask("settle", 100, 1000, 0)))
            .unwrap();
        if v.shown[1].remaining >= 960 {
            break;
        }
        assert!(Instant::now() < deadline, "settlement never applied: {v:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let budget = |cap| Ask {
        buckets: Vec::new(),
        budgets: vec![BudgetAsk {
            id: "switchyard:budget:settle:2026-12".into(),
            cap_nano: cap,
            left_s: 77,
        }],
    };
    assert_eq!(
        rt.block_on(store.admit(&budget(5_001))).unwrap().refused,
        None
    );
    assert_eq!(
        rt.block_on(store.admit(&budget(5_000))).unwrap().refused,
        Some((0, Kind::Budget, 77.0))
    );
}

#[test]
fn redis_down_fails_fast_and_recovers_without_a_restart() {
    let mut redis = Redis::start();
    let store = RedisStore::new(&redis.url()).unwrap();
    let rt = rt();
    assert!(rt.block_on(store.admit(&ask("down", 10, 1000, 1))).is_ok());
    redis.kill();
    for _ in 0..3 {
        let started = Instant::now();
        let r = rt.block_on(store.admit(&ask("down", 10, 1000, 1)));
        assert!(r.is_err(), "{r:?}");
        assert!(
            started.elapsed() <= CALL_TIMEOUT + Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
    redis.spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.block_on(store.admit(&ask("down", 10, 1000, 1))).is_err() {
        assert!(Instant::now() < deadline, "the store never reconnected");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_store_that_starts_before_redis_connects_later() {
    let mut redis = Redis::start();
    redis.kill();
    let store = RedisStore::new(&redis.url()).expect("created without Redis");
    let rt = rt();
    assert!(rt.block_on(store.admit(&ask("late", 10, 1000, 1))).is_err());
    redis.spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.block_on(store.admit(&ask("late", 10, 1000, 1))).is_err() {
        assert!(Instant::now() < deadline, "never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
}
