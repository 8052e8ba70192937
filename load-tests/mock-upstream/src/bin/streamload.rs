//! `streamload`: many concurrent SSE chat streams against one URL; reports time to first
//! token and the gaps between tokens as the client sees them.
//!
//! streamload URL STREAMS TOKENS DELAY_MS [MODEL] [KEY] [RAMP_MS]
//!
//! Each stream opens its own connection and asks for TOKENS events DELAY_MS apart (the mock's
//! `x-mock: sse:N:MS`). Output: one JSON object on stdout.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct StreamStats {
    ttft: Duration,
    gaps: Vec<Duration>,
    tokens: usize,
}

async fn one(
    addr: String,
    path: String,
    host: String,
    body: String,
    key: String,
    tokens: usize,
    delay: u64,
) -> Result<StreamStats, String> {
    let started = Instant::now();
    let mut s = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).ok();
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\nauthorization: Bearer {key}\r\nx-mock: sse:{tokens}:{delay}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = vec![0u8; 16384];
    let mut seen = 0usize;
    let mut ttft = None;
    let mut last: Option<Instant> = None;
    let mut gaps = Vec::with_capacity(tokens);
    let mut carry = Vec::new();
    let deadline = Duration::from_secs(60 + (tokens as u64 * delay) / 1000 * 2);
    loop {
        let n = match tokio::time::timeout(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(format!("read: {e}")),
            Err(_) => return Err("timeout".into()),
        };
        let now = Instant::now();
        carry.extend_from_slice(&buf[..n]);
        // Count complete content events ("tokN ") in what arrived.
        let found = memchr::memmem::find_iter(&carry, b"\"content\":\"tok").count();
        if found > 0 {
            if ttft.is_none() {
                ttft = Some(now - started);
            }
            for _ in 0..found {
                if let Some(l) = last {
                    gaps.push(now - l);
                }
                last = Some(now);
            }
            seen += found;
            // keep only a tail that could hold a split marker
            let keep = carry.len().saturating_sub(16);
            carry.drain(..keep);
        }
        if memchr::memmem::find(&carry, b"[DONE]").is_some() {
            break;
        }
    }
    match ttft {
        Some(t) if seen >= tokens => Ok(StreamStats {
            ttft: t,
            gaps,
            tokens: seen,
        }),
        _ => Err(format!("incomplete stream: {seen}/{tokens} tokens")),
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: streamload URL STREAMS TOKENS DELAY_MS [MODEL] [KEY] [RAMP_MS]");
        std::process::exit(2);
    }
    let url = args[1]
        .strip_prefix("http://")
        .unwrap_or(&args[1])
        .to_string();
    let (addr, path) = match url.find('/') {
        Some(i) => (url[..i].to_string(), url[i..].to_string()),
        None => (url.clone(), "/v1/chat/completions".to_string()),
    };
    let streams: usize = args[2].parse().unwrap_or(100);
    let tokens: usize = args[3].parse().unwrap_or(100);
    let delay: u64 = args[4].parse().unwrap_or(20);
    let model = args.get(5).cloned().unwrap_or_else(|| "gpt-4o-mini".into());
    let key = args.get(6).cloned().unwrap_or_else(|| "sk-load".into());
    let ramp: u64 = args.get(7).and_then(|r| r.parse().ok()).unwrap_or(1000);
    let body = format!(
        r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"Count."}}]}}"#
    );
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(streams);
    for i in 0..streams {
        let (addr, path, body, key) = (addr.clone(), path.clone(), body.clone(), key.clone());
        let host = addr.clone();
        let start_at = Duration::from_micros(ramp * 1000 * i as u64 / streams.max(1) as u64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(start_at).await;
            one(addr, path, host, body, key, tokens, delay).await
        }));
    }
    let (mut ttft, mut gaps, mut errors, mut ok, mut toks) =
        (Vec::new(), Vec::new(), Vec::new(), 0usize, 0usize);
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => {
                ok += 1;
                toks += s.tokens;
                ttft.push(s.ttft.as_secs_f64() * 1e3);
                gaps.extend(s.gaps.iter().map(|g| g.as_secs_f64() * 1e3));
            }
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let first_error = errors.first().cloned().unwrap_or_default();
    println!(
        "{{\"streams\":{streams},\"ok\":{ok},\"errors\":{},\"first_error\":{:?},\"tokens\":{toks},\"ttft_p50_ms\":{:.3},\"ttft_p99_ms\":{:.3},\"gap_p50_ms\":{:.3},\"gap_p99_ms\":{:.3},\"wall_s\":{:.2}}}",
        errors.len(),
        first_error,
        pct(&mut ttft.clone(), 50.0),
        pct(&mut ttft, 99.0),
        pct(&mut gaps.clone(), 50.0),
        pct(&mut gaps, 99.0),
        started.elapsed().as_secs_f64()
    );
}
