//! End-to-end: the real `switchyard` binary in front of in-process mock upstreams on
//! 127.0.0.1 (see `load-tests/mock-upstream`). Each test starts its own gateway.

mod common;

use common::{sha256_hex, Gateway, Launch};
use mock_upstream::Mock;
use std::time::Duration;

const KEY: &str = "sk-gateway-test";

/// Zero-config: OPENAI_API_KEY + OPENAI_BASE_URL pointing at one mock, one gateway key.
async fn zero_config(mock: &Mock) -> Gateway {
    Gateway::start(Launch {
        env: vec![
            ("OPENAI_API_KEY", "sk-upstream-secret".into()),
            ("OPENAI_BASE_URL", mock.base_url()),
            ("SWITCHYARD_API_KEYS", KEY.into()),
        ],
        ..Default::default()
    })
    .await
}

fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {KEY}"))
}

async fn chat(gw: &Gateway, body: &str, extra: &[(&str, &str)]) -> common::Response {
    let auth = format!("Bearer {KEY}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(extra);
    gw.post_json("/v1/chat/completions", &h, body).await
}

#[tokio::test]
async fn chat_goes_through_with_provider_credentials_only() {
    let mock = Mock::start("m1").await.unwrap();
    let gw = zero_config(&mock).await;
    let r = chat(
        &gw,
        r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from m1"
    );
    assert!(r.header("x-request-id").is_some());
    // The provider key was injected; the gateway key never reached the upstream.
    assert_eq!(r.header("x-mock-auth"), Some("Bearer sk-upstream-secret"));
    assert_eq!(r.header("x-mock-path"), Some("/v1/chat/completions"));
    let seen = mock.last().unwrap();
    assert!(
        seen.headers.iter().all(|(_, v)| !v.contains(KEY)),
        "gateway key leaked upstream"
    );
    // The `provider/` prefix never reaches the upstream.
    let sent: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini");
    // The gateway key is not in the logs.
    assert!(!gw.logs().contains(KEY));
    assert!(!gw.logs().contains("sk-upstream-secret"));
}

#[tokio::test]
async fn request_id_is_kept_or_made() {
    let mock = Mock::start("m").await.unwrap();
    let gw = zero_config(&mock).await;
    let r = chat(
        &gw,
        r#"{"model":"openai/x","messages":[]}"#,
        &[("x-request-id", "abc-123")],
    )
    .await;
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    let r = gw.get("/nope", &[]).await;
    assert!(r
        .header("x-request-id")
        .is_some_and(|v| v.starts_with("req_")));
}

#[tokio::test]
async fn large_bodies_reach_the_upstream_byte_exact() {
    let mock = Mock::start("big").await.unwrap();
    let gw = zero_config(&mock).await;
    for size in [100 * 1024, 1024 * 1024, 20 * 1024 * 1024] {
        // `model` last, as the SDKs write it: routing must read the whole body.
        let filler = "x".repeat(size);
        let body = format!(
            r#"{{"messages":[{{"role":"user","content":"{filler}"}}],"model":"openai/gpt-4o"}}"#
        );
        let auth = format!("Bearer {KEY}");
        let r = common::request(
            gw.addr(),
            "POST",
            "/v1/chat/completions",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "size {size}: {}", r.text());
        // Only the intended rewrite (the provider prefix of `model`) differs.
        let expected = body.replace(r#""model":"openai/gpt-4o""#, r#""model":"gpt-4o""#);
        assert_eq!(
            r.header("x-mock-body-len"),
            Some(expected.len().to_string().as_str()),
            "size {size}"
        );
        assert_eq!(
            r.header("x-mock-body-sha256"),
            Some(sha256_hex(expected.as_bytes()).as_str()),
            "size {size}"
        );
    }
}

#[tokio::test]
async fn unchanged_body_is_forwarded_as_sent() {
    let mock = Mock::start("same").await.unwrap();
    let gw = zero_config(&mock).await;
    let body = r#"{ "model" : "gpt-4o-mini", "messages": [ {"role":"user","content":"héllo"} ], "temperature": 0.2, "tools": [{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}] }"#;
    let r = chat(&gw, body, &[("x-provider", "openai")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-mock-body-sha256"),
        Some(sha256_hex(body.as_bytes()).as_str())
    );
}

#[tokio::test]
async fn streams_are_relayed_as_they_arrive() {
    let mock = Mock::start("s").await.unwrap();
    let gw = zero_config(&mock).await;
    let r = chat(
        &gw,
        r#"{"model":"openai/m","stream":true,"messages":[]}"#,
        &[("x-mock", "sse:4:200")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    // Events 200 ms apart upstream arrive apart at the client, not in one lump.
    let with_content: Vec<Duration> = r
        .arrivals
        .iter()
        .filter(|(_, b)| String::from_utf8_lossy(b).contains("tok"))
        .map(|(t, _)| *t)
        .collect();
    assert!(
        with_content.len() >= 4,
        "arrivals: {:?}",
        r.arrivals.iter().map(|(t, _)| t).collect::<Vec<_>>()
    );
    let spread = *with_content.last().unwrap() - with_content[0];
    assert!(spread >= Duration::from_millis(500), "spread {spread:?}");
    for pair in with_content.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(120),
            "gaps {with_content:?}"
        );
    }
}

#[tokio::test]
async fn include_usage_is_injected_and_its_chunk_stripped_unless_asked() {
    let mock = Mock::start("u").await.unwrap();
    let gw = zero_config(&mock).await;
    // The client did not ask: upstream gets include_usage, client gets no usage chunk.
    let r = chat(
        &gw,
        r#"{"model":"openai/m","stream":true,"messages":[]}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    let sent: serde_json::Value = serde_json::from_slice(&mock.last().unwrap().body).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    let text = r.text();
    assert!(
        !text.contains(r#""choices":[]"#),
        "usage chunk leaked: {text}"
    );
    assert!(text.contains("data: [DONE]"));
    assert_eq!(text.matches("tok").count(), 3);
    // The client asked: the usage chunk reaches it.
    let r = chat(&gw, r#"{"model":"openai/m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#, &[]).await;
    assert!(
        r.text()
            .contains(r#""choices":[],"usage":{"prompt_tokens":7"#),
        "{}",
        r.text()
    );
    // Usage was read from the stream in both cases (metrics carry the output tokens).
    let m = gw.get("/metrics", &[]).await.text();
    let line = m
        .lines()
        .find(|l| {
            l.starts_with("gen_ai_client_token_usage_sum")
                && l.contains(r#"gen_ai_token_type="output""#)
        })
        .unwrap_or_else(|| panic!("no output token metric:\n{m}"));
    assert!(line.ends_with(" 6"), "{line}");
}

#[tokio::test]
async fn mid_stream_failure_ends_with_a_terminal_error_event() {
    let mock = Mock::start("cut").await.unwrap();
    let gw = zero_config(&mock).await;
    let r = chat(
        &gw,
        r#"{"model":"openai/m","stream":true,"messages":[]}"#,
        &[("x-mock", "cut:2")],
    )
    .await;
    let text = r.text();
    assert_eq!(r.status, 200);
    assert_eq!(text.matches("tok").count(), 2, "{text}");
    let tail: Vec<&str> = text.trim_end().rsplit("\n\n").take(2).collect();
    assert_eq!(tail[0], "data: [DONE]", "{text}");
    assert!(tail[1].starts_with(r#"data: {"error":"#), "{text}");
}

#[tokio::test]
async fn bad_input_gets_openai_errors() {
    let mock = Mock::start("e").await.unwrap();
    let gw = zero_config(&mock).await;
    let cases: &[(&str, u16, &str)] = &[
        ("not json", 400, "not valid JSON"),
        ("[1,2]", 400, "JSON object"),
        (r#"{"messages":[]}"#, 400, "model"),
        (r#"{"model":7,"messages":[]}"#, 400, "model"),
        (r#"{"model":"openai/x"}"#, 400, "messages"),
        (r#"{"model":"openai/x","messages":"hi"}"#, 400, "messages"),
        (
            r#"{"model":"no-such-model-anywhere","messages":[]}"#,
            404,
            "does not exist",
        ),
    ];
    for (body, status, needle) in cases {
        let r = chat(&gw, body, &[]).await;
        assert_eq!(r.status, *status, "{body}: {}", r.text());
        let v = r.json();
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{body}: {msg}");
        assert!(v["error"]["type"].is_string());
        assert!(v["error"].get("param").is_some() && v["error"].get("code").is_some());
    }
    assert_eq!(mock.hits(), 0, "bad input reached the upstream");
    let r = gw
        .get(
            "/v1/unknown",
            &[("authorization", &format!("Bearer {KEY}"))],
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn keys_are_required_and_checked() {
    let mock = Mock::start("k").await.unwrap();
    let gw = zero_config(&mock).await;
    let body = r#"{"model":"openai/x","messages":[]}"#;
    let r = gw.post_json("/v1/chat/completions", &[], body).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &[("authorization", "Bearer wrong")],
            body,
        )
        .await;
    assert_eq!(r.status, 401);
    let r = gw
        .post_json("/v1/chat/completions", &[("x-api-key", KEY)], body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(mock.hits(), 1);
}

#[tokio::test]
async fn open_gateway_refuses_a_public_listener() {
    let mut g = Gateway::spawn(Launch {
        env: vec![("SWITCHYARD_LISTEN", "0.0.0.0:0".into())],
        ..Default::default()
    });
    let status = tokio::task::spawn_blocking(move || {
        let s = g.child.wait().expect("wait");
        (s, g)
    })
    .await
    .unwrap();
    let (code, g) = status;
    assert!(!code.success());
    assert!(g.logs().to_lowercase().contains("loopback"), "{}", g.logs());
}

fn two_provider_config(a: &Mock, b: &Mock, extra: &str) -> String {
    format!(
        r#"
listen: ["127.0.0.1:{{PORT}}"]
limits: {{ max_request_body: 2MiB, first_byte_timeout: 1s, connect_timeout: 500ms }}
auth:
  keys:
    - {{ name: team-a, key: sk-team-a, models: ["gpt-4o*"] }}
    - {{ name: admin, key: {KEY} }}
providers:
  primary: {{ type: openai, base_url: "{}", api_key: sk-primary }}
  backup:  {{ type: openai, base_url: "{}", api_key: sk-backup }}
models:
  gpt-4o-mini:
    targets:
      - {{ provider: primary }}
      - {{ provider: backup, model: backup-mini }}
  llama-local:
    targets:
      - {{ provider: backup, model: meta-llama/Llama-3.1-8B-Instruct }}
{extra}
"#,
        a.base_url(),
        b.base_url()
    )
}

/// Two mocks (`a`, `b`) behind a gateway running `two_provider_config`.
async fn two_providers() -> (Mock, Mock, Gateway) {
    let a = Mock::start("a").await.unwrap();
    let b = Mock::start("b").await.unwrap();
    let gw = Gateway::start(Launch {
        config: Some(two_provider_config(&a, &b, "")),
        ..Default::default()
    })
    .await;
    (a, b, gw)
}

#[tokio::test]
async fn failover_on_5xx_429_and_refused_connections() {
    let (a, b, gw) = two_providers().await;
    let body = r#"{"model":"gpt-4o-mini","messages":[]}"#;
    // Round-robin leads alternate; a failing leader hands over to the other target.
    for behaviour in ["status:500", "status:503", "status:429", "reset"] {
        let before = (a.hits(), b.hits());
        let r = chat(&gw, body, &[("x-mock", behaviour)]).await;
        // Both mocks see the header, so both fail the same way: every target was tried,
        // and the last upstream's own status (or 502 for a reset) reaches the client.
        let tried = (a.hits() - before.0) + (b.hits() - before.1);
        assert_eq!(tried, 2, "{behaviour}: both targets tried");
        match behaviour {
            "reset" => assert_eq!(r.status, 502, "{}", r.text()),
            s => assert_eq!(r.status.to_string(), s[7..10], "{}", r.text()),
        }
        assert!(r.json()["error"]["message"].is_string());
    }
    // A target that is down: the request still succeeds on the other one.
    let dead_port = common::DEAD_PORT;
    let cfg = two_provider_config(&a, &b, "")
        .replace(&a.base_url(), &format!("http://127.0.0.1:{dead_port}/v1"));
    let gw2 = Gateway::start(Launch {
        config: Some(cfg),
        ..Default::default()
    })
    .await;
    for _ in 0..4 {
        let r = chat(&gw2, body, &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-mock-id"), Some("b"));
    }
    // The renamed target got its own model id.
    let sent: serde_json::Value = serde_json::from_slice(&b.last().unwrap().body).unwrap();
    assert_eq!(sent["model"], "backup-mini");
}

#[tokio::test]
async fn stalled_upstream_times_out_with_504() {
    let (_a, _b, gw) = two_providers().await;
    let t = std::time::Instant::now();
    let r = chat(
        &gw,
        r#"{"model":"llama-local","messages":[]}"#,
        &[("x-mock", "stall")],
    )
    .await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn allow_lists_and_model_listing() {
    let (_a, _b, gw) = two_providers().await;
    let team = [("authorization", "Bearer sk-team-a")];
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &team,
            r#"{"model":"llama-local","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "permission_error");
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &team,
            r#"{"model":"gpt-4o-mini","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    let list = gw.get("/v1/models", &team).await.json();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"gpt-4o-mini"), "{ids:?}");
    assert!(!ids.contains(&"llama-local"), "{ids:?}");
    let one = gw.get("/v1/models/gpt-4o-mini", &team).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["owned_by"], "primary");
    assert_eq!(gw.get("/v1/models/llama-local", &team).await.status, 404);
    let admin = [("authorization", format!("Bearer {KEY}"))];
    let admin: Vec<(&str, &str)> = admin.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ids = gw.get("/v1/models", &admin).await.json();
    assert!(ids["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "llama-local"));
}

#[tokio::test]
async fn oversized_body_is_413_before_any_upstream() {
    let (a, b, gw) = two_providers().await;
    let body = format!(
        r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "y".repeat(3 << 20)
    );
    let r = chat(&gw, &body, &[]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(a.hits() + b.hits(), 0);
}

#[tokio::test]
async fn header_and_prefix_addressing() {
    let (a, _b, gw) = two_providers().await;
    // x-ai-eg-model overrides the body's model.
    let r = chat(
        &gw,
        r#"{"model":"whatever","messages":[]}"#,
        &[("x-ai-eg-model", "llama-local")],
    )
    .await;
    assert_eq!(r.header("x-mock-id"), Some("b"), "{}", r.text());
    // provider/model goes straight to that provider, prefix stripped.
    let r = chat(&gw, r#"{"model":"primary/raw-model","messages":[]}"#, &[]).await;
    assert_eq!(r.header("x-mock-id"), Some("a"));
    let sent: serde_json::Value = serde_json::from_slice(&a.last().unwrap().body).unwrap();
    assert_eq!(sent["model"], "raw-model");
    // X-Provider bypasses routing.
    let r = chat(
        &gw,
        r#"{"model":"gpt-4o-mini","messages":[]}"#,
        &[("x-provider", "backup")],
    )
    .await;
    assert_eq!(r.header("x-mock-id"), Some("b"));
    // Unknown X-Provider: 404.
    let r = chat(
        &gw,
        r#"{"model":"gpt-4o-mini","messages":[]}"#,
        &[("x-provider", "nope")],
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn completions_embeddings_and_passthrough() {
    let mock = Mock::start("p").await.unwrap();
    let gw = zero_config(&mock).await;
    let (k, v) = bearer();
    let r = gw
        .post_json(
            "/v1/completions",
            &[(k, &v)],
            r#"{"model":"openai/gpt-3.5-turbo-instruct","prompt":"hi"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-mock-path"), Some("/v1/completions"));
    let r = gw
        .post_json(
            "/v1/embeddings",
            &[(k, &v)],
            r#"{"model":"openai/text-embedding-3-small","input":["a","b"]}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["usage"]["prompt_tokens"], 4);
    let r = gw.get("/passthrough/openai/v1/models", &[(k, &v)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-mock-path"), Some("/v1/models"));
    assert_eq!(r.header("x-mock-auth"), Some("Bearer sk-upstream-secret"));
}

#[tokio::test]
async fn metrics_and_health() {
    let mock = Mock::start("m").await.unwrap();
    let gw = zero_config(&mock).await;
    chat(&gw, r#"{"model":"openai/gpt-4o-mini","messages":[]}"#, &[]).await;
    let m = gw.get("/metrics", &[]).await;
    assert_eq!(m.status, 200);
    let text = m.text();
    for name in [
        "# TYPE gen_ai_client_token_usage histogram",
        "# TYPE gen_ai_server_request_duration_seconds histogram",
        "# TYPE gen_ai_server_time_to_first_token_seconds histogram",
        "# TYPE switchyard_overhead_seconds histogram",
        r#"switchyard_requests_total{model="gpt-4o-mini",provider="openai",status="200"} 1"#,
        r#"switchyard_upstream_up{endpoint=""#,
    ] {
        assert!(text.contains(name), "missing {name}:\n{text}");
    }
    assert!(!text.contains(KEY));
    assert_eq!(gw.get("/readyz", &[]).await.status, 200);
    // The access log line names the request (written by the log thread within ~100 ms).
    let mut line = None;
    for _ in 0..50 {
        line = gw
            .logs()
            .lines()
            .find(|l| l.contains(r#""path":"/v1/chat/completions""#))
            .map(str::to_string);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v: serde_json::Value = serde_json::from_str(&line.expect("access log line")).unwrap();
    assert_eq!(v["provider"], "openai");
    assert_eq!(v["input_tokens"], 11);
    assert_eq!(v["key"], "key-1");
}

#[tokio::test]
async fn sighup_reloads_and_keeps_the_last_good_config() {
    let (_a, _b, gw) = two_providers().await;
    let path = gw.config_path();
    let original = std::fs::read_to_string(&path).unwrap();
    // A broken file is rejected whole: the old config keeps serving.
    common::write_file(&path, &format!("{original}\nbogus_key: 1\n"));
    gw.signal("HUP");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        chat(&gw, r#"{"model":"llama-local","messages":[]}"#, &[])
            .await
            .status,
        200
    );
    // A good file with a new model is picked up.
    let added = original.replace(
        "models:\n",
        "models:\n  new-model:\n    targets: [ { provider: primary } ]\n",
    );
    common::write_file(&path, &added);
    gw.signal("HUP");
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if chat(&gw, r#"{"model":"new-model","messages":[]}"#, &[])
            .await
            .status
            == 200
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "reload not applied; log:\n{}", gw.logs());
}

#[tokio::test]
async fn weights_split_traffic_and_lower_tiers_catch_failures() {
    let a = Mock::start("a").await.unwrap();
    let b = Mock::start("b").await.unwrap();
    let c = Mock::start("c").await.unwrap();
    let dead = common::DEAD_PORT;
    let cfg = format!(
        r#"
listen: ["127.0.0.1:{{PORT}}"]
providers:
  pa: {{ type: openai, base_url: "{}", api_key: k }}
  pb: {{ type: openai, base_url: "{}", api_key: k }}
  pc: {{ type: openai, base_url: "{}", api_key: k }}
  gone: {{ type: openai, base_url: "http://127.0.0.1:{dead}/v1", api_key: k }}
models:
  weighted:
    targets: [ {{ provider: pa, weight: 3 }}, {{ provider: pb, weight: 1 }}, {{ provider: pc, priority: 1 }} ]
  tiered:
    targets: [ {{ provider: gone }}, {{ provider: pc, priority: 1 }} ]
"#,
        a.base_url(),
        b.base_url(),
        c.base_url()
    );
    let gw = Gateway::start(Launch {
        config: Some(cfg),
        ..Default::default()
    })
    .await;
    for _ in 0..8 {
        let r = gw
            .post_json(
                "/v1/chat/completions",
                &[],
                r#"{"model":"weighted","messages":[]}"#,
            )
            .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(
        (a.hits(), b.hits(), c.hits()),
        (6, 2, 0),
        "weights 3:1, fallback tier untouched"
    );
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &[],
            r#"{"model":"tiered","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-mock-id"), Some("c"));
}

#[tokio::test]
async fn usage_is_recorded_when_the_client_leaves_mid_stream() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mock = Mock::start("leave").await.unwrap();
    let gw = zero_config(&mock).await;
    let body =
        r#"{"model":"openai/m","stream":true,"messages":[{"role":"user","content":"12345678"}]}"#;
    let mut s = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\nx-request-id: leaver-1\r\nx-mock: sse:50:100\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    while String::from_utf8_lossy(&got).matches("tok").count() < 3 {
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    drop(s); // the client goes away after three tokens
    let mut line = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        line = gw
            .logs()
            .lines()
            .find(|l| l.contains(r#""request_id":"leaver-1""#))
            .map(str::to_string);
        if line.is_some() {
            break;
        }
    }
    let v: serde_json::Value =
        serde_json::from_str(&line.expect("access log line after disconnect")).unwrap();
    assert_eq!(v["usage_estimated"], true, "{v}");
    let out = v["output_tokens"].as_u64().unwrap();
    assert!((3..50).contains(&out), "{v}");
    assert!(v["input_tokens"].as_u64().unwrap() > 0);
}

/// A key with limits sees the gateway's `x-ratelimit-*`, each once, in place of the upstream
/// account's own (whatever their case); a key without limits gets the upstream's as they
/// came. The upstream's other headers pass, `x-request-id` once.
#[tokio::test]
async fn gateway_limits_replace_the_upstreams_ratelimit_headers() {
    let a = Mock::start("a").await.unwrap();
    let b = Mock::start("b").await.unwrap();
    let config = two_provider_config(&a, &b, "").replace(
        "    - { name: admin,",
        "    - { name: limited, key: sk-limited, limits: { requests_per_minute: 10 } }\n    - { name: admin,",
    );
    let gw = Gateway::start(Launch {
        config: Some(config),
        ..Default::default()
    })
    .await;
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let all = |r: &common::Response, name: &str| -> Vec<String> {
        r.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    for stream in [false, true] {
        let body = if stream {
            body.replacen('{', r#"{"stream":true,"#, 1)
        } else {
            body.to_string()
        };
        let r = gw
            .post_json(
                "/v1/chat/completions",
                &[
                    ("authorization", "Bearer sk-limited"),
                    ("x-mock-upstream-limits", "1"),
                    ("x-request-id", "rl-1"),
                ],
                &body,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            all(&r, "x-ratelimit-limit-requests"),
            ["10"],
            "{:?}",
            r.headers
        );
        assert_eq!(all(&r, "x-ratelimit-remaining-requests").len(), 1);
        assert_ne!(r.header("x-ratelimit-remaining-requests"), Some("4999"));
        assert_eq!(all(&r, "x-request-id"), ["rl-1"]);
    }
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &[
                ("authorization", &format!("Bearer {KEY}")),
                ("x-mock-upstream-limits", "1"),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(all(&r, "x-ratelimit-limit-requests"), ["5000"]);
}
