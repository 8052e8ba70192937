//! Golden tests for the Anthropic Messages dialect's translation sides, over recorded
//! Anthropic answers (tests/fixtures/anthropic, origins in tests/fixtures/SOURCES.md).

use proptest::prelude::*;
use serde_json::{json, Value};
use switchyard::translate::anthropic::{
    self, decode_request, decode_response, encode_request, encode_response, usage_in_body,
    usage_in_event, Decoder, Encoder,
};
use switchyard::translate::ir::*;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/anthropic");

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIX}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn files(dir: &str, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("{FIX}/{dir}"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

// ─────────────── a reference reading of Anthropic SSE, independent of the decoder ───────────────

/// One content block as a client would accumulate it.
#[derive(Debug, Clone, PartialEq, Default)]
struct Acc {
    kind: String,
    text: String,
    signature: String,
    data: String,
    id: String,
    name: String,
    args: String,
}

#[derive(Debug, Default, PartialEq)]
struct Summary {
    id: String,
    model: String,
    blocks: Vec<Acc>,
    stop: Option<String>,
    /// Anthropic-style counters (input excludes cache), last value seen.
    input: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
    output: Option<u64>,
    stopped: bool,
}

fn data_lines(sse: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(sse)
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect()
}

/// Reads an Anthropic stream the way a client accumulator would, keeping only the block
/// types the neutral form carries. `strict`: also check the framing (what the encoder
/// must produce).
fn summarize(sse: &[u8], strict: bool) -> Summary {
    let mut s = Summary::default();
    let mut map: std::collections::HashMap<u64, usize> = Default::default();
    let mut open: Option<u64> = None;
    let events = data_lines(sse);
    if strict {
        assert_eq!(
            events.first().unwrap()["type"],
            "message_start",
            "message_start first"
        );
        let n = events.len();
        assert_eq!(events[n - 1]["type"], "message_stop");
        assert_eq!(events[n - 2]["type"], "message_delta");
        // The SSE `event:` names match the data types.
        let names: Vec<String> = String::from_utf8_lossy(sse)
            .lines()
            .filter_map(|l| l.strip_prefix("event: ").map(str::to_string))
            .collect();
        let kinds: Vec<String> = events
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, kinds);
    }
    for e in events {
        let idx = e["index"].as_u64();
        match e["type"].as_str().unwrap() {
            "message_start" => {
                if !s.id.is_empty() {
                    continue;
                }
                s.id = e["message"]["id"].as_str().unwrap_or("").into();
                s.model = e["message"]["model"].as_str().unwrap_or("").into();
                let u = &e["message"]["usage"];
                s.input = u["input_tokens"].as_u64();
                s.cache_read = u["cache_read_input_tokens"].as_u64();
                s.cache_creation = u["cache_creation_input_tokens"].as_u64();
                s.output = u["output_tokens"].as_u64();
            }
            "content_block_start" => {
                let b = &e["content_block"];
                let kind = b["type"].as_str().unwrap().to_string();
                let kind = if kind == "server_tool_use" {
                    "tool_use".to_string()
                } else {
                    kind
                };
                if strict {
                    assert!(open.is_none(), "a block starts while another is open");
                    assert_eq!(idx.unwrap() as usize, s.blocks.len(), "consecutive indices");
                    open = idx;
                }
                if !matches!(
                    kind.as_str(),
                    "text" | "thinking" | "redacted_thinking" | "tool_use"
                ) {
                    continue;
                }
                let mut acc = Acc {
                    kind,
                    ..Default::default()
                };
                acc.text
                    .push_str(b["text"].as_str().or(b["thinking"].as_str()).unwrap_or(""));
                acc.signature
                    .push_str(b["signature"].as_str().unwrap_or(""));
                acc.data = b["data"].as_str().unwrap_or("").into();
                acc.id = b["id"].as_str().unwrap_or("").into();
                acc.name = b["name"].as_str().unwrap_or("").into();
                if let Some(o) = b["input"].as_object() {
                    if !o.is_empty() {
                        acc.args = b["input"].to_string();
                    }
                }
                map.insert(idx.unwrap(), s.blocks.len());
                s.blocks.push(acc);
            }
            "content_block_delta" => {
                if strict {
                    assert_eq!(idx, open, "delta for the open block");
                }
                let Some(&i) = map.get(&idx.unwrap()) else {
                    continue;
                };
                let d = &e["delta"];
                let b = &mut s.blocks[i];
                match d["type"].as_str().unwrap() {
                    "text_delta" => b.text.push_str(d["text"].as_str().unwrap()),
                    "thinking_delta" => b.text.push_str(d["thinking"].as_str().unwrap()),
                    "signature_delta" => b.signature.push_str(d["signature"].as_str().unwrap()),
                    "input_json_delta" => b.args.push_str(d["partial_json"].as_str().unwrap()),
                    _ => {}
                }
            }
            "content_block_stop" if strict => {
                assert_eq!(idx, open, "stop for the open block");
                open = None;
            }
            "message_delta" => {
                if let Some(r) = e["delta"]["stop_reason"].as_str() {
                    s.stop = Some(r.into());
                }
                let u = &e["usage"];
                for (field, slot) in [
                    ("input_tokens", &mut s.input),
                    ("cache_read_input_tokens", &mut s.cache_read),
                    ("cache_creation_input_tokens", &mut s.cache_creation),
                    ("output_tokens", &mut s.output),
                ] {
                    if let Some(v) = u[field].as_u64() {
                        *slot = Some(v); // cumulative: replace
                    }
                }
            }
            "message_stop" => {
                // A stream ends here (a recording may hold several answers in a row).
                s.stopped = true;
                break;
            }
            _ => {}
        }
    }
    if strict {
        assert!(open.is_none());
    }
    s
}

fn decode_all(sse: &[u8]) -> Result<Vec<Event>, switchyard::errors::GatewayError> {
    let mut d = Decoder::new(1 << 20);
    let mut out = Vec::new();
    d.feed(sse, &mut out)?;
    d.finish(&mut out)?;
    Ok(out)
}

/// What the decoder's events say, in the reference's terms.
fn summarize_events(events: &[Event]) -> Summary {
    let mut s = Summary::default();
    let mut usage = UsageUpdate::default();
    let mut by_index: Vec<Acc> = Vec::new();
    for ev in events {
        match ev {
            Event::Start { id, model } => {
                s.id = id.clone();
                s.model = model.clone();
            }
            Event::BlockStart { index, block } => {
                assert_eq!(
                    *index,
                    by_index.len(),
                    "decoder indices count from 0 in order"
                );
                let mut a = Acc::default();
                match block {
                    Block::Text => a.kind = "text".into(),
                    Block::Thinking => a.kind = "thinking".into(),
                    Block::RedactedThinking { data } => {
                        a.kind = "redacted_thinking".into();
                        a.data = data.clone();
                    }
                    Block::ToolUse { id, name } => {
                        a.kind = "tool_use".into();
                        a.id = id.clone();
                        a.name = name.clone();
                    }
                }
                by_index.push(a);
            }
            Event::Delta { index, delta } => {
                let a = &mut by_index[*index];
                match delta {
                    Delta::Text(t) | Delta::Thinking(t) => a.text.push_str(t),
                    Delta::Signature(t) => a.signature.push_str(t),
                    Delta::ToolArgs(t) => a.args.push_str(t),
                }
            }
            Event::Stop { reason, .. } => {
                s.stop = Some(
                    match reason {
                        StopReason::EndTurn => "end_turn",
                        StopReason::StopSequence => "stop_sequence",
                        StopReason::MaxTokens => "max_tokens",
                        StopReason::ToolUse => "tool_use",
                        StopReason::Refusal => "refusal",
                        StopReason::PauseTurn => "pause_turn",
                        StopReason::Other(o) => o.as_str(),
                    }
                    .into(),
                )
            }
            Event::Usage(u) => usage.merge(u),
            Event::Done => s.stopped = true,
            Event::BlockStop { .. } | Event::Error(_) => {}
        }
    }
    s.blocks = by_index;
    // Back to Anthropic's counters (input exclusive of cache).
    s.cache_read = usage.cached_input;
    s.cache_creation = usage.cache_creation_input;
    s.input = usage
        .input
        .map(|i| i - usage.cached_input.unwrap_or(0) - usage.cache_creation_input.unwrap_or(0));
    s.output = usage.output;
    s
}

fn reencode(events: &[Event]) -> Vec<u8> {
    let mut e = Encoder::new(ClientOpts {
        model: "client-model".into(),
        fallback_id: "fallback".into(),
        ..Default::default()
    });
    let mut out = Vec::new();
    for ev in events {
        e.encode(ev, &mut out);
    }
    out
}

#[test]
fn every_recorded_stream_decodes_like_the_reference_and_reencodes_well_formed() {
    let names = files("sse", ".sse");
    assert!(names.len() >= 25);
    for name in names {
        if name == "spliced-message-start.sse" {
            continue; // its own test
        }
        let sse = read(&format!("sse/{name}"));
        let events = decode_all(&sse).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = summarize(&sse, false);
        let got = summarize_events(&events);
        assert_eq!(got, want, "{name}: decoder vs reference");
        assert!(
            matches!(events.first(), Some(Event::Start { .. })),
            "{name}"
        );
        assert_eq!(events.last(), Some(&Event::Done), "{name}");

        let client = reencode(&events);
        let round = summarize(&client, true);
        // The client stream carries the same content and usage (its message_start input is
        // then replaced by message_delta's, which always carries the final counts).
        assert_eq!(round.blocks, want.blocks, "{name}: re-encoded content");
        assert_eq!(round.id, want.id, "{name}");
        assert_eq!(
            round.stop.as_deref(),
            Some(want.stop.as_deref().unwrap_or("end_turn")),
            "{name}"
        );
        assert_eq!(round.output, want.output, "{name}");
        assert_eq!(round.input, want.input, "{name}");
        assert_eq!(
            round.cache_read,
            Some(want.cache_read.unwrap_or(0)),
            "{name}"
        );
        assert!(round.stopped, "{name}");
        // message_start carries the input usage the upstream's message_start gave.
        let first = &data_lines(&client)[0];
        let up_first = &data_lines(&sse)[0];
        assert_eq!(
            first["message"]["usage"]["input_tokens"], up_first["message"]["usage"]["input_tokens"],
            "{name}: message_start input"
        );
        assert_eq!(first["message"]["usage"]["output_tokens"], 0);
    }
}

#[test]
fn thinking_signature_and_tool_args_survive() {
    let events = decode_all(&read("sse/anthropic-clear-thinking.1.sse")).unwrap();
    let s = summarize_events(&events);
    let thinking = s.blocks.iter().find(|b| b.kind == "thinking").unwrap();
    assert!(thinking.text.contains("925"));
    assert!(!thinking.signature.is_empty());

    let events = decode_all(&read("sse/anthropic-tool-no-args.sse")).unwrap();
    let s = summarize_events(&events);
    assert_eq!(s.blocks[1].id, "toolu_01QE1WLsSVp5hy5Q3GmGTmjP");
    assert_eq!(s.blocks[1].name, "updateIssueList");
    assert_eq!(s.blocks[1].args, "");
    assert_eq!(s.stop.as_deref(), Some("tool_use"));
    assert_eq!((s.input, s.output), (Some(565), Some(48)));
}

#[test]
fn message_delta_input_tokens_replace_message_start() {
    let events = decode_all(&read("sse/anthropic-message-delta-input-tokens.sse")).unwrap();
    let mut u = UsageUpdate::default();
    for e in &events {
        if let Event::Usage(x) = e {
            u.merge(x);
        }
    }
    assert_eq!(u.input, Some(61));
    assert_eq!(u.output, Some(2));
}

#[test]
fn prompt_cache_usage_is_inclusive() {
    let sse = read("sse/anthropic-code-execution-20260120-prompt-cache.1.sse");
    let want = summarize(&sse, false);
    let events = decode_all(&sse).unwrap();
    let mut u = UsageUpdate::default();
    for e in &events {
        if let Event::Usage(x) = e {
            u.merge(x);
        }
    }
    let total =
        want.input.unwrap() + want.cache_read.unwrap_or(0) + want.cache_creation.unwrap_or(0);
    assert_eq!(u.input, Some(total));
    assert_eq!(u.cached_input, want.cache_read);
    assert!(
        want.cache_read.unwrap_or(0) + want.cache_creation.unwrap_or(0) > 0,
        "fixture has cache counts"
    );
}

#[test]
fn duplicate_message_start_is_ignored() {
    let events = decode_all(&read("sse/duplicate-message-start.sse")).unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Start { .. }))
            .count(),
        1
    );
    let s = summarize_events(&events);
    assert_eq!(s.blocks.len(), 1);
    assert_eq!(s.blocks[0].text, "Hello, World!");
}

#[test]
fn spliced_message_start_fails_the_stream() {
    let sse = read("sse/spliced-message-start.sse");
    let mut d = Decoder::new(1 << 20);
    let mut out = Vec::new();
    let err = d.feed(&sse, &mut out).unwrap_err();
    assert_eq!(err.status, 502);
    assert!(err.message.contains("msg_second"), "{}", err.message);
    // What came before the splice was decoded; no Done.
    assert!(out
        .iter()
        .any(|e| matches!(e, Event::Start { id, .. } if id == "msg_first")));
    assert!(!out.contains(&Event::Done));
}

#[test]
fn recorded_messages_round_trip_through_the_neutral_form() {
    let names = files("json", ".json");
    assert!(names.len() >= 25);
    for name in names {
        let body = read(&format!("json/{name}"));
        let up: Value = serde_json::from_slice(&body).unwrap();
        let resp = decode_response(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let client: Value = serde_json::from_slice(&encode_response(
            &resp,
            &ClientOpts {
                model: "m".into(),
                fallback_id: "x".into(),
                ..Default::default()
            },
        ))
        .unwrap();
        assert_eq!(client["id"], up["id"], "{name}");
        assert_eq!(client["model"], up["model"], "{name}");
        assert_eq!(client["type"], "message");
        assert_eq!(client["role"], "assistant");
        // Kept blocks, in order, with their content.
        let kept: Vec<&Value> = up["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| {
                matches!(
                    b["type"].as_str(),
                    Some("text" | "thinking" | "redacted_thinking" | "tool_use")
                )
            })
            .collect();
        let got = client["content"].as_array().unwrap();
        assert_eq!(got.len(), kept.len(), "{name}");
        for (g, k) in got.iter().zip(kept) {
            assert_eq!(g["type"], k["type"], "{name}");
            for f in [
                "text",
                "thinking",
                "signature",
                "data",
                "id",
                "name",
                "input",
            ] {
                if !k[f].is_null() {
                    assert_eq!(g[f], k[f], "{name}: {f}");
                }
            }
        }
        let known = [
            "end_turn",
            "stop_sequence",
            "max_tokens",
            "tool_use",
            "refusal",
            "pause_turn",
        ];
        let stop = up["stop_reason"].as_str().unwrap();
        if known.contains(&stop) {
            assert_eq!(client["stop_reason"], stop, "{name}");
        } else {
            assert_eq!(client["stop_reason"], "end_turn", "{name}");
        }
        assert_eq!(client["stop_sequence"], up["stop_sequence"], "{name}");
        for f in ["input_tokens", "output_tokens"] {
            assert_eq!(client["usage"][f], up["usage"][f], "{name}: {f}");
        }
        for f in ["cache_read_input_tokens", "cache_creation_input_tokens"] {
            assert_eq!(
                client["usage"][f],
                json!(up["usage"][f].as_u64().unwrap_or(0)),
                "{name}: {f}"
            );
        }
        // usage_in_body agrees with the full decode.
        assert_eq!(usage_in_body(&body), Some(resp.usage), "{name}");
    }
}

#[test]
fn error_bodies_keep_status_and_message() {
    for name in files("errors", ".json") {
        let body = read(&format!("errors/{name}"));
        let v: Value = serde_json::from_slice(&body).unwrap();
        let e = anthropic::decode_error(400, &body);
        assert_eq!(e.status, 400);
        assert_eq!(e.message, v["error"]["message"].as_str().unwrap(), "{name}");
        // An error envelope as a 2xx answer is an upstream failure.
        let err = decode_response(&body).unwrap_err();
        assert_eq!(err.status, 502);
        assert_eq!(err.message, e.message);
    }
}

#[test]
fn usage_sniffing_agrees_with_the_decoder_on_every_stream() {
    for name in files("sse", ".sse") {
        let sse = read(&format!("sse/{name}"));
        let mut sniffed = UsageUpdate::default();
        let mut errors = 0;
        for line in String::from_utf8_lossy(&sse).lines() {
            if let Some(d) = line.strip_prefix("data: ") {
                if let Some(u) = usage_in_event(d.as_bytes()) {
                    sniffed.merge(&u);
                }
                errors += anthropic::is_error_event(d.as_bytes()) as usize;
                if d.contains(r#""type":"message_stop""#) {
                    break; // the stream ends (a recording may hold several answers)
                }
            }
        }
        assert_eq!(errors, 0, "{name}");
        if name == "spliced-message-start.sse" {
            continue;
        }
        let mut decoded = UsageUpdate::default();
        for e in decode_all(&sse).unwrap() {
            if let Event::Usage(u) = e {
                decoded.merge(&u);
            }
        }
        assert_eq!(sniffed, decoded, "{name}");
    }
}

// ─────────────── chunk boundaries ───────────────

fn decode_split(sse: &[u8], cuts: &[usize]) -> Vec<Event> {
    let mut d = Decoder::new(1 << 20);
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts {
        let c = c.min(sse.len()).max(at);
        d.feed(&sse[at..c], &mut out).unwrap();
        at = c;
    }
    d.feed(&sse[at..], &mut out).unwrap();
    d.finish(&mut out).unwrap();
    out
}

#[test]
fn every_byte_boundary_gives_the_same_events() {
    for name in [
        "anthropic-clear-thinking.1.sse",
        "anthropic-tool-no-args.sse",
        "anthropic-text.sse",
    ] {
        let sse = read(&format!("sse/{name}"));
        let whole = decode_all(&sse).unwrap();
        for cut in 0..=sse.len() {
            assert_eq!(decode_split(&sse, &[cut]), whole, "{name} cut at {cut}");
        }
        // Byte by byte.
        let all: Vec<usize> = (0..sse.len()).collect();
        assert_eq!(decode_split(&sse, &all), whole, "{name} byte by byte");
    }
}

#[test]
fn crlf_framing_gives_the_same_events() {
    let sse = read("sse/anthropic-clear-thinking.1.sse");
    let crlf = String::from_utf8(sse.clone())
        .unwrap()
        .replace('\n', "\r\n");
    assert_eq!(
        decode_all(crlf.as_bytes()).unwrap(),
        decode_all(&sse).unwrap()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_splits_give_the_same_events(mut cuts in proptest::collection::vec(0usize..20_000, 0..40), pick in 0usize..4) {
        let name = ["anthropic-clear-thinking.1.sse", "anthropic-json-output-format.1.sse",
            "anthropic-code-execution-20260120-prompt-cache.1.sse", "anthropic-tool-search-regex.1.sse"][pick];
        let sse = read(&format!("sse/{name}"));
        cuts.sort();
        let cuts: Vec<usize> = cuts.into_iter().map(|c| c % (sse.len() + 1)).collect();
        let mut cuts = cuts;
        cuts.sort();
        prop_assert_eq!(decode_split(&sse, &cuts), decode_all(&sse).unwrap());
    }
}

// ─────────────── requests ───────────────

/// A request shaped like Claude Code's (gateway.md §11), smaller.
fn claude_code_request() -> Value {
    let mut tools: Vec<Value> = (0..11)
        .map(|i| {
            json!({
                "name": format!("Tool{i}"),
                "description": format!("Does thing {i}"),
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
            })
        })
        .collect();
    tools.push(json!({
        "name": "WebFetchLater",
        "description": "loaded on demand",
        "input_schema": {"type": "object", "properties": {}},
        "defer_loading": true,
        "cache_control": {"type": "ephemeral"}
    }));
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": true,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Environment: linux", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "List the files", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should list them.", "signature": "sig-1"},
                {"type": "text", "text": "Listing."},
                {"type": "tool_use", "id": "toolu_01", "name": "Tool0", "input": {"path": "."}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.rs\nb.rs"},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": [{"type": "text", "text": "oops"}], "is_error": true}
            ]},
            {"role": "system", "content": "The user switched to plan mode."},
            {"role": "user", "content": "Now summarize"}
        ],
        "tools": tools,
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "adaptive", "display": "summarized"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "user_abc_account_x_session_y"},
        "temperature": 1
    })
}

#[test]
fn claude_code_request_decodes_with_nothing_untranslatable() {
    let body = serde_json::to_vec(&claude_code_request()).unwrap();
    assert!(body.len() > 1000);
    let req = decode_request(&body).unwrap();
    assert!(req.untranslatable.is_empty(), "{:?}", req.untranslatable);
    assert_eq!(req.model, "claude-sonnet-4-5");
    assert_eq!(req.max_tokens, Some(32000));
    assert!(req.stream);
    assert_eq!(req.system.len(), 2);
    assert!(matches!(&req.system[1], Part::Text { cache: Some(c), .. } if c["ttl"] == "1h"));
    assert_eq!(req.tools.len(), 12);
    assert!(req.tools[11].cache.is_some());
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(
        req.thinking,
        Some(json!({"type": "adaptive", "display": "summarized"}))
    );
    assert_eq!(req.reasoning_effort.as_deref(), Some("high"));
    assert_eq!(req.user.as_deref(), Some("user_abc_account_x_session_y"));
    assert_eq!(req.messages.len(), 5);
    assert_eq!(req.messages[3].role, Role::System);
    assert_eq!(
        req.messages[1].content[0],
        Part::Thinking {
            text: "I should list them.".into(),
            signature: Some("sig-1".into())
        }
    );
    assert!(
        matches!(&req.messages[2].content[1], Part::ToolResult { is_error: true, content, .. } if content.len() == 1)
    );

    // And on to an Anthropic upstream: the mid-conversation system message joins `system`.
    let target = Target {
        provider: "anthropic",
        model: "claude-up",
        default_max_tokens: 4096,
    };
    let out: Value = serde_json::from_slice(&encode_request(&req, &target).unwrap()).unwrap();
    assert_eq!(out["model"], "claude-up");
    assert_eq!(out["system"].as_array().unwrap().len(), 3);
    assert_eq!(out["system"][2]["text"], "The user switched to plan mode.");
    // user, assistant, user (tool results + "Now summarize" merged).
    let msgs = out["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
    assert_eq!(msgs[2]["content"][2]["text"], "Now summarize");
    assert_eq!(
        out["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(out["thinking"]["type"], "adaptive");
    assert_eq!(out["output_config"]["effort"], "high");
    assert_eq!(out["metadata"]["user_id"], "user_abc_account_x_session_y");
    assert_eq!(out["tools"][11].get("defer_loading"), None);
    assert_eq!(out["tools"][11]["cache_control"]["type"], "ephemeral");
}

#[test]
fn server_tools_are_untranslatable() {
    let mut v = claude_code_request();
    v["tools"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 5}));
    v["mcp_servers"] = json!([{"type": "url", "url": "https://x", "name": "x"}]);
    v["messages"].as_array_mut().unwrap().push(json!({"role": "assistant", "content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}}
    ]}));
    let req = decode_request(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(
        req.untranslatable,
        vec![
            "messages[5].content[0].type=server_tool_use",
            "tools[12].type=web_search_20250305",
            "mcp_servers"
        ]
    );
    // The registry refuses it, naming field and provider.
    let target = Target {
        provider: "bedrock",
        model: "m",
        default_max_tokens: 1,
    };
    let err = switchyard::translate::encode_request(
        switchyard::translate::Wire::AnthropicMessages,
        &req,
        &target,
    )
    .unwrap_err();
    assert_eq!(err.status, 400);
    assert!(err.message.contains("server_tool_use") && err.message.contains("bedrock"));
}

// ─────────────── the encoder keeps Anthropic's framing whatever the order ───────────────

fn arb_event() -> impl Strategy<Value = Event> {
    let idx = 0usize..4;
    prop_oneof![
        (idx.clone(), 0u8..4).prop_map(|(index, k)| Event::BlockStart {
            index,
            block: match k {
                0 => Block::Text,
                1 => Block::Thinking,
                2 => Block::RedactedThinking { data: "r".into() },
                _ => Block::ToolUse {
                    id: format!("call_{index}"),
                    name: "f".into()
                },
            },
        }),
        (idx.clone(), "[a-z]{0,3}").prop_map(|(index, s)| Event::Delta {
            index,
            delta: Delta::Text(s)
        }),
        (idx.clone(), "[a-z]{0,3}").prop_map(|(index, s)| Event::Delta {
            index,
            delta: Delta::ToolArgs(s)
        }),
        idx.prop_map(|index| Event::BlockStop { index }),
        (0u64..100).prop_map(|n| Event::Usage(UsageUpdate {
            output: Some(n),
            ..Default::default()
        })),
        Just(Event::Stop {
            reason: StopReason::ToolUse,
            sequence: None
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn encoder_output_is_well_formed_for_any_event_order(events in proptest::collection::vec(arb_event(), 0..30)) {
        let mut all = vec![Event::Start { id: "m".into(), model: "x".into() }];
        all.extend(events);
        all.push(Event::Done);
        let out = reencode(&all);
        // summarize(strict) asserts the framing: message_start first, one block open at a
        // time, consecutive indices, deltas for the open block, message_delta, message_stop.
        let s = summarize(&out, true);
        prop_assert!(s.stopped);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Any bytes, or a recorded stream with bytes changed: an answer or an error, never a panic.
    #[test]
    fn decoder_never_panics(noise in proptest::collection::vec(any::<u8>(), 0..400),
                            flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8)) {
        let mut d = Decoder::new(256);
        let mut out = Vec::new();
        let _ = d.feed(&noise, &mut out).and_then(|_| d.finish(&mut out));

        let mut sse = read("sse/anthropic-tool-no-args.sse");
        for (at, b) in flips {
            let n = sse.len();
            sse[at % n] = b;
        }
        let mut d = Decoder::new(1 << 16);
        let mut out = Vec::new();
        let _ = d.feed(&sse, &mut out).and_then(|_| d.finish(&mut out));
        for u in [usage_in_event(&noise), usage_in_body(&noise), usage_in_body(&sse)].into_iter().flatten() {
            let _ = u;
        }
        let _ = decode_response(&noise);
        let _ = decode_request(&noise);
        let _ = anthropic::decode_error(500, &noise);
    }
}
