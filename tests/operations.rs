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

/// A config for one provider at `base_url`, listening on the harness's port; `server` is the
/// `server:` block (it must name `pid_file` and `upgrade_sock` in `{DIR}`).
fn one_provider(base_url: &str, server: &str) -> String {
    format!(
        "listen: [\"127.0.0.1:{{PORT}}\"]\nserver: {server}\nproviders:\n  up: {{ type: openai, base_url: \"{base_url}\", api_key: k }}\n"
    )
}

const LONG_GRACE: &str =
    "{ pid_file: \"{DIR}/p.pid\", upgrade_sock: \"{DIR}/u.sock\", grace_period: 30s, shutdown_timeout: 1s }";

#[tokio::test]
async fn sigterm_on_an_idle_gateway_exits_at_once_not_after_the_grace_period() {
    let mock = Mock::start("idle").await.unwrap();
    let mut gw = Gateway::start(Launch {
        config: Some(one_provider(&mock.base_url(), LONG_GRACE)),
        ..Default::default()
    })
    .await;
    assert_eq!(gw.get("/healthz", &[]).await.status, 200);
    let sent = Instant::now();
    gw.signal("TERM");
    let status = gw
        .wait_exit(Duration::from_secs(3))
        .await
        .unwrap_or_else(|| {
            panic!(
                "still running 3 s after SIGTERM (grace 30 s); log:\n{}",
                gw.logs()
            )
        });
    assert!(status.success(), "exit {status:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn sigterm_finishes_a_slow_request_then_exits_at_once() {
    let upstream = common::slow_upstream(Duration::from_millis(1500)).await;
    let mut gw = Gateway::start(Launch {
        config: Some(one_provider(&upstream, LONG_GRACE)),
        ..Default::default()
    })
    .await;
    let addr = gw.addr();
    let slow = tokio::spawn(async move {
        common::request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[("content-type", "application/json")],
            br#"{"model":"up/m","messages":[]}"#,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let sent = Instant::now();
    gw.signal("TERM");
    let r = slow
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["message"]["content"], "slow answer");
    let answered = sent.elapsed();
    let status = gw
        .wait_exit(Duration::from_secs(3))
        .await
        .unwrap_or_else(|| panic!("still running after its last request; log:\n{}", gw.logs()));
    assert!(status.success(), "exit {status:?}");
    assert!(
        sent.elapsed() < answered + Duration::from_secs(1),
        "exit {:?} after SIGTERM, answer after {answered:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn upgrade_closes_keepalive_connections_while_the_old_process_still_answers() {
    let mock = Mock::start("upg").await.unwrap();
    let mut old = Gateway::start(Launch {
        config: Some(one_provider(&mock.base_url(), LONG_GRACE)),
        ..Default::default()
    })
    .await;
    let addr = old.addr();
    let body = br#"{"model":"up/m","messages":[]}"#;
    let json = [("content-type", "application/json")];
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let r = common::request_keepalive(&mut conn, addr, "POST", "/v1/chat/completions", &json, body)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("keep-alive"));

    let mut new = old.spawn_successor();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let quit = Instant::now();
    old.signal("QUIT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Within Pingora's 5 s hand-over the old process still answers on the connections it
    // holds, and tells the client to leave: the next request goes to a fresh connection.
    let r = common::request_keepalive(&mut conn, addr, "POST", "/v1/chat/completions", &json, body)
        .await
        .expect("the old process answers during the hand-over");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("connection"), Some("close"));
    // The old process leaves once the hand-over ends and nothing is in flight, not after a
    // 30 s grace period.
    let status = old
        .wait_exit(Duration::from_secs(9))
        .await
        .unwrap_or_else(|| panic!("old process still running; log:\n{}", old.logs()));
    assert!(status.success(), "exit {status:?}");
    assert!(
        quit.elapsed() < Duration::from_secs(7),
        "{:?}",
        quit.elapsed()
    );
    // The successor serves on the same port.
    let r = common::request(addr, "POST", "/v1/chat/completions", &json, body)
        .await
        .expect("the successor answers");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), old.successor_logs());
    let _ = new.kill();
    let _ = new.wait();
}

#[tokio::test]
async fn daemon_mode_keeps_the_access_log() {
    let mock = Mock::start("daemon").await.unwrap();
    let cfg = format!(
        "{}access_log: \"{{DIR}}/access.log\"\n",
        one_provider(
            &mock.base_url(),
            "{ pid_file: \"{DIR}/daemon.pid\", upgrade_sock: \"{DIR}/u.sock\", grace_period: 1s, shutdown_timeout: 1s }"
        )
    );
    let mut gw = Gateway::spawn(Launch {
        config: Some(cfg),
        args: vec!["--daemon".into()],
        ..Default::default()
    });
    // The launching process exits once it forked; the daemon writes its pid file.
    let launched = gw.wait_exit(Duration::from_secs(10)).await;
    assert!(
        launched.is_some_and(|s| s.success()),
        "{launched:?}\n{}",
        gw.logs()
    );
    let pid_file = gw.dir.path().join("daemon.pid");
    let mut pid = None;
    for _ in 0..100 {
        pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        if pid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = pid.unwrap_or_else(|| panic!("no pid file; log:\n{}", gw.logs()));
    struct Daemon(u32);
    impl Drop for Daemon {
        fn drop(&mut self) {
            common::signal_pid(self.0, "KILL");
        }
    }
    let _daemon = Daemon(pid);
    gw.wait_ready().await;
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &[("x-request-id", "daemon-line")],
            r#"{"model":"up/m","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let log = gw.dir.path().join("access.log");
    let mut text = String::new();
    for _ in 0..40 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("/v1/chat/completions") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        text.lines()
            .any(|l| l.contains("/v1/chat/completions") && l.contains("\"status\":200")),
        "access log: {text:?}\nlog:\n{}",
        gw.logs()
    );
    // Stopped by its pid, it exits cleanly.
    common::signal_pid(pid, "TERM");
    let gone = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "daemon did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_taken_port_fails_the_start_at_once_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let free = common::free_port();
    let dir = common::tempdir::TempDir::new("taken");
    let server = format!(
        "server: {{ pid_file: {0}/p.pid, upgrade_sock: {0}/u.sock, grace_period: 1s, shutdown_timeout: 1s }}",
        dir.path().display()
    );
    // The main listener taken, then the admin listener taken.
    for (listen, admin) in [(port, free), (free, port)] {
        let cfg = dir.path().join("c.yaml");
        common::write_file(
            &cfg,
            &format!("listen: [\"127.0.0.1:{listen}\"]\nadmin: {{ listen: \"127.0.0.1:{admin}\" }}\n{server}\nproviders:\n  up: {{ type: openai, base_url: \"http://127.0.0.1:1/v1\", api_key: k }}\n"),
        );
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .env_clear()
            .env("RUST_LOG", "info")
            .arg("--config")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > Duration::from_secs(2) {
                let _ = child.kill();
                panic!("still running 2 s after starting on a taken port");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{status:?}");
        let addr = format!("127.0.0.1:{port}");
        // One line, naming the address, and nothing else (not even Pingora's startup lines).
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].contains(&addr) && lines[0].contains("in use"),
            "{err}"
        );
    }
    drop(taken);
}

#[tokio::test]
async fn startup_log_names_what_is_active_and_an_endpoint_going_down_is_one_short_line() {
    let dead = common::DEAD_PORT;
    let key_sha = common::sha256_hex(b"sk-gateway-secret");
    let cfg = format!(
        "listen: [\"127.0.0.1:{{PORT}}\"]\naccess_log: \"{{DIR}}/access.log\"\nauth:\n  keys:\n    - {{ name: team-a, key_sha256: {key_sha} }}\nproviders:\n  fleet: {{ type: openai, endpoints: [\"127.0.0.1:{dead}\"], api_key: sk-upstream-secret, health_check: {{ interval: 200ms, timeout: 100ms }} }}\nmodels:\n  chat:\n    targets: [ {{ provider: fleet }} ]\n"
    );
    let gw = Gateway::start(Launch {
        config: Some(cfg),
        // The default filter (an empty RUST_LOG counts as unset).
        env: vec![("RUST_LOG", String::new())],
        ..Default::default()
    })
    .await;
    let down = format!("endpoint 127.0.0.1:{dead} is down");
    let mut log = String::new();
    for _ in 0..60 {
        log = gw.logs();
        if log.contains(&down) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        log.contains("providers (1): fleet (openai, 1 endpoint)"),
        "{log}"
    );
    assert!(log.contains("models (1): chat -> fleet"), "{log}");
    assert!(log.contains("keys (1): team-a"), "{log}");
    assert!(
        !log.contains("sk-upstream-secret") && !log.contains(&key_sha),
        "{log}"
    );
    assert_eq!(log.matches(&down).count(), 1, "{log}");
    assert!(!log.contains("becomes unhealthy"), "{log}");
    for line in log.lines() {
        assert!(line.len() < 300, "a long log line: {line}");
    }
}
