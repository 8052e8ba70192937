use super::*;
use crate::config::{Budget, GatewayKey};
use async_trait::async_trait;
use store::{StoreError, Verdict};

fn key(name: &str, rpm: Option<u64>, tpm: Option<u64>, budget: Option<f64>) -> GatewayKey {
    GatewayKey {
        name: name.into(),
        sha256: [0; 32],
        models: Vec::new(),
        limits: (rpm.is_some() || tpm.is_some()).then_some(RateLimits {
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
        }),
        budget: budget.map(|usd| Budget {
            usd,
            period: BudgetPeriod::Month,
        }),
    }
}

/// A memory store whose clock stands still (these tests check exact bucket levels).
fn memory() -> Arc<Accounting> {
    Arc::new(Accounting::with_store(
        Arc::new(memory::MemoryStore::with_clock(|| 1_000_000)),
        false,
    ))
}

/// The table of one key (leaked: a test's tables live as long as the test).
fn request(k: &GatewayKey, tokens: u64) -> Request<'static> {
    let table: &'static Table = Box::leak(Box::new(Table::new(
        std::slice::from_ref(k),
        &BTreeMap::new(),
    )));
    Request {
        key: table.key(&k.name),
        model: None,
        reserve_tokens: tokens,
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

const NOW: u64 = 1_796_506_200;

#[test]
fn a_key_passes_exactly_its_requests_per_minute() {
    let acc = memory();
    let k = key("rpm-only", Some(3), None, None);
    let results: Vec<_> = (0..5)
        .map(|_| block_on(acc.admit(&request(&k, 100), NOW)))
        .collect();
    let passed = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(passed, 3);
    let Err(refusal) = &results[3] else {
        panic!("fourth admitted")
    };
    assert_eq!(refusal.error.status, 429);
    assert_eq!(refusal.kind, Some(Kind::Requests));
    assert!(
        refusal.error.message.contains("requests"),
        "{}",
        refusal.error.message
    );
    assert!(refusal.error.message.contains("`rpm-only`"));
    assert_eq!(
        refusal.error.retry_after,
        Some(20),
        "one request frees every 20 s"
    );
    let Ok(Some(first)) = &results[0] else {
        panic!()
    };
    assert_eq!(
        headers(&first.shown)
            .into_iter()
            .map(|(k, v)| (k.as_str().to_string(), v))
            .collect::<Vec<_>>(),
        vec![
            ("x-ratelimit-limit-requests".into(), "3".parse().unwrap()),
            (
                "x-ratelimit-remaining-requests".into(),
                "2".parse().unwrap()
            ),
            (
                "x-ratelimit-reset-requests".into(),
                "20.000".parse().unwrap()
            ),
        ]
    );
    assert_eq!(decimal3(0.0), "0.000");
    assert_eq!(decimal3(0.0504), "0.050");
    assert_eq!(decimal3(6.25), "6.250");
    assert_eq!(decimal3(1234.5678), "1234.568");
    assert_eq!(decimal3(-3.0), "0.000");
}

#[test]
fn a_refusal_by_tokens_leaves_no_request_charge() {
    let acc = memory();
    let k = key("both", Some(10), Some(1000), None);
    assert!(block_on(acc.admit(&request(&k, 900), NOW)).is_ok());
    let r = block_on(acc.admit(&request(&k, 200), NOW));
    let Err(refusal) = r else { panic!() };
    assert_eq!(refusal.kind, Some(Kind::Tokens));
    assert!(refusal.error.message.contains("tokens"));
    // Requests: still 9 left after the refused one (it was not counted).
    let Ok(Some(a)) = block_on(acc.admit(&request(&k, 1), NOW)) else {
        panic!()
    };
    assert_eq!(a.shown[0], (Kind::Requests, bucket::shown(2.0, 10)));
}

#[test]
fn a_reservation_over_the_whole_limit_is_refused_and_charges_nothing() {
    let acc = memory();
    let k = key("small", Some(10), Some(500), None);
    let Err(r) = block_on(acc.admit(&request(&k, 501), NOW)) else {
        panic!()
    };
    assert_eq!((r.error.status, r.kind), (429, Some(Kind::Tokens)));
    assert!(
        r.error.message.contains("tokens per minute"),
        "{}",
        r.error.message
    );
    assert_eq!(r.error.retry_after, Some(60));
    assert_eq!(r.shown.len(), 2, "the 429 carries the key's headers");
    assert_eq!(r.shown[0].1.remaining, 10, "no request was charged");
    // With the store down it is still refused (429, not fail_open's pass).
    struct Down;
    #[async_trait]
    impl Store for Down {
        async fn admit(&self, _: &Ask) -> Result<Verdict, StoreError> {
            Err(StoreError("down".into()))
        }
        fn settle(&self, _: Settlement) {}
        fn name(&self) -> &'static str {
            "down"
        }
    }
    let open = Arc::new(Accounting::with_store(Arc::new(Down), true));
    let Err(r) = block_on(open.admit(&request(&k, 501), NOW)) else {
        panic!()
    };
    assert_eq!(r.error.status, 429);
}

#[test]
fn settlement_gives_back_what_was_not_used() {
    let acc = memory();
    let k = key("settle", None, Some(1000), None);
    let Ok(Some(a)) = block_on(acc.admit(&request(&k, 900), NOW)) else {
        panic!()
    };
    a.settle(40, 0);
    let Ok(Some(b)) = block_on(acc.admit(&request(&k, 900), NOW)) else {
        panic!("the reservation was given back")
    };
    assert!(b.shown[0].1.remaining >= 59, "{:?}", b.shown);
    // Nothing served: the whole reservation comes back.
    b.settle(0, 0);
    let Ok(Some(c)) = block_on(acc.admit(&request(&k, 10), NOW)) else {
        panic!()
    };
    assert!(c.shown[0].1.remaining >= 940, "{:?}", c.shown);
}

#[test]
fn budgets_admit_while_spend_is_below_the_budget() {
    let acc = memory();
    let k = key("budgeted", None, None, Some(0.01));
    let Ok(Some(a)) = block_on(acc.admit(&request(&k, 10), NOW)) else {
        panic!()
    };
    assert!(a.shown.is_empty(), "a budget alone shows no rate headers");
    a.settle(10, cost::nano(0.006));
    let Ok(Some(b)) = block_on(acc.admit(&request(&k, 10), NOW)) else {
        panic!("0.006 < 0.01")
    };
    b.settle(10, cost::nano(0.004));
    let Err(r) = block_on(acc.admit(&request(&k, 10), NOW)) else {
        panic!("0.01 spent")
    };
    assert_eq!(r.kind, Some(Kind::Budget));
    assert!(r.error.message.contains("Budget") && r.error.message.contains("month"));
    // Until the month ends: 2026-12-05 21:30 → 2027-01-01 00:00.
    assert_eq!(r.error.retry_after, Some(26 * 86_400 + 2 * 3600 + 1800));
}

#[test]
fn model_limits_count_across_keys_and_show_only_without_key_limits() {
    let acc = memory();
    let a = key("ka", None, None, None);
    let b = key("kb", Some(100), None, None);
    let limits = RateLimits {
        requests_per_minute: Some(2),
        tokens_per_minute: None,
    };
    let models = BTreeMap::from([(
        "shared-model".to_string(),
        crate::config::ModelRoute {
            targets: Vec::new(),
            limits: Some(limits),
        },
    )]);
    let table = Table::new(&[a.clone(), b.clone()], &models);
    let req = |k: &GatewayKey| Request {
        key: table.key(&k.name),
        model: table.model("shared-model"),
        reserve_tokens: 1,
    };
    let Ok(Some(first)) = block_on(acc.admit(&req(&a), NOW)) else {
        panic!()
    };
    assert_eq!(
        first.shown[0].1.limit, 2,
        "the model's limit shows for a key without one"
    );
    let Ok(Some(second)) = block_on(acc.admit(&req(&b), NOW)) else {
        panic!()
    };
    assert_eq!(second.shown.len(), 1);
    assert_eq!(second.shown[0].1.limit, 100, "the key's own limit shows");
    let Err(r) = block_on(acc.admit(&req(&a), NOW)) else {
        panic!("the model's 2 a minute are spent, by two keys")
    };
    assert!(r.error.message.contains("model `shared-model`"));
}

#[test]
fn store_failures_follow_on_store_error() {
    struct Down;
    #[async_trait]
    impl Store for Down {
        async fn admit(&self, _: &Ask) -> Result<Verdict, StoreError> {
            Err(StoreError("connection refused".into()))
        }
        fn settle(&self, _: Settlement) {}
        fn name(&self) -> &'static str {
            "down"
        }
    }
    let k = key("k", Some(5), None, None);
    let closed = Arc::new(Accounting::with_store(Arc::new(Down), false));
    let Err(r) = block_on(closed.admit(&request(&k, 1), NOW)) else {
        panic!()
    };
    assert_eq!((r.error.status, r.kind), (503, None));
    assert!(
        !r.error.message.contains("connection refused"),
        "no internals to clients"
    );
    let open = Arc::new(Accounting::with_store(Arc::new(Down), true));
    assert!(matches!(
        block_on(open.admit(&request(&k, 1), NOW)),
        Ok(None)
    ));
}

#[test]
fn keys_without_limits_ask_nothing() {
    let acc = memory();
    let k = key("free", None, None, None);
    assert!(matches!(
        block_on(acc.admit(&request(&k, 1), NOW)),
        Ok(None)
    ));
    assert_eq!(reservation(401, 100), 101 + 100);
}
