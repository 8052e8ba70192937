//! `request_filter`: everything decided before an upstream is picked.
//!
//! Order: request id → local endpoints → key → body pre-read → `model`/`stream` scan →
//! allow-list → routing plan. Any refusal is answered here, so nothing half-formed ever
//! reaches an upstream.

use super::ctx::{RequestCtx, RequestKind};
use super::local::{model_list, respond, respond_error, respond_json};
use crate::auth::{allows, Caller};
use crate::body::RequestHead;
use crate::errors::{ClientDialect, GatewayError};
use crate::gateway::Gateway;
use crate::providers::{adapter_for, Operation};
use bytes::BytesMut;
use pingora_error::Result;
use pingora_proxy::Session;
use std::sync::atomic::{AtomicU64, Ordering};

/// Pingora's retry buffer (`BODY_BUF_LIMIT` in pingora-core 0.9.1): the most it replays.
pub const RETRY_BUFFER_LIMIT: usize = 64 * 1024;

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The client-facing listener (also serving ops endpoints when there is no admin listener).
    Main {
        serves_ops: bool,
    },
    Admin,
}

/// Returns `Ok(true)` when the request was answered here.
pub async fn admit(
    listener: Listener,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<bool> {
    ctx.id = request_id(session);
    if let pingora_core::protocols::http::ServerSession::H1(h1) = session.as_downstream_mut() {
        // A client may send its next request before reading this answer (RFC 9112 §9.3.2).
        // Pingora drops such requests silently unless told to serve them, in order.
        h1.set_pipelining_enabled(true);
    }
    if crate::lifecycle::draining() {
        // Keep-alive clients move to the new process (or stop) while this one still answers.
        session.set_keepalive(None);
    }
    let Some(gw) = Gateway::current() else {
        let e = GatewayError::new(503, "switchyard is starting");
        respond_error(session, ctx, &e).await?;
        return Ok(true);
    };
    ctx.gateway = Some(gw.clone());
    let path = session.req_header().uri.path().to_string();
    let method = session.req_header().method.clone();
    if path.starts_with("/v1/messages") {
        ctx.dialect = ClientDialect::Anthropic;
    }

    // Operations endpoints: no key needed (scraped by Prometheus and probes).
    let serves_ops = matches!(
        listener,
        Listener::Admin | Listener::Main { serves_ops: true }
    );
    match (serves_ops, path.as_str()) {
        (true, "/healthz") => {
            return respond_json(session, ctx, 200, &serde_json::json!({"status":"ok"}))
                .await
                .map(|_| true)
        }
        (true, "/readyz") => {
            let ready = gw.ready();
            let v = serde_json::json!({"ready": ready});
            return respond_json(session, ctx, if ready { 200 } else { 503 }, &v)
                .await
                .map(|_| true);
        }
        (true, "/metrics") => {
            let body = crate::metrics::render();
            return respond(session, ctx, 200, "text/plain; version=0.0.4", body, &[])
                .await
                .map(|_| true);
        }
        _ => {}
    }
    if listener == Listener::Admin {
        return refuse(
            session,
            ctx,
            GatewayError::not_found(format!("unknown path {}", crate::errors::clip(&path, 256))),
        )
        .await;
    }

    // Who is calling.
    let key = match gw.keys.identify(session.req_header()) {
        Caller::Open => None,
        Caller::Key(k) => Some(k),
        Caller::Missing => return refuse(
            session,
            ctx,
            GatewayError::unauthorized(
                "Missing API key: send it as `Authorization: Bearer <key>` or `x-api-key: <key>`",
            ),
        )
        .await,
        Caller::Unknown => {
            return refuse(
                session,
                ctx,
                GatewayError::unauthorized("Incorrect API key provided"),
            )
            .await
        }
    };
    ctx.key_name = key.as_ref().map(|k| k.name.clone());
    let allowed = |model: &str| {
        key.as_ref()
            .is_none_or(|k| allows(k, model, strip_provider(&gw, model)))
    };

    // Model listing.
    if method == "GET" && path == "/v1/models" {
        let data = model_list(&gw, &allowed);
        return respond_json(
            session,
            ctx,
            200,
            &serde_json::json!({"object":"list","data":data}),
        )
        .await
        .map(|_| true);
    }
    if method == "GET" {
        if let Some(id) = path.strip_prefix("/v1/models/") {
            let id = percent_decode(id);
            let found = model_list(&gw, &allowed)
                .into_iter()
                .find(|m| m["id"] == id.as_str());
            return match found {
                Some(m) => respond_json(session, ctx, 200, &m).await.map(|_| true),
                None => {
                    refuse(
                        session,
                        ctx,
                        GatewayError::not_found(format!(
                            "The model `{}` does not exist",
                            crate::errors::clip(&id, 256)
                        ))
                        .param("model")
                        .code("model_not_found"),
                    )
                    .await
                }
            };
        }
    }

    // Provider-native passthrough: nothing parsed, body streamed as it comes.
    if let Some(rest) = path.strip_prefix("/passthrough/") {
        let (pid, below) = rest.split_once('/').unwrap_or((rest, ""));
        if !gw.providers.contains_key(pid) {
            return refuse(
                session,
                ctx,
                GatewayError::not_found(format!(
                    "unknown provider `{}`",
                    crate::errors::clip(pid, 128)
                )),
            )
            .await;
        }
        if key.as_ref().is_some_and(|k| !k.models.is_empty()) {
            return refuse(
                session,
                ctx,
                GatewayError::forbidden("passthrough needs a key without a model allow-list"),
            )
            .await;
        }
        let query = session
            .req_header()
            .uri
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        // Nothing is parsed, so no tokens are reserved or read: a passthrough request counts
        // against the key's requests per minute and is refused once its budget is spent.
        let request = crate::accounting::Request {
            key: key.and_then(|k| gw.limits.key(&k.name)),
            model: None,
            reserve_tokens: 0,
        };
        if let Err(refused) = reserve_limits(&gw, ctx, &request).await {
            return refuse(session, ctx, refused).await;
        }
        ctx.passthrough = Some((pid.to_string(), format!("/{below}{query}")));
        ctx.kind = RequestKind::Passthrough;
        ctx.max_attempts = 1;
        return Ok(false);
    }

    let Some(op) = Operation::from_path(&path) else {
        return refuse(
            session,
            ctx,
            GatewayError::not_found(format!("unknown path {}", crate::errors::clip(&path, 256))),
        )
        .await;
    };
    if method != "POST" {
        return refuse(
            session,
            ctx,
            GatewayError::new(
                405,
                format!("{} takes POST", crate::errors::clip(&path, 256)),
            ),
        )
        .await;
    }
    ctx.kind = RequestKind::Model(op);

    // The body, whole, before choosing an upstream.
    let limits = &gw.config.limits;
    let read = read_body(session, ctx, limits.max_request_body);
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return refuse(session, ctx, e).await,
        Err(_) => {
            // The client is too slow (or stalls on purpose holding a buffer): answer 408 and
            // close; whatever it sent is freed with the request.
            session.set_keepalive(None);
            let e = GatewayError::new(
                408,
                format!(
                    "the request body did not arrive within limits.body_read_timeout ({:?})",
                    limits.body_read_timeout
                ),
            )
            .code("request_timeout");
            return refuse(session, ctx, e).await;
        }
    }
    let head = match RequestHead::scan(&ctx.body) {
        Ok(h) => h,
        Err(e) => return refuse(session, ctx, GatewayError::bad_request(e.0)).await,
    };
    if let Err(e) = check_fields(op, &head) {
        return refuse(session, ctx, e).await;
    }
    ctx.head = head;

    // Which model: the `x-ai-eg-model` header wins over the body.
    let header = |name: &str| {
        session
            .req_header()
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let x_provider = header("x-provider");
    let requested: &str = ctx.requested_model.insert(
        header("x-ai-eg-model")
            .or_else(|| ctx.head.model.clone())
            .unwrap_or_default(),
    );
    let plan = match gw.plan(requested, x_provider.as_deref()) {
        Ok(p) => p,
        Err(e) => return refuse(session, ctx, e).await,
    };
    if !allowed(requested) && !allowed(&plan.model) {
        let name = ctx.key_name.as_deref().unwrap_or_default();
        let e = GatewayError::forbidden(format!(
            "key `{name}` may not use model `{}`",
            crate::errors::clip(requested, 256)
        ))
        .param("model");
        return refuse(session, ctx, e).await;
    }
    // Limits and budgets: reserve before any upstream is contacted (or before the
    // gateway answers a count itself).
    let reserve = match op {
        Operation::CountTokens => 0,
        Operation::Embeddings => crate::accounting::reservation(ctx.body.len(), 0),
        _ => crate::accounting::reservation(
            ctx.body.len(),
            ctx.head.max_tokens.unwrap_or(limits.default_max_tokens),
        ),
    };
    let request = crate::accounting::Request {
        key: key.and_then(|k| gw.limits.key(&k.name)),
        model: gw.limits.model(&plan.model),
        reserve_tokens: reserve,
    };
    if let Err(refused) = reserve_limits(&gw, ctx, &request).await {
        return refuse(session, ctx, refused).await;
    }
    if op == Operation::CountTokens && !plan.candidates.iter().any(counts_tokens) {
        // No target counts tokens itself: the gateway's estimate, marked as one.
        return match crate::count_tokens::estimate(&ctx.body) {
            Ok(n) => {
                let v = serde_json::json!({ "input_tokens": n });
                let body = serde_json::to_vec(&v).unwrap_or_default();
                respond(
                    session,
                    ctx,
                    200,
                    "application/json",
                    body,
                    &[(crate::count_tokens::HEADER, "estimate".to_string())],
                )
                .await
                .map(|_| true)
            }
            Err(e) => refuse(session, ctx, e).await,
        };
    }
    if plan
        .candidates
        .iter()
        .all(|c| adapter_for(c.provider.provider.dialect).is_none())
    {
        let p = plan
            .candidates
            .first()
            .map(|c| c.provider.provider.id.clone())
            .unwrap_or_default();
        return refuse(
            session,
            ctx,
            GatewayError::new(
                501,
                format!("provider `{p}` speaks a dialect this build does not translate yet"),
            ),
        )
        .await;
    }
    ctx.max_attempts = max_attempts(&plan);
    ctx.plan = Some(plan);
    Ok(false)
}

/// Limits and budget: keep the reservation in `ctx`, or the error to answer with (counted
/// in `switchyard_ratelimit_rejections_total` when a limit refused).
async fn reserve_limits(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    request: &crate::accounting::Request<'_>,
) -> std::result::Result<(), GatewayError> {
    match gw.accounting.admit(request, unix_now()).await {
        Ok(admitted) => {
            ctx.admitted = admitted;
            Ok(())
        }
        Err(refusal) => {
            if let Some(kind) = refusal.kind {
                crate::metrics::RATELIMIT_REJECTIONS
                    .with_label_values(&[ctx.key_name.as_deref().unwrap_or(""), kind.as_str()])
                    .inc();
            }
            ctx.ratelimit_shown = refusal.shown;
            Err(refusal.error)
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Does this target count tokens itself (Anthropic's API; Bedrock's CountTokens for Claude)?
fn counts_tokens(c: &crate::routing::Candidate) -> bool {
    match crate::providers::wire_for(&c.provider.provider, &c.upstream_model) {
        Some(crate::translate::Wire::AnthropicMessages) => true,
        // Bedrock's CountTokens serves Claude models.
        Some(crate::translate::Wire::BedrockConverse) => c.upstream_model.contains("anthropic."),
        // Self-hosted OpenAI-compatible pools (vLLM, SGLang) expose `/tokenize`.
        Some(crate::translate::Wire::OpenAiChat) => {
            c.provider.provider.discover_models
                && c.provider.provider.dialect == crate::config::Dialect::OpenAi
        }
        _ => false,
    }
}

/// Answer with an error; always `Ok(true)` unless the write itself failed.
async fn refuse(session: &mut Session, ctx: &mut RequestCtx, e: GatewayError) -> Result<bool> {
    respond_error(session, ctx, &e).await?;
    Ok(true)
}

/// How many attempts a plan allows: every (target, endpoint) pair once, at most 5.
fn max_attempts(plan: &crate::routing::Plan) -> u32 {
    let pairs: usize = plan
        .candidates
        .iter()
        .map(|c| c.provider.pool.endpoint_count().max(1))
        .sum();
    pairs.clamp(1, 5) as u32
}

fn strip_provider<'a>(gw: &Gateway, model: &'a str) -> &'a str {
    match model.split_once('/') {
        Some((p, rest)) if gw.providers.contains_key(p) => rest,
        _ => model,
    }
}

/// Read the request body whole.
///
/// Pingora 0.9.1 replays a pre-read body to the upstream only through its retry buffer,
/// which holds at most 64 KiB; larger bodies used to be dropped and the request hung
/// (pingora-notes §3.1). The buffer only records what is read *after* it is enabled, and
/// `request_body_filter` replaces whatever it holds with the rewritten body anyway. So with
/// a known `Content-Length`, buffering is switched on only for the last ≤ 64 KiB: the
/// buffer stays untruncated and non-empty, Pingora calls `request_body_filter(eos=true)`
/// on every attempt, and the whole body (up to `max_request_body`) goes out from ctx.
/// A chunked body without length must fit in 64 KiB (411 otherwise, documented).
async fn read_body(
    session: &mut Session,
    ctx: &mut RequestCtx,
    max: usize,
) -> Result<(), GatewayError> {
    let declared: Option<usize> = session
        .req_header()
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    if let Some(n) = declared {
        if n > max {
            return Err(too_large(max));
        }
    }
    let mut buffering = false;
    let enable_when_due = |session: &mut Session, read: usize, buffering: &mut bool| {
        let remaining = declared.map(|n| n.saturating_sub(read));
        if !*buffering && remaining.is_none_or(|r| r <= RETRY_BUFFER_LIMIT) {
            session.enable_retry_buffering();
            *buffering = true;
        }
    };
    enable_when_due(session, 0, &mut buffering);
    // A declared length is a claim, not bytes: start small and grow as bytes arrive, so a
    // client that announces 32 MiB and sends nothing costs nothing.
    let mut body = BytesMut::with_capacity(declared.unwrap_or(16 * 1024).min(INITIAL_BODY_BUFFER));
    loop {
        let chunk = match session.read_request_body().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                return Err(GatewayError::bad_request(format!(
                    "could not read the request body: {e}"
                )))
            }
        };
        if body.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        body.extend_from_slice(&chunk);
        enable_when_due(session, body.len(), &mut buffering);
    }
    if body.is_empty() {
        return Err(GatewayError::bad_request(
            "request body is empty: expected a JSON object",
        ));
    }
    if session.as_downstream().retry_buffer_truncated() {
        return Err(GatewayError::new(
            411,
            "request bodies over 64 KiB need a Content-Length header (chunked uploads are limited to 64 KiB)",
        ));
    }
    ctx.body = body.freeze();
    Ok(())
}

/// The most a body buffer takes before bytes arrive to fill it.
const INITIAL_BODY_BUFFER: usize = 256 * 1024;

fn too_large(max: usize) -> GatewayError {
    GatewayError::new(
        413,
        format!("request body is larger than limits.max_request_body ({max} bytes)"),
    )
    .code("request_too_large")
}

/// The fields the contract requires per operation (400, naming the field).
fn check_fields(op: Operation, head: &RequestHead) -> Result<(), GatewayError> {
    if head.model_not_string {
        return Err(GatewayError::bad_request("`model` must be a string").param("model"));
    }
    if head.model.as_deref().is_none_or(str::is_empty) {
        return Err(GatewayError::bad_request(
            "you must provide a model parameter: `model` is missing",
        )
        .param("model"));
    }
    if op.is_chat() || op == Operation::CountTokens {
        match head.messages_kind {
            None => {
                return Err(GatewayError::bad_request("`messages` is missing").param("messages"))
            }
            Some(b'[') => {}
            Some(_) => {
                return Err(
                    GatewayError::bad_request("`messages` must be an array").param("messages")
                )
            }
        }
    }
    Ok(())
}

/// `x-request-id` from the client when it sent a sane one, else a fresh one.
fn request_id(session: &Session) -> String {
    if let Some(v) = session
        .req_header()
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        if !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()) {
            return v.to_string();
        }
    }
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static BOOT: once_cell::sync::Lazy<u64> = once_cell::sync::Lazy::new(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_nanos() as u64) ^ (std::process::id() as u64) << 32
    });
    fresh_id(*BOOT, SEQ.fetch_add(1, Ordering::Relaxed))
}

/// `req_` + 16 hex digits of the boot stamp + 8 of the sequence (`format!` costs several
/// times this on every request). Past 2^32 requests the sequence's high half is folded into
/// the stamp, so ids stay unique and 28 characters long.
fn fresh_id(boot: u64, seq: u64) -> String {
    let boot = boot ^ (seq >> 32);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 28];
    id[..4].copy_from_slice(b"req_");
    for i in 0..16 {
        id[4 + i] = HEX[(boot >> (60 - 4 * i) & 15) as usize];
    }
    for i in 0..8 {
        id[20 + i] = HEX[(seq >> (28 - 4 * i) & 15) as usize];
    }
    // Only ASCII hex digits were written.
    String::from_utf8(id.to_vec()).unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn fresh_ids_match_the_documented_shape() {
        for (boot, seq) in [
            (0u64, 0u64),
            (0x0123_4567_89ab_cdef, 0xfedc_ba98),
            (u64::MAX, 7),
        ] {
            assert_eq!(
                super::fresh_id(boot, seq),
                format!("req_{boot:016x}{:08x}", seq as u32)
            );
        }
        let wrapped = super::fresh_id(5, (1 << 32) + 3);
        assert_eq!(wrapped, "req_000000000000000400000003");
        assert_ne!(wrapped, super::fresh_id(5, 3));
    }
}
