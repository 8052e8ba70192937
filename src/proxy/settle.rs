//! Settle a finished request: usage, metrics, access log. Runs from `logging`, which
//! Pingora calls exactly once on every path (success, local answer, error, client gone),
//! unlike the body filters' `eos`, which can be missed (pingora-notes §3.3).

use super::ctx::{Relay, RequestCtx, RequestKind};
use crate::access_log::{self, Record};
use crate::metrics;
use crate::usage::Usage;
use pingora_proxy::Session;
use std::time::SystemTime;

pub fn settle(session: &Session, ctx: &mut RequestCtx, error: Option<&pingora_error::Error>) {
    super::relay::finish_upstream_clock(ctx);
    let usage = read_usage(ctx);
    ctx.usage = usage;
    let priced = price(ctx);
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

    if let RequestKind::Model(op) = ctx.kind {
        // Metric labels only take routed names, so clients cannot mint unbounded label values
        // (the log below still names what a refused client asked for).
        let provider = ctx.provider_id().unwrap_or("none");
        let (model, upstream_model) = match ctx.plan.as_ref() {
            Some(plan) if plan.known_names => {
                let model = plan.model.as_str();
                (
                    metrics::label_value(model),
                    metrics::label_value(ctx.upstream_model().unwrap_or(model)),
                )
            }
            _ => (metrics::OTHER_MODEL.into(), metrics::OTHER_MODEL.into()),
        };
        let m = metrics::route(op.otel_name(), provider, &model, &upstream_model);
        m.count_request(status);
        m.duration.observe(duration.as_secs_f64());
        if let Some(ttft) = ctx.ttft {
            m.ttft.observe(ttft.as_secs_f64());
        }
        if let Some(u) = &usage {
            m.observe_tokens(u);
            if ctx.relay.is_stream() && u.output > 1 {
                if let Some(ttft) = ctx.ttft {
                    let per = duration.saturating_sub(ttft).as_secs_f64() / (u.output - 1) as f64;
                    m.per_output_token.observe(per);
                }
            }
        }
        m.overhead.observe(overhead(ctx, duration).as_secs_f64());
        let key = ctx.key_name.as_deref().unwrap_or("");
        match priced {
            Priced::Cost(usd) => m.cost(key).inc_by(usd),
            Priced::Unpriced => m.unpriced.inc(),
            Priced::Nothing => {}
        }
    }
    // Once, on every path: the reservation becomes real usage (none when nothing was served).
    if let Some(admitted) = ctx.admitted.take() {
        let used = usage.map_or(0, |u| u.input.saturating_add(u.output));
        admitted.settle(
            used,
            crate::accounting::cost::nano(ctx.cost_usd.unwrap_or(0.0)),
        );
    }

    // Everything the line needs is moved out of the context (dropped right after this) or
    // copied as plain values; the writer thread does the formatting.
    let req = session.req_header();
    let provider = ctx.provider_id().map(str::to_string);
    let endpoint = ctx.current.as_ref().map(|a| a.addr);
    let pick = ctx
        .current
        .as_ref()
        .filter(|a| a.in_flight.is_some())
        .map(|a| a.reason.as_str());
    let model = match ctx.plan.as_mut() {
        Some(plan) => Some(std::mem::take(&mut plan.model)),
        None => ctx.requested_model.take(),
    }
    .map(clip_owned);
    access_log::write(Record {
        at: Some(SystemTime::now()),
        request_id: std::mem::take(&mut ctx.id),
        key: ctx.key_name.take(),
        method: req.method.as_str().to_string(),
        path: crate::errors::clip(req.uri.path(), LOG_PATH_MAX).into_owned(),
        model,
        provider,
        endpoint,
        pick,
        status,
        attempts: ctx.attempts,
        ttft: ctx.ttft,
        duration,
        usage,
        cost_usd: ctx.cost_usd,
        error: ctx
            .last_error
            .take()
            .or_else(|| error.map(|e| e.to_string()))
            .map(clip_owned),
    });
}

enum Priced {
    Cost(f64),
    /// Usage of a model the catalogue has no price for: served, priced at zero, counted.
    Unpriced,
    /// No usage to price.
    Nothing,
}

/// The request's cost from the catalogue (contract §12), kept in `ctx.cost_usd`.
fn price(ctx: &mut RequestCtx) -> Priced {
    let Some(usage) = ctx.usage else {
        return Priced::Nothing;
    };
    let requested = match (&ctx.plan, &ctx.requested_model) {
        (Some(plan), _) => plan.model.as_str(),
        (None, Some(m)) => m.as_str(),
        (None, None) => "",
    };
    let provider = ctx.current.as_ref().and_then(|a| {
        let plan = ctx.plan.as_ref()?;
        Some(&plan.candidates.get(a.candidate)?.provider.provider)
    });
    let entry = crate::accounting::cost::entry(
        crate::catalog::global(),
        provider,
        ctx.upstream_model(),
        requested,
    );
    match entry {
        Some(e) => {
            let usd = crate::accounting::cost::cost(e, &usage);
            ctx.cost_usd = Some(usd);
            Priced::Cost(usd)
        }
        None => {
            ctx.cost_usd = Some(0.0);
            Priced::Unpriced
        }
    }
}

/// What a log line keeps of a client-supplied model name or message (issue 7: a 5 MiB
/// model name added 10.5 MB to the log).
const LOG_FIELD_MAX: usize = 512;
const LOG_PATH_MAX: usize = 1024;

fn clip_owned(s: String) -> String {
    if s.len() <= LOG_FIELD_MAX {
        return s;
    }
    crate::errors::clip(&s, LOG_FIELD_MAX).into_owned()
}

/// Usage as the upstream reported it, or an estimate when a stream was cut before its
/// usage chunk (the client went away): prompt ≈ body bytes / 4, output ≈ content events.
fn read_usage(ctx: &RequestCtx) -> Option<Usage> {
    if ctx.status >= 400 {
        return None;
    }
    match &ctx.relay {
        Relay::Stream(sse) => sse
            .usage
            .or_else(|| (sse.content_events > 0).then(|| estimate(ctx, sse.content_events))),
        Relay::Transcode(t) => t
            .usage()
            .or_else(|| (t.content_events > 0).then(|| estimate(ctx, t.content_events))),
        // Read in the body filter when the answer came in one chunk; else from the tail.
        Relay::Json(tail) => ctx.usage.or_else(|| super::relay::usage_in_json(ctx, tail)),
        // Read when the whole answer was translated.
        Relay::WholeJson(_) => ctx.usage,
        _ => None,
    }
}

/// Prompt ≈ body bytes / 4, output ≈ content events: for a stream cut before its usage.
fn estimate(ctx: &RequestCtx, content_events: u64) -> Usage {
    let input = (ctx.body.len() as u64).div_ceil(4);
    Usage {
        input,
        output: content_events,
        total: input + content_events,
        estimated: true,
        ..Default::default()
    }
}

/// Time spent in the gateway itself: everything but the upstreams' time, that of failed
/// attempts included.
fn overhead(ctx: &RequestCtx, duration: std::time::Duration) -> std::time::Duration {
    duration
        .saturating_sub(ctx.upstream_time)
        .saturating_sub(ctx.failed_upstream_time)
}
