//! The request one target gets, built per attempt: spliced when the client already speaks
//! the target's wire (the body is scanned, never parsed), translated when it does not.
//!
//! Built from `upstream_peer`, before a connection is made: a target that cannot take the
//! request (an operation it does not serve, a field it cannot carry) is a refusal that
//! costs no attempt, and the next target is taken.

use super::ctx::RequestCtx;
use crate::body::{force_include_usage, set_model, splice};
use crate::config::Provider;
use crate::errors::{ClientDialect, GatewayError};
use crate::providers::{adapter_for, Operation};
use crate::translate::{self, Wire};
use bytes::Bytes;
use std::sync::Arc;

/// A request made ready for one target.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Path and query for the upstream.
    pub path: String,
    pub body: Bytes,
    pub answer: Answer,
}

/// How this attempt's answer is read and turned into the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub op: Operation,
    /// What the upstream speaks.
    pub wire: Wire,
    /// What the client speaks (and gets its errors in).
    pub client: ClientDialect,
    pub stream: bool,
    /// Dialects differ: the answer goes through `translate`.
    pub translated: bool,
    /// Same-dialect OpenAI stream where the gateway added `include_usage`: drop that chunk.
    pub strip_usage_chunk: bool,
    /// The client asked for a usage chunk (OpenAI `stream_options.include_usage`).
    pub include_usage: bool,
}

impl Answer {
    /// The answer arrives as a stream on the wire.
    pub fn streams(&self) -> bool {
        self.stream && self.op != Operation::CountTokens
    }
}

/// Build the request for `provider`/`upstream_model`.
pub fn prepare(
    ctx: &mut RequestCtx,
    op: Operation,
    provider: &Provider,
    upstream_model: &str,
) -> Result<Prepared, GatewayError> {
    let refuse = || {
        GatewayError::bad_request(format!(
            "provider `{}` speaks a dialect this build does not translate",
            provider.id
        ))
    };
    let adapter = adapter_for(provider.dialect).ok_or_else(refuse)?;
    let wire = adapter.wire(provider, upstream_model).ok_or_else(refuse)?;
    let client = ctx.dialect;
    let stream = ctx.head.stream;
    let path = adapter.path(provider, op, upstream_model, stream)?;
    let same = wire.native_client() == Some(client);
    let mut answer = Answer {
        op,
        wire,
        client,
        stream,
        translated: !same,
        strip_usage_chunk: false,
        include_usage: false,
    };
    if same {
        let mut edits = Vec::with_capacity(2);
        if ctx.head.model.as_deref() != Some(upstream_model) {
            edits.extend(set_model(&ctx.head, upstream_model));
        }
        if wire == Wire::OpenAiChat
            && stream
            && op.streams_usage()
            && accepts_stream_options(provider)
        {
            if let Some(e) = force_include_usage(&ctx.body, &ctx.head) {
                edits.push(e);
                answer.strip_usage_chunk = true;
            }
        }
        return Ok(Prepared {
            path,
            body: splice(&ctx.body, edits),
            answer,
        });
    }
    if op == Operation::CountTokens && wire == Wire::BedrockConverse {
        // Bedrock's own CountTokens (Claude models): exact, from the same Converse input.
        let ir = client_request(ctx)?;
        let target = translate::Target {
            provider: &provider.id,
            model: upstream_model,
            default_max_tokens: 0,
        };
        let body = translate::bedrock::encode_count_tokens(&ir, &target)?;
        answer.stream = false;
        return Ok(Prepared {
            path,
            body: Bytes::from(body),
            answer,
        });
    }
    if op == Operation::CountTokens && wire == Wire::OpenAiChat && !provider.discover_models {
        // Hosted OpenAI-compatible APIs count no tokens: skipped (the gateway estimates when
        // no target can count).
        return Err(GatewayError::bad_request(format!(
            "provider `{}` does not count tokens",
            provider.id
        )));
    }
    if op == Operation::CountTokens && wire == Wire::OpenAiChat {
        // A self-hosted server's tokenizer, chat template applied (vLLM `/tokenize` takes
        // the chat request's `messages` and `tools`): an exact count.
        let ir = client_request(ctx)?;
        let target = translate::Target {
            provider: &provider.id,
            model: upstream_model,
            default_max_tokens: 0,
        };
        let chat: serde_json::Value =
            serde_json::from_slice(&translate::encode_request(wire, &ir, &target)?)
                .map_err(|e| GatewayError::new(500, format!("tokenize request: {e}")))?;
        let body = crate::count_tokens::tokenize_body(&chat, &ir);
        answer.stream = false;
        return Ok(Prepared {
            path,
            body: Bytes::from(body.to_string()),
            answer,
        });
    }
    if !op.is_chat() {
        return Err(GatewayError::bad_request(format!(
            "provider `{}` does not serve {} (only chat requests are translated between dialects)",
            provider.id,
            op.otel_name()
        )));
    }
    let ir = client_request(ctx)?;
    answer.include_usage = ir.include_usage || client == ClientDialect::Anthropic;
    let default_max_tokens = ctx
        .gateway
        .as_ref()
        .map_or(4096, |g| g.config.limits.default_max_tokens);
    let target = translate::Target {
        provider: &provider.id,
        model: upstream_model,
        default_max_tokens,
    };
    let body = translate::encode_request(wire, &ir, &target)?;
    Ok(Prepared {
        path,
        body: Bytes::from(body),
        answer,
    })
}

/// The client's request in neutral form, decoded once however many targets are tried.
fn client_request(ctx: &mut RequestCtx) -> Result<Arc<translate::Request>, GatewayError> {
    if let Some(ir) = &ctx.translated {
        return Ok(ir.clone());
    }
    let ir = Arc::new(translate::decode_request(ctx.dialect, &ctx.body)?);
    ctx.translated = Some(ir.clone());
    Ok(ir)
}

/// Cohere's compatibility API rejects `stream_options` (translation.md §2).
fn accepts_stream_options(provider: &Provider) -> bool {
    provider.id != "cohere"
}
