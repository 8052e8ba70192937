//! Operating the binary: `check`, signals, health checks, zero-config fleets.

mod common;

use common::{Gateway, Launch};
use mock_upstream::Mock;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn check_reports_every_problem_with_its_line_and_exits_2() {
    let dir = common::tempdir::TempDir::new("check");
    let bad = dir.path().join("bad.yaml");
    common::write_file(
        &bad,
        "listen: [\"127.0.0.1:8080\"]\nprovidres: {}\nproviders:\n  p: { type: openai, base_url: \"http://127.0.0.1:1/v1\", api_key: \"${NOPE_NOT_SET}\" }\nmodels:\n  m:\n    targets: [ { provider: ghost } ]\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "--config"])
        .arg(&bad)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    let f = bad.display().to_string();
    assert!(
        text.contains(&format!("{f}:2: unknown key `providres`")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{f}:4:")) && text.contains("NOPE_NOT_SET"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{f}:7:")) && text.contains("ghost"),
        "{text}"
    );

    let good = dir.path().join("good.yaml");
    common::write_file(&good, "listen: [\"127.0.0.1:8080\"]\nproviders:\n  p: { type: openai, base_url: \"http://127.0.0.1:1/v1\", api_key: k }\n");
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "--config"])
        .arg(&good)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn sigterm_lets_a_stream_in_flight_finish() {
    let mock = Mock::start("drain").await.unwrap();
    let cfg = format!(
        "listen: [\"127.0.0.1:{{PORT}}\"]\nserver: {{ pid_file: {{DIR}}/p.pid, upgrade_sock: {{DIR}}/u.sock, grace_period: 3s, shutdown_timeout: 1s }}\nproviders:\n  up: {{ type: openai, base_url: \"{}\", api_key: k }}\n",
        mock.base_url()
    );
    let mut gw = Gateway::start(Launch {
        config: Some(cfg),
        ..Default::default()
    })
    .await;
    let addr = gw.addr();
    // A 1.5 s stream; SIGTERM lands in its middle.
    let stream = tokio::spawn(async move {
        common::request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[
                ("content-type", "application/json"),
                ("x-mock", "sse:6:300"),
            ],
            br#"{"model":"up/m","stream":true,"messages":[]}"#,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    gw.signal("TERM");
    let r = stream.await.unwrap().expect("stream response");
    let text = r.text();
    assert_eq!(text.matches("tok").count(), 6, "{text}");
    assert!(text.contains("[DONE]"));
    // The process exits by itself, cleanly, within grace + timeout.
    let started = Instant::now();
    let code = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(code.success(), "exit {code:?}");
}

#[tokio::test]
async fn vllm_fleet_from_env_is_health_checked_and_its_models_discovered() {
    let a = Mock::start("gpu-a").await.unwrap();
    let dead = common::DEAD_PORT;
    let gw = Gateway::start(Launch {
        env: vec![("VLLM_ENDPOINTS", format!("{},127.0.0.1:{dead}", a.addr))],
        ..Default::default()
    })
    .await;
    // The fleet reports `mock-gpu-a-model` on GET /v1/models: routable by its bare name.
    let mut last = None;
    for _ in 0..30 {
        let r = gw
            .post_json(
                "/v1/chat/completions",
                &[],
                r#"{"model":"mock-gpu-a-model","messages":[]}"#,
            )
            .await;
        if r.status == 200 {
            last = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = last.expect("discovered model never routable");
    assert_eq!(r.header("x-mock-id"), Some("gpu-a"));
    assert_eq!(
        r.header("x-mock-auth"),
        Some("-"),
        "keyless fleet must get no Authorization"
    );
    // The dead endpoint is marked down; every request lands on the live one.
    for _ in 0..6 {
        let r = gw
            .post_json(
                "/v1/chat/completions",
                &[],
                r#"{"model":"vllm/any","messages":[]}"#,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let m = gw.get("/metrics", &[]).await.text();
    assert!(
        m.contains(&format!(
            "switchyard_upstream_up{{endpoint=\"127.0.0.1:{dead}\",provider=\"vllm\"}} 0"
        )),
        "{m}"
    );
    let models = gw.get("/v1/models", &[]).await.json();
    assert!(models["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "mock-gpu-a-model" && m["owned_by"] == "vllm"));
}

#[tokio::test]
async fn no_healthy_endpoint_is_503() {
    let dead = common::DEAD_PORT;
    let gw = Gateway::start(Launch {
        env: vec![("VLLM_ENDPOINTS", format!("127.0.0.1:{dead}"))],
        ..Default::default()
    })
    .await;
    // Health checks mark the only endpoint down (two failed checks).
    let mut status = 0;
    for _ in 0..60 {
        let r = gw
            .post_json(
                "/v1/chat/completions",
                &[],
                r#"{"model":"vllm/m","messages":[]}"#,
            )
            .await;
        status = r.status;
        if status == 503 {
            assert!(r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no healthy upstream"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, 503);
    assert_eq!(gw.get("/readyz", &[]).await.status, 503);
}

#[tokio::test]
async fn retry_after_puts_a_target_aside() {
    let a = Mock::start("a").await.unwrap();
    let b = Mock::start("b").await.unwrap();
    let cfg = format!(
        "listen: [\"127.0.0.1:{{PORT}}\"]\nproviders:\n  pa: {{ type: openai, base_url: \"{}\", api_key: k }}\n  pb: {{ type: openai, base_url: \"{}\", api_key: k }}\nmodels:\n  m:\n    targets: [ {{ provider: pa }}, {{ provider: pb }} ]\n  only-a:\n    targets: [ {{ provider: pa }} ]\n",
        a.base_url(),
        b.base_url()
    );
    let gw = Gateway::start(Launch {
        config: Some(cfg),
        ..Default::default()
    })
    .await;
    // `pa` answers 429 with Retry-After: 30 for the direct model; that puts (pa, m) aside.
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &[("x-mock", "status:429:30")],
            r#"{"model":"pa/m","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.json()["error"]["message"],
        "mock a answered 429",
        "upstream message kept"
    );
    // While aside, `m` always leads with `pb`, whatever the round-robin says.
    let before = a.hits();
    for _ in 0..4 {
        let r = gw
            .post_json(
                "/v1/chat/completions",
                &[],
                r#"{"model":"m","messages":[]}"#,
            )
            .await;
        assert_eq!(r.header("x-mock-id"), Some("b"));
    }
    assert_eq!(a.hits(), before);
    // A lone target aside is still tried: the upstream decides.
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &[],
            r#"{"model":"pa/m","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, 200);
}
