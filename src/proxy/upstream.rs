//! Picking the upstream and shaping the request for it (`upstream_peer`,
//! `upstream_request_filter`, `request_body_filter`).

use super::ctx::{Attempt, RequestCtx, RequestKind};
use crate::config::{Endpoint, Limits};
use crate::errors::GatewayError;
use crate::providers::{adapter_for, set_forwarded_for, strip_connection_listed, Head};
use bytes::Bytes;
use http::header;
use pingora_core::protocols::ALPN;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use std::time::Instant;

/// Choose the next (target, endpoint) for this attempt. After a failure the next target
/// leads; when every target was tried, targets with untried endpoints get another turn.
pub fn next_peer(req: &RequestHeader, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
    let gw = ctx
        .gateway
        .clone()
        .ok_or_else(|| Error::new(ErrorType::InternalError))?;
    let limits = &gw.config.limits;
    ctx.attempts += 1;

    if ctx.kind == RequestKind::Passthrough {
        let (pid, _) = ctx.passthrough.clone().unwrap_or_default();
        let provider = gw
            .providers
            .get(&pid)
            .ok_or_else(|| Error::new(ErrorType::InternalError))?;
        let mut picked = provider
            .pool
            .pick(&[])
            .ok_or_else(|| no_healthy(ctx, &pid))?;
        let p = peer(picked.addr, &picked.endpoint.endpoint, limits);
        let in_flight = begin(
            &provider.pool,
            &provider.provider.id,
            PASSTHROUGH,
            &mut picked,
        );
        ctx.current = Some(Attempt {
            candidate: 0,
            addr: picked.addr,
            endpoint: picked.endpoint,
            prepared: None,
            reason: picked.reason,
            in_flight,
            prefill: None,
        });
        return Ok(p);
    }

    let n = ctx
        .plan
        .as_ref()
        .ok_or_else(|| Error::new(ErrorType::InternalError))?
        .candidates
        .len();
    let start = match &ctx.current {
        Some(a) => (a.candidate + 1) % n,
        None => 0,
    };
    // First every target's non-ejected endpoints, then the ejected ones: an endpoint that
    // keeps failing (refusing, stalling) is skipped while any other target remains.
    let RequestKind::Model(op) = ctx.kind else {
        return Err(Error::new(ErrorType::InternalError));
    };
    for allow_ejected in [false, true] {
        for i in 0..n {
            let idx = (start + i) % n;
            let Some(plan) = ctx.plan.as_ref() else {
                break;
            };
            let cand = plan.candidates[idx].clone();
            if ctx.exhausted.contains(&idx) {
                continue;
            }
            // The request this target would get: a target that cannot take it is refused
            // here, before a connection, and costs no attempt.
            let prepared = match super::prepare::prepare(
                ctx,
                op,
                &cand.provider.provider,
                &cand.upstream_model,
            ) {
                Ok(p) => p,
                Err(refusal) => {
                    ctx.exhausted.push(idx);
                    ctx.refusal.get_or_insert(refusal);
                    continue;
                }
            };
            let avoid: Vec<_> = ctx
                .tried
                .iter()
                .filter(|(c, _)| *c == idx)
                .map(|(_, a)| *a)
                .collect();
            let pool = &cand.provider.pool;
            let picked = if pool.fleet.by_load() {
                let hint = fleet_hint(req, ctx, &pool.fleet);
                let chain = ctx.prefix_chain.as_deref().unwrap_or_default();
                pool.pick_for(
                    &avoid,
                    allow_ejected,
                    &crate::fleet::Hint {
                        chain,
                        session: hint,
                    },
                )
            } else {
                pool.pick_with(&avoid, allow_ejected)
            };
            if let Some(mut picked) = picked {
                ctx.tried.push((idx, picked.addr));
                let p = peer(picked.addr, &picked.endpoint.endpoint, limits);
                let in_flight = begin(
                    pool,
                    &cand.provider.provider.id,
                    &cand.upstream_model,
                    &mut picked,
                );
                let prefill = pool
                    .fleet
                    .begin_prefill(
                        picked.addr,
                        ctx.prefix_chain.as_deref().unwrap_or_default(),
                        picked.prefill_blocks,
                    )
                    .map(std::sync::Arc::new);
                ctx.current = Some(Attempt {
                    candidate: idx,
                    addr: picked.addr,
                    endpoint: picked.endpoint,
                    prepared: Some(prepared),
                    reason: picked.reason,
                    in_flight,
                    prefill,
                });
                return Ok(p);
            }
        }
    }
    let model = ctx
        .plan
        .as_ref()
        .map(|p| p.model.clone())
        .unwrap_or_default();
    Err(no_healthy(ctx, &model))
}

/// What a load-picking fleet needs of the request: its prompt's block chain (hashed once, on
/// the first such pick, kept in `ctx`) and its session key.
fn fleet_hint(
    req: &RequestHeader,
    ctx: &mut RequestCtx,
    fleet: &crate::fleet::Fleet,
) -> Option<u64> {
    let body = &ctx.body;
    let head = &ctx.head;
    if ctx.prefix_chain.is_none() && fleet.balance == crate::config::Balance::PrefixAffinity {
        let parts: Vec<&[u8]> = head
            .prompt_spans
            .iter()
            .flatten()
            .filter_map(|r| body.get(r.clone()))
            .collect();
        ctx.prefix_chain = Some(crate::fleet::prefix::chain(
            &parts,
            fleet.routing.block_size,
        ));
    }
    if !fleet.routing.session_affinity {
        return None;
    }
    let header = req
        .headers
        .get(fleet.routing.session_header.as_str())
        .map(|v| v.as_bytes());
    let user = head.user_span.clone().and_then(|r| body.get(r));
    crate::fleet::session_key(header, user)
}

/// The model a passthrough request is counted under on a fleet (its body is not read).
const PASSTHROUGH: &str = "(passthrough)";

/// Count the attempt on a load-picking fleet's endpoint (and for `model` there), and the
/// pick by its reason.
fn begin(
    pool: &crate::pool::Pool,
    provider: &str,
    model: &str,
    picked: &mut crate::pool::Picked,
) -> Option<std::sync::Arc<crate::fleet::Attempted>> {
    if !pool.fleet.by_load() {
        return None;
    }
    crate::metrics::FLEET_PICKS
        .with_label_values(&[provider, picked.reason.as_str()])
        .inc();
    let attempted = match picked.claim.take() {
        Some(claim) => pool.fleet.attempt(claim, picked.addr, model),
        None => pool.fleet.begin(picked.addr, model),
    };
    Some(std::sync::Arc::new(attempted))
}

/// No endpoint left: the last upstream's status when there was one, else a refusal when
/// every target refused the request, else 503.
fn no_healthy(ctx: &mut RequestCtx, what: &str) -> Box<Error> {
    if ctx.local_error.is_none() {
        let e = match (ctx.upstream_status, &ctx.last_error, &ctx.refusal) {
            (Some(s), Some(msg), _) => GatewayError::new(s, msg.clone()),
            (None, Some(msg), _) => GatewayError::new(502, msg.clone()),
            (None, None, Some(refusal)) => refusal.clone(),
            _ => GatewayError::new(503, format!("no healthy upstream for `{what}`")),
        };
        ctx.local_error = Some(e);
    }
    let status = ctx.local_error.as_ref().map(|e| e.status).unwrap_or(503);
    Error::explain(ErrorType::HTTPStatus(status), "no usable upstream")
}

fn peer(addr: std::net::SocketAddr, ep: &Endpoint, limits: &Limits) -> Box<HttpPeer> {
    let sni = if ep.tls {
        ep.host.clone()
    } else {
        String::new()
    };
    let mut p = HttpPeer::new(addr, ep.tls, sni);
    p.options.connection_timeout = Some(limits.connect_timeout);
    p.options.total_connection_timeout = Some(limits.connect_timeout * 2);
    // Per read: bounds the time to the first byte and every gap between stream chunks.
    p.options.read_timeout = Some(limits.first_byte_timeout);
    p.options.idle_timeout = Some(limits.idle_timeout);
    p.options.alpn = ALPN::H1;
    Box::new(p)
}

/// Rewrite path, headers and body for the target of this attempt. `client`: the address
/// the request came from, for `X-Forwarded-For`.
pub fn shape_request(
    ctx: &mut RequestCtx,
    req: &mut RequestHeader,
    client: Option<std::net::IpAddr>,
) -> Result<()> {
    if let Some(t) = ctx.upstream_started.replace(Instant::now()) {
        // An earlier attempt's upstream time is not the gateway's overhead.
        ctx.failed_upstream_time += t.elapsed();
    }
    super::head::edit_request(req, |req| {
        strip_connection_listed(req);
        req.headers
            .insert(super::head::X_REQUEST_ID, super::head::value(&ctx.id)?);
        shape_for_target(ctx, req)?;
        // After the adapters' header strip, which removes the client's own claim.
        set_forwarded_for(req, client)
    })
}

fn shape_for_target(ctx: &mut RequestCtx, req: &mut Head) -> Result<()> {
    match ctx.kind {
        RequestKind::Passthrough => shape_passthrough(ctx, req),
        RequestKind::Model(_) => {
            let attempt = ctx
                .current
                .as_ref()
                .ok_or_else(|| Error::new(ErrorType::InternalError))?;
            let plan = ctx
                .plan
                .as_ref()
                .ok_or_else(|| Error::new(ErrorType::InternalError))?;
            let provider = &plan.candidates[attempt.candidate].provider.provider;
            let adapter = adapter_for(provider.dialect)
                .ok_or_else(|| Error::new(ErrorType::InternalError))?;
            let prepared = attempt
                .prepared
                .as_ref()
                .ok_or_else(|| Error::new(ErrorType::InternalError))?;
            let uri = prepared
                .path
                .parse()
                .map_err(|_| Error::explain(ErrorType::InternalError, "bad upstream path"))?;
            req.uri = uri;
            // Last: SigV4 signs the final path, Host and body.
            adapter.authorize(provider, &attempt.endpoint, req, &prepared.body)
        }
        RequestKind::Local => Err(Error::explain(
            ErrorType::InternalError,
            "local request reached upstream",
        )),
    }
}

fn shape_passthrough(ctx: &mut RequestCtx, req: &mut Head) -> Result<()> {
    let gw = ctx
        .gateway
        .clone()
        .ok_or_else(|| Error::new(ErrorType::InternalError))?;
    let (pid, path) = ctx.passthrough.clone().unwrap_or_default();
    let provider = &gw
        .providers
        .get(&pid)
        .ok_or_else(|| Error::new(ErrorType::InternalError))?
        .provider;
    let endpoint = ctx
        .current
        .as_ref()
        .ok_or_else(|| Error::new(ErrorType::InternalError))?
        .endpoint
        .clone();
    req.uri = path
        .parse()
        .map_err(|_| Error::explain(ErrorType::HTTPStatus(400), "bad passthrough path"))?;
    let adapter = adapter_for(provider.dialect)
        .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(501), "provider dialect not served"))?;
    if provider.api_key.is_none() && provider.aws.is_some() {
        // SigV4 signs the body, which passthrough streams without reading first.
        ctx.local_error = Some(GatewayError::new(
            501,
            format!("passthrough to `{pid}` needs AWS_BEARER_TOKEN_BEDROCK: SigV4 signing needs the whole body first"),
        ));
        return Err(Error::explain(
            ErrorType::HTTPStatus(501),
            "passthrough cannot sign",
        ));
    }
    // The provider's own credentials in the provider's own header (x-api-key, api-key,
    // Bearer); the client's framing stays, its body streams through unread.
    let framing: Vec<_> = [header::CONTENT_LENGTH, header::TRANSFER_ENCODING]
        .into_iter()
        .filter_map(|n| req.headers.get(&n).cloned().map(|v| (n, v)))
        .collect();
    adapter.authorize(provider, &endpoint, req, &[])?;
    req.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in framing {
        req.headers.insert(name, value);
    }
    Ok(())
}

/// Replace the (already read) client body with this attempt's body. Runs on every attempt:
/// Pingora replays its retry buffer through here with `eos = true` (see `ingress::read_body`).
pub fn body_for_attempt(ctx: &RequestCtx, body: &mut Option<Bytes>, eos: bool) {
    if !matches!(ctx.kind, RequestKind::Model(_)) {
        return; // passthrough: the client's bytes, as they come
    }
    let prepared = ctx.current.as_ref().and_then(|a| a.prepared.as_ref());
    *body = match (eos, prepared) {
        (true, Some(p)) => Some(p.body.clone()),
        _ => None,
    };
}
