//! Converse answer → ir::Response, and the mappings the stream shares (stop reason, usage).

use super::super::ir::{Part, Response, StopReason, UsageUpdate};
use crate::errors::{clip, GatewayError};
use crate::wire::bedrock as w;
use serde_json::Value;

/// A whole Converse answer (HTTP 200). Bedrock gives no id or model: both stay empty for
/// the caller to fill (`x-amzn-requestid`, the request's model).
pub fn decode_response(body: &[u8]) -> Result<Response, GatewayError> {
    let r: w::ConverseResponse = serde_json::from_slice(body).map_err(|e| {
        GatewayError::new(
            502,
            format!("Bedrock answered with a body that is not Converse JSON: {e}"),
        )
    })?;
    let Some(output) = r.output else {
        // Coral errors and some guardrail failures come back as HTTP 200 without `output`.
        let what = match &r.coral_output {
            Some(w::CoralOutput {
                kind: Some(kind),
                message,
            }) => {
                let mut m = format!("Bedrock answered 200 with an error: {}", clip(kind, 200));
                if let Some(msg) = message {
                    m.push_str(": ");
                    m.push_str(&clip(msg, 2000));
                }
                m
            }
            _ => "Bedrock answered 200 without `output`".to_owned(),
        };
        return Err(GatewayError::new(502, what));
    };
    let mut content = Vec::new();
    for (i, b) in output
        .message
        .map(|m| m.content)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if let Some(text) = b.text {
            content.push(Part::Text { text, cache: None });
        } else if let Some(t) = b.tool_use {
            content.push(Part::ToolUse {
                id: t.tool_use_id,
                name: t.name,
                input: t.input,
                cache: None,
            });
        } else if let Some(r) = b.reasoning_content {
            if let Some(rt) = r.reasoning_text {
                content.push(Part::Thinking {
                    text: rt.text,
                    signature: rt.signature,
                });
            } else if let Some(data) = r.redacted_content {
                content.push(Part::RedactedThinking { data });
            } else {
                log::warn!(
                    "bedrock: answer block {i}: reasoningContent of an unknown kind left out"
                );
            }
        } else {
            // A block kind this gateway does not know (citations, images out, ...).
            log::warn!("bedrock: answer block {i} of an unknown kind left out");
        }
    }
    Ok(Response {
        id: String::new(),
        model: String::new(),
        content,
        stop: r
            .stop_reason
            .as_deref()
            .map(stop_reason)
            .unwrap_or_default(),
        stop_sequence: stop_sequence(r.additional_model_response_fields.as_ref()),
        usage: r.usage.as_ref().map(usage).unwrap_or_default(),
    })
}

/// Bedrock `stopReason` → neutral. Guardrails and content filters are refusals ([REC]).
pub(super) fn stop_reason(s: &str) -> StopReason {
    match s {
        "end_turn" => StopReason::EndTurn,
        "stop_sequence" => StopReason::StopSequence,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "tool_use" => StopReason::ToolUse,
        "content_filtered" | "guardrail_intervened" => StopReason::Refusal,
        other => StopReason::Other(clip(other, 100).into_owned()),
    }
}

/// Claude on Bedrock names the stop sequence it matched in
/// `additionalModelResponseFields.stop_sequence` (null when none).
pub(super) fn stop_sequence(extra: Option<&Value>) -> Option<String> {
    extra?.get("stop_sequence")?.as_str().map(str::to_owned)
}

/// Bedrock usage → neutral; `input` includes cache reads and writes (contract §7).
pub(super) fn usage(u: &w::Usage) -> UsageUpdate {
    let parts = [
        u.input_tokens,
        u.cache_read_input_tokens,
        u.cache_write_input_tokens,
    ];
    let input = if parts.iter().all(Option::is_none) {
        None
    } else {
        Some(
            parts
                .iter()
                .flatten()
                .fold(0u64, |a, b| a.saturating_add(*b)),
        )
    };
    UsageUpdate {
        input,
        cached_input: u.cache_read_input_tokens,
        cache_creation_input: u.cache_write_input_tokens,
        output: u.output_tokens,
        reasoning: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons() {
        assert_eq!(stop_reason("end_turn"), StopReason::EndTurn);
        assert_eq!(stop_reason("stop_sequence"), StopReason::StopSequence);
        assert_eq!(stop_reason("max_tokens"), StopReason::MaxTokens);
        assert_eq!(
            stop_reason("model_context_window_exceeded"),
            StopReason::MaxTokens
        );
        assert_eq!(stop_reason("tool_use"), StopReason::ToolUse);
        assert_eq!(stop_reason("content_filtered"), StopReason::Refusal);
        assert_eq!(stop_reason("guardrail_intervened"), StopReason::Refusal);
        assert_eq!(
            stop_reason("new_reason"),
            StopReason::Other("new_reason".into())
        );
    }

    #[test]
    fn usage_sums_saturate() {
        let u = usage(&w::Usage {
            input_tokens: Some(u64::MAX),
            output_tokens: None,
            cache_read_input_tokens: Some(5),
            cache_write_input_tokens: None,
        });
        assert_eq!(u.input, Some(u64::MAX));
        assert_eq!(usage(&w::Usage::default()).input, None);
    }
}
