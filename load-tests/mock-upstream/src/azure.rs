//! Azure OpenAI paths, answered like the OpenAI dialect:
//!
//! * `POST /openai/deployments/{deployment}/chat/completions?api-version=V` (and `/embeddings`):
//!   `model` in the answer is the deployment; without `api-version`, 404 like Azure.
//! * `POST /openai/v1/chat/completions` (and `/embeddings`): `model` is the body's.
//!
//! An `api-key` header is required and any `Authorization` header is refused (401); the
//! `api-version` seen is echoed in `x-mock-api-version` (`-` when absent).

use crate::{query_param, respond_openai, write_whole, Seen};
use tokio::net::TcpStream;

async fn refuse(
    sock: &mut TcpStream,
    common: &str,
    code: u16,
    body: &str,
) -> std::io::Result<bool> {
    write_whole(sock, code, "application/json", common, body.as_bytes()).await?;
    Ok(true)
}

const NOT_FOUND: &str = r#"{"error":{"code":"404","message":"Resource not found"}}"#;

pub(crate) async fn respond(
    sock: &mut TcpStream,
    id: &str,
    req: &Seen,
    route: &str,
    query: &str,
    mut common: String,
) -> std::io::Result<bool> {
    let api_version = query_param(query, "api-version").filter(|v| !v.is_empty());
    common.push_str(&format!(
        "x-mock-api-version: {}\r\n",
        api_version.unwrap_or("-")
    ));
    if req.header("authorization").is_some() {
        let body = r#"{"error":{"message":"Azure OpenAI takes the key in the api-key header; an Authorization header was sent","type":"invalid_request_error","param":null,"code":"401"}}"#;
        return refuse(sock, &common, 401, body).await;
    }
    if req.header("api-key").is_none_or(str::is_empty) {
        let body = r#"{"error":{"message":"Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.","type":"invalid_request_error","param":null,"code":"401"}}"#;
        return refuse(sock, &common, 401, body).await;
    }
    let segs: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    let op_ok = |op: &[&str]| op == ["chat", "completions"] || op == ["embeddings"];
    match segs.as_slice() {
        ["openai", "deployments", deployment, op @ ..] if !deployment.is_empty() && op_ok(op) => {
            if api_version.is_none() {
                return refuse(sock, &common, 404, NOT_FOUND).await;
            }
            let deployment = deployment.to_string();
            respond_openai(sock, id, req, route, Some(&deployment), common).await
        }
        ["openai", "v1", op @ ..] if op_ok(op) => {
            respond_openai(sock, id, req, route, None, common).await
        }
        _ => refuse(sock, &common, 404, NOT_FOUND).await,
    }
}
