//! The response on its way back: failover on 429/5xx before anything reached the client,
//! then streams relayed chunk by chunk with usage read on the way.

use super::ctx::{Relay, RequestCtx, RequestKind};
use crate::errors::openai_envelope_for_upstream;
use crate::providers::RelayMode;
use crate::sse::SseRelay;
use crate::usage::openai_usage_in;
use bytes::{Bytes, BytesMut};
use pingora_error::{Error, ErrorType, Result};
use pingora_http::ResponseHeader;
use std::time::{Duration, Instant};

/// Error bodies are held to be put in the client's dialect; beyond this they pass as they are.
const ERROR_BODY_CAP: usize = 256 * 1024;
/// A JSON answer's `usage` sits at its end: keep this much of the tail.
const JSON_TAIL: usize = 64 * 1024;

/// Decide on the upstream's status line. `Err` (retryable) hands the request to the next
/// target; this is the only moment that is safe, since nothing was written downstream yet.
pub fn on_upstream_header(ctx: &mut RequestCtx, resp: &mut ResponseHeader) -> Result<()> {
    let status = resp.status.as_u16();
    ctx.upstream_status = Some(status);
    let (Some(gw), Some(addr)) = (ctx.gateway.as_ref(), ctx.current.as_ref().map(|a| a.addr))
    else {
        return Ok(());
    };
    let provider_id = ctx.provider_id().unwrap_or_default();
    let failed = status == 429 || status >= 500;
    if let Some(p) = gw.providers.get(provider_id) {
        // 429 is the account's limit, not the endpoint's health.
        if status >= 500 {
            p.pool.record_failure(addr);
        } else {
            p.pool.record_success(addr);
        }
    }
    if failed {
        if let Some(wait) = retry_after(resp) {
            if let Some(model) = ctx.upstream_model() {
                gw.set_aside(provider_id, model, wait);
            }
        }
        ctx.last_error = Some(format!("upstream `{provider_id}` answered {status}"));
        if ctx.kind != RequestKind::Passthrough && ctx.has_more_attempts() {
            let mut e = Error::explain(
                ErrorType::HTTPStatus(status),
                "upstream status, trying the next target",
            );
            e.set_retry(true);
            return Err(e);
        }
    }
    Ok(())
}

/// Set up the relay for the response the client will get, and fix its headers.
pub fn on_response_header(ctx: &mut RequestCtx, resp: &mut ResponseHeader) -> Result<()> {
    ctx.status = resp.status.as_u16();
    resp.insert_header("x-request-id", ctx.id.as_str())?;
    if ctx.kind == RequestKind::Passthrough {
        return Ok(());
    }
    let mode = ctx
        .current
        .as_ref()
        .and_then(|a| a.prepared.as_ref())
        .map(|p| p.relay);
    ctx.relay = if ctx.status >= 400 {
        // Held whole and maybe rewritten: its length may change.
        resp.remove_header("content-length");
        resp.insert_header("transfer-encoding", "chunked")?;
        Relay::ErrorBody(BytesMut::new())
    } else {
        match mode {
            Some(RelayMode::OpenAiStream { strip_usage_chunk }) => {
                if strip_usage_chunk {
                    resp.remove_header("content-length");
                    resp.insert_header("transfer-encoding", "chunked")?;
                }
                resp.insert_header("cache-control", "no-cache")?;
                resp.insert_header("x-accel-buffering", "no")?;
                Relay::Stream(SseRelay::new(strip_usage_chunk))
            }
            Some(RelayMode::OpenAiJson) => Relay::Json(BytesMut::new()),
            None => Relay::None,
        }
    };
    Ok(())
}

/// One response body chunk (sync: never block here).
pub fn on_body_chunk(ctx: &mut RequestCtx, body: &mut Option<Bytes>, eos: bool) {
    if let Some(b) = body.as_ref() {
        if ctx.ttft.is_none() && !b.is_empty() {
            ctx.ttft = Some(ctx.started.elapsed());
        }
    }
    match &mut ctx.relay {
        Relay::None => {}
        Relay::Stream(sse) => {
            if let Some(b) = body.as_ref() {
                if let Some(replaced) = sse.feed(b) {
                    *body = Some(replaced);
                }
            }
        }
        Relay::Json(tail) => {
            if let Some(b) = body.as_ref() {
                if eos && tail.is_empty() {
                    // The whole answer in one chunk (the usual small reply): read its usage
                    // in place instead of copying it into the tail first.
                    ctx.usage = openai_usage_in(b);
                } else {
                    tail.extend_from_slice(b);
                    if tail.len() > 2 * JSON_TAIL {
                        let cut = tail.len() - JSON_TAIL;
                        let _ = tail.split_to(cut);
                    }
                }
            }
        }
        Relay::ErrorBody(held) => {
            if let Some(b) = body.take() {
                if held.len() + b.len() <= ERROR_BODY_CAP {
                    held.extend_from_slice(&b);
                } else {
                    // Too large to hold: let it through as it is.
                    let mut out = std::mem::take(held);
                    out.extend_from_slice(&b);
                    *body = Some(out.freeze());
                    ctx.relay = Relay::None;
                    return;
                }
            }
            if eos {
                let status = ctx.status;
                let out = openai_envelope_for_upstream(status, held)
                    .map(Bytes::from)
                    .unwrap_or_else(|| std::mem::take(held).freeze());
                *body = Some(out);
            }
        }
    }
    if let Some(b) = body.as_ref() {
        ctx.response_bytes += b.len();
    }
    if eos {
        if let Some(t) = ctx.upstream_started {
            ctx.upstream_time = t.elapsed();
        }
    }
}

/// `Retry-After` in seconds or an HTTP date we do not parse (then 1 s); capped at 5 min.
fn retry_after(resp: &ResponseHeader) -> Option<Duration> {
    let v = resp.headers.get("retry-after")?.to_str().ok()?.trim();
    let secs = v
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0);
    Some(Duration::from_secs_f64(secs.min(300.0)))
}

/// Time the upstream took (send → last byte), for the overhead metric.
pub fn finish_upstream_clock(ctx: &mut RequestCtx) {
    if ctx.upstream_time.is_zero() {
        if let Some(t) = ctx.upstream_started {
            ctx.upstream_time = Instant::now().duration_since(t);
        }
    }
}
