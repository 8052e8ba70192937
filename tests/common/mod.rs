//! Shared harness: run the real `switchyard` binary on a free loopback port and talk
//! HTTP/1.1 to it over TCP, recording when each body chunk arrived.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A loopback port nothing listens on: port 1 (tcpmux) is never bound here, so a connect is
/// refused at once. (A port from `free_port` can be taken by a parallel test's mock.)
pub const DEAD_PORT: u16 = 1;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running gateway process, killed on drop.
pub struct Gateway {
    pub child: Child,
    pub port: u16,
    pub dir: tempdir::TempDir,
    pub log: std::path::PathBuf,
}

pub mod tempdir {
    /// A scratch directory removed on drop.
    pub struct TempDir(pub std::path::PathBuf);
    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let p = std::env::temp_dir()
                .join(format!("switchyard-test-{}-{tag}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("tempdir");
            TempDir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[derive(Default)]
pub struct Launch<'a> {
    pub env: Vec<(&'a str, String)>,
    /// YAML config text; `{PORT}` and `{DIR}` are substituted.
    pub config: Option<String>,
    pub args: Vec<String>,
}

impl Gateway {
    /// Start and wait until `/healthz` answers (or panic after 15 s).
    /// A port race with a parallel test makes the process exit at bind: then start again
    /// on another port.
    pub async fn start(launch: Launch<'_>) -> Gateway {
        for _ in 0..3 {
            let mut g = Self::spawn(Launch {
                env: launch.env.clone(),
                config: launch.config.clone(),
                args: launch.args.clone(),
            });
            if g.wait_ready_or_exit().await {
                return g;
            }
            let _ = g.child.wait();
        }
        panic!("gateway did not start three times");
    }

    /// Ready: true. The process exited first: false.
    async fn wait_ready_or_exit(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(r) = request(self.addr(), "GET", "/healthz", &[], b"").await {
                if r.status == 200 {
                    // Make sure it is our process that answered, not a neighbour's.
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    return self.child.try_wait().ok().flatten().is_none();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway did not become ready; log:\n{}", self.logs());
    }

    pub fn spawn(launch: Launch<'_>) -> Gateway {
        let port = free_port();
        let dir = tempdir::TempDir::new("gw");
        let log = dir.path().join("gateway.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"));
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        let pid = dir.path().join("sy.pid");
        let sock = dir.path().join("sy.sock");
        if let Some(cfg) = &launch.config {
            let text = cfg
                .replace("{PORT}", &port.to_string())
                .replace("{DIR}", &dir.path().display().to_string());
            let text = if text.contains("pid_file") {
                text
            } else {
                format!("{text}\nserver: {{ pid_file: {}, upgrade_sock: {}, grace_period: 1s, shutdown_timeout: 1s }}\n", pid.display(), sock.display())
            };
            let path = dir.path().join("switchyard.yaml");
            std::fs::write(&path, text).expect("write config");
            cmd.arg("--config").arg(&path);
        }
        cmd.args(&launch.args);
        let logf = std::fs::File::create(&log).expect("log file");
        cmd.stdout(Stdio::from(logf.try_clone().expect("log")))
            .stderr(Stdio::from(logf));
        let child = cmd.spawn().expect("spawn switchyard");
        Gateway {
            child,
            port,
            dir,
            log,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("switchyard.yaml")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(r) = request(self.addr(), "GET", "/healthz", &[], b"").await {
                if r.status == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway did not become ready; log:\n{}", self.logs());
    }

    pub fn signal(&self, sig: &str) {
        signal_pid(self.child.id(), sig);
    }

    pub async fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        request(self.addr(), "POST", path, &h, body.as_bytes())
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.addr(), "GET", path, headers, b"")
            .await
            .expect("request")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response with the arrival time of each body chunk (relative to the request start).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// (elapsed, decoded bytes) per read that delivered body data.
    pub arrivals: Vec<(Duration, Vec<u8>)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method != "GET" || !body.is_empty() {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await?;
    // A server may answer (413, 401) and close before the upload ends: still read its answer.
    let _ = s.write_all(body).await;
    read_response(&mut s, started).await
}

pub async fn read_response(s: &mut TcpStream, started: Instant) -> std::io::Result<Response> {
    let mut buf = Vec::new();
    let header_end = loop {
        if let Some(p) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other(format!(
                "closed before headers: {:?}",
                String::from_utf8_lossy(&buf)
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let (status, headers) = parse_head(&buf[..header_end]);
    let mut raw = buf[header_end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut arrivals = Vec::new();
    if !raw.is_empty() {
        arrivals.push((started.elapsed(), raw.clone()));
    }
    // Read to close (Connection: close), noting arrivals.
    loop {
        let mut chunk = vec![0u8; 65536];
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            Err(_) => break, // reset after data: keep what arrived
        };
        if n == 0 {
            break;
        }
        arrivals.push((started.elapsed(), chunk[..n].to_vec()));
        raw.extend_from_slice(&chunk[..n]);
    }
    let body = if chunked { dechunk(&raw) } else { raw };
    Ok(Response {
        status,
        headers,
        body,
        arrivals,
    })
}

/// Status and headers (names lower-cased) of a response head, without its blank line.
fn parse_head(head: &[u8]) -> (u16, Vec<(String, String)>) {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    (status, headers)
}

/// Decode a chunked body, tolerating a missing terminator (a cut stream).
pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = memchr::memmem::find(b, b"\r\n") {
        let Ok(size) = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap_or("")
                .trim(),
            16,
        ) else {
            break;
        };
        if size == 0 {
            break;
        }
        let end = (eol + 2 + size).min(b.len());
        out.extend_from_slice(&b[eol + 2..end]);
        b = &b[(end + 2).min(b.len())..];
    }
    out
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

pub fn write_file(path: &std::path::Path, text: &str) {
    let mut f = std::fs::File::create(path).expect("create");
    f.write_all(text.as_bytes()).expect("write");
}

// ---------------------------------------------------------------- process lifecycle helpers

impl Gateway {
    /// Start a second process on the same config with `--upgrade` (it waits on the
    /// config's `upgrade_sock` for the running process's sockets); its output goes to
    /// `successor.log` in the same directory.
    pub fn spawn_successor(&self) -> Child {
        let log = std::fs::File::create(self.dir.path().join("successor.log")).expect("log");
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .arg("--config")
            .arg(self.config_path())
            .arg("--upgrade")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn successor")
    }

    pub fn successor_logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("successor.log")).unwrap_or_default()
    }

    /// Wait at most `limit` for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        wait_child(&mut self.child, limit).await
    }
}

/// Wait at most `limit` for `child` to exit.
pub async fn wait_child(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Send `sig` (a name such as `TERM`) to a process id.
pub fn signal_pid(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// One request on a kept-alive connection; the response is read by its framing
/// (`Content-Length` or chunked), so the connection can carry the next one.
pub async fn request_keepalive(
    s: &mut TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let started = Instant::now();
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    s.write_all(&out).await?;
    let mut buf = Vec::new();
    let header_end = loop {
        if let Some(p) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed before headers"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let (status, headers) = parse_head(&buf[..header_end]);
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let chunked = find("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length = find("content-length").and_then(|v| v.parse::<usize>().ok());
    let mut raw = buf[header_end + 4..].to_vec();
    loop {
        let complete = if chunked {
            raw.starts_with(b"0\r\n\r\n") || memchr::memmem::find(&raw, b"\r\n0\r\n\r\n").is_some()
        } else {
            raw.len() >= length.unwrap_or(0)
        };
        if complete {
            break;
        }
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed mid-body"));
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    let body = if chunked { dechunk(&raw) } else { raw };
    Ok(Response {
        status,
        headers,
        arrivals: vec![(started.elapsed(), body.clone())],
        body,
    })
}

/// An upstream that answers every chat request with a complete JSON completion after
/// `delay`: a slow non-streamed request for the drain tests. Returns its base URL.
pub async fn slow_upstream(delay: Duration) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind slow upstream");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // Read the head and a body of the declared length.
                loop {
                    if let Some(p) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= p + 4 + len {
                            break;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                if !String::from_utf8_lossy(&buf).contains("/health") {
                    tokio::time::sleep(delay).await;
                }
                let body = r#"{"id":"chatcmpl-slow","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"slow answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/v1")
}
