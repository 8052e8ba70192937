//! A mock upstream over real TCP on 127.0.0.1: OpenAI-compatible on every path, plus the
//! Anthropic Messages dialect (`anthropic.rs`) and Azure OpenAI paths (`azure.rs`):
//!
//! | route (query ignored unless said)                         | dialect |
//! |-----------------------------------------------------------|---------|
//! | `POST /v1/messages`, `POST /v1/messages/count_tokens`     | Anthropic Messages (see `anthropic.rs`) |
//! | `POST /openai/deployments/{d}/chat/completions?api-version=V`, `.../embeddings?api-version=V` | Azure, `model` = `d` |
//! | `POST /openai/v1/chat/completions`, `/openai/v1/embeddings` | Azure v1, `model` from the body |
//! | anything else (`.../chat/completions`, `/completions`, `/embeddings`, `/models`) | OpenAI |
//!
//! The transport faults below (`stall`, `reset`, `garbage`, `text-status`, `not-json`, `drip`,
//! `json-reset`) apply on every route; the others are per dialect.
//!
//! Behaviour is chosen per request by the `x-mock` header (the gateway forwards it):
//!
//! | `x-mock`                 | answer |
//! |--------------------------|--------|
//! | (absent)                 | chat/completions/embeddings JSON with `usage`; SSE when `"stream":true` |
//! | `status:CODE[:RETRY]`    | that status with an OpenAI error body (and `Retry-After: RETRY`) |
//! | `text-status:CODE`       | that status with a plain-text body |
//! | `stall`                  | reads the request, never answers |
//! | `reset`                  | closes the connection without answering |
//! | `sse:N:MS`               | N content events spaced MS ms apart, then usage (if asked) and `[DONE]` |
//! | `cut:N`                  | N content events, then the connection drops (no `[DONE]`) |
//! | `empty-status:CODE`      | that status with an empty body |
//! | (path `/tokenize`)       | vLLM's tokenizer answer `{"count": body bytes / 4, ...}` |
//! | `error-event`            | a 200 stream whose only event is an `{"error":...}` chunk, then `[DONE]` |
//!
//! `x-mock-<id>` sets the behaviour of the mock started with that id alone (failover tests).
//!
//! Fault injection (issue 7), each bounded in time and bytes so a test never hangs:
//!
//! | `x-mock`                 | answer |
//! |--------------------------|--------|
//! | `stall-mid:N`            | N content events, then silence (connection held 1 h) |
//! | `garbage`                | a status line, then bytes that are not HTTP framing |
//! | `cl-sse:N:MS`            | an SSE stream framed with `Content-Length`, events MS ms apart |
//! | `endless-event:MIB`      | one SSE event that never ends: MIB MiB of `data:` without a blank line |
//! | `drip:N`                 | a JSON answer sent 1 byte a second, N bytes then the connection stalls |
//! | `huge:BYTES`             | a 200 JSON answer of BYTES bytes (`usage` at its end) |
//! | `not-json`               | a 200 `text/html` answer to a JSON request |
//! | `json-reset:BYTES`       | a 200 JSON answer whose `Content-Length` promises more; BYTES sent, then a reset |
//!
//! A request with `x-mock-upstream-limits` (any value) gets the upstream account's own
//! `x-ratelimit-{limit,remaining}-requests` (5000, 4999) on its answer.
//!
//! Every answer carries `x-mock-id`, `x-mock-path`, `x-mock-auth` (the Authorization the
//! upstream saw), `x-mock-body-len` and `x-mock-body-sha256` of the request body it got,
//! so tests prove what reached the upstream, byte for byte, and `x-mock-headers`: the request's
//! header names (lower case, comma-joined, never their values).

mod anthropic;
mod azure;

use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the mock received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running mock.
pub struct Mock {
    pub addr: SocketAddr,
    pub id: String,
    pub hits: Arc<AtomicU64>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    /// Start on an ephemeral port of 127.0.0.1 on the current tokio runtime.
    pub async fn start(id: &str) -> std::io::Result<Mock> {
        Self::start_on("127.0.0.1:0", id).await
    }

    pub async fn start_on(addr: &str, id: &str) -> std::io::Result<Mock> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let hits = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (h, s, name) = (hits.clone(), seen.clone(), id.to_string());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let _ = sock.set_nodelay(true);
                let (h, s, name) = (h.clone(), s.clone(), name.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, &name, &h, &s).await;
                });
            }
        });
        Ok(Mock {
            addr,
            id: id.to_string(),
            hits,
            seen,
        })
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().ok()?.last().cloned()
    }

    /// Base URL with the `/v1` prefix, as `OPENAI_BASE_URL` takes it.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

async fn serve(
    mut sock: TcpStream,
    id: &str,
    hits: &AtomicU64,
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(8192);
    loop {
        let Some(req) = read_request(&mut sock, &mut buf).await? else {
            return Ok(());
        };
        hits.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut s) = seen.lock() {
            // Keep only small bodies in memory; big ones are proven by length + hash.
            let mut kept = req.clone();
            if kept.body.len() > 64 * 1024 {
                kept.body.truncate(64 * 1024);
            }
            s.push(kept);
            if s.len() > 1000 {
                s.remove(0);
            }
        }
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if !respond(&mut sock, id, &req).await? || close {
            return Ok(());
        }
    }
}

/// Read one request (Content-Length or chunked body). `None` on a clean close.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Seen>> {
    let header_end = loop {
        if let Some(p) = memchr::memmem::find(buf, b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 16384];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    buf.drain(..header_end + 4);
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while buf.len() < len {
            let mut chunk = vec![0u8; 65536];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..len).collect()
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(sock, buf).await?
    } else {
        Vec::new()
    };
    Ok(Some(Seen {
        method,
        path,
        headers,
        body,
    }))
}

async fn read_chunked(sock: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(p) = memchr::memmem::find(buf, b"\r\n") {
                break p;
            }
            fill(sock, buf).await?;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&buf[..line_end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .map_err(|_| std::io::Error::other("bad chunk size"))?;
        buf.drain(..line_end + 2);
        while buf.len() < size + 2 {
            fill(sock, buf).await?;
        }
        if size == 0 {
            buf.drain(..2);
            return Ok(body);
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

async fn fill(sock: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 16384];
    let n = sock.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn json_str_field<'a>(body: &'a str, field: &str) -> Option<&'a str> {
    let key = format!("\"{field}\"");
    let at = body.find(&key)? + key.len();
    let rest = body[at..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    rest.find('"').map(|end| &rest[..end])
}

/// Split a request target into its path and its query (without `?`).
pub(crate) fn split_target(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

/// The value of one query parameter (no percent-decoding: the values the mocks read are plain).
pub(crate) fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `x-mock-*` headers every answer carries. `x-mock-headers` lists the request's header
/// names (lower case, first occurrence order), never their values.
fn common_headers(id: &str, req: &Seen) -> String {
    let sha = hex::encode(Sha256::digest(&req.body));
    let mut names: Vec<&str> = Vec::new();
    for (k, _) in &req.headers {
        if !names.contains(&k.as_str()) {
            names.push(k);
        }
    }
    let mut common = format!(
        "x-mock-id: {id}\r\nx-mock-path: {}\r\nx-mock-auth: {}\r\nx-mock-body-len: {}\r\nx-mock-body-sha256: {sha}\r\nx-mock-headers: {}\r\n",
        req.path,
        req.header("authorization").unwrap_or("-"),
        req.body.len(),
        names.join(",")
    );
    if req.header("x-mock-upstream-limits").is_some() {
        // The account's own limits, as OpenAI sends them on every answer (mixed case on
        // purpose: the gateway must replace them whatever their case).
        common.push_str(
            "X-RateLimit-Limit-Requests: 5000\r\nx-ratelimit-remaining-requests: 4999\r\n",
        );
    }
    common
}

/// The behaviour asked of this mock: `x-mock-<id>` (one mock of several) wins over
/// `x-mock` (all of them).
pub(crate) fn behaviour(req: &Seen, id: &str) -> String {
    req.header(&format!("x-mock-{id}"))
        .or_else(|| req.header("x-mock"))
        .unwrap_or("")
        .to_string()
}

/// Write the answer; `false` closes the connection.
async fn respond(sock: &mut TcpStream, id: &str, req: &Seen) -> std::io::Result<bool> {
    let behaviour = behaviour(req, id);
    let common = common_headers(id, req);
    let (route, query) = split_target(&req.path);
    // Transport-level faults behave the same whatever dialect the path speaks.
    let generic = matches!(
        behaviour.split(':').next().unwrap_or(""),
        "stall" | "reset" | "garbage" | "text-status" | "not-json" | "drip" | "json-reset"
    );
    if !generic {
        if route == "/v1/messages" || route.starts_with("/v1/messages/") {
            return anthropic::respond(sock, id, req, route, common).await;
        }
        if route.starts_with("/openai/") {
            return azure::respond(sock, id, req, route, query, common).await;
        }
    }
    respond_openai(sock, id, req, route, None, common).await
}

/// The OpenAI dialect; `model` overrides the body's model (Azure deployments).
pub(crate) async fn respond_openai(
    sock: &mut TcpStream,
    id: &str,
    req: &Seen,
    route: &str,
    model: Option<&str>,
    mut common: String,
) -> std::io::Result<bool> {
    let behaviour = behaviour(req, id);
    let body_text = String::from_utf8_lossy(&req.body[..req.body.len().min(1 << 20)]).to_string();
    let model = model
        .or_else(|| json_str_field(&body_text, "model"))
        .unwrap_or("mock-model")
        .to_string();
    let wants_stream =
        body_text.contains("\"stream\":true") || body_text.contains("\"stream\": true");
    let wants_usage = body_text.contains("\"include_usage\":true")
        || body_text.contains("\"include_usage\": true");
    let mut parts = behaviour.split(':');
    match parts.next().unwrap_or("") {
        "stall" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(false)
        }
        "reset" => Ok(false),
        "stall-mid" => {
            let n: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(2);
            stream_head(sock, &common).await?;
            for i in 0..n {
                write_chunk(sock, content_event(id, &model, i, false).as_bytes()).await?;
            }
            sock.flush().await?;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(false)
        }
        "error-event" => {
            // A 200 stream whose first event is an in-band error (an overloaded server).
            stream_head(sock, &common).await?;
            write_chunk(
                sock,
                b"data: {\"error\":{\"message\":\"mock overloaded\",\"type\":\"server_error\",\"code\":null}}\n\n",
            )
            .await?;
            write_chunk(sock, b"data: [DONE]\n\n").await?;
            write_chunk(sock, b"").await?;
            sock.flush().await?;
            Ok(false)
        }
        "garbage" => {
            sock.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\nzz-not-a-chunk-size\r\n\x00\x01\x02garbage\r\n")
                .await?;
            sock.flush().await?;
            Ok(false)
        }
        "cl-sse" => {
            let n: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(3);
            let ms: u64 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(200);
            let events: Vec<String> = (0..n)
                .map(|i| content_event(id, &model, i, false))
                .chain(std::iter::once("data: [DONE]\n\n".to_string()))
                .collect();
            let len: usize = events.iter().map(String::len).sum();
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {len}\r\n{common}\r\n");
            sock.write_all(head.as_bytes()).await?;
            for (i, ev) in events.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                sock.write_all(ev.as_bytes()).await?;
                sock.flush().await?;
            }
            Ok(true)
        }
        "endless-event" => {
            let mib: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(64);
            stream_head(sock, &common).await?;
            write_chunk(sock, content_event(id, &model, 0, false).as_bytes()).await?;
            write_chunk(sock, b"data: ").await?;
            let block = vec![b'A'; 64 * 1024];
            for _ in 0..mib * 16 {
                // Stops when the gateway gives up on the stream (write error).
                write_chunk(sock, &block).await?;
            }
            Ok(false)
        }
        "drip" => {
            let n: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(3);
            let body = br#"{"id":"chatcmpl-drip","object":"chat.completion","choices":[]}"#;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{common}\r\n", body.len());
            sock.write_all(head.as_bytes()).await?;
            for b in body.iter().take(n) {
                sock.write_all(&[*b]).await?;
                sock.flush().await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(false)
        }
        "huge" => {
            let size: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1 << 20);
            let head = br#"{"id":"chatcmpl-huge","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":""#;
            let tail = br#""},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}"#;
            let fill = size.saturating_sub(head.len() + tail.len());
            let mut body = Vec::with_capacity(size);
            body.extend_from_slice(head);
            body.resize(head.len() + fill, b'x');
            body.extend_from_slice(tail);
            write_whole(sock, 200, "application/json", &common, &body).await?;
            Ok(true)
        }
        "not-json" => {
            write_whole(
                sock,
                200,
                "text/html",
                &common,
                b"<html><body>captive portal</body></html>",
            )
            .await?;
            Ok(true)
        }
        "json-reset" => {
            let sent: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(20);
            let body = br#"{"id":"chatcmpl-reset","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"partial answer that never ends"}}]}"#;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{common}\r\n", body.len() + 1000);
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(&body[..sent.min(body.len())]).await?;
            sock.flush().await?;
            let _ = sock.set_zero_linger(); // RST, not FIN
            Ok(false)
        }
        "status" | "text-status" | "empty-status" => {
            let code: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(500);
            if let Some(ra) = parts.next() {
                common.push_str(&format!("retry-after: {ra}\r\n"));
            }
            let (ctype, body) = if behaviour.starts_with("empty-") {
                ("application/json", String::new())
            } else if behaviour.starts_with("text-") {
                ("text/plain", format!("upstream says {code}"))
            } else {
                (
                    "application/json",
                    format!(
                        r#"{{"error":{{"message":"mock {id} answered {code}","type":"mock_error","param":null,"code":"mock_{code}"}}}}"#
                    ),
                )
            };
            write_whole(sock, code, ctype, &common, body.as_bytes()).await?;
            Ok(true)
        }
        "sse" | "cut" => {
            let n: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(5);
            let ms: u64 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            let cut = behaviour.starts_with("cut");
            stream(sock, id, &common, &model, n, ms, wants_usage, cut).await
        }
        _ if wants_stream => stream(sock, id, &common, &model, 3, 0, wants_usage, false).await,
        _ => {
            let body = if route.ends_with("/embeddings") {
                format!(
                    r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}}],"model":"{model}","usage":{{"prompt_tokens":4,"total_tokens":4}}}}"#
                )
            } else if route == "/tokenize" {
                // vLLM's tokenizer endpoint: a count that follows the request (bytes / 4).
                let n = (req.body.len() / 4).max(1);
                format!(r#"{{"count":{n},"max_model_len":8192,"tokens":[]}}"#)
            } else if route.ends_with("/models") {
                format!(
                    r#"{{"object":"list","data":[{{"id":"mock-{id}-model","object":"model","owned_by":"mock"}}]}}"#
                )
            } else if route.ends_with("/completions") && !route.ends_with("/chat/completions") {
                format!(
                    r#"{{"id":"cmpl-{id}","object":"text_completion","created":1700000000,"model":"{model}","choices":[{{"text":"hello","index":0,"logprobs":null,"finish_reason":"stop"}}],"usage":{{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}}}"#
                )
            } else {
                format!(
                    r#"{{"id":"chatcmpl-{id}","object":"chat.completion","created":1700000000,"model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":"Hello from {id}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14,"prompt_tokens_details":{{"cached_tokens":2}}}}}}"#
                )
            };
            write_whole(sock, 200, "application/json", &common, body.as_bytes()).await?;
            Ok(true)
        }
    }
}

pub(crate) async fn write_whole(
    sock: &mut TcpStream,
    code: u16,
    ctype: &str,
    extra: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n{extra}\r\n",
        reason(code),
        body.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    sock.write_all(&out).await
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    sock: &mut TcpStream,
    id: &str,
    extra: &str,
    model: &str,
    n: usize,
    ms: u64,
    usage: bool,
    cut: bool,
) -> std::io::Result<bool> {
    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n{extra}\r\n");
    sock.write_all(head.as_bytes()).await?;
    let usage_null = if usage { r#","usage":null"# } else { "" };
    for i in 0..n {
        if i > 0 && ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let ev = format!(
            "data: {{\"id\":\"chatcmpl-{id}\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]{usage_null}}}\n\n"
        );
        write_chunk(sock, ev.as_bytes()).await?;
    }
    if cut {
        sock.flush().await?;
        return Ok(false); // drop the connection mid-stream
    }
    let mut tail = format!(
        "data: {{\"id\":\"chatcmpl-{id}\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]{usage_null}}}\n\n"
    );
    if usage {
        tail.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-{id}\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\"choices\":[],\"usage\":{{\"prompt_tokens\":7,\"completion_tokens\":{n},\"total_tokens\":{}}}}}\n\n",
            7 + n
        ));
    }
    tail.push_str("data: [DONE]\n\n");
    write_chunk(sock, tail.as_bytes()).await?;
    sock.write_all(b"0\r\n\r\n").await?;
    Ok(true)
}

pub(crate) async fn stream_head(sock: &mut TcpStream, extra: &str) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n{extra}\r\n");
    sock.write_all(head.as_bytes()).await
}

fn content_event(id: &str, model: &str, i: usize, usage_null: bool) -> String {
    let usage_null = if usage_null { r#","usage":null"# } else { "" };
    format!(
        "data: {{\"id\":\"chatcmpl-{id}\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]{usage_null}}}\n\n"
    )
}

pub(crate) async fn write_chunk(sock: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    sock.write_all(&out).await
}

pub(crate) fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}
