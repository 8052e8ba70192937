//! `opsload`: steady keep-alive load for the operations test (`load-tests/ops.sh`); counts
//! failed requests per phase of the operator's script.
//!
//! opsload ADDR JSON_CLIENTS STREAM_CLIENTS MARKS_FILE STOP_FILE [MAX_SECONDS]
//!
//! Each client keeps one HTTP/1.1 connection open and sends request after request on it:
//! JSON clients a non-streamed chat completion, stream clients a streamed one (`x-mock:
//! sse:10:30`, about 0.3 s). A connection is left when a response says `Connection: close`,
//! and, like a pooling client (hyper, httpx), one that the server closed while idle is noticed
//! before reuse and replaced without counting a failure. A failure is a request that was sent
//! and got no complete 200 answer (for streams: no `[DONE]`, or an error event).
//!
//! The script appends `EPOCH_MS NAME` lines to MARKS_FILE as it performs each operation and
//! creates STOP_FILE at the end. Each request belongs to the phase in which it started; for a
//! phase named `sigterm`, only the requests in flight when the signal was sent count (what
//! starts later finds the listener closed, by design) and are reported apart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Stream,
}

struct Outcome {
    kind: Kind,
    start_ms: u64,
    end_ms: u64,
    /// `None`: a complete 200 answer.
    error: Option<String>,
    reused: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!(
            "usage: opsload ADDR JSON_CLIENTS STREAM_CLIENTS MARKS_FILE STOP_FILE [MAX_SECONDS]"
        );
        std::process::exit(2);
    }
    let addr = args[0].clone();
    let json: usize = args[1].parse().unwrap_or(8);
    let streams: usize = args[2].parse().unwrap_or(8);
    let marks = args[3].clone();
    let stop = std::path::PathBuf::from(&args[4]);
    let max = Duration::from_secs(args.get(5).and_then(|s| s.parse().ok()).unwrap_or(300));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::with_capacity(1 << 20)));
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..json + streams {
        let kind = if i < json { Kind::Json } else { Kind::Stream };
        let (addr, outcomes, stopping) = (addr.clone(), outcomes.clone(), stopping.clone());
        tasks.push(tokio::spawn(async move {
            client(&addr, kind, &outcomes, &stopping).await
        }));
    }
    let started = Instant::now();
    while !stop.exists() && started.elapsed() < max {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(35), t).await;
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|e| e.into_inner()));
    report(&outcomes, &read_marks(&marks));
}

async fn client(
    addr: &str,
    kind: Kind,
    out: &Mutex<Vec<Outcome>>,
    stopping: &std::sync::atomic::AtomicBool,
) {
    let mut conn: Option<TcpStream> = None;
    while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
        // A pooled connection the server closed while idle is noticed here, as a pooling
        // client notices it, and replaced: not a failure.
        if let Some(c) = &conn {
            let mut probe = [0u8; 1];
            match c.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                _ => conn = None,
            }
        }
        let reused = conn.is_some();
        let start_ms = now_ms();
        let result = async {
            if conn.is_none() {
                let s = TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                s.set_nodelay(true).ok();
                conn = Some(s);
            }
            let s = conn.as_mut().ok_or("no connection")?;
            tokio::time::timeout(Duration::from_secs(30), exchange(s, addr, kind))
                .await
                .map_err(|_| "timeout".to_string())?
        }
        .await;
        let end_ms = now_ms();
        let (error, keep) = match result {
            Ok(keep) => (None, keep),
            Err(e) => (Some(e), false),
        };
        let refused = error.as_deref().is_some_and(|e| e.starts_with("connect"));
        if !keep {
            conn = None;
        }
        if let Ok(mut o) = out.lock() {
            o.push(Outcome {
                kind,
                start_ms,
                end_ms,
                error,
                reused,
            });
        }
        if refused {
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else if kind == Kind::Json {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// One request and its whole answer. `Ok(true)`: the connection may carry the next one.
async fn exchange(s: &mut TcpStream, addr: &str, kind: Kind) -> Result<bool, String> {
    let (body, extra) = match kind {
        Kind::Json => (
            r#"{"model":"up/m","messages":[{"role":"user","content":"hi"}]}"#,
            "",
        ),
        Kind::Stream => (
            r#"{"model":"up/m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
            "x-mock: sse:10:30\r\n",
        ),
    };
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16384];
    let head_end = loop {
        if let Some(p) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break p;
        }
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read head: {e}"))?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "closed before any answer".into()
            } else {
                "closed mid-head".into()
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap_or("").to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.strip_prefix(name)
                .map(|v| v.trim_start_matches(':').trim().to_string())
        })
    };
    let close = header("connection").is_some_and(|v| v.contains("close"));
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let mut body = buf[head_end + 4..].to_vec();
    loop {
        let complete = if chunked {
            body.starts_with(b"0\r\n\r\n")
                || memchr::memmem::find(&body, b"\r\n0\r\n\r\n").is_some()
        } else if let Some(n) = length {
            body.len() >= n
        } else {
            false
        };
        if complete {
            break;
        }
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read body: {e}"))?;
        if n == 0 {
            if !chunked && length.is_none() {
                break; // close-delimited
            }
            return Err("closed mid-body".into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if status != "200" {
        return Err(format!("status {status}"));
    }
    if kind == Kind::Stream {
        if memchr::memmem::find(&body, b"[DONE]").is_none() {
            return Err("stream without [DONE]".into());
        }
        if memchr::memmem::find(&body, b"\"error\"").is_some() {
            return Err("stream ended with an error event".into());
        }
    }
    Ok(!close && (chunked || length.is_some()))
}

fn read_marks(path: &str) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut marks: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let (t, name) = l.split_once(' ')?;
            Some((t.trim().parse().ok()?, name.trim().to_string()))
        })
        .collect();
    marks.sort_by_key(|(t, _)| *t);
    marks
}

#[derive(Default)]
struct Row {
    json: usize,
    streams: usize,
    failed: usize,
    examples: Vec<String>,
}

fn report(outcomes: &[Outcome], marks: &[(u64, String)]) {
    let mut names = vec!["steady".to_string()];
    names.extend(marks.iter().map(|(_, n)| n.clone()));
    let after_term = "after sigterm (refused by design, not failures)".to_string();
    names.push(after_term.clone());
    let mut rows: Vec<Row> = names.iter().map(|_| Row::default()).collect();
    let term = marks.iter().position(|(_, n)| n == "sigterm");
    for o in outcomes {
        // The phase it started in: 0 before the first mark, i + 1 from mark i on.
        let mut phase = marks.iter().take_while(|(t, _)| *t <= o.start_ms).count();
        if let Some(ti) = term {
            let t = marks[ti].0;
            if o.start_ms >= t {
                phase = names.len() - 1; // started after SIGTERM was sent
            } else if o.end_ms >= t {
                phase = ti + 1; // in flight when it was sent
            }
        }
        let row = &mut rows[phase];
        match o.kind {
            Kind::Json => row.json += 1,
            Kind::Stream => row.streams += 1,
        }
        if let Some(e) = &o.error {
            row.failed += 1;
            if row.examples.len() < 5 {
                let kind = if o.kind == Kind::Json {
                    "json"
                } else {
                    "stream"
                };
                let conn = if o.reused {
                    "reused connection"
                } else {
                    "new connection"
                };
                row.examples
                    .push(format!("{kind}, {conn}, started {} ms: {e}", o.start_ms));
            }
        }
    }
    println!(
        "{:<48} {:>9} {:>9} {:>7}",
        "phase (requests started in it)", "json", "streams", "failed"
    );
    for (name, row) in names.iter().zip(&rows) {
        let name = if name == "sigterm" {
            "sigterm (in flight when sent)"
        } else {
            name
        };
        println!(
            "{:<48} {:>9} {:>9} {:>7}",
            name, row.json, row.streams, row.failed
        );
    }
    for (name, row) in names.iter().zip(&rows) {
        if *name == after_term {
            continue;
        }
        for e in &row.examples {
            eprintln!("  {name}: {e}");
        }
    }
    let failed: usize = names
        .iter()
        .zip(&rows)
        .filter(|(n, _)| **n != after_term)
        .map(|(_, r)| r.failed)
        .sum();
    println!("FAILED {failed}");
}
