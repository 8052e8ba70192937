//! Picking the upstream and shaping the request for it (`upstream_peer`,
//! `upstream_request_filter`, `request_body_filter`).

use super::ctx::{Attempt, RequestCtx, RequestKind};
use crate::config::{Endpoint, Limits};
use crate::errors::GatewayError;
use crate::providers::{
    adapter_for, bearer, set_forwarded_for, strip_connection_listed, strip_headers, ClientRequest,
    CLIENT_ONLY_HEADERS, HOP_BY_HOP_HEADERS,
};
use bytes::Bytes;
use pingora_core::protocols::ALPN;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use std::time::Instant;

/// Choose the next (target, endpoint) for this attempt. After a failure the next target
/// leads; when every target was tried, targets with untried endpoints get another turn.
pub fn next_peer(ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
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
        let picked = provider
            .pool
            .pick(&[])
            .ok_or_else(|| no_healthy(ctx, &pid))?;
        let p = peer(picked.addr, &picked.endpoint.endpoint, limits);
        ctx.current = Some(Attempt {
            candidate: 0,
            addr: picked.addr,
            endpoint: picked.endpoint,
            prepared: None,
        });
        return Ok(p);
    }

    let plan = ctx
        .plan
        .as_ref()
        .ok_or_else(|| Error::new(ErrorType::InternalError))?;
    let n = plan.candidates.len();
    let start = match &ctx.current {
        Some(a) => (a.candidate + 1) % n,
        None => 0,
    };
    // First every target's non-ejected endpoints, then the ejected ones: an endpoint that
    // keeps failing (refusing, stalling) is skipped while any other target remains.
    for allow_ejected in [false, true] {
        for i in 0..n {
            let idx = (start + i) % n;
            let cand = &plan.candidates[idx];
            if adapter_for(cand.provider.provider.dialect).is_none() || ctx.exhausted.contains(&idx)
            {
                continue;
            }
            let avoid: Vec<_> = ctx
                .tried
                .iter()
                .filter(|(c, _)| *c == idx)
                .map(|(_, a)| *a)
                .collect();
            if let Some(picked) = cand.provider.pool.pick_with(&avoid, allow_ejected) {
                ctx.tried.push((idx, picked.addr));
                let p = peer(picked.addr, &picked.endpoint.endpoint, limits);
                ctx.current = Some(Attempt {
                    candidate: idx,
                    addr: picked.addr,
                    endpoint: picked.endpoint,
                    prepared: None,
                });
                return Ok(p);
            }
        }
    }
    let model = plan.model.clone();
    Err(no_healthy(ctx, &model))
}

/// No endpoint left: the last upstream's status when there was one, else 503.
fn no_healthy(ctx: &mut RequestCtx, what: &str) -> Box<Error> {
    if ctx.local_error.is_none() {
        let e = match (ctx.upstream_status, &ctx.last_error) {
            (Some(s), Some(msg)) => GatewayError::new(s, msg.clone()),
            (None, Some(msg)) => GatewayError::new(502, msg.clone()),
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
    ctx.upstream_started = Some(Instant::now());
    strip_connection_listed(req);
    req.insert_header("x-request-id", ctx.id.as_str())?;
    shape_for_target(ctx, req)?;
    // After the adapters' header strip, which removes the client's own claim.
    set_forwarded_for(req, client)
}

fn shape_for_target(ctx: &mut RequestCtx, req: &mut RequestHeader) -> Result<()> {
    match ctx.kind {
        RequestKind::Passthrough => shape_passthrough(ctx, req),
        RequestKind::Model(op) => {
            let attempt = ctx
                .current
                .as_ref()
                .ok_or_else(|| Error::new(ErrorType::InternalError))?;
            let plan = ctx
                .plan
                .as_ref()
                .ok_or_else(|| Error::new(ErrorType::InternalError))?;
            let cand = &plan.candidates[attempt.candidate];
            let provider = &cand.provider.provider;
            let adapter = adapter_for(provider.dialect)
                .ok_or_else(|| Error::new(ErrorType::InternalError))?;
            let client = ClientRequest {
                op,
                head: &ctx.head,
                body: &ctx.body,
                upstream_model: &cand.upstream_model,
            };
            let prepared = match adapter.prepare(provider, &client) {
                Ok(p) => p,
                Err(e) => {
                    let status = e.status;
                    ctx.local_error = Some(e);
                    return Err(Error::explain(
                        ErrorType::HTTPStatus(status),
                        "translation refused",
                    ));
                }
            };
            let uri = prepared
                .path
                .parse()
                .map_err(|_| Error::explain(ErrorType::InternalError, "bad upstream path"))?;
            req.set_uri(uri);
            adapter.set_headers(provider, &attempt.endpoint, req, prepared.body.len())?;
            if let Some(a) = ctx.current.as_mut() {
                a.prepared = Some(prepared);
            }
            Ok(())
        }
        RequestKind::Local => Err(Error::explain(
            ErrorType::InternalError,
            "local request reached upstream",
        )),
    }
}

fn shape_passthrough(ctx: &mut RequestCtx, req: &mut RequestHeader) -> Result<()> {
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
    let host = ctx
        .current
        .as_ref()
        .ok_or_else(|| Error::new(ErrorType::InternalError))?
        .endpoint
        .host
        .clone();
    req.set_uri(
        path.parse()
            .map_err(|_| Error::explain(ErrorType::HTTPStatus(400), "bad passthrough path"))?,
    );
    strip_headers(req, &[CLIENT_ONLY_HEADERS, HOP_BY_HOP_HEADERS]);
    req.insert_header("host", host)?;
    if let Some(key) = &provider.api_key {
        req.insert_header("authorization", bearer(key)?)?;
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
