//! Settle a finished request: usage, metrics, access log. Runs from `logging`, which
//! Pingora calls exactly once on every path (success, local answer, error, client gone),
//! unlike the body filters' `eos`, which can be missed (pingora-notes §3.3).

use super::ctx::{Relay, RequestCtx, RequestKind};
use crate::access_log::{self, AccessLine};
use crate::metrics;
use crate::usage::{openai_usage_in, Usage};
use pingora_proxy::Session;

pub fn settle(session: &Session, ctx: &mut RequestCtx, error: Option<&pingora_error::Error>) {
    super::relay::finish_upstream_clock(ctx);
    let usage = read_usage(ctx);
    ctx.usage = usage;
    let duration = ctx.started.elapsed();
    let status = if ctx.status == 0 {
        // Nothing written: the client went away (499, nginx's convention).
        if error.is_some() {
            499
        } else {
            0
        }
    } else {
        ctx.status
    };

    let provider = ctx.provider_id().map(str::to_string);
    // The log names what the client asked for even when it was refused; metric labels only
    // take routed names, so clients cannot mint unbounded label values.
    let model = ctx.plan.as_ref().map(|p| p.model.clone());
    let logged_model = model.clone().or_else(|| ctx.requested_model.clone());
    let upstream_model = ctx.upstream_model().map(str::to_string);
    if let RequestKind::Model(op) = ctx.kind {
        let p = provider.as_deref().unwrap_or("none");
        let m = model.as_deref().unwrap_or("");
        let rm = upstream_model.as_deref().unwrap_or(m);
        metrics::REQUESTS
            .with_label_values(&[m, p, &status.to_string()])
            .inc();
        let labels = [op.otel_name(), p, m, rm];
        metrics::REQUEST_DURATION
            .with_label_values(&labels)
            .observe(duration.as_secs_f64());
        if let Some(ttft) = ctx.ttft {
            metrics::TIME_TO_FIRST_TOKEN
                .with_label_values(&labels)
                .observe(ttft.as_secs_f64());
        }
        if let Some(u) = &usage {
            for (kind, n) in [
                ("input", u.input),
                ("cached_input", u.cached_input),
                ("cache_creation_input", u.cache_creation_input),
                ("output", u.output),
                ("reasoning", u.reasoning),
            ] {
                metrics::TOKEN_USAGE
                    .with_label_values(&[op.otel_name(), p, m, rm, kind])
                    .observe(n as f64);
            }
            if matches!(ctx.relay, Relay::Stream(_)) && u.output > 1 {
                if let Some(ttft) = ctx.ttft {
                    let per = duration.saturating_sub(ttft).as_secs_f64() / (u.output - 1) as f64;
                    metrics::TIME_PER_OUTPUT_TOKEN
                        .with_label_values(&labels)
                        .observe(per);
                }
            }
        }
        let overhead = duration.saturating_sub(ctx.upstream_time);
        metrics::OVERHEAD
            .with_label_values(&[op.otel_name()])
            .observe(overhead.as_secs_f64());
    }

    let err_text = error.map(|e| e.to_string());
    let req = session.req_header();
    access_log::write(&AccessLine {
        ts: access_log::now_rfc3339(),
        request_id: &ctx.id,
        key: ctx.key_name.as_deref(),
        method: req.method.as_str(),
        path: req.uri.path(),
        model: logged_model.as_deref(),
        provider: provider.as_deref(),
        endpoint: ctx.current.as_ref().map(|a| a.addr.to_string()),
        status,
        attempts: ctx.attempts,
        ttft_ms: ctx.ttft.map(|d| d.as_secs_f64() * 1e3),
        duration_ms: duration.as_secs_f64() * 1e3,
        input_tokens: usage.map(|u| u.input),
        output_tokens: usage.map(|u| u.output),
        cached_input_tokens: usage.map(|u| u.cached_input),
        reasoning_tokens: usage.map(|u| u.reasoning),
        total_tokens: usage.map(|u| u.total),
        usage_estimated: usage.is_some_and(|u| u.estimated),
        cost_usd: None,
        error: ctx.last_error.as_deref().or(err_text.as_deref()),
    });
}

/// Usage as the upstream reported it, or an estimate when a stream was cut before its
/// usage chunk (the client went away): prompt ≈ body bytes / 4, output ≈ content events.
fn read_usage(ctx: &RequestCtx) -> Option<Usage> {
    if ctx.status >= 400 {
        return None;
    }
    match &ctx.relay {
        Relay::Stream(sse) => sse.usage.or_else(|| {
            (sse.content_events > 0).then(|| {
                let input = (ctx.body.len() as u64).div_ceil(4);
                Usage {
                    input,
                    output: sse.content_events,
                    total: input + sse.content_events,
                    estimated: true,
                    ..Default::default()
                }
            })
        }),
        Relay::Json(tail) => openai_usage_in(tail),
        _ => None,
    }
}
