//! The Pingora `ProxyHttp` impl: the hallway, not a room. Each hook is a few lines that
//! hand over to the module doing the work:
//!
//! ```text
//! request_filter ─► ingress (id, ops endpoints, key, body, model/stream, plan)
//! upstream_peer  ─► upstream::next_peer (target, its request via prepare, healthy endpoint)
//! upstream_request_filter ─► upstream::shape_request (path, then credentials: last, SigV4)
//! request_body_filter ─► upstream::body_for_attempt (the rewritten body, every attempt)
//! upstream_response_filter ─► relay::on_upstream_header (429/5xx → next target)
//! response_filter / response_body_filter ─► relay (through or translated; commit protocol)
//! fail_to_connect / error_while_proxy ─► failover policy below
//! fail_to_proxy ─► errors in the client's dialect
//! logging ─► settle (usage, metrics, access log)
//! ```

pub mod ctx;
mod head;
pub mod ingress;
pub mod local;
pub mod prepare;
pub mod relay;
pub mod settle;
pub mod upstream;

use async_trait::async_trait;
use bytes::Bytes;
use ctx::RequestCtx;
use ingress::Listener;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::time::Duration;

use crate::errors::GatewayError;

/// The gateway's proxy logic for one listener.
pub struct Switchyard {
    pub listener: Listener,
}

#[async_trait]
impl ProxyHttp for Switchyard {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ingress::admit(self.listener, session, ctx).await
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        upstream::next_peer(session.req_header(), ctx)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        upstream::shape_request(ctx, req, client)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        eos: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream::body_for_attempt(ctx, body, eos);
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        relay::on_upstream_header(ctx, resp)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let http10 = session.req_header().version == http::Version::HTTP_10;
        // A later attempt after an in-band failure before content: the client already has
        // the first attempt's header and keeps reading that one response.
        let header_sent = session.response_written().is_some();
        head::edit(resp, |resp| {
            relay::on_response_header(ctx, resp, http10, header_sent)?;
            if let Some(a) = &ctx.admitted {
                // Replacing the upstream's own `x-ratelimit-*`: the client's limits are ours.
                for (k, v) in crate::accounting::headers(&a.shown) {
                    resp.headers.insert(k, v);
                }
            }
            Ok::<_, Box<pingora_error::Error>>(())
        })?;
        if http10 && resp.headers.get("content-length").is_none() {
            // No chunked framing in HTTP/1.0: the body ends when the connection closes.
            session.set_keepalive(None);
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        eos: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        relay::on_body_chunk(ctx, body, eos)?;
        Ok(None)
    }

    /// Connect errors are not retried by default; a model request moves to its next target.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        self.note_endpoint_failure(ctx);
        ctx.last_error = Some(format!(
            "cannot connect to upstream {}: {}",
            peer_name(peer),
            e.etype().as_str()
        ));
        if ctx.has_more_attempts() {
            e.set_retry(true);
        }
        e
    }

    /// POSTs are never retried by Pingora's default; ours are, to the next target, as long
    /// as nothing reached the client yet (pingora-notes §3.4).
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {}", peer_name(peer)));
        // Must be decided, or `Error::retry()` panics on an undecided `ReusedOnly`.
        e.retry.decide_reuse(client_reused);
        let status_failover = matches!(e.etype(), ErrorType::HTTPStatus(_));
        if !status_failover && e.esource() == &ErrorSource::Upstream {
            self.note_endpoint_failure(ctx);
            ctx.last_error = Some(format!(
                "upstream {}: {}",
                peer_name(peer),
                e.etype().as_str()
            ));
        }
        // Nothing of the answer reached the client: either no header went out, or only a
        // header of ours (chunked) that the next attempt's answer can continue.
        let written = session.response_written().is_some();
        let fresh = !ctx.committed && (!written || ctx.header_replayable);
        let may_retry = fresh && ctx.has_more_attempts() && e.esource() != &ErrorSource::Downstream;
        if may_retry && (status_failover || e.esource() == &ErrorSource::Upstream) {
            e.set_retry(true);
        } else if !may_retry {
            e.set_retry(false);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = failure_status(e, ctx);
        if code == 0 {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        if session.response_written().is_some() {
            // Mid-answer: a stream ends with a well-formed terminal error in the client's
            // dialect, never a silent cut (contract §5). A JSON body cut short is left
            // unfinished (no final chunk, the connection closes) so the client sees it was cut.
            let msg = ctx.last_error.clone().unwrap_or_else(|| e.to_string());
            let status = if code >= 400 { code } else { 502 };
            if let Some(bytes) = relay::terminal_bytes(ctx, &GatewayError::new(status, msg)) {
                let _ = session.write_response_body(Some(bytes), true).await;
            }
            return FailToProxy {
                error_code: ctx.status,
                can_reuse_downstream: false,
            };
        }
        let err = ctx.local_error.clone().unwrap_or_else(|| {
            let msg = match &ctx.last_error {
                Some(m) => m.clone(),
                None => e.to_string(),
            };
            GatewayError::new(code, msg)
        });
        if local::respond_error(session, ctx, &err).await.is_err() {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        FailToProxy {
            error_code: err.status,
            can_reuse_downstream: false,
        }
    }

    /// Expected outcomes are not ERROR-level log lines: statuses the gateway chose, and clients
    /// that went away (their requests are in the access log with status 499).
    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, e: &Error) -> bool {
        matches!(e.etype(), ErrorType::HTTPStatus(_))
            || ctx.local_error.is_some()
            || (e.esource() == &ErrorSource::Downstream
                && matches!(
                    e.etype(),
                    ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
                ))
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        settle::settle(session, ctx, e);
    }

    fn request_summary(&self, session: &Session, ctx: &RequestCtx) -> String {
        // Never include headers here: they carry keys.
        format!(
            "{} {} id={}",
            session.req_header().method,
            session.req_header().uri.path(),
            ctx.id
        )
    }
}

impl Switchyard {
    fn note_endpoint_failure(&self, ctx: &RequestCtx) {
        let (Some(gw), Some(a), Some(pid)) = (
            ctx.gateway.as_ref(),
            ctx.current.as_ref(),
            ctx.provider_id(),
        ) else {
            return;
        };
        if let Some(p) = gw.providers.get(pid) {
            p.pool.record_failure(a.addr);
            if a.in_flight.is_some() {
                p.pool
                    .fleet
                    .failed(a.addr, ctx.prefix_chain.as_deref().unwrap_or_default());
            }
        }
    }
}

fn peer_name(peer: &HttpPeer) -> String {
    match &peer.sni {
        s if !s.is_empty() => format!("{s} ({})", peer._address),
        _ => peer._address.to_string(),
    }
}

/// The status a failed request gets (0: the client is gone, nothing to write).
fn failure_status(e: &Error, ctx: &RequestCtx) -> u16 {
    if let Some(le) = &ctx.local_error {
        return le.status;
    }
    match e.etype() {
        ErrorType::HTTPStatus(s) => *s,
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            if ctx.upstream_status.is_none() {
                504
            } else {
                502
            }
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            _ => 500,
        },
    }
}
