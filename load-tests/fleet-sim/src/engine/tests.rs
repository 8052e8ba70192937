use super::*;

fn prompt(tag: u8, tokens: usize) -> Prompt {
    // Distinct first byte per tag: prompts with different tags share no block.
    let text: Vec<u8> = (0..tokens * 4)
        .map(|i| b'a' + ((i * 7 + tag as usize) % 26) as u8)
        .collect();
    Prompt::from_bytes(&text)
}

fn small(kv_blocks: usize) -> Params {
    Params {
        kv_blocks,
        ..Params::default()
    }
}

/// Run the engine in virtual time until it is idle: (time in µs, emit) for every emit.
fn drain(e: &mut Engine) -> Vec<(u64, Emit)> {
    let mut now = 0;
    let mut out = Vec::new();
    while let Some(step) = e.plan_step() {
        now += step.duration_us;
        out.extend(e.finish_step(&step).into_iter().map(|x| (now, x)));
    }
    out
}

fn first_token_at(log: &[(u64, Emit)], id: ReqId) -> u64 {
    log.iter()
        .find(|(_, x)| *x == Emit::Token { id, index: 0 })
        .map(|(t, _)| *t)
        .expect("first token")
}

fn usage_of(log: &[(u64, Emit)], id: ReqId) -> Usage {
    log.iter()
        .find_map(|(_, x)| match x {
            Emit::Done { id: d, usage } if *d == id => Some(*usage),
            _ => None,
        })
        .expect("done")
}

fn drain_one(e: &mut Engine, p: Prompt) -> Usage {
    let id = e.submit(p, 2).unwrap();
    usage_of(&drain(e), id)
}

#[test]
fn a_cache_hit_shortens_prefill() {
    let mut e = Engine::new(Params::default());
    let a = e.submit(prompt(1, 3000), 4).unwrap();
    let log = drain(&mut e);
    let cold = first_token_at(&log, a);
    assert_eq!(usage_of(&log, a).cached_tokens, 0);
    // 3000 tokens in 2048-token chunks: two steps, 300 ms of prefill plus two step bases.
    assert_eq!(cold, 2 * 15_500 + 300_000);

    let b = e.submit(prompt(1, 3000), 4).unwrap();
    let log = drain(&mut e);
    let warm = first_token_at(&log, b);
    let u = usage_of(&log, b);
    assert_eq!(
        u.cached_tokens, 2992,
        "all full blocks but the one holding the last token"
    );
    assert_eq!(warm, 15_500 + 800, "8 uncached tokens");
    assert!(warm * 10 < cold);

    let s = e.snapshot();
    assert_eq!(s.prefix_queries, 6000);
    assert_eq!(s.prefix_hits, 2992);
    assert_eq!(s.generation_tokens, 8);
    assert_eq!((s.running, s.waiting), (0, 0));
    assert_eq!(
        s.kv_usage, 0.0,
        "idle cached blocks count as free, as in vLLM"
    );
    assert_eq!(s.cached_blocks, 187);
}

#[test]
fn a_shared_prefix_hits_up_to_where_prompts_diverge() {
    let mut e = Engine::new(Params::default());
    drain_one(&mut e, prompt(3, 1000));
    let mut text: Vec<u8> = (0..1000 * 4)
        .map(|i| b'a' + ((i * 7 + 3) % 26) as u8)
        .collect();
    text.extend_from_slice(&[b'q'; 400]); // 100 more tokens after the same 1000
    let u = drain_one(&mut e, Prompt::from_bytes(&text));
    assert_eq!(
        u.cached_tokens,
        62 * 16,
        "the 62 full blocks of the first 1000 tokens"
    );
    assert_eq!(u.prompt_tokens, 1100);
}

#[test]
fn lru_evicts_under_kv_pressure_tail_first() {
    // 100 blocks. A and B (40 prompt blocks each, + 1 block for output) stay cached after
    // they finish; C needs 51 fresh blocks, so 31 idle blocks must go: A's, the older, tail first.
    let mut e = Engine::new(small(100));
    let (pa, pb, pc) = (prompt(1, 640), prompt(2, 640), prompt(3, 800));
    drain_one(&mut e, pa.clone());
    drain_one(&mut e, pb.clone());
    assert_eq!(e.snapshot().cached_blocks, 80);
    drain_one(&mut e, pc);
    assert_eq!(e.snapshot().cached_blocks, 9 + 40 + 50);
    // B is intact (all but its last block hit; it needs 2 fresh blocks, evicting one more of
    // A's); A kept only its first 8 blocks.
    assert_eq!(drain_one(&mut e, pb).cached_tokens, 39 * 16);
    assert_eq!(drain_one(&mut e, pa).cached_tokens, 8 * 16);
}

#[test]
fn requests_wait_while_kv_is_full_and_run_when_it_frees() {
    // Each needs 60 of 100 blocks (prompt 59 blocks + output 1 block): one at a time.
    let mut e = Engine::new(small(100));
    let x = e.submit(prompt(1, 944), 8).unwrap();
    let y = e.submit(prompt(2, 944), 8).unwrap();
    let step = e.plan_step().unwrap();
    assert_eq!(step.work, vec![(x, 944)]);
    let s = e.snapshot();
    assert_eq!((s.running, s.waiting), (1, 1));
    assert!((s.kv_usage - 0.6).abs() < 1e-9);
    e.finish_step(&step);
    let log = drain(&mut e);
    let x_done = log
        .iter()
        .position(|(_, m)| matches!(m, Emit::Done { id, .. } if *id == x));
    let y_first = log
        .iter()
        .position(|(_, m)| *m == Emit::Token { id: y, index: 0 });
    assert!(
        x_done.unwrap() < y_first.unwrap(),
        "y ran only after x freed its KV"
    );
    assert_eq!(usage_of(&log, y).cached_tokens, 0);
}

#[test]
fn head_of_line_blocks_smaller_requests_behind() {
    let mut e = Engine::new(small(100));
    let _big = e.submit(prompt(1, 944), 8).unwrap();
    let _bigger = e.submit(prompt(2, 1200), 8).unwrap(); // needs 76 blocks: waits
    let tiny = e.submit(prompt(3, 16), 1).unwrap();
    let step = e.plan_step().unwrap();
    assert!(
        step.work.iter().all(|(id, _)| *id != tiny),
        "FIFO: tiny waits behind bigger"
    );
    assert_eq!(e.snapshot().waiting, 2);
}

#[test]
fn decode_is_batched_and_slower_per_request_with_a_bigger_batch() {
    let p = Params::default();
    let mut e = Engine::new(p.clone());
    for i in 0..10 {
        e.submit(prompt(i, 32), 50).unwrap();
    }
    let first = e.plan_step().unwrap(); // ten prefills in one step
    assert_eq!(first.work.len(), 10);
    e.finish_step(&first);
    let step = e.plan_step().unwrap();
    assert_eq!(step.work.len(), 10);
    assert!(step.work.iter().all(|(_, n)| *n == 0));
    // 10 tokens per 20 ms (500 tok/s) vs 1 token per 15.5 ms alone (65 tok/s).
    assert_eq!(step.duration_us, 15_000 + 10 * 500);
    let mut alone = Engine::new(p);
    alone.submit(prompt(1, 32), 50).unwrap();
    let s1 = alone.plan_step().unwrap();
    alone.finish_step(&s1);
    assert_eq!(alone.plan_step().unwrap().duration_us, 15_500);
}

#[test]
fn long_prefills_are_chunked_and_share_steps_with_decodes() {
    let mut e = Engine::new(Params::default());
    let d = e.submit(prompt(1, 32), 100).unwrap();
    let s = e.plan_step().unwrap();
    e.finish_step(&s);
    let long = e.submit(prompt(2, 5000), 10).unwrap();
    let s = e.plan_step().unwrap();
    assert_eq!(s.work, vec![(d, 0), (long, 2047)]);
    assert_eq!(s.duration_us, 15_000 + 2 * 500 + 204_700);
}

#[test]
fn refusals() {
    let mut e = Engine::new(Params {
        max_waiting: 2,
        ..small(100)
    });
    assert_eq!(
        e.submit(prompt(1, 1600), 1),
        Err(Refusal::TooLong {
            tokens: 1601,
            limit: 1600
        })
    );
    e.submit(prompt(1, 10), 1).unwrap();
    e.submit(prompt(2, 10), 1).unwrap();
    assert_eq!(e.submit(prompt(3, 10), 1), Err(Refusal::QueueFull));
    assert_eq!(e.snapshot().refused, 2);
}

#[test]
fn abort_releases_kv_and_keeps_computed_blocks_cached() {
    let mut e = Engine::new(small(100));
    let x = e.submit(prompt(1, 944), 8).unwrap();
    let s = e.plan_step().unwrap();
    e.finish_step(&s);
    assert!(e.snapshot().kv_usage > 0.5);
    e.abort(x);
    let s = e.snapshot();
    assert_eq!((s.running, s.kv_usage), (0, 0.0));
    assert_eq!(s.cached_blocks, 59);
    assert!(e.plan_step().is_none());
    // A waiting request can be aborted too.
    let y = e.submit(prompt(2, 16), 1).unwrap();
    e.abort(y);
    assert_eq!(e.snapshot().waiting, 0);
}

#[test]
fn identical_prompts_at_once_compute_twice_but_account_exactly() {
    let mut e = Engine::new(small(200));
    let a = e.submit(prompt(5, 320), 3).unwrap();
    let b = e.submit(prompt(5, 320), 3).unwrap();
    let log = drain(&mut e);
    assert_eq!(usage_of(&log, a).cached_tokens, 0);
    assert_eq!(
        usage_of(&log, b).cached_tokens,
        0,
        "admitted in the same step as a"
    );
    let s = e.snapshot();
    assert_eq!((s.kv_usage, s.cached_blocks), (0.0, 20));
    assert_eq!(e.free_blocks() + e.idle.len(), 200);
}

#[test]
fn reset_forgets_everything() {
    let mut e = Engine::new(small(100));
    drain_one(&mut e, prompt(1, 100));
    let old = e.submit(prompt(2, 100), 4).unwrap();
    assert_eq!(e.reset(), vec![old]);
    assert_eq!(e.snapshot(), Snapshot::default());
    let new = e.submit(prompt(2, 100), 4).unwrap();
    assert_ne!(new, old, "ids are not reused");
    e.abort(old); // a late abort of the old id leaves the new request alone
    assert_eq!(e.snapshot().waiting, 1);
}
