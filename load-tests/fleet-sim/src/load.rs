//! `fleet-sim load`: an open-loop load generator. Arrivals (Poisson or evenly spaced) at `rate`
//! per second for `duration`, whatever the responses do; every request streams
//! (`stream_options.include_usage`), carries `x-session-id` and the OpenAI `user` field, and has
//! a timeout. Measures TTFT (to the first non-empty content delta), end-to-end latency, usage
//! (prompt, cached, completion tokens) and output tokens per second (completion tokens of the
//! successful requests / wall time from the first arrival to the last answer).
//!
//! With several `--url`s it also balances on the client side (`--pick`): a reference for what
//! the gateway's policies should reach, measured without the gateway.

use crate::http::{self, Dechunk};
use crate::workload::{json_escape, Job, Kind, Sizes, Workload};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    RoundRobin,
    /// Hash of the session id: every turn of a session on the same URL.
    Session,
    /// Hash of the first 4 KiB of the `messages` JSON: a prefix affinity blind to load.
    Prefix,
    /// Fewest requests in flight from this generator.
    Least,
    /// A session stays on its URL while that URL's in-flight count is within `sticky_slack`
    /// of the least loaded one; else it moves to the least loaded (a reference for a
    /// load-aware prefix affinity).
    Sticky,
}

impl Pick {
    pub fn parse(s: &str) -> Result<Pick, String> {
        match s {
            "round_robin" | "rr" => Ok(Pick::RoundRobin),
            "session" => Ok(Pick::Session),
            "least" => Ok(Pick::Least),
            "sticky" => Ok(Pick::Sticky),
            "prefix" => Ok(Pick::Prefix),
            _ => Err(format!(
                "unknown --pick `{s}`: round_robin, session, prefix, least or sticky"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LoadOpts {
    pub urls: Vec<String>,
    pub pick: Pick,
    pub kind: Kind,
    pub workload: String,
    pub sizes: Sizes,
    pub sessions: usize,
    pub rate: f64,
    pub duration: Duration,
    pub poisson: bool,
    pub key: String,
    pub model: String,
    pub seed: u64,
    pub timeout: Duration,
    /// Requests sent before this are sent but not measured.
    pub warmup: Duration,
    /// How long to wait for answers after the last arrival.
    pub drain: Duration,
    pub label: String,
    pub sticky_slack: usize,
    /// Where to write one JSON line per request (optional).
    pub requests_out: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct Outcome {
    sent_at: f64,
    target: usize,
    turn: usize,
    late: bool,
    status: u16,
    ok: bool,
    error: Option<String>,
    ttft: Option<f64>,
    e2e: f64,
    prompt_tokens: usize,
    cached_tokens: usize,
    completion_tokens: usize,
    chunks: usize,
    done: bool,
}

struct Ctx {
    opts: LoadOpts,
    addrs: Vec<String>,
    start: Instant,
    workload: Mutex<Workload>,
    results: Mutex<Vec<Outcome>>,
    in_flight: Vec<AtomicUsize>,
    rr: AtomicUsize,
    homes: Mutex<std::collections::HashMap<String, usize>>,
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl Ctx {
    fn pick(&self, job: &Job) -> usize {
        let n = self.addrs.len();
        match self.opts.pick {
            Pick::RoundRobin => self.rr.fetch_add(1, Ordering::Relaxed) % n,
            Pick::Session => (fnv(&job.session_id) % n as u64) as usize,
            Pick::Prefix => {
                let head = &job.messages[..job.messages.len().min(4096)];
                (fnv(head) % n as u64) as usize
            }
            Pick::Least => self.least(),
            Pick::Sticky => {
                let mut homes = lock(&self.homes);
                if let Some(&home) = homes.get(&job.session_id) {
                    let min = self
                        .in_flight
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed))
                        .min();
                    let load = self.in_flight[home].load(Ordering::Relaxed);
                    if load <= min.unwrap_or(0) + self.opts.sticky_slack {
                        return home;
                    }
                }
                let home = self.least();
                if homes.len() > 100_000 {
                    homes.clear();
                }
                homes.insert(job.session_id.clone(), home);
                home
            }
        }
    }

    fn least(&self) -> usize {
        let n = self.addrs.len();
        let off = self.rr.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (i + off) % n)
            .min_by_key(|&i| self.in_flight[i].load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}

pub async fn run(opts: LoadOpts) -> Result<Value, String> {
    let addrs = opts
        .urls
        .iter()
        .map(|u| http::authority(u))
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err("give --url".into());
    }
    let workload = Workload::new(opts.kind, opts.sizes.clone(), opts.sessions, opts.seed);
    let mut rng = crate::rng::Rng::new(opts.seed ^ 0xa11);
    let mut schedule = Vec::new();
    let mut t = 0.0;
    loop {
        t += if opts.poisson {
            rng.exp(opts.rate)
        } else {
            1.0 / opts.rate
        };
        if t >= opts.duration.as_secs_f64() {
            break;
        }
        schedule.push(t);
    }
    let ctx = Arc::new(Ctx {
        in_flight: addrs.iter().map(|_| AtomicUsize::new(0)).collect(),
        addrs,
        start: Instant::now(),
        workload: Mutex::new(workload),
        results: Mutex::new(Vec::new()),
        rr: AtomicUsize::new(0),
        homes: Mutex::new(std::collections::HashMap::new()),
        opts,
    });
    let mut set = JoinSet::new();
    for &t in &schedule {
        tokio::time::sleep_until((ctx.start + Duration::from_secs_f64(t)).into()).await;
        while set.try_join_next().is_some() {}
        let job = lock(&ctx.workload).arrival(t);
        if let Some((job, delay)) = job {
            set.spawn(chain(ctx.clone(), job, delay));
        }
    }
    let deadline = Instant::now() + ctx.opts.drain;
    let mut unfinished = 0;
    loop {
        match tokio::time::timeout_at(deadline.into(), set.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                unfinished = set.len();
                set.abort_all();
                break;
            }
        }
    }
    let results = lock(&ctx.results).clone();
    if let Some(path) = &ctx.opts.requests_out {
        let mut lines = String::new();
        for x in &results {
            let line = json!({"sent_at": x.sent_at, "target": x.target, "turn": x.turn,
                "late": x.late, "status": x.status, "ok": x.ok, "error": x.error,
                "ttft_ms": x.ttft.map(|t| t * 1e3), "e2e_ms": x.e2e * 1e3,
                "prompt_tokens": x.prompt_tokens, "cached_tokens": x.cached_tokens,
                "completion_tokens": x.completion_tokens});
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        std::fs::write(path, lines).map_err(|e| format!("{path}: {e}"))?;
    }
    let w = lock(&ctx.workload);
    Ok(summarize(
        &ctx.opts,
        &ctx.addrs,
        &results,
        schedule.len(),
        unfinished,
        w.deferred_total,
        w.deferred_now(),
        w.sessions_started,
    ))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Send a job (after `delay` seconds); then, while arrivals are deferred, the same session's
/// next turns.
async fn chain(ctx: Arc<Ctx>, mut job: Job, mut delay: f64) {
    loop {
        let late = delay > 0.0;
        if late {
            tokio::time::sleep(Duration::from_secs_f64(delay)).await;
        }
        let target = ctx.pick(&job);
        ctx.in_flight[target].fetch_add(1, Ordering::Relaxed);
        let (mut out, reply) = send(&ctx, &job, target).await;
        ctx.in_flight[target].fetch_sub(1, Ordering::Relaxed);
        out.late = late;
        let now = ctx.start.elapsed().as_secs_f64();
        let next = lock(&ctx.workload).complete(&job, out.ok.then_some(reply), now);
        lock(&ctx.results).push(out);
        match next {
            Some((j, d)) => {
                job = j;
                delay = d;
            }
            None => return,
        }
    }
}

async fn send(ctx: &Ctx, job: &Job, target: usize) -> (Outcome, String) {
    let o = &ctx.opts;
    let mut body = String::with_capacity(job.messages.len() + 256);
    body.push_str("{\"model\":");
    json_escape(&o.model, &mut body);
    body.push_str(",\"messages\":");
    body.push_str(&job.messages);
    body.push_str(&format!(
        ",\"max_tokens\":{},\"stream\":true,\"stream_options\":{{\"include_usage\":true}},\"user\":",
        job.max_tokens
    ));
    json_escape(&job.session_id, &mut body);
    body.push('}');
    let addr = &ctx.addrs[target];
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\naccept: text/event-stream\r\nx-session-id: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        o.key,
        job.session_id,
        body.len()
    );
    let t0 = Instant::now();
    let mut out = Outcome {
        sent_at: (t0 - ctx.start).as_secs_f64(),
        target,
        turn: job.turn,
        ..Outcome::default()
    };
    let mut reply = String::new();
    let r = tokio::time::timeout(
        o.timeout,
        exchange(addr, head, body, &mut out, &mut reply, t0),
    )
    .await;
    out.e2e = t0.elapsed().as_secs_f64();
    match r {
        Err(_) => out.error = Some("timeout".into()),
        Ok(Err(e)) => out.error = Some(e),
        Ok(Ok(())) => {}
    }
    if out.error.is_none() && out.status == 200 && !out.done {
        out.error = Some("stream ended without [DONE]".into());
    }
    out.ok = out.error.is_none() && out.status == 200;
    if out.completion_tokens == 0 {
        out.completion_tokens = out.chunks;
    }
    (out, reply)
}

async fn exchange(
    addr: &str,
    head: String,
    body: String,
    out: &mut Outcome,
    reply: &mut String,
    t0: Instant,
) -> Result<(), String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_nodelay(true);
    s.write_all([head.as_bytes(), body.as_bytes()].concat().as_slice())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(16384);
    let mut chunk = vec![0u8; 16384];
    let end = loop {
        if let Some(p) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break p;
        }
        if buf.len() > http::MAX_HEAD {
            return Err("response head too large".into());
        }
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before a response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    buf.drain(..end + 4);
    out.status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_string())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let mut left = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let mut sse = Sse::default();
    let mut data = Vec::new();
    loop {
        let finished = if chunked {
            match http::dechunk(&mut buf, &mut data).map_err(|_| "bad chunked framing")? {
                Dechunk::Done => true,
                Dechunk::More => false,
            }
        } else {
            let take = left.map_or(buf.len(), |l| l.min(buf.len()));
            data.extend(buf.drain(..take));
            if let Some(l) = left.as_mut() {
                *l -= take;
            }
            left == Some(0)
        };
        if out.status == 200 {
            sse.feed(&data, out, reply, t0);
            data.clear();
        } else if data.len() > 4096 {
            data.truncate(4096);
        }
        if finished {
            break;
        }
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            if left.is_none() && !chunked {
                break; // body delimited by close
            }
            return Err(if out.ttft.is_some() {
                "connection closed mid-stream".into()
            } else {
                "connection closed before content".into()
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if out.status != 200 {
        let text = String::from_utf8_lossy(&data[..data.len().min(300)]).to_string();
        return Err(format!(
            "status {}: {}",
            out.status,
            text.replace('\n', " ")
        ));
    }
    if let Some(e) = sse.error {
        return Err(format!("error event: {e}"));
    }
    Ok(())
}

/// The longest server-sent event kept whole.
const MAX_EVENT: usize = 1 << 20;

/// Server-sent events, split at blank lines.
#[derive(Default)]
struct Sse {
    pending: Vec<u8>,
    error: Option<String>,
}

impl Sse {
    fn feed(&mut self, data: &[u8], out: &mut Outcome, reply: &mut String, t0: Instant) {
        self.pending.extend(data.iter().filter(|&&b| b != b'\r'));
        if self.pending.len() > MAX_EVENT {
            self.error
                .get_or_insert_with(|| "an event over 1 MiB".into());
            self.pending.clear();
        }
        while let Some(p) = memchr::memmem::find(&self.pending, b"\n\n") {
            let event: Vec<u8> = self.pending.drain(..p + 2).collect();
            for line in event.split(|&b| b == b'\n') {
                let Some(d) = line.strip_prefix(b"data:") else {
                    continue;
                };
                let d = d.trim_ascii();
                if d == b"[DONE]" {
                    out.done = true;
                    continue;
                }
                let Ok(v) = serde_json::from_slice::<Value>(d) else {
                    self.error
                        .get_or_insert_with(|| "an event that is not JSON".into());
                    continue;
                };
                if let Some(e) = v.get("error") {
                    self.error.get_or_insert_with(|| e.to_string());
                }
                if let Some(c) = v
                    .pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                {
                    if !c.is_empty() {
                        out.ttft.get_or_insert_with(|| t0.elapsed().as_secs_f64());
                        out.chunks += 1;
                        reply.push_str(c);
                    }
                }
                if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0) as usize;
                    out.prompt_tokens = n("/prompt_tokens");
                    out.completion_tokens = n("/completion_tokens");
                    out.cached_tokens = n("/prompt_tokens_details/cached_tokens");
                }
            }
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |s| json!((s * 1e4).round() / 10.0))
}

fn dist(mut v: Vec<f64>) -> Value {
    v.sort_by(f64::total_cmp);
    let mean = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    json!({"p50": ms(pct(&v, 50.0)), "p90": ms(pct(&v, 90.0)), "p99": ms(pct(&v, 99.0)),
           "mean": ms(mean), "max": ms(v.last().copied())})
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    o: &LoadOpts,
    addrs: &[String],
    all: &[Outcome],
    arrivals: usize,
    unfinished: usize,
    deferred: usize,
    deferred_unsent: usize,
    sessions: usize,
) -> Value {
    let warm = o.warmup.as_secs_f64();
    let m: Vec<&Outcome> = all.iter().filter(|x| x.sent_at >= warm).collect();
    let ok: Vec<&&Outcome> = m.iter().filter(|x| x.ok).collect();
    let mut failures = serde_json::Map::new();
    if unfinished > 0 {
        failures.insert("unfinished when the drain ended".into(), json!(unfinished));
    }
    if deferred_unsent > 0 {
        failures.insert(
            "never sent: every session busy".into(),
            json!(deferred_unsent),
        );
    }
    for x in m.iter().filter(|x| !x.ok) {
        let e = x
            .error
            .clone()
            .unwrap_or_else(|| format!("status {}", x.status));
        // Group by kind: the status, or the error up to its first colon.
        let key = if x.status != 0 && x.status != 200 {
            format!("status {}", x.status)
        } else {
            e.split(':').next().unwrap_or("").to_string()
        };
        let n = failures.get(&key).and_then(Value::as_u64).unwrap_or(0);
        failures.insert(key, json!(n + 1));
    }
    let samples: Vec<String> = m.iter().filter_map(|x| x.error.clone()).take(3).collect();
    let completion: usize = ok.iter().map(|x| x.completion_tokens).sum();
    let prompt: usize = ok.iter().map(|x| x.prompt_tokens).sum();
    let cached: usize = ok.iter().map(|x| x.cached_tokens).sum();
    let end = all.iter().map(|x| x.sent_at + x.e2e).fold(0.0, f64::max);
    let wall = (end - warm).max(1e-9);
    let mut timeline = Vec::new();
    let bucket = 5.0;
    let mut t = 0.0;
    while t < o.duration.as_secs_f64() {
        let b: Vec<&Outcome> = all
            .iter()
            .filter(|x| x.sent_at >= t && x.sent_at < t + bucket)
            .collect();
        let mut tt: Vec<f64> = b
            .iter()
            .filter_map(|x| x.ok.then_some(x.ttft).flatten())
            .collect();
        tt.sort_by(f64::total_cmp);
        timeline.push(
            json!({"t": t, "sent": b.len(), "ok": b.iter().filter(|x| x.ok).count(),
            "ttft_p50_ms": ms(pct(&tt, 50.0)), "ttft_p90_ms": ms(pct(&tt, 90.0))}),
        );
        t += bucket;
    }
    let per_target: Vec<usize> = (0..addrs.len())
        .map(|i| all.iter().filter(|x| x.target == i).count())
        .collect();
    json!({
        "label": o.label,
        "workload": o.workload,
        "urls": o.urls,
        "pick": format!("{:?}", o.pick),
        "rate": o.rate,
        "arrivals_kind": if o.poisson { "poisson" } else { "fixed" },
        "duration_s": o.duration.as_secs_f64(),
        "warmup_s": warm,
        "seed": o.seed,
        "sessions": o.sessions,
        "arrivals": arrivals,
        "sent": all.len() + unfinished,
        "measured": m.len() + unfinished + deferred_unsent,
        "ok": ok.len(),
        "failed": m.len() - ok.len() + unfinished + deferred_unsent,
        "unfinished_at_drain": unfinished,
        "failures": failures,
        "failure_samples": samples,
        "deferred": deferred,
        "deferred_unsent": deferred_unsent,
        "late_sent": m.iter().filter(|x| x.late).count(),
        "sessions_started": sessions,
        "turn_mean": m.iter().map(|x| x.turn as f64).sum::<f64>() / (m.len().max(1) as f64),
        "ttft_ms": dist(ok.iter().filter_map(|x| x.ttft).collect()),
        "e2e_ms": dist(ok.iter().map(|x| x.e2e).collect()),
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "cache_hit_rate": if prompt > 0 { cached as f64 / prompt as f64 } else { 0.0 },
        "wall_s": wall,
        "output_tok_per_s": completion as f64 / wall,
        "per_target": per_target,
        "timeline": timeline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator against two in-process replicas (fast steps): every turn succeeds, later
    /// turns of a session hit the cache of the replica its session stays on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sessions_against_a_small_fleet() {
        let fast = crate::engine::Params {
            step_base_us: 500.0,
            step_us_per_seq: 10.0,
            prefill_us_per_token: 1.0,
            ..Default::default()
        };
        let port = crate::server::tests::start_fleet(2, fast, "sim-model").await;
        let sizes = Sizes {
            max_tokens: (4, 8),
            think_ms: (1, 5),
            ..Sizes::default()
        };
        let opts = LoadOpts {
            urls: vec![
                format!("http://127.0.0.1:{port}"),
                format!("http://127.0.0.1:{}", port + 1),
            ],
            pick: Pick::Session,
            kind: Kind::Shared,
            workload: "shared".into(),
            sizes,
            sessions: 4,
            rate: 40.0,
            duration: Duration::from_secs(1),
            poisson: false,
            key: "k".into(),
            model: "sim-model".into(),
            seed: 5,
            timeout: Duration::from_secs(5),
            warmup: Duration::ZERO,
            drain: Duration::from_secs(5),
            label: "test".into(),
            sticky_slack: 3,
            requests_out: None,
        };
        let s = run(opts).await.unwrap();
        assert_eq!(s["arrivals"], 39);
        assert_eq!(s["sent"], 39, "deferred arrivals are sent too: {s}");
        assert_eq!(
            (s["ok"].as_u64(), s["failed"].as_u64()),
            (Some(39), Some(0)),
            "{s}"
        );
        assert!(s["cache_hit_rate"].as_f64().unwrap() > 0.8, "{s}");
        assert!(s["ttft_ms"]["p50"].as_f64().unwrap() > 0.0);
        assert!(s["output_tok_per_s"].as_f64().unwrap() > 0.0);

        // A wrong model: every request fails, with the replica's status.
        let mut opts2 = LoadOpts {
            urls: vec![format!("http://127.0.0.1:{port}")],
            pick: Pick::RoundRobin,
            kind: Kind::Hot,
            workload: "hot".into(),
            sizes: Sizes::default(),
            sessions: 1,
            rate: 20.0,
            duration: Duration::from_millis(200),
            poisson: false,
            key: "k".into(),
            model: "other".into(),
            seed: 1,
            timeout: Duration::from_secs(5),
            warmup: Duration::ZERO,
            drain: Duration::from_secs(5),
            label: String::new(),
            sticky_slack: 3,
            requests_out: None,
        };
        let s = run(opts2.clone()).await.unwrap();
        assert_eq!(s["ok"], 0);
        assert_eq!(s["failures"]["status 404"], s["failed"], "{s}");
        // Nothing listening: connect errors, not a hang.
        opts2.urls = vec!["http://127.0.0.1:1".into()];
        let s = run(opts2).await.unwrap();
        assert_eq!(s["failures"]["connect"], s["failed"], "{s}");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(pct(&v, 50.0), Some(50.0));
        assert_eq!(pct(&v, 90.0), Some(90.0));
        assert_eq!(pct(&v, 99.0), Some(99.0));
        assert_eq!(pct(&[3.0], 99.0), Some(3.0));
        assert_eq!(pct(&[], 50.0), None);
    }

    #[test]
    fn sse_reads_content_usage_and_done_across_splits() {
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"the \"}}]}\r\n\r\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"and \"}}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,",
            "\"prompt_tokens_details\":{\"cached_tokens\":8}}}\n\ndata: [DONE]\n\n"
        );
        let mut sse = Sse::default();
        let mut out = Outcome::default();
        let mut reply = String::new();
        for piece in stream.as_bytes().chunks(7) {
            sse.feed(piece, &mut out, &mut reply, Instant::now());
        }
        assert_eq!(reply, "the and ");
        assert_eq!(out.chunks, 2);
        assert!(out.ttft.is_some() && out.done && sse.error.is_none());
        assert_eq!(
            (out.prompt_tokens, out.cached_tokens, out.completion_tokens),
            (10, 8, 2)
        );
    }
}
