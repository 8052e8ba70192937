//! `fleet-sim serve`: N simulated vLLM replicas in one process, replica `i` on `BASE_PORT + i`.
//!
//! Each replica is an [`Engine`] driven in real time by one task (plan a step, sleep its
//! duration, apply it, hand the tokens to the connections waiting for them), behind the parts
//! of vLLM's OpenAI server a gateway touches:
//!
//! - `POST /v1/chat/completions`, streamed (SSE `chat.completion.chunk` events, a usage chunk
//!   when `stream_options.include_usage`, then `data: [DONE]`) or not. The response headers go
//!   out at once (as vLLM's streaming response does); the first content arrives after prefill.
//!   A client that disconnects aborts its request (its KV is released).
//! - `GET /v1/models`, `GET /health`, `GET /metrics` (Prometheus text, vLLM's names).
//! - `POST /admin/reset`: abort everything, empty the cache, zero the counters (not in vLLM:
//!   the benchmark's fresh start between cases).

use crate::engine::{Emit, Engine, Params, Refusal, ReqId, Snapshot, Usage};
use crate::http::{self, ReadError};
use crate::prompt::{self, Prompt};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

#[derive(Clone, Debug)]
pub struct ServeOpts {
    pub replicas: usize,
    pub host: String,
    pub base_port: u16,
    pub model: String,
    pub params: Params,
    pub default_max_tokens: usize,
    pub max_body: usize,
    pub max_conns: usize,
    pub duration_limit: Duration,
}

enum Ev {
    Token(usize),
    Done(Usage),
}

struct Inner {
    engine: Engine,
    streams: HashMap<ReqId, mpsc::UnboundedSender<Ev>>,
}

pub struct Replica {
    index: usize,
    opts: Arc<ServeOpts>,
    inner: Mutex<Inner>,
    wake: Notify,
    conns: AtomicUsize,
    created: f64,
}

impl Replica {
    pub fn new(index: usize, opts: Arc<ServeOpts>) -> Replica {
        Replica {
            index,
            inner: Mutex::new(Inner {
                engine: Engine::new(opts.params.clone()),
                streams: HashMap::new(),
            }),
            opts,
            wake: Notify::new(),
            conns: AtomicUsize::new(0),
            created: unix_now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a bug in the engine; keep serving the rest.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub async fn serve(opts: ServeOpts) -> std::io::Result<()> {
    let opts = Arc::new(opts);
    let mut listeners = Vec::new();
    for i in 0..opts.replicas {
        let port = opts.base_port as usize + i;
        let port = u16::try_from(port).map_err(|_| std::io::Error::other("port out of range"))?;
        let l = TcpListener::bind((opts.host.as_str(), port))
            .await
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("bind {}:{port}: {e}", opts.host))
            })?;
        listeners.push(l);
    }
    for (i, l) in listeners.into_iter().enumerate() {
        let r = Arc::new(Replica::new(i, opts.clone()));
        tokio::spawn(run_engine(r.clone()));
        tokio::spawn(accept(l, r));
    }
    println!(
        "fleet-sim: {} replicas of `{}` on {}:{}..{} (KV {} tokens each); stops in {}s",
        opts.replicas,
        opts.model,
        opts.host,
        opts.base_port,
        opts.base_port as usize + opts.replicas - 1,
        opts.params.kv_blocks * prompt::BLOCK_TOKENS,
        opts.duration_limit.as_secs()
    );
    tokio::time::sleep(opts.duration_limit).await;
    eprintln!("fleet-sim: --duration-limit reached, stopping");
    Ok(())
}

async fn accept(l: TcpListener, r: Arc<Replica>) {
    loop {
        let Ok((sock, _)) = l.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if r.conns.fetch_add(1, Ordering::SeqCst) >= r.opts.max_conns {
            r.conns.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped: over the connection cap
        }
        let _ = sock.set_nodelay(true);
        let r = r.clone();
        tokio::spawn(async move {
            let _ = connection(sock, &r).await;
            r.conns.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// One replica's GPU: run steps back to back while there is work, each taking its modelled time.
pub async fn run_engine(r: Arc<Replica>) {
    let mut clock = Instant::now();
    loop {
        let step = r.lock().engine.plan_step();
        let Some(step) = step else {
            r.wake.notified().await;
            clock = Instant::now();
            continue;
        };
        // Deadlines, not sleeps: timer and scheduling overheads do not accumulate; after a
        // stall (CPU starved) the clock catches up at most 50 ms.
        let now = Instant::now();
        if clock + Duration::from_millis(50) < now {
            clock = now - Duration::from_millis(50);
        }
        clock += Duration::from_micros(step.duration_us);
        tokio::time::sleep_until(clock.into()).await;
        let mut g = r.lock();
        let emits = g.engine.finish_step(&step);
        for e in emits {
            match e {
                Emit::Token { id, index } => {
                    if let Some(tx) = g.streams.get(&id) {
                        let _ = tx.send(Ev::Token(index));
                    }
                }
                Emit::Done { id, usage } => {
                    if let Some(tx) = g.streams.remove(&id) {
                        let _ = tx.send(Ev::Done(usage));
                    }
                }
            }
        }
    }
}

async fn connection(mut sock: TcpStream, r: &Replica) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(16384);
    loop {
        let req = match http::read_request(
            &mut sock,
            &mut buf,
            r.opts.max_body,
            Duration::from_secs(300),
        )
        .await
        {
            Ok(Some(req)) => req,
            Ok(None) | Err(ReadError::Io) => return Ok(()),
            Err(ReadError::TooLarge(code)) => {
                let body = http::error_body(code, "BadRequestError", "request too large");
                return http::write_whole(&mut sock, code, "application/json", &body).await;
            }
            Err(ReadError::Malformed) => {
                let body = http::error_body(400, "BadRequestError", "malformed request");
                return http::write_whole(&mut sock, 400, "application/json", &body).await;
            }
        };
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let route = req.path.split('?').next().unwrap_or("");
        let keep = match (req.method.as_str(), route) {
            ("POST", "/v1/chat/completions") => chat(&mut sock, &mut buf, r, &req).await?,
            ("GET", "/health") => {
                http::write_whole(&mut sock, 200, "application/json", b"").await?;
                true
            }
            ("GET", "/metrics") => {
                let text = metrics_text(&r.opts.model, &r.lock().engine.snapshot(), r.created);
                http::write_whole(&mut sock, 200, "text/plain; version=0.0.4", text.as_bytes())
                    .await?;
                true
            }
            ("GET", "/v1/models") => {
                let body = serde_json::json!({"object": "list", "data": [{
                    "id": r.opts.model, "object": "model", "created": r.created as u64,
                    "owned_by": "vllm", "root": r.opts.model, "parent": null,
                    "max_model_len": r.opts.params.max_model_len}]});
                http::write_whole(
                    &mut sock,
                    200,
                    "application/json",
                    body.to_string().as_bytes(),
                )
                .await?;
                true
            }
            ("POST", "/admin/reset") => {
                let aborted = {
                    let mut g = r.lock();
                    let ids = g.engine.reset();
                    g.streams.clear(); // their connections see the channel close and drop
                    ids.len()
                };
                let body =
                    serde_json::json!({"reset": true, "replica": r.index, "aborted": aborted});
                http::write_whole(
                    &mut sock,
                    200,
                    "application/json",
                    body.to_string().as_bytes(),
                )
                .await?;
                true
            }
            _ => {
                let body = http::error_body(404, "NotFoundError", "no such route");
                http::write_whole(&mut sock, 404, "application/json", &body).await?;
                true
            }
        };
        if close || !keep {
            return Ok(());
        }
    }
}

/// Releases the request's KV if its connection goes away before it completes.
struct AbortOnDrop<'a> {
    r: &'a Replica,
    id: ReqId,
}

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        let mut g = self.r.lock();
        g.streams.remove(&self.id);
        g.engine.abort(self.id);
    }
}

async fn refuse(sock: &mut TcpStream, code: u16, kind: &str, msg: &str) -> std::io::Result<bool> {
    http::write_whole(
        sock,
        code,
        "application/json",
        &http::error_body(code, kind, msg),
    )
    .await?;
    Ok(true)
}

/// `POST /v1/chat/completions`. `Ok(false)`: close the connection.
async fn chat(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
    r: &Replica,
    req: &http::Request,
) -> std::io::Result<bool> {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => return refuse(sock, 400, "BadRequestError", &format!("invalid JSON: {e}")).await,
    };
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    if model != r.opts.model {
        let msg = format!("The model `{model}` does not exist.");
        return refuse(sock, 404, "NotFoundError", &msg).await;
    }
    let text = match prompt::render(&body) {
        Ok(t) => t,
        Err(e) => return refuse(sock, 400, "BadRequestError", &e).await,
    };
    let max_tokens = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .filter(|v| !v.is_null());
    let max_tokens = match max_tokens {
        None => r.opts.default_max_tokens,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => n as usize,
            _ => return refuse(sock, 400, "BadRequestError", "max_tokens must be >= 1").await,
        },
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let p = Prompt::from_bytes(&text);
    let digest = p.digest;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let submitted = {
        let mut g = r.lock();
        let res = g.engine.submit(p, max_tokens);
        if let Ok(id) = res {
            g.streams.insert(id, tx);
        }
        res
    };
    let id = match submitted {
        Ok(id) => id,
        Err(Refusal::QueueFull) => {
            let msg = "the waiting queue is full";
            return refuse(sock, 503, "ServiceUnavailableError", msg).await;
        }
        Err(Refusal::TooLong { tokens, limit }) => {
            let msg = format!(
                "This model's maximum context length is {limit} tokens. However, you requested {tokens} tokens."
            );
            return refuse(sock, 400, "BadRequestError", &msg).await;
        }
    };
    r.wake.notify_one();
    let _guard = AbortOnDrop { r, id };
    let cid = format!("chatcmpl-{:016x}{:x}", digest, id);
    let created = unix_now() as u64;
    let model = r.opts.model.as_str();
    let (mut rd, mut wr) = sock.split();
    if stream {
        wr.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n")
            .await?;
    }
    let mut text = String::new();
    let mut scratch = [0u8; 4096];
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            n = rd.read(&mut scratch) => match n {
                Ok(0) | Err(_) => return Ok(false), // client gone: the guard aborts
                Ok(n) => {
                    // A pipelined next request: keep it, within the request bounds.
                    buf.extend_from_slice(&scratch[..n]);
                    if buf.len() > http::MAX_HEAD + r.opts.max_body {
                        return Ok(false);
                    }
                    continue;
                }
            },
        };
        let Some(ev) = ev else {
            return Ok(false); // reset: cut the response
        };
        match ev {
            Ev::Token(index) => {
                let word = prompt::token_text(digest, index);
                if !stream {
                    text.push_str(word);
                    continue;
                }
                let mut out = Vec::new();
                let last = index + 1 == max_tokens;
                if index == 0 {
                    let role = serde_json::json!({"id": cid, "object": "chat.completion.chunk",
                        "created": created, "model": model, "choices": [{"index": 0,
                        "delta": {"role": "assistant", "content": ""}, "logprobs": null,
                        "finish_reason": null}]});
                    out.extend(http::chunk(format!("data: {role}\n\n").as_bytes()));
                }
                let ev = serde_json::json!({"id": cid, "object": "chat.completion.chunk",
                    "created": created, "model": model, "choices": [{"index": 0,
                    "delta": {"content": word}, "logprobs": null,
                    "finish_reason": if last { Value::from("length") } else { Value::Null }}]});
                out.extend(http::chunk(format!("data: {ev}\n\n").as_bytes()));
                write_timed(&mut wr, &out).await?;
            }
            Ev::Done(u) => {
                let usage = usage_json(&u);
                if stream {
                    let mut out = Vec::new();
                    if include_usage {
                        let ev = serde_json::json!({"id": cid, "object": "chat.completion.chunk",
                            "created": created, "model": model, "choices": [], "usage": usage});
                        out.extend(http::chunk(format!("data: {ev}\n\n").as_bytes()));
                    }
                    out.extend(http::chunk(b"data: [DONE]\n\n"));
                    out.extend_from_slice(b"0\r\n\r\n");
                    write_timed(&mut wr, &out).await?;
                } else {
                    let body = serde_json::json!({"id": cid, "object": "chat.completion",
                        "created": created, "model": model, "choices": [{"index": 0,
                        "message": {"role": "assistant", "content": text}, "logprobs": null,
                        "finish_reason": "length"}], "usage": usage});
                    let body = body.to_string();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    write_timed(&mut wr, &[head.as_bytes(), body.as_bytes()].concat()).await?;
                }
                return Ok(true);
            }
        }
    }
}

async fn write_timed<W: AsyncWriteExt + Unpin>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(Duration::from_secs(30), w.write_all(data)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

fn usage_json(u: &Usage) -> Value {
    serde_json::json!({"prompt_tokens": u.prompt_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "completion_tokens": u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens}})
}

/// `/metrics` as vLLM V1 writes it (prometheus_client text: counters named `..._total` with a
/// `..._created` sample, gauges; the labels vLLM puts on them).
pub fn metrics_text(model: &str, s: &Snapshot, created: f64) -> String {
    let labels = format!("engine=\"0\",model_name=\"{model}\"");
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, v: f64| {
        out.push_str(&format!(
            "# HELP vllm:{name} {help}\n# TYPE vllm:{name} gauge\nvllm:{name}{{{labels}}} {v:?}\n"
        ));
    };
    gauge(
        "num_requests_running",
        "Number of requests in model execution batches.",
        s.running as f64,
    );
    gauge(
        "num_requests_waiting",
        "Number of requests waiting to be processed.",
        s.waiting as f64,
    );
    gauge(
        "kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage.",
        s.kv_usage,
    );
    let mut counter = |name: &str, help: &str, v: u64| {
        out.push_str(&format!(
            "# HELP vllm:{name}_total {help}\n# TYPE vllm:{name}_total counter\nvllm:{name}_total{{{labels}}} {:?}\nvllm:{name}_created{{{labels}}} {created:?}\n",
            v as f64
        ));
    };
    counter(
        "prefix_cache_queries",
        "Prefix cache queries, in terms of number of queried tokens.",
        s.prefix_queries,
    );
    counter(
        "prefix_cache_hits",
        "Prefix cache hits, in terms of number of cached tokens.",
        s.prefix_hits,
    );
    counter(
        "prompt_tokens",
        "Number of prefill tokens processed.",
        s.prompt_tokens,
    );
    counter(
        "generation_tokens",
        "Number of generation tokens processed.",
        s.generation_tokens,
    );
    counter(
        "num_preemptions",
        "Cumulative number of preemption from the engine.",
        0,
    );
    out.push_str(&format!(
        "# HELP vllm:request_success_total Count of successfully processed requests.\n# TYPE vllm:request_success_total counter\nvllm:request_success_total{{{labels},finished_reason=\"length\"}} {:?}\n",
        s.finished as f64
    ));
    out.push_str(&format!(
        "# HELP fleet_sim_cached_blocks Blocks of 16 tokens in the prefix cache (simulator only).\n# TYPE fleet_sim_cached_blocks gauge\nfleet_sim_cached_blocks {:?}\n",
        s.cached_blocks as f64
    ));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parse Prometheus text: every sample line is `name{labels} value`; returns name+labels → value.
    fn parse(text: &str) -> HashMap<String, f64> {
        let mut m = HashMap::new();
        let mut typed = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split(' ');
                typed.push(it.next().unwrap().to_string());
                assert!(matches!(it.next(), Some("gauge" | "counter")), "{line}");
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("name value");
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "{name}"
            );
            if series.contains('{') {
                assert!(series.ends_with('}'), "{series}");
                let labels = &series[name.len() + 1..series.len() - 1];
                for kv in labels.split(',') {
                    let (k, v) = kv.split_once('=').expect("label=value");
                    assert!(
                        !k.is_empty() && v.starts_with('"') && v.ends_with('"'),
                        "{kv}"
                    );
                }
            }
            m.insert(series.to_string(), value.parse::<f64>().expect("a float"));
        }
        for n in ["vllm:num_requests_running", "vllm:prefix_cache_hits_total"] {
            assert!(typed.iter().any(|t| t == n), "TYPE line for {n}");
        }
        m
    }

    #[test]
    fn metrics_text_parses_with_vllm_names() {
        let s = Snapshot {
            running: 3,
            waiting: 2,
            kv_usage: 0.25,
            prefix_queries: 1000,
            prefix_hits: 640,
            ..Snapshot::default()
        };
        let m = parse(&metrics_text("sim-model", &s, 1.7e9));
        let l = "{engine=\"0\",model_name=\"sim-model\"}";
        assert_eq!(m[&format!("vllm:num_requests_running{l}")], 3.0);
        assert_eq!(m[&format!("vllm:num_requests_waiting{l}")], 2.0);
        assert_eq!(m[&format!("vllm:kv_cache_usage_perc{l}")], 0.25);
        assert_eq!(m[&format!("vllm:prefix_cache_queries_total{l}")], 1000.0);
        assert_eq!(m[&format!("vllm:prefix_cache_hits_total{l}")], 640.0);
        assert_eq!(m[&format!("vllm:prefix_cache_hits_created{l}")], 1.7e9);
    }

    /// Start `replicas` replicas of model `model` on free consecutive loopback ports (found by
    /// binding and releasing them: racy, but loopback and tests only); the first port.
    pub(crate) async fn start_fleet(replicas: usize, params: Params, model: &str) -> u16 {
        let port = loop {
            let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let p = first.local_addr().unwrap().port();
            if p as usize + replicas > u16::MAX as usize {
                continue;
            }
            let rest: Vec<_> = (1..replicas as u16)
                .map(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)))
                .collect();
            if rest.iter().all(Result::is_ok) {
                break p;
            }
        };
        let opts = ServeOpts {
            replicas,
            host: "127.0.0.1".into(),
            base_port: port,
            model: model.into(),
            params,
            default_max_tokens: 4,
            max_body: 1 << 20,
            max_conns: 64,
            duration_limit: Duration::from_secs(20),
        };
        tokio::spawn(serve(opts));
        for _ in 0..100 {
            let last = port + replicas as u16 - 1;
            if TcpStream::connect(("127.0.0.1", last)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        port
    }

    async fn exchange(port: u16, raw: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn post(body: &str) -> String {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn speaks_enough_of_vllms_openai_server() {
        let fast = Params {
            step_base_us: 1000.0,
            prefill_us_per_token: 1.0,
            ..Params::default()
        };
        let port = start_fleet(1, fast, "m").await;
        let sys = "x".repeat(4000);
        let body = format!(
            r#"{{"model":"m","messages":[{{"role":"system","content":"{sys}"}},{{"role":"user","content":"hi"}}],"stream":true,"stream_options":{{"include_usage":true}},"max_tokens":3}}"#
        );
        let first = exchange(port, &post(&body)).await;
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        assert!(first.contains(r#""delta":{"content":""#));
        assert!(first.contains(r#""finish_reason":"length""#));
        assert!(first.contains(r#""cached_tokens":0"#));
        assert!(first.contains("data: [DONE]"));
        // Same prompt again: its prefix is cached.
        let second = exchange(port, &post(&body)).await;
        // "<|system|>\n" + 4000 + "\n" + "<|user|>\nhi\n"
        let prompt_tokens = (11 + 4000 + 1 + 9 + 2 + 1usize).div_ceil(4);
        assert!(
            second.contains(&format!(r#""prompt_tokens":{prompt_tokens}"#)),
            "{second}"
        );
        assert!(second.contains(&format!(
            r#""cached_tokens":{}"#,
            (prompt_tokens - 1) / 16 * 16
        )));

        let whole = exchange(
            port,
            &post(r#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#),
        )
        .await;
        assert!(whole.contains(r#""object":"chat.completion""#), "{whole}");
        assert!(
            whole.contains(r#""completion_tokens":4"#),
            "default max_tokens"
        );

        let wrong = exchange(port, &post(r#"{"model":"other","messages":[]}"#)).await;
        assert!(wrong.starts_with("HTTP/1.1 404"), "{wrong}");
        let bad = exchange(port, &post("{not json")).await;
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");

        let get = |p: &str| format!("GET {p} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        assert!(exchange(port, &get("/health"))
            .await
            .starts_with("HTTP/1.1 200"));
        assert!(exchange(port, &get("/v1/models"))
            .await
            .contains(r#""id":"m""#));
        let metrics = exchange(port, &get("/metrics")).await;
        let (_, text) = metrics.split_once("\r\n\r\n").unwrap();
        let m = parse(text);
        let hits = m["vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"}"];
        assert_eq!(hits as usize, (prompt_tokens - 1) / 16 * 16);
        let reset = "POST /admin/reset HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_string();
        assert!(exchange(port, &reset).await.contains(r#""reset":true"#));
        let metrics = exchange(port, &get("/metrics")).await;
        assert!(metrics.contains("vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 0.0"));
    }

    #[tokio::test]
    async fn a_disconnected_client_releases_its_kv() {
        let port = start_fleet(1, Params::default(), "m").await; // real speed: 1000 tokens, 15 s
        let body = r#"{"model":"m","messages":[{"role":"user","content":"hello"}],"stream":true,"max_tokens":1000}"#;
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(post(body).as_bytes()).await.unwrap();
        let mut b = [0u8; 512];
        let _ = s.read(&mut b).await.unwrap(); // headers
        let get = "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
        let running = |m: String| {
            let (_, text) = m.split_once("\r\n\r\n").unwrap();
            parse(text)["vllm:num_requests_running{engine=\"0\",model_name=\"m\"}"]
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(running(exchange(port, get).await), 1.0);
        drop(s);
        let mut now = 1.0;
        for _ in 0..50 {
            now = running(exchange(port, get).await);
            if now == 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(now, 0.0);
    }
}
