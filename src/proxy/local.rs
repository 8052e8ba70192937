//! Answers the gateway writes itself: errors, health, metrics, the model list.

use super::ctx::RequestCtx;
use crate::errors::GatewayError;
use crate::gateway::Gateway;
use bytes::Bytes;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Write a whole response. Always framed with `Content-Length` (a synthetic response
/// without it hangs the client, cloudflare/pingora#766).
pub async fn respond(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    content_type: &str,
    body: Vec<u8>,
    extra: &[(&str, String)],
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(4 + extra.len()))?;
    resp.insert_header("content-type", content_type)?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("x-request-id", ctx.id.as_str())?;
    for (k, v) in extra {
        resp.insert_header(k.to_string(), v.as_str())?;
    }
    // A key with limits sees them on every answer, a refusal's included.
    let shown = match &ctx.admitted {
        Some(a) => &a.shown,
        None => &ctx.ratelimit_shown,
    };
    for (k, v) in crate::accounting::headers(shown) {
        resp.insert_header(k, v)?;
    }
    ctx.status = status;
    ctx.response_bytes = body.len();
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from(body)), true)
        .await?;
    Ok(())
}

/// Write a gateway error in the client's dialect.
pub async fn respond_error(
    session: &mut Session,
    ctx: &mut RequestCtx,
    err: &GatewayError,
) -> Result<()> {
    let mut extra = Vec::new();
    if let Some(s) = err.retry_after {
        extra.push(("retry-after", s.to_string()));
    }
    ctx.last_error.get_or_insert_with(|| err.message.clone());
    let body = err.body(ctx.dialect);
    respond(session, ctx, err.status, "application/json", body, &extra).await
}

pub async fn respond_json(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    v: &serde_json::Value,
) -> Result<()> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    respond(session, ctx, status, "application/json", body, &[]).await
}

/// The models a key may use: configured names, then models self-hosted pools report, then
/// catalogue models of active providers. `owned_by` is the provider id.
pub fn model_list(gw: &Gateway, allowed: &dyn Fn(&str) -> bool) -> Vec<serde_json::Value> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut push = |id: String, owner: &str, out: &mut Vec<serde_json::Value>| {
        if allowed(&id) && seen.insert(id.clone()) {
            out.push(
                serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": owner}),
            );
        }
    };
    for (name, route) in &gw.config.models {
        let owner = route
            .targets
            .first()
            .map(|t| t.provider.as_str())
            .unwrap_or("switchyard");
        push(name.clone(), owner, &mut out);
    }
    let mut discovered = gw.discovered_models();
    discovered.sort();
    for (model, provider) in discovered {
        push(model, &provider, &mut out);
    }
    for pid in gw.providers.keys() {
        for (model, _) in crate::catalog::global().models_for_provider(pid) {
            push(model.to_string(), pid, &mut out);
        }
    }
    out
}
