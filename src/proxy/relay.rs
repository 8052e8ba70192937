//! The response on its way back: failover on 429/5xx before anything reached the client,
//! then the answer relayed chunk by chunk: passed through with usage read on the way when
//! the client speaks the upstream's dialect, translated event by event when not.
//!
//! The stream commit protocol: until the first content event reaches the client, an
//! in-band failure (an error event, an exception frame, a stream that ends early) fails the
//! attempt like a 5xx and the next target is tried; the stream's first events wait for that
//! content meanwhile. Pingora has written the client's response header by then, so the next
//! attempt's header is not sent again: the client sees one stream. After content, a failure
//! ends the stream with a terminal error event in the client's dialect.

use super::ctx::{Relay, RequestCtx, RequestKind};
use super::head;
use super::prepare::Answer;
use crate::errors::{ClientDialect, GatewayError};
use crate::sse::SseRelay;
use crate::translate::{self, ir::UsageUpdate, ClientOpts, Event, StreamDecoder, StreamEncoder};
use bytes::{Bytes, BytesMut};
use http::response::Parts;
use http::{header, HeaderName, HeaderValue};
use pingora_error::{Error, ErrorType, Result};
use pingora_http::ResponseHeader;
use std::time::{Duration, Instant};

/// Error bodies are held to be put in the client's dialect; beyond this they are cut.
const ERROR_BODY_CAP: usize = 256 * 1024;
/// A JSON answer's `usage` sits at its end: keep this much of the tail.
const JSON_TAIL: usize = 64 * 1024;
/// Stream output held while waiting for the first content event; past it the attempt
/// commits anyway (an upstream that sends only pings or role chunks cannot make the gateway
/// hold an unbounded prelude).
const HOLD_CAP: usize = 64 * 1024;
/// A whole answer held for translation; a larger one fails the attempt.
const WHOLE_ANSWER_CAP: usize = 32 * 1024 * 1024;

/// A stream in another dialect, decoded and re-encoded event by event as it arrives.
pub struct Transcode {
    decoder: Box<dyn StreamDecoder>,
    encoder: Box<dyn StreamEncoder>,
    events: Vec<Event>,
    /// Usage so far (cumulative counts replace earlier ones).
    pub usage: UsageUpdate,
    pub saw_usage: bool,
    /// The upstream said the answer is complete.
    pub done: bool,
    /// The stream ended with an error event (the client got it).
    pub errored: bool,
    pub content_events: u64,
}

impl Transcode {
    fn new(answer: &Answer, opts: ClientOpts, max_event: usize) -> Transcode {
        Transcode {
            decoder: translate::stream_decoder(answer.wire, max_event),
            encoder: translate::stream_encoder(answer.client, opts),
            events: Vec::with_capacity(8),
            usage: UsageUpdate::default(),
            saw_usage: false,
            done: false,
            errored: false,
            content_events: 0,
        }
    }

    /// Turn decoded events into client bytes. Returns the first in-band error when it
    /// arrived before any content (it is not encoded: the attempt may fail over instead).
    fn encode(&mut self, committed: bool, out: &mut Vec<u8>) -> Option<GatewayError> {
        let mut early = None;
        for ev in self.events.drain(..) {
            match &ev {
                Event::Usage(u) => {
                    self.usage.merge(u);
                    self.saw_usage = true;
                }
                Event::Done => self.done = true,
                Event::Error(e) => {
                    if !committed && self.content_events == 0 && early.is_none() {
                        early = Some(e.clone());
                        continue;
                    }
                    self.errored = true;
                }
                e if e.is_content() => self.content_events += 1,
                _ => {}
            }
            if early.is_none() {
                self.encoder.encode(&ev, out);
            }
        }
        early
    }

    /// The usage to account, when the upstream sent any.
    pub fn usage(&self) -> Option<crate::usage::Usage> {
        self.saw_usage.then(|| self.usage.to_usage())
    }
}

/// Decide on the upstream's status line. `Err` (retryable) hands the request to the next
/// target; safe since no answer bytes reached the client yet.
pub fn on_upstream_header(ctx: &mut RequestCtx, resp: &mut ResponseHeader) -> Result<()> {
    let status = resp.status.as_u16();
    ctx.upstream_status = Some(status);
    ctx.upstream_error_type = resp
        .headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| crate::errors::clip(v, 256).into_owned());
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
    if status >= 400 && ctx.kind != RequestKind::Passthrough && empty_body(resp) {
        // Pingora runs no body filter for an empty body, so the error is answered here, in
        // the client's dialect, with the upstream's status and a message saying it was empty.
        if let Some(a) = answer(ctx) {
            let err =
                translate::decode_error(a.wire, status, ctx.upstream_error_type.as_deref(), b"");
            ctx.last_error = Some(err.message.clone());
            ctx.local_error = Some(err);
            let mut e = Error::explain(ErrorType::HTTPStatus(status), "empty upstream error body");
            e.set_retry(false);
            return Err(e);
        }
    }
    Ok(())
}

/// The upstream declared an empty body.
fn empty_body(resp: &ResponseHeader) -> bool {
    resp.headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0")
}

/// The answer plan of the attempt in flight.
fn answer(ctx: &RequestCtx) -> Option<Answer> {
    Some(ctx.current.as_ref()?.prepared.as_ref()?.answer)
}

/// Why a 2xx answer cannot be relayed as the success the client asked for, judged from its
/// `Content-Type` (the body is not held back to look at it): `None` when it can.
fn unusable_success(ctx: &RequestCtx, resp: &ResponseHeader) -> Option<String> {
    if ctx.kind == RequestKind::Passthrough || !resp.status.is_success() {
        return None;
    }
    let answer = answer(ctx)?;
    let ctype = resp.headers.get("content-type")?.to_str().unwrap_or("?");
    let essence = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json" || essence.ends_with("+json");
    let ok = if !answer.streams() {
        json
    } else if answer.wire == translate::Wire::BedrockConverse {
        essence == "application/vnd.amazon.eventstream" || json
    } else {
        // Some servers answer a stream request with one JSON body (an error or the whole
        // answer at once): that passes, as the upstream sent it.
        (json && !answer.translated) || essence == "text/event-stream"
    };
    (!ok).then(|| {
        format!(
            "content-type `{}` where {} was expected",
            crate::errors::clip(ctype, 64),
            if answer.streams() { "a stream" } else { "JSON" }
        )
    })
}

/// Set up the relay for the response the client will get, and fix its headers.
/// `http10`: the client speaks HTTP/1.0, which has no chunked framing (close-delimited then).
/// `header_sent`: an earlier attempt's header already reached the client (it failed before
/// any content), so this one's header is not sent again.
pub fn on_response_header(
    ctx: &mut RequestCtx,
    resp: &mut Parts,
    http10: bool,
    header_sent: bool,
) -> Result<()> {
    let r = relay_for(ctx, resp, header_sent);
    if http10 {
        resp.headers.remove(header::TRANSFER_ENCODING);
    }
    r
}

fn relay_for(ctx: &mut RequestCtx, resp: &mut Parts, header_sent: bool) -> Result<()> {
    if !header_sent {
        ctx.status = resp.status.as_u16();
    }
    resp.headers
        .insert(head::X_REQUEST_ID, head::value(&ctx.id)?);
    if ctx.kind == RequestKind::Passthrough {
        return Ok(());
    }
    let Some(answer) = answer(ctx) else {
        ctx.relay = Relay::None;
        return Ok(());
    };
    let max_event = ctx
        .gateway
        .as_ref()
        .map_or(crate::sse::DEFAULT_MAX_EVENT, |g| {
            g.config.limits.max_stream_event
        });
    let rechunk = |resp: &mut Parts, ctype: Option<&'static str>| {
        // The body's length changes (held, rewritten, translated): chunked framing.
        let h = &mut resp.headers;
        h.remove(header::CONTENT_LENGTH);
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        if let Some(t) = ctype {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
        }
    };
    ctx.header_replayable = true;
    ctx.relay = if resp.status.as_u16() >= 400 {
        rechunk(resp, Some("application/json"));
        Relay::ErrorBody {
            held: BytesMut::new(),
            in_stream: header_sent,
        }
    } else if answer.streams() {
        rechunk(resp, answer.translated.then_some("text/event-stream"));
        let h = &mut resp.headers;
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(head::X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
        if answer.translated {
            let opts = client_opts(ctx, &answer);
            Relay::Transcode(Box::new(Transcode::new(&answer, opts, max_event)))
        } else if answer.client == ClientDialect::Anthropic {
            Relay::Stream(SseRelay::anthropic(max_event))
        } else {
            Relay::Stream(SseRelay::with_max_event(
                answer.strip_usage_chunk,
                max_event,
            ))
        }
    } else if answer.translated {
        rechunk(resp, Some("application/json"));
        if answer.op == crate::providers::Operation::CountTokens {
            // Counted by the upstream's own tokenizer (not the gateway's estimate).
            resp.headers.insert(
                HeaderName::from_static(crate::count_tokens::HEADER),
                HeaderValue::from_static("exact"),
            );
        }
        Relay::WholeJson(BytesMut::new())
    } else {
        // Same dialect, whole JSON: passes through as it is, framing included.
        ctx.header_replayable = false;
        Relay::Json(BytesMut::new())
    };
    if answer.translated {
        // The upstream's own framing and encodings describe a body the client never sees.
        resp.headers.remove(header::CONTENT_ENCODING);
    }
    Ok(())
}

fn client_opts(ctx: &RequestCtx, answer: &Answer) -> ClientOpts {
    ClientOpts {
        model: ctx
            .plan
            .as_ref()
            .map(|p| p.model.clone())
            .unwrap_or_default(),
        fallback_id: ctx.id.clone(),
        include_usage: answer.include_usage,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// One response body chunk (sync: never block here). `Err` ends the attempt: retryable
/// (the next target) while nothing reached the client, else the proxy closes the stream
/// with the terminal error.
pub fn on_body_chunk(ctx: &mut RequestCtx, body: &mut Option<Bytes>, eos: bool) -> Result<()> {
    if let Some(b) = body.as_ref() {
        if !b.is_empty() {
            if ctx.ttft.is_none() {
                ctx.ttft = Some(ctx.started.elapsed());
            }
            // The first token: the endpoint's prefill of this prompt is done.
            if let Some(a) = ctx.current.as_mut() {
                a.prefill = None;
            }
        }
    }
    if ctx.relay.is_stream() && !eos && crate::lifecycle::streams_must_end() {
        // The grace period of a SIGTERM is ending: close the stream well-formed now rather
        // than have it cut silently when the process exits. Checked on each upstream
        // chunk, which a live stream sends every few tens of milliseconds.
        ctx.last_error = Some("the gateway is shutting down; the stream was ended".into());
        *body = None;
        return Err(Error::explain(
            ErrorType::Custom("shutting down"),
            "grace period over",
        ));
    }
    let more = ctx.has_more_attempts();
    // Taken out so the handlers can borrow the context beside it; always put back (the
    // terminal error after a failure is written from it).
    let mut relay = std::mem::take(&mut ctx.relay);
    let r = match &mut relay {
        Relay::None => {
            mark_sent(ctx, body);
            Ok(())
        }
        Relay::Stream(sse) => relay_stream(ctx, sse, body, eos, more),
        Relay::Json(tail) => {
            json_tail(ctx, tail, body, eos);
            mark_sent(ctx, body);
            Ok(())
        }
        Relay::Transcode(t) => transcode(ctx, t, body, eos, more),
        Relay::WholeJson(held) => whole_json(ctx, held, body, eos, more),
        Relay::ErrorBody { held, in_stream } => {
            error_body(ctx, held, *in_stream, body, eos);
            Ok(())
        }
    };
    ctx.relay = relay;
    if let Some(b) = body.as_ref() {
        ctx.response_bytes += b.len();
    }
    if eos {
        if let Some(t) = ctx.upstream_started {
            ctx.upstream_time = t.elapsed();
        }
    }
    r
}

/// Bytes are going to the client: from now on this attempt is the answer.
fn mark_sent(ctx: &mut RequestCtx, body: &Option<Bytes>) {
    if body.as_ref().is_some_and(|b| !b.is_empty()) {
        ctx.committed = true;
    }
}

/// Let `out` through once the attempt is committed; before, hold it.
fn gate(ctx: &mut RequestCtx, out: Bytes, content: bool) -> Bytes {
    let content = content || ctx.held.len() + out.len() > HOLD_CAP;
    if !ctx.committed && !content {
        ctx.held.extend_from_slice(&out);
        return Bytes::new();
    }
    if ctx.held.is_empty() {
        if !out.is_empty() {
            ctx.committed = true;
        }
        return out;
    }
    ctx.committed = true;
    let mut all = std::mem::take(&mut ctx.held);
    all.extend_from_slice(&out);
    all.freeze()
}

/// The attempt failed before any content reached the client: try the next target.
fn fail_over(ctx: &mut RequestCtx, why: String) -> Box<Error> {
    log::info!("request {}: {why}; trying the next target", ctx.id);
    ctx.last_error = Some(why);
    ctx.held.clear();
    let mut e = Error::explain(ErrorType::HTTPStatus(502), "in-band failure before content");
    e.set_retry(true);
    e
}

fn provider_label(ctx: &RequestCtx) -> String {
    ctx.provider_id().unwrap_or("upstream").to_string()
}

fn relay_stream(
    ctx: &mut RequestCtx,
    sse: &mut SseRelay,
    body: &mut Option<Bytes>,
    eos: bool,
    more: bool,
) -> Result<()> {
    let mut out = match body.take() {
        Some(b) => match sse.feed(&b) {
            Ok(None) => b,
            Ok(Some(replaced)) => replaced,
            Err(too_large) => {
                ctx.last_error = Some(too_large.to_string());
                return Err(Error::explain(
                    ErrorType::Custom("stream event too large"),
                    "upstream event over limits.max_stream_event",
                ));
            }
        },
        None => Bytes::new(),
    };
    if eos {
        if let Some(rest) = sse.finish() {
            let mut joined = BytesMut::with_capacity(out.len() + rest.len());
            joined.extend_from_slice(&out);
            joined.extend_from_slice(&rest);
            out = joined.freeze();
        }
    }
    if !ctx.committed && more && sse.content_events == 0 {
        if sse.saw_error {
            let p = provider_label(ctx);
            return Err(fail_over(
                ctx,
                format!("upstream `{p}` sent an error event before any content"),
            ));
        }
        if eos && !sse.saw_done {
            let p = provider_label(ctx);
            return Err(fail_over(
                ctx,
                format!("upstream `{p}` ended its stream before any content"),
            ));
        }
    }
    let content = sse.content_events > 0 || sse.saw_error || eos;
    *body = Some(gate(ctx, out, content));
    Ok(())
}

fn transcode(
    ctx: &mut RequestCtx,
    t: &mut Transcode,
    body: &mut Option<Bytes>,
    eos: bool,
    more: bool,
) -> Result<()> {
    let mut decoded = match body.take() {
        Some(b) => t.decoder.feed(&b, &mut t.events),
        None => Ok(()),
    };
    if eos && decoded.is_ok() {
        decoded = t.decoder.finish(&mut t.events);
    }
    let mut out = Vec::new();
    let early = t.encode(ctx.committed, &mut out);
    let p = provider_label(ctx);
    let failure = match (decoded, early) {
        (Err(e), _) => Some(GatewayError::new(
            502,
            format!("upstream `{p}` sent a malformed stream: {}", e.message),
        )),
        (Ok(()), Some(e)) => Some(e),
        (Ok(()), None) if eos && !t.done && !t.errored => Some(GatewayError::new(
            502,
            format!("upstream `{p}` ended its stream before it was complete"),
        )),
        _ => None,
    };
    if let Some(err) = failure {
        if !ctx.committed && more && t.content_events == 0 {
            return Err(fail_over(ctx, format!("upstream `{p}`: {}", err.message)));
        }
        // Too late (or nowhere else) to go: the client's stream ends with the error.
        ctx.last_error = Some(err.message.clone());
        t.encoder.terminal_error(&err, &mut out);
        t.errored = true;
        *body = Some(gate(ctx, Bytes::from(out), true));
        return Ok(());
    }
    let content = t.content_events > 0 || eos;
    *body = Some(gate(ctx, Bytes::from(out), content));
    Ok(())
}

fn whole_json(
    ctx: &mut RequestCtx,
    held: &mut BytesMut,
    body: &mut Option<Bytes>,
    eos: bool,
    more: bool,
) -> Result<()> {
    if let Some(b) = body.take() {
        if held.len() + b.len() > WHOLE_ANSWER_CAP {
            let p = provider_label(ctx);
            let msg = format!("upstream `{p}` answered more than {WHOLE_ANSWER_CAP} bytes");
            if !ctx.committed && more {
                return Err(fail_over(ctx, msg));
            }
            ctx.last_error = Some(msg);
            return Err(Error::explain(
                ErrorType::Custom("answer too large"),
                "answer over cap",
            ));
        }
        held.extend_from_slice(&b);
    }
    *body = Some(Bytes::new());
    if !eos {
        return Ok(());
    }
    let Some(answer) = answer(ctx) else {
        return Ok(());
    };
    if answer.op == crate::providers::Operation::CountTokens {
        // Bedrock's `{"inputTokens": N}` or a tokenizer's `{"count": N}`, in Anthropic's shape.
        let count = match answer.wire {
            translate::Wire::BedrockConverse => translate::bedrock::decode_count_tokens(held),
            _ => tokenizer_count(held),
        };
        let out = match count {
            Some(n) => serde_json::json!({ "input_tokens": n })
                .to_string()
                .into_bytes(),
            None => {
                let p = provider_label(ctx);
                GatewayError::new(
                    502,
                    format!("upstream `{p}` answered count-tokens with no count"),
                )
                .body(answer.client)
            }
        };
        held.clear();
        ctx.committed = true;
        *body = Some(Bytes::from(out));
        return Ok(());
    }
    let out = match translate::decode_response(answer.wire, held) {
        Ok(resp) => {
            ctx.usage = Some(resp.usage.to_usage());
            let opts = client_opts(ctx, &answer);
            translate::encode_response(answer.client, &resp, &opts)
        }
        Err(e) => {
            let p = provider_label(ctx);
            let msg = format!("upstream `{p}` answered with {}", e.message);
            if more {
                return Err(fail_over(ctx, msg));
            }
            ctx.last_error = Some(msg.clone());
            GatewayError::new(502, msg).body(answer.client)
        }
    };
    held.clear();
    ctx.committed = true;
    *body = Some(Bytes::from(out));
    Ok(())
}

fn json_tail(ctx: &mut RequestCtx, tail: &mut BytesMut, body: &Option<Bytes>, eos: bool) {
    let Some(b) = body.as_ref() else {
        return;
    };
    if eos && tail.is_empty() {
        // The whole answer in one chunk (the usual small reply): read its usage in place
        // instead of copying it into the tail first.
        ctx.usage = usage_in_json(ctx, b);
    } else {
        tail.extend_from_slice(b);
        if tail.len() > 2 * JSON_TAIL {
            let cut = tail.len() - JSON_TAIL;
            let _ = tail.split_to(cut);
        }
    }
}

/// vLLM's `/tokenize` answer: `count` (or the length of `tokens`).
fn tokenizer_count(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Tokenized {
        count: Option<u64>,
        #[serde(default)]
        tokens: Vec<serde::de::IgnoredAny>,
    }
    let t: Tokenized = serde_json::from_slice(body).ok()?;
    Some(t.count.unwrap_or(t.tokens.len() as u64))
}

/// Usage of a same-dialect JSON answer, in the dialect it is written in.
pub fn usage_in_json(ctx: &RequestCtx, body: &[u8]) -> Option<crate::usage::Usage> {
    match answer(ctx).map(|a| a.client) {
        Some(ClientDialect::Anthropic) => {
            crate::translate::anthropic::usage_in_body(body).map(|u| u.to_usage())
        }
        _ => crate::usage::openai_usage_in(body),
    }
}

fn error_body(
    ctx: &mut RequestCtx,
    held: &mut BytesMut,
    in_stream: bool,
    body: &mut Option<Bytes>,
    eos: bool,
) {
    if let Some(b) = body.take() {
        // Past the cap the rest is dropped: a message is kept, not a novel.
        let room = ERROR_BODY_CAP.saturating_sub(held.len());
        held.extend_from_slice(&b[..b.len().min(room)]);
    }
    *body = Some(Bytes::new());
    if !eos {
        return;
    }
    let status = ctx.upstream_status.unwrap_or(ctx.status);
    let out = match answer(ctx) {
        Some(a) => {
            let same = a.wire.native_client() == Some(a.client);
            if same && !in_stream && is_envelope(a.client, status, held) {
                // Already in the client's dialect: word for word (agents read these).
                std::mem::take(held).to_vec()
            } else {
                let err = translate::decode_error(
                    a.wire,
                    status,
                    ctx.upstream_error_type.as_deref(),
                    held,
                );
                ctx.last_error = Some(err.message.clone());
                if in_stream {
                    err.terminal_event(a.client)
                } else {
                    err.body(a.client)
                }
            }
        }
        None => crate::errors::openai_envelope_for_upstream(status, held)
            .unwrap_or_else(|| std::mem::take(held).to_vec()),
    };
    ctx.committed = true;
    *body = Some(Bytes::from(out));
}

/// Is `body` already an error envelope of `dialect`?
fn is_envelope(dialect: ClientDialect, status: u16, body: &[u8]) -> bool {
    match dialect {
        ClientDialect::OpenAi => {
            crate::errors::openai_envelope_for_upstream(status, body).is_none()
        }
        ClientDialect::Anthropic => {
            #[derive(serde::Deserialize)]
            struct Inner {
                #[serde(rename = "type")]
                _kind: String,
                #[serde(rename = "message")]
                _message: String,
            }
            #[derive(serde::Deserialize)]
            struct Envelope {
                #[serde(rename = "type")]
                kind: String,
                #[serde(rename = "error")]
                _error: Inner,
            }
            serde_json::from_slice::<Envelope>(body).is_ok_and(|e| e.kind == "error")
        }
    }
}

/// The bytes that end the client's stream after a failure: what was held, then the
/// terminal error in the client's dialect. `None` when the client is not reading a stream.
pub fn terminal_bytes(ctx: &mut RequestCtx, err: &GatewayError) -> Option<Bytes> {
    let mut out = std::mem::take(&mut ctx.held).to_vec();
    match &mut ctx.relay {
        Relay::Transcode(t) => {
            if t.errored {
                return None;
            }
            t.encoder.terminal_error(err, &mut out);
            t.errored = true;
        }
        Relay::Stream(_)
        | Relay::ErrorBody {
            in_stream: true, ..
        } => {
            let dialect = answer(ctx).map_or(ctx.dialect, |a| a.client);
            out.extend_from_slice(&err.terminal_event(dialect));
        }
        _ => return None,
    }
    Some(Bytes::from(out))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_before_content_is_held_then_let_through_with_it() {
        let mut ctx = RequestCtx::new();
        assert!(gate(&mut ctx, Bytes::from_static(b"prelude;"), false).is_empty());
        assert!(!ctx.committed);
        let out = gate(&mut ctx, Bytes::from_static(b"content"), true);
        assert_eq!(&out[..], b"prelude;content");
        assert!(ctx.committed && ctx.held.is_empty());
    }

    #[test]
    fn the_held_prelude_is_bounded() {
        let mut ctx = RequestCtx::new();
        let ping = Bytes::from(vec![b'p'; 1024]);
        let mut sent = 0;
        for _ in 0..200 {
            sent += gate(&mut ctx, ping.clone(), false).len();
        }
        assert!(ctx.committed, "an endless prelude commits past the cap");
        assert!(ctx.held.len() <= HOLD_CAP);
        assert_eq!(sent + ctx.held.len(), 200 * 1024);
    }
}
