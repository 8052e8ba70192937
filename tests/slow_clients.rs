//! Slow clients (issue 7, defect 3): a request head not complete within
//! `limits.header_read_timeout` of its first byte loses the connection, on the first request
//! of a connection and on every keep-alive request after it, on the main and admin
//! listeners. Requests sent at a normal pace, slow bodies and idle keep-alive connections
//! are not affected.

mod common;

use common::{request_keepalive, slow_upstream, Gateway, Launch};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CHAT: &str = r#"{"model":"up/m","messages":[]}"#;
/// One byte every `DRIP`: each read is far within Pingora's 60 s per-read timeout.
const DRIP: Duration = Duration::from_millis(300);

fn config(upstream: &str, extra: &str) -> String {
    format!(
        "listen: [\"127.0.0.1:{{PORT}}\"]\n{extra}limits: {{ header_read_timeout: 1s }}\nproviders:\n  up: {{ type: openai, base_url: \"{upstream}\", api_key: k }}\n"
    )
}

async fn gateway() -> Gateway {
    let upstream = slow_upstream(Duration::ZERO).await;
    Gateway::start(Launch {
        config: Some(config(&upstream, "")),
        ..Default::default()
    })
    .await
}

/// How a dripped head ended.
struct Cut {
    /// From the head's first byte to the gateway's close.
    after: Duration,
    /// What the gateway sent before closing.
    said: Vec<u8>,
}

/// Send `head`, then a header line one byte per `DRIP` (six seconds of it), reading all the
/// while. Returns when the gateway closes; panics if the client got to send everything.
async fn drip_head(conn: TcpStream, head: &[u8]) -> Cut {
    let (mut rx, mut tx) = conn.into_split();
    let started = Instant::now();
    let head = head.to_vec();
    let sender = tokio::spawn(async move {
        tx.write_all(&head).await?;
        for b in b"X-Slow: abcdefghijklmnop\r\n\r\n" {
            tokio::time::sleep(DRIP).await;
            tx.write_all(&[*b]).await?;
        }
        std::io::Result::Ok(tx)
    });
    let mut said = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            match rx.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => said.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let after = started.elapsed();
    assert!(
        read.is_ok() && !sender.is_finished(),
        "the gateway kept a head dripped for {after:?}; it sent {:?}",
        String::from_utf8_lossy(&said)
    );
    sender.abort();
    Cut { after, said }
}

fn assert_cut_at_the_deadline(cut: &Cut) {
    assert!(
        cut.after >= Duration::from_millis(900) && cut.after < Duration::from_millis(2000),
        "closed {:?} after the head's first byte (timeout 1 s)",
        cut.after
    );
    assert!(
        cut.said.is_empty() || cut.said.starts_with(b"HTTP/1.1 408 "),
        "{:?}",
        String::from_utf8_lossy(&cut.said)
    );
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_cut_at_the_deadline() {
    let gw = gateway().await;
    let cut = drip_head(
        connect(gw.addr()).await,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n",
    )
    .await;
    assert_cut_at_the_deadline(&cut);
    // The gateway is still serving.
    assert_eq!(gw.get("/healthz", &[]).await.status, 200);
}

#[tokio::test]
async fn requests_at_a_normal_pace_and_slow_bodies_are_served() {
    let gw = gateway().await;
    let r = gw.post_json("/v1/chat/completions", &[], CHAT).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A head in two parts well within the deadline, then a body sent over 1.5 s: the
    // header deadline is over once the head is.
    let mut conn = connect(gw.addr()).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        CHAT.len()
    );
    conn.write_all(head.as_bytes()).await.expect("head");
    tokio::time::sleep(Duration::from_millis(500)).await;
    conn.write_all(b"\r\n").await.expect("head end");
    for part in CHAT.as_bytes().chunks(CHAT.len() / 5 + 1) {
        tokio::time::sleep(DRIP).await;
        conn.write_all(part).await.expect("body");
    }
    let r = common::read_response(&mut conn, Instant::now())
        .await
        .expect("answer");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_slow_head_on_a_kept_alive_connection_is_cut_and_an_idle_one_is_kept() {
    let gw = gateway().await;
    let json = [("content-type", "application/json")];

    let mut conn = connect(gw.addr()).await;
    let r = request_keepalive(
        &mut conn,
        gw.addr(),
        "POST",
        "/v1/chat/completions",
        &json,
        CHAT.as_bytes(),
    )
    .await
    .expect("first request");
    assert_eq!(r.status, 200, "{}", r.text());
    let cut = drip_head(conn, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    assert_cut_at_the_deadline(&cut);

    // Idle for twice the header timeout, then a prompt request: Pingora's keep-alive
    // timeout (60 s) applies between requests, not the head's.
    let mut conn = connect(gw.addr()).await;
    for round in 0..2 {
        let r = request_keepalive(
            &mut conn,
            gw.addr(),
            "POST",
            "/v1/chat/completions",
            &json,
            CHAT.as_bytes(),
        )
        .await
        .unwrap_or_else(|e| panic!("request {round} on the kept-alive connection: {e}"));
        assert_eq!(r.status, 200, "{}", r.text());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
async fn the_admin_listener_cuts_slow_heads_too() {
    let upstream = slow_upstream(Duration::ZERO).await;
    let admin_port = common::free_port();
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    // Not `Gateway::start`: with an admin listener, `/healthz` is served there only.
    let gw = Gateway::spawn(Launch {
        config: Some(config(
            &upstream,
            &format!("admin: {{ listen: \"127.0.0.1:{admin_port}\" }}\n"),
        )),
        ..Default::default()
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match common::request(admin, "GET", "/healthz", &[], b"").await {
            Ok(r) if r.status == 200 => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => panic!("admin listener not ready; log:\n{}", gw.logs()),
        }
    }
    let cut = drip_head(
        connect(admin).await,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
    )
    .await;
    assert_cut_at_the_deadline(&cut);
}
