//! End to end across dialects (issue 8): the real binary in front of mock upstreams that
//! speak Anthropic Messages, Azure OpenAI and OpenAI chat, over TCP on 127.0.0.1.
//! What reached each upstream is read back from the mock's `x-mock-*` answer headers.

mod common;

use common::{Gateway, Launch, Response};
use mock_upstream::Mock;

const KEY: &str = "sk-dialects-admin";

fn config(a: &Mock, b: &Mock) -> String {
    format!(
        r#"
listen: ["127.0.0.1:{{PORT}}"]
limits: {{ first_byte_timeout: 2s, connect_timeout: 500ms }}
auth:
  keys:
    - {{ name: admin, key: {KEY} }}
providers:
  claude:   {{ type: anthropic, base_url: "http://{a}", api_key: sk-ant-upstream }}
  claude2:  {{ type: anthropic, base_url: "http://{b}", api_key: sk-ant-backup }}
  fleet:    {{ type: openai, base_url: "http://{b}/v1", api_key: sk-fleet }}
  pool:     {{ type: openai, endpoints: ["{b}"] }}
  azure:    {{ type: azure_openai, endpoint: "http://{a}", api_key: az-key-1, api_version: "2025-01-01-preview" }}
  azure1:   {{ type: azure_openai, endpoint: "http://{b}", api_key: az-key-2 }}
models:
  claude-x:
    targets: [ {{ provider: claude, model: claude-up-1 }} ]
  claude-pair:
    targets:
      - {{ provider: claude }}
      - {{ provider: claude2, priority: 1 }}
  azure-chat:
    targets: [ {{ provider: azure, model: dep-1 }} ]
  azure-v1:
    targets: [ {{ provider: azure1, model: dep-2 }} ]
  fleet-chat:
    targets: [ {{ provider: fleet, model: meta-llama/Llama-3.1-8B-Instruct }} ]
  pool-chat:
    targets: [ {{ provider: pool, model: qwen3 }} ]
  claude-then-fleet:
    targets:
      - {{ provider: claude }}
      - {{ provider: fleet, priority: 1 }}
"#,
        a = a.addr,
        b = b.addr,
    )
}

async fn start() -> (Mock, Mock, Gateway) {
    let a = Mock::start("a").await.unwrap();
    let b = Mock::start("b").await.unwrap();
    let gw = Gateway::start(Launch {
        config: Some(config(&a, &b)),
        ..Default::default()
    })
    .await;
    (a, b, gw)
}

async fn messages(gw: &Gateway, body: &str, extra: &[(&str, &str)]) -> Response {
    let mut h = vec![("x-api-key", KEY), ("anthropic-version", "2023-06-01")];
    h.extend_from_slice(extra);
    gw.post_json("/v1/messages?beta=true", &h, body).await
}

fn names(r: &Response) -> Vec<String> {
    r.header("x-mock-headers")
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn anthropic_client_to_anthropic_upstream_passes_through_with_its_headers() {
    let (_a, _b, gw) = start().await;
    let body =
        r#"{"model":"claude-x","max_tokens":64,"messages":[{"role":"user","content":"hello"}]}"#;
    let r = messages(&gw, body, &[("anthropic-beta", "beta-one,beta-two")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "echo: hello");
    // The upstream got its own key in x-api-key, the target's model, the client's betas
    // and version, and no Authorization at all.
    assert_eq!(r.header("x-mock-anthropic-auth"), Some("x-api-key"));
    let seen = names(&r);
    assert!(!seen.iter().any(|n| n == "authorization"), "{seen:?}");
    assert!(seen.iter().any(|n| n == "anthropic-beta"), "{seen:?}");
    assert_eq!(v["model"], "claude-up-1");
    assert!(r.header("x-request-id").is_some());
}

#[tokio::test]
async fn anthropic_stream_passes_through_and_usage_is_logged() {
    let (_a, _b, gw) = start().await;
    let body = r#"{"model":"claude-x","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hello there"}]}"#;
    let r = messages(&gw, body, &[]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let first = text.find("event: message_start").expect("message_start");
    let stop = text.rfind("event: message_stop").expect("message_stop");
    assert!(first < stop);
    assert!(text.contains("content_block_delta"));
    // Usage read on the way (cumulative: message_start's input, message_delta's output).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let line = gw
        .logs()
        .lines()
        .rfind(|l| l.contains("\"path\":\"/v1/messages\""))
        .map(str::to_string)
        .expect("access log line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(v["input_tokens"].as_u64().unwrap_or(0) > 0, "{line}");
    assert!(v["output_tokens"].as_u64().unwrap_or(0) > 0, "{line}");
    assert_eq!(v["usage_estimated"], false, "{line}");
}

#[tokio::test]
async fn anthropic_overloaded_before_content_moves_to_the_next_target() {
    let (_a, _b, gw) = start().await;
    let body = r#"{"model":"claude-pair","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = messages(&gw, body, &[("x-mock-a", "anthropic-overloaded-early")]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(!text.contains("overloaded"), "{text}");
    assert_eq!(text.matches("event: message_start").count(), 1, "{text}");
    assert!(text.contains("event: message_stop"), "{text}");
}

#[tokio::test]
async fn anthropic_error_statuses_pass_word_for_word_in_anthropic_shape() {
    let (_a, _b, gw) = start().await;
    let body =
        r#"{"model":"claude-x","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = messages(&gw, body, &[("x-mock", "status:529")]).await;
    assert_eq!(r.status, 529);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");
    assert_eq!(v["error"]["message"], "Overloaded");
}

#[tokio::test]
async fn gateway_errors_on_messages_use_anthropic_types() {
    let (_a, _b, gw) = start().await;
    let body =
        r#"{"model":"claude-x","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = gw
        .post_json("/v1/messages", &[("anthropic-version", "2023-06-01")], body)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    let r = messages(&gw, &body.replace("claude-x", "no-such-model"), &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
    let r = messages(&gw, "{not json", &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    // Bearer works as well as x-api-key.
    let auth = format!("Bearer {KEY}");
    let r = gw
        .post_json(
            "/v1/messages",
            &[
                ("authorization", auth.as_str()),
                ("anthropic-version", "2023-06-01"),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn count_tokens_is_forwarded_to_anthropic_and_estimated_elsewhere() {
    let (_a, _b, gw) = start().await;
    let body =
        r#"{"model":"claude-x","messages":[{"role":"user","content":"count these words please"}]}"#;
    let r = gw
        .post_json(
            "/v1/messages/count_tokens",
            &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r.header("x-mock-path"), Some("/v1/messages/count_tokens"));
    let r = gw
        .post_json(
            "/v1/messages/count_tokens",
            &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
            &body.replace("claude-x", "fleet-chat"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-switchyard-token-count"), Some("estimate"));
    assert!(r.json()["input_tokens"].as_u64().unwrap() > 0);
    // A self-hosted pool's tokenizer, chat template applied there: exact.
    let r = gw
        .post_json(
            "/v1/messages/count_tokens",
            &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
            &body.replace("claude-x", "pool-chat"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-mock-path"), Some("/tokenize"));
    assert_eq!(r.header("x-switchyard-token-count"), Some("exact"));
    assert!(r.json()["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn azure_deployments_and_v1_forms_with_api_key_and_no_authorization() {
    let (_a, _b, gw) = start().await;
    let auth = format!("Bearer {KEY}");
    let h = [("authorization", auth.as_str())];
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &h,
            r#"{"model":"azure-chat","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-mock-path"),
        Some("/openai/deployments/dep-1/chat/completions?api-version=2025-01-01-preview")
    );
    assert_eq!(r.header("x-mock-api-version"), Some("2025-01-01-preview"));
    assert!(!names(&r).iter().any(|n| n == "authorization"));
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &h,
            r#"{"model":"azure-v1","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-mock-path"), Some("/openai/v1/chat/completions"));
    assert!(r.text().contains("\"model\":\"dep-2\""), "{}", r.text());
    let r = gw
        .post_json(
            "/v1/embeddings",
            &h,
            r#"{"model":"azure-chat","input":"hi"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-mock-path"),
        Some("/openai/deployments/dep-1/embeddings?api-version=2025-01-01-preview")
    );
}

#[tokio::test]
async fn a_target_that_cannot_take_the_request_costs_no_attempt_and_does_not_mask_the_answer() {
    let (_a, _b, gw) = start().await;
    let auth = format!("Bearer {KEY}");
    let h = [("authorization", auth.as_str())];
    // Anthropic serves no embeddings: refused before connecting, the fleet answers.
    let r = gw
        .post_json(
            "/v1/embeddings",
            &h,
            r#"{"model":"claude-then-fleet","input":"hi"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-mock-id"), Some("b"));
    // When the answering upstream fails, its status wins over the earlier refusal.
    let r = gw
        .post_json(
            "/v1/embeddings",
            &[("authorization", auth.as_str()), ("x-mock", "status:503")],
            r#"{"model":"claude-then-fleet","input":"hi"}"#,
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    // Every target refusing: the refusal, in the client's dialect.
    let r = gw
        .post_json("/v1/embeddings", &h, r#"{"model":"claude-x","input":"hi"}"#)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("claude"));
}

#[tokio::test]
async fn an_empty_upstream_error_body_reaches_the_client_with_a_message() {
    let (_a, _b, gw) = start().await;
    let auth = format!("Bearer {KEY}");
    let r = gw
        .post_json(
            "/v1/chat/completions",
            &[
                ("authorization", auth.as_str()),
                ("x-mock", "empty-status:502"),
            ],
            r#"{"model":"fleet-chat","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(r.status, 502);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("502"), "{msg}");
    // The same to an Anthropic client, in Anthropic's shape.
    let r = messages(
        &gw,
        r#"{"model":"fleet-chat","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#,
        &[("x-mock", "empty-status:500")],
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "api_error");
}

#[tokio::test]
async fn passthrough_uses_each_providers_own_credential_header() {
    let (_a, _b, gw) = start().await;
    let r = gw
        .post_json(
            "/passthrough/claude/v1/messages",
            &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
            r#"{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-mock-anthropic-auth"), Some("x-api-key"));
    assert!(!names(&r).iter().any(|n| n == "authorization"));
    let auth = format!("Bearer {KEY}");
    let r = gw
        .post_json(
            "/passthrough/azure/openai/deployments/d/chat/completions?api-version=2025-01-01-preview",
            &[("authorization", auth.as_str())],
            r#"{"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!names(&r).iter().any(|n| n == "authorization"));
}
