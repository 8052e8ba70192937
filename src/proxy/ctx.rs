//! Per-request state carried through the Pingora phases.

use crate::body::RequestHead;
use crate::errors::{ClientDialect, GatewayError};
use crate::gateway::Gateway;
use crate::providers::{Operation, Prepared};
use crate::routing::Plan;
use crate::sse::SseRelay;
use crate::usage::Usage;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What kind of request this is, decided in `request_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestKind {
    /// Answered by the gateway itself (health, metrics, models, errors).
    #[default]
    Local,
    /// A model request with a JSON body, routed and rewritten per target.
    Model(Operation),
    /// `/passthrough/{provider}/...`: provider-native, body streamed untouched.
    Passthrough,
}

/// The attempt in flight: which candidate, which endpoint, what was prepared.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub candidate: usize,
    pub addr: SocketAddr,
    pub endpoint: Arc<crate::pool::PoolEndpoint>,
    pub prepared: Option<Prepared>,
}

/// How the response body is read on its way back.
#[derive(Debug, Default)]
pub enum Relay {
    #[default]
    None,
    Stream(SseRelay),
    /// Non-streamed JSON: its tail, where `usage` sits.
    Json(BytesMut),
    /// An upstream error body, held whole (capped) to be put in the client's dialect.
    ErrorBody(BytesMut),
}

pub struct RequestCtx {
    pub id: String,
    pub started: Instant,
    pub gateway: Option<Arc<Gateway>>,
    pub key_name: Option<String>,
    pub kind: RequestKind,
    pub dialect: ClientDialect,
    pub head: RequestHead,
    pub body: Bytes,
    pub plan: Option<Plan>,
    /// The model the client asked for (header or body), before routing; for the access
    /// log of requests refused before a plan exists.
    pub requested_model: Option<String>,
    /// Passthrough: the provider and the path below its host.
    pub passthrough: Option<(String, String)>,
    pub attempts: u32,
    pub max_attempts: u32,
    /// (candidate index, endpoint) pairs already tried.
    pub tried: Vec<(usize, SocketAddr)>,
    /// Candidates done for this request whatever endpoint is left (an account's 429).
    pub exhausted: Vec<usize>,
    pub current: Option<Attempt>,
    pub upstream_status: Option<u16>,
    pub status: u16,
    pub relay: Relay,
    pub ttft: Option<Duration>,
    /// When the upstream request was sent (for overhead = total − upstream time).
    pub upstream_started: Option<Instant>,
    pub upstream_time: Duration,
    pub last_error: Option<String>,
    pub usage: Option<Usage>,
    /// An error the gateway decided on itself, written by `fail_to_proxy`.
    pub local_error: Option<GatewayError>,
    pub response_bytes: usize,
    /// Counts this request as in flight until the context is dropped (after `logging`), so a
    /// draining process exits only once it is done (`lifecycle`).
    pub in_flight: crate::lifecycle::InFlight,
}

impl RequestCtx {
    pub fn new() -> RequestCtx {
        RequestCtx {
            id: String::new(),
            started: Instant::now(),
            gateway: None,
            key_name: None,
            kind: RequestKind::Local,
            dialect: ClientDialect::OpenAi,
            head: RequestHead::default(),
            body: Bytes::new(),
            plan: None,
            requested_model: None,
            passthrough: None,
            attempts: 0,
            max_attempts: 1,
            tried: Vec::new(),
            exhausted: Vec::new(),
            current: None,
            upstream_status: None,
            status: 0,
            relay: Relay::None,
            ttft: None,
            upstream_started: None,
            upstream_time: Duration::ZERO,
            last_error: None,
            usage: None,
            local_error: None,
            response_bytes: 0,
            in_flight: crate::lifecycle::InFlight::enter(),
        }
    }

    /// May another target be tried after this attempt fails?
    pub fn has_more_attempts(&self) -> bool {
        self.attempts < self.max_attempts
    }

    /// The provider id of the attempt in flight.
    pub fn provider_id(&self) -> Option<&str> {
        let a = self.current.as_ref()?;
        if let Some(plan) = &self.plan {
            return plan
                .candidates
                .get(a.candidate)
                .map(|c| c.provider.provider.id.as_str());
        }
        self.passthrough.as_ref().map(|(p, _)| p.as_str())
    }

    pub fn upstream_model(&self) -> Option<&str> {
        let a = self.current.as_ref()?;
        self.plan
            .as_ref()?
            .candidates
            .get(a.candidate)
            .map(|c| c.upstream_model.as_str())
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
