//! End-to-end under fault injection (issue 7): the real binary in front of mock upstreams
//! that stall, reset, send garbage, never end an event, drip, or answer 200 with HTML.
//! Each case checks what the client gets against the contract, and that the gateway keeps
//! serving others meanwhile.

mod common;

use common::{Gateway, Launch, Response};
use mock_upstream::Mock;
use std::time::{Duration, Instant};

const KEY: &str = "sk-faults-admin";

fn config(a: &Mock, b: &Mock, limits: &str) -> String {
    format!(
        r#"
listen: ["127.0.0.1:{{PORT}}"]
limits: {{ first_byte_timeout: 1s, connect_timeout: 500ms, {limits} }}
auth:
  keys:
    - {{ name: admin, key: {KEY} }}
    - {{ name: mini-only, key: sk-mini-only, models: ["gpt-4o*"] }}
providers:
  primary: {{ type: openai, base_url: "{}", api_key: sk-primary }}
  backup:  {{ type: openai, base_url: "{}", api_key: sk-backup }}
  fleet:   {{ type: openai, endpoints: ["{}", "{}"] }}
models:
  solo:
    targets: [ {{ provider: primary }} ]
  paired:
    targets:
      - {{ provider: primary }}
      - {{ provider: backup, priority: 1 }}
  fleet-first:
    targets:
      - {{ provider: fleet }}
      - {{ provider: backup, priority: 1 }}
"#,
        a.base_url(),
        b.base_url(),
        a.addr,
        b.addr,
    )
}

async fn gateway(a: &Mock, b: &Mock, limits: &str) -> Gateway {
    Gateway::start(Launch {
        config: Some(config(a, b, limits)),
        ..Default::default()
    })
    .await
}

/// Chat requests a mock received (health checks and model discovery aside: the fleet
/// provider's endpoints are these same mocks).
fn chats(m: &Mock) -> usize {
    m.seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.path.ends_with("/chat/completions"))
        .count()
}

async fn chat(gw: &Gateway, body: &str, extra: &[(&str, &str)]) -> Response {
    let auth = format!("Bearer {KEY}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(extra);
    gw.post_json("/v1/chat/completions", &h, body).await
}

const STREAM: &str =
    r#"{"model":"solo","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const PLAIN: &str = r#"{"model":"solo","messages":[{"role":"user","content":"hi"}]}"#;

/// The stream ended with the OpenAI terminal error (an error event, then `[DONE]`), and no
/// normal finish before it.
fn assert_terminal_error(r: &Response, needle: &str) {
    let text = r.text();
    let err_at = text
        .rfind("data: {\"error\"")
        .unwrap_or_else(|| panic!("no terminal error event: {text:.400}"));
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "{:.400}",
        &text[err_at..]
    );
    assert!(text[err_at..].contains(needle), "{}", &text[err_at..]);
    // Every event before it is whole: the error starts a fresh event.
    assert!(text[..err_at].is_empty() || text[..err_at].ends_with("\n\n"));
}

#[tokio::test]
async fn content_length_framed_streams_are_relayed_as_they_arrive() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let t = Instant::now();
    let r = chat(&gw, STREAM, &[("x-mock", "cl-sse:3:400")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text().matches("data: {").count(), 3);
    assert!(r.text().ends_with("data: [DONE]\n\n"));
    // The first event reached the client long before the upstream finished (800 ms).
    let first = r.arrivals.first().expect("body").0;
    assert!(
        first < Duration::from_millis(500),
        "first event after {first:?}"
    );
    assert!(t.elapsed() >= Duration::from_millis(800));
    // Re-framed: whole events only, so the upstream's length no longer holds.
    assert_eq!(r.header("content-length"), None);
}

#[tokio::test]
async fn an_endless_event_ends_the_stream_with_the_terminal_error() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "max_stream_event: 1MiB").await;
    let t = Instant::now();
    let r = chat(&gw, STREAM, &[("x-mock", "endless-event:64")]).await;
    assert_eq!(r.status, 200);
    assert_terminal_error(&r, "max_stream_event");
    // The unfinished event never reached the client; the whole event before it did.
    assert!(!r.text().contains("AAAA"));
    assert!(r.text().starts_with("data: {\"id\""));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // The gateway serves others at once.
    let t = Instant::now();
    assert_eq!(chat(&gw, PLAIN, &[]).await.status, 200);
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_stream_that_stalls_midway_ends_with_the_terminal_error() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let t = Instant::now();
    let r = chat(&gw, STREAM, &[("x-mock", "stall-mid:2")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text().matches("\"content\":\"tok").count(), 2);
    assert_terminal_error(&r, "error");
    // first_byte_timeout (1 s) bounds every gap between chunks.
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
}

#[tokio::test]
async fn garbage_framing_is_a_502_or_a_terminal_error() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let r = chat(&gw, STREAM, &[("x-mock", "garbage")]).await;
    if r.status == 200 {
        // The status line was fine and went out; the body was not: closed well-formed.
        assert_terminal_error(&r, "error");
        assert!(!r.text().contains("garbage"));
    } else {
        assert_eq!(r.status, 502, "{}", r.text());
    }
    assert_eq!(chat(&gw, PLAIN, &[]).await.status, 200);
}

#[tokio::test]
async fn a_200_that_is_not_json_is_a_502_or_the_next_target() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let r = chat(&gw, PLAIN, &[("x-mock", "not-json")]).await;
    assert_eq!(r.status, 502, "{}", r.text());
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("text/html"), "{msg}");
    assert!(!r.text().contains("captive portal"));
    // With a fallback, the next target answers (both mocks see the header: both are tried).
    let r = chat(
        &gw,
        r#"{"model":"paired","messages":[]}"#,
        &[("x-mock", "not-json")],
    )
    .await;
    assert_eq!(r.status, 502);
    assert_eq!(chats(&b), 1, "the fallback was tried");
}

#[tokio::test]
async fn a_json_answer_cut_midway_is_not_given_an_sse_chunk() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let r = chat(&gw, PLAIN, &[("x-mock", "json-reset:40")]).await;
    let raw: Vec<u8> = r.arrivals.iter().flat_map(|(_, b)| b.clone()).collect();
    let raw = String::from_utf8_lossy(&raw);
    assert!(!raw.contains("data:"), "{raw}");
    if r.status == 200 {
        // Cut short: no final chunk, so no client can take it for a whole answer.
        assert!(!raw.ends_with("0\r\n\r\n"), "{raw:?}");
        assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    } else {
        assert_eq!(r.status, 502, "{raw}");
    }
}

#[tokio::test]
async fn a_huge_answer_passes_whole() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let size = 8 << 20;
    let r = chat(&gw, PLAIN, &[("x-mock", &format!("huge:{size}"))]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), size);
    assert_eq!(r.json()["usage"]["completion_tokens"], 9);
}

#[tokio::test]
async fn a_dripping_upstream_does_not_hold_up_others_and_is_cut_when_it_stalls() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let addr = gw.addr();
    let auth = format!("Bearer {KEY}");
    let drip = tokio::spawn(async move {
        let h = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("x-mock", "drip:3"),
        ];
        common::request(addr, "POST", "/v1/chat/completions", &h, PLAIN.as_bytes()).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(chat(&gw, PLAIN, &[]).await.status, 200);
        assert!(t.elapsed() < Duration::from_millis(500));
    }
    // 3 bytes at 1 a second, then silence: cut 1 s (first_byte_timeout) after the last.
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), drip)
        .await
        .expect("the drip was never cut")
        .unwrap();
    if let Ok(r) = r {
        assert!(r.body.len() <= 3, "{:?}", r.text());
        assert!(!r.text().contains("data:"));
    }
    assert!(t.elapsed() < Duration::from_secs(6));
}

/// An account's 429 ends that target for the request: its other endpoints share the key,
/// so the next target is tried instead.
#[tokio::test]
async fn a_429_moves_to_the_next_target_not_to_the_same_accounts_other_address() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let before = chats(&a) + chats(&b);
    let r = chat(
        &gw,
        r#"{"model":"fleet-first","messages":[]}"#,
        &[("x-mock", "status:429")],
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text());
    // One fleet endpoint (a or b) and then the backup target (b): two attempts, not three.
    assert_eq!(chats(&a) + chats(&b) - before, 2);
}

/// A duplicate `model` key: the allow-list and the upstream could read different ones.
#[tokio::test]
async fn duplicate_model_keys_are_refused_before_any_upstream() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let cfg = config(&a, &b, "").replace(
        "  solo:",
        "  gpt-4o-mini:\n    targets: [ { provider: primary } ]\n  solo:",
    );
    let gw = Gateway::start(Launch {
        config: Some(cfg),
        ..Default::default()
    })
    .await;
    let h = [("authorization", "Bearer sk-mini-only")];
    for body in [
        r#"{"model":"solo","model":"gpt-4o-mini","messages":[]}"#,
        r#"{"model":"gpt-4o-mini","mod\u0065l":"solo","messages":[]}"#,
    ] {
        let r = gw.post_json("/v1/chat/completions", &h, body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains("duplicate key"));
    }
    // x-ai-eg-model with a duplicate in the body: refused too, not one occurrence rewritten.
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &[
                ("authorization", "Bearer sk-mini-only"),
                ("x-ai-eg-model", "gpt-4o-mini"),
            ],
            r#"{"model":"solo","model":"solo","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(chats(&a) + chats(&b), 0);
    assert_eq!(
        gw.post_json(
            "/v1/chat/completions",
            &h,
            r#"{"model":"gpt-4o-mini","messages":[]}"#
        )
        .await
        .status,
        200
    );
}

/// Names clients make up never become label values; what is logged of them is capped.
#[tokio::test]
async fn client_chosen_model_names_cannot_grow_metrics_or_logs() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let huge = "x".repeat(1 << 20);
    let r = chat(
        &gw,
        &format!(r#"{{"model":"primary/{huge}","messages":[]}}"#),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    for i in 0..200 {
        let r = chat(
            &gw,
            &format!(r#"{{"model":"primary/made-up-{i}\r","messages":[]}}"#),
            &[],
        )
        .await;
        assert_eq!(r.status, 200);
        let r = chat(
            &gw,
            PLAIN,
            &[
                ("x-provider", "primary"),
                ("x-ai-eg-model", &format!("other-{i}")),
            ],
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let metrics = gw.get("/metrics", &[]).await.text();
    assert!(metrics.len() < 256 * 1024, "{} bytes", metrics.len());
    assert!(!metrics.contains("made-up-") && !metrics.contains("other-1"));
    assert!(metrics.contains(r#"model="other""#));
    assert!(!metrics.contains('\r'));
    // A configured name is still its own label.
    assert_eq!(chat(&gw, PLAIN, &[]).await.status, 200);
    assert!(gw
        .get("/metrics", &[])
        .await
        .text()
        .contains(r#"model="solo""#));
    // The log names the made-up model, capped.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = gw.logs();
    assert!(log.len() < 512 * 1024, "log is {} bytes", log.len());
    assert!(log.contains("made-up-1"));
    // An empty model after a provider prefix never reaches an upstream.
    let before = chats(&a);
    let r = chat(&gw, r#"{"model":"primary/","messages":[]}"#, &[]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(chats(&a), before);
}

/// A primary that accepts connections and never answers: after `EJECT_AFTER` stalls it is
/// skipped while the fallback works, instead of costing every request the full timeout.
#[tokio::test]
async fn a_blackholed_target_is_ejected_and_skipped() {
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s); // accepted, never read, never answered
        }
    });
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let cfg = config(&a, &b, "").replace(&a.base_url(), &format!("http://{hole_addr}/v1"));
    let gw = Gateway::start(Launch {
        config: Some(cfg),
        ..Default::default()
    })
    .await;
    let body = r#"{"model":"paired","messages":[]}"#;
    let mut slow = 0;
    for i in 0..8 {
        let t = Instant::now();
        let r = chat(&gw, body, &[]).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert_eq!(r.header("x-mock-id"), Some("b"));
        if t.elapsed() >= Duration::from_millis(900) {
            slow += 1;
        } else {
            assert!(i >= 3, "request {i} was fast before the ejection");
        }
    }
    assert_eq!(
        slow, 3,
        "only the stalls before the ejection wait the timeout"
    );
}

/// Requests from the client reach the upstream without hop-by-hop headers, with the
/// gateway's own X-Forwarded-For.
#[tokio::test]
async fn hop_by_hop_headers_stay_at_the_gateway() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let r = chat(
        &gw,
        PLAIN,
        &[
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("keep-alive", "timeout=5"),
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = a.last().unwrap();
    for h in ["te", "upgrade", "keep-alive", "forwarded"] {
        assert_eq!(seen.header(h), None, "{h} reached the upstream");
    }
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
}

/// HTTP/1.0 has no chunked framing: a stream to a 1.0 client ends with the connection.
#[tokio::test]
async fn http10_clients_get_no_chunked_framing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let mut s = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.0\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{STREAM}",
        STREAM.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the connection was closed at the end")
        .unwrap();
    let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    assert!(text.starts_with("http/1."), "{text}");
    assert!(!text.contains("transfer-encoding"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    assert!(body.starts_with("data: {"), "{body}");
    assert!(body.ends_with("data: [done]\n\n"), "{body}");
}

/// A client that declares a large body, sends part of it and stalls is answered 408 after
/// `limits.body_read_timeout` and its buffer freed.
#[tokio::test]
async fn a_stalled_upload_is_cut_after_the_body_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "body_read_timeout: 1s").await;
    let mut s = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n{{\"model\":\"solo\",\"messages\":["
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_read_timeout"));
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(chats(&a), 0);
}

/// Pipelined requests (sent before the first answer is read) are each answered, in order,
/// instead of the second being dropped silently.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let mut s = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    let mut all = Vec::new();
    for id in ["first", "second", "third"] {
        all.extend_from_slice(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-request-id: {id}\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{PLAIN}",
                PLAIN.len()
            )
            .as_bytes(),
        );
    }
    s.write_all(&all).await.unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while String::from_utf8_lossy(&out)
        .matches("Hello from a")
        .count()
        < 3
        && Instant::now() < deadline
    {
        let mut buf = [0u8; 16384];
        match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("x-request-id: "))
        .map(str::trim)
        .collect();
    assert_eq!(ids, ["first", "second", "third"], "{text}");
}

// The stream commit protocol (issue 8): until content reached the client, an in-band
// failure is a failed attempt, and the next target answers in the same response.

const PAIRED_STREAM: &str =
    r#"{"model":"paired","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn an_error_event_before_content_moves_to_the_next_target() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let r = chat(&gw, PAIRED_STREAM, &[("x-mock-a", "error-event")]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    // One clean stream, from the backup: no trace of the primary's error.
    assert!(!text.contains("error"), "{text}");
    assert!(!text.contains("chatcmpl-a"), "{text}");
    assert!(text.contains("\"id\":\"chatcmpl-b\""), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!((chats(&a), chats(&b)), (1, 1));
}

#[tokio::test]
async fn a_stream_that_ends_before_content_moves_to_the_next_target() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let r = chat(&gw, PAIRED_STREAM, &[("x-mock-a", "cut:0")]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(!text.contains("error"), "{text}");
    assert!(text.contains("\"id\":\"chatcmpl-b\""), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!((chats(&a), chats(&b)), (1, 1));
}

#[tokio::test]
async fn after_content_a_failure_is_a_terminal_error_not_another_target() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let r = chat(&gw, PAIRED_STREAM, &[("x-mock-a", "cut:2")]).await;
    assert_eq!(r.status, 200);
    assert_terminal_error(&r, "error");
    assert_eq!(r.text().matches("\"content\":\"tok").count(), 2);
    assert_eq!(
        chats(&b),
        0,
        "content had reached the client: no other target"
    );
}

#[tokio::test]
async fn the_last_target_failing_in_band_reaches_the_client_as_its_error() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    let r = chat(&gw, STREAM, &[("x-mock", "error-event")]).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("mock overloaded"), "{}", r.text());
    assert!(r.text().ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn a_failed_attempts_upstream_time_is_not_gateway_overhead() {
    let (a, b) = (
        Mock::start("a").await.unwrap(),
        Mock::start("b").await.unwrap(),
    );
    let gw = gateway(&a, &b, "").await;
    // The primary stalls past first_byte_timeout (1 s), then the backup answers.
    let r = chat(
        &gw,
        r#"{"model":"paired","messages":[{"role":"user","content":"hi"}]}"#,
        &[("x-mock-a", "stall")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!((chats(&a), chats(&b)), (1, 1));
    let metrics = gw.get("/metrics", &[]).await.text();
    let sum: f64 = metrics
        .lines()
        .find(|l| l.starts_with("switchyard_overhead_seconds_sum") && l.contains("chat"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no overhead sum: {metrics:.2000}"));
    assert!(
        sum < 0.5,
        "the 1 s the primary stalled was counted as overhead: {sum}"
    );
}
