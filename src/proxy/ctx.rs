//! Per-request state carried through the Pingora phases.

use super::prepare::Prepared;
use crate::body::RequestHead;
use crate::errors::{ClientDialect, GatewayError};
use crate::gateway::Gateway;
use crate::providers::Operation;
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
    /// Why this endpoint (fleet routing).
    pub reason: crate::fleet::pick::Reason,
    /// Counts this attempt on its fleet endpoint while it lives (fleets that pick by load).
    pub in_flight: Option<Arc<crate::fleet::Attempted>>,
    /// Counts the prompt blocks it sent uncached until its first token (prefix fleets).
    pub prefill: Option<Arc<crate::fleet::Prefilling>>,
}

/// How this attempt's response body is read on its way back (set per attempt in
/// `response_filter`, from the attempt's `prepare::Answer`).
#[derive(Default)]
pub enum Relay {
    /// Passthrough, or nothing to read.
    #[default]
    None,
    /// Same-dialect stream: upstream events go through as they are, usage read on the way.
    Stream(SseRelay),
    /// Same-dialect JSON: its tail, where `usage` sits.
    Json(BytesMut),
    /// A stream in another dialect: decoded and re-encoded event by event.
    Transcode(Box<super::relay::Transcode>),
    /// A whole answer in another dialect: held (capped), translated at its end.
    WholeJson(BytesMut),
    /// An upstream error body, held whole (capped) to be put in the client's dialect.
    /// `in_stream`: a stream header already went out (an earlier attempt failed before any
    /// content), so the error becomes the stream's terminal event.
    ErrorBody { held: BytesMut, in_stream: bool },
}

impl Relay {
    /// Is the client reading an event stream (a terminal error event has a place)?
    pub fn is_stream(&self) -> bool {
        matches!(
            self,
            Relay::Stream(_)
                | Relay::Transcode(_)
                | Relay::ErrorBody {
                    in_stream: true,
                    ..
                }
        )
    }
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
    /// Answer bytes reached the client: from here on no other target may be tried, and a
    /// failure ends the stream with a terminal error (the stream commit protocol).
    pub committed: bool,
    /// The response header this attempt wrote is ours (chunked, no upstream length): a later
    /// attempt may continue the same response while nothing was committed.
    pub header_replayable: bool,
    /// Stream output held back until the first content event commits the attempt.
    pub held: BytesMut,
    /// The client's request in neutral form, decoded once when a target needs translation.
    pub translated: Option<Arc<crate::translate::Request>>,
    /// A target that could not take the request (before any connection): reported only
    /// when no upstream answered at all.
    pub refusal: Option<GatewayError>,
    /// An upstream error's type header (`x-amzn-errortype`), for its message.
    pub upstream_error_type: Option<String>,
    /// Upstream time of attempts that failed (not gateway overhead).
    pub failed_upstream_time: Duration,
    pub ttft: Option<Duration>,
    /// When the upstream request was sent (for overhead = total − upstream time).
    pub upstream_started: Option<Instant>,
    pub upstream_time: Duration,
    pub last_error: Option<String>,
    pub usage: Option<Usage>,
    /// The prompt's prefix block chain, computed on the first pick by a prefix-affine fleet.
    pub prefix_chain: Option<Vec<u64>>,
    /// What admission reserved for this request (limits, budget): settled in `logging`.
    pub admitted: Option<crate::accounting::Admitted>,
    /// Bucket states of a refused request, for its 429's headers.
    pub ratelimit_shown: Vec<(
        crate::accounting::store::Kind,
        crate::accounting::bucket::Shown,
    )>,
    /// What the request cost in USD (`None`: unpriced, or nothing was used).
    pub cost_usd: Option<f64>,
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
            committed: false,
            header_replayable: false,
            held: BytesMut::new(),
            translated: None,
            refusal: None,
            upstream_error_type: None,
            failed_upstream_time: Duration::ZERO,
            ttft: None,
            upstream_started: None,
            upstream_time: Duration::ZERO,
            last_error: None,
            usage: None,
            prefix_chain: None,
            admitted: None,
            ratelimit_shown: Vec::new(),
            cost_usd: None,
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
