//! One fleet routing decision (issue 10): hash a 16 KiB prompt into its block chain, match it
//! against the prefix index and the prefills still pending, score the endpoints, pick, record.
//! 8 and 64 endpoints, an index already full of other conversations' blocks, 32 prefills
//! pending on every endpoint.
//! `cargo bench --bench fleet_pick` — criterion's mean, then a p99 over 20,000 timed
//! decisions (the bound: p99 under 50 µs).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::net::SocketAddr;
use std::time::Instant;
use switchyard::config::{Balance, Routing};
use switchyard::fleet::{prefix, Fleet, Hint, Prefilling};

const PROMPT: usize = 16 << 10;

type Setup = (Fleet, Vec<SocketAddr>, Vec<Vec<u8>>, Vec<Prefilling>);

fn setup(endpoints: usize) -> Setup {
    let fleet = Fleet::new(Balance::PrefixAffinity, &Routing::default());
    let eps: Vec<SocketAddr> = (0..endpoints)
        .map(|i| SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 8000)))
        .collect();
    // 64 system prompts × many sessions: the index fills to its bound.
    let prompts: Vec<Vec<u8>> = (0..256)
        .map(|i| {
            let mut p =
                format!("[{{\"role\":\"system\",\"content\":\"prompt {} ", i % 64).into_bytes();
            p.resize(PROMPT, b'a' + (i % 26) as u8);
            p
        })
        .collect();
    for p in &prompts {
        let chain = prefix::chain(&[p], fleet.routing.block_size);
        fleet.choose(
            &eps,
            &Hint {
                chain: &chain,
                session: None,
            },
        );
    }
    // Each endpoint computing the second half of 32 of those prompts (its first token not
    // back yet): every candidate's match is checked against them.
    let mut pending = Vec::new();
    for (k, ep) in eps.iter().enumerate() {
        for j in 0..32 {
            let chain = prefix::chain(
                &[&prompts[(k + j) % prompts.len()]],
                fleet.routing.block_size,
            );
            pending.extend(fleet.begin_prefill(*ep, &chain, (chain.len() / 2) as u32));
        }
    }
    (fleet, eps, prompts, pending)
}

fn decide(
    fleet: &Fleet,
    eps: &[SocketAddr],
    prompt: &[u8],
) -> Option<(SocketAddr, switchyard::fleet::pick::Reason)> {
    let chain = prefix::chain(&[prompt], fleet.routing.block_size);
    fleet.choose(
        eps,
        &Hint {
            chain: &chain,
            session: Some(7),
        },
    )
}

fn pick(c: &mut Criterion) {
    let mut g = c.benchmark_group("fleet_pick_16KiB");
    for n in [8, 64] {
        let (fleet, eps, prompts, _pending) = setup(n);
        let mut i = 0usize;
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                i = i.wrapping_add(1);
                decide(&fleet, &eps, &prompts[i % prompts.len()])
            })
        });
        // The tail, timed one decision at a time.
        let mut times: Vec<u128> = (0..20_000)
            .map(|k| {
                let t = Instant::now();
                std::hint::black_box(decide(&fleet, &eps, &prompts[k % prompts.len()]));
                t.elapsed().as_nanos()
            })
            .collect();
        times.sort_unstable();
        let pct = |q: f64| {
            times[((times.len() as f64 * q) as usize).min(times.len() - 1)] as f64 / 1000.0
        };
        println!(
            "fleet_pick_16KiB/{n}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({} decisions)",
            pct(0.5),
            pct(0.99),
            pct(1.0),
            times.len()
        );
    }
    g.finish();
}

criterion_group!(benches, pick);
criterion_main!(benches);
