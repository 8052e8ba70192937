//! The response on its way back: failover on 429/5xx before anything reached the client,
//! then streams relayed chunk by chunk with usage read on the way.

use super::ctx::{Relay, RequestCtx, RequestKind};
use crate::errors::{openai_envelope_for_upstream, GatewayError};
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
    if status == 429 {
        // The account's limit, whichever address answered: this target is done for this
        // request (its other addresses share the key).
        if let Some(a) = ctx.current.as_ref() {
            let c = a.candidate;
            ctx.exhausted.push(c);
        }
    }
    let provider_id = ctx.provider_id().unwrap_or_default();
    if let Some(why) = unusable_success(ctx, resp) {
        // A 200 the client could not use (a captive portal's HTML, a proxy's text page):
        // the contract's 502, or the next target. Nothing reached the client yet.
        if let Some(p) = gw.providers.get(provider_id) {
            p.pool.record_failure(addr);
        }
        let msg = format!("upstream `{provider_id}` answered 200 with {why}");
        let retry = ctx.kind != RequestKind::Passthrough && ctx.has_more_attempts();
        ctx.last_error = Some(msg.clone());
        if !retry {
            ctx.local_error = Some(GatewayError::new(502, msg));
        }
        let mut e = Error::explain(ErrorType::HTTPStatus(502), "unusable upstream answer");
        e.set_retry(retry);
        return Err(e);
    }
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

/// Why a 2xx answer cannot be relayed as the success the client asked for, judged from its
/// `Content-Type` (the body is not held back to look at it): `None` when it can.
fn unusable_success(ctx: &RequestCtx, resp: &ResponseHeader) -> Option<String> {
    if ctx.kind == RequestKind::Passthrough || !resp.status.is_success() {
        return None;
    }
    let mode = ctx.current.as_ref()?.prepared.as_ref()?.relay;
    let ctype = resp.headers.get("content-type")?.to_str().unwrap_or("?");
    let essence = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json" || essence.ends_with("+json");
    let ok = match mode {
        // Some servers answer a stream request with one JSON body (an error or the whole
        // answer at once): that passes, as the upstream sent it.
        RelayMode::OpenAiStream { .. } => json || essence == "text/event-stream",
        RelayMode::OpenAiJson => json,
    };
    (!ok).then(|| {
        format!(
            "content-type `{}` where JSON was expected",
            truncate(ctype, 64)
        )
    })
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Set up the relay for the response the client will get, and fix its headers.
/// `http10`: the client speaks HTTP/1.0, which has no chunked framing (close-delimited then).
pub fn on_response_header(
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
    http10: bool,
) -> Result<()> {
    let r = relay_for(ctx, resp);
    if http10 {
        resp.remove_header("transfer-encoding");
    }
    r
}

fn relay_for(ctx: &mut RequestCtx, resp: &mut ResponseHeader) -> Result<()> {
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
                // Events go out whole (held back while incomplete), so the length can
                // change; an upstream's Content-Length framing must not reach the client.
                resp.remove_header("content-length");
                resp.insert_header("transfer-encoding", "chunked")?;
                resp.insert_header("cache-control", "no-cache")?;
                resp.insert_header("x-accel-buffering", "no")?;
                let max_event = ctx
                    .gateway
                    .as_ref()
                    .map_or(crate::sse::DEFAULT_MAX_EVENT, |g| {
                        g.config.limits.max_stream_event
                    });
                Relay::Stream(SseRelay::with_max_event(strip_usage_chunk, max_event))
            }
            Some(RelayMode::OpenAiJson) => Relay::Json(BytesMut::new()),
            None => Relay::None,
        }
    };
    Ok(())
}

/// One response body chunk (sync: never block here). `Err` ends the response: the proxy
/// then closes a stream with the terminal error.
pub fn on_body_chunk(ctx: &mut RequestCtx, body: &mut Option<Bytes>, eos: bool) -> Result<()> {
    if let Some(b) = body.as_ref() {
        if ctx.ttft.is_none() && !b.is_empty() {
            ctx.ttft = Some(ctx.started.elapsed());
        }
    }
    match &mut ctx.relay {
        Relay::None => {}
        Relay::Stream(sse) => {
            if !eos && crate::lifecycle::streams_must_end() {
                // The grace period of a SIGTERM is ending: close the stream well-formed now
                // rather than have it cut silently when the process exits. Checked on each
                // upstream chunk, which a live stream sends every few tens of milliseconds.
                ctx.last_error = Some("the gateway is shutting down; the stream was ended".into());
                *body = None;
                return Err(Error::explain(
                    ErrorType::Custom("shutting down"),
                    "grace period over",
                ));
            }
            if let Some(b) = body.as_ref() {
                match sse.feed(b) {
                    Ok(Some(replaced)) => *body = Some(replaced),
                    Ok(None) => {}
                    Err(too_large) => {
                        ctx.last_error = Some(too_large.to_string());
                        *body = None;
                        return Err(Error::explain(
                            ErrorType::Custom("stream event too large"),
                            "upstream event over limits.max_stream_event",
                        ));
                    }
                }
            }
            if eos {
                if let Some(rest) = sse.finish() {
                    *body = Some(match body.take() {
                        Some(b) if !b.is_empty() => {
                            let mut joined = BytesMut::with_capacity(b.len() + rest.len());
                            joined.extend_from_slice(&b);
                            joined.extend_from_slice(&rest);
                            joined.freeze()
                        }
                        _ => rest,
                    });
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
                    return Ok(());
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
    Ok(())
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
