//! Golden tests for the OpenAI chat dialect's translation sides, over recorded traffic:
//! provider SSE streams (vercel/ai fixtures re-framed as SSE) and OpenAI request/response
//! pairs (envoyproxy/ai-gateway go-vcr cassettes). Sources: tests/fixtures/SOURCES.md.

use proptest::prelude::*;
use serde_json::Value;
use switchyard::translate::ir::*;
use switchyard::translate::openai::{
    decode_error, decode_request, decode_response, encode_request, Decoder, Encoder,
};
use switchyard::translate::{self, Wire};

const SSE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openai/sse");
const CASSETTE_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/openai/cassettes"
);

fn files(dir: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {dir}");
    out
}

fn decode_chunks(chunks: &[&[u8]]) -> Vec<Event> {
    let mut d = Decoder::new(1 << 20);
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out).unwrap();
    }
    d.finish(&mut out).unwrap();
    out
}

fn decode_whole(bytes: &[u8]) -> Vec<Event> {
    decode_chunks(&[bytes])
}

/// What the fixture itself says, read straight from its JSON chunks.
#[derive(Debug, Default)]
struct Expected {
    text: String,
    thinking: String,
    /// (id, name, arguments) in order of first appearance.
    tools: Vec<(String, String, String)>,
    finish: Option<String>,
    usage: Option<Value>,
}

fn expected_from_fixture(bytes: &[u8]) -> Expected {
    let mut e = Expected::default();
    let mut by_index: Vec<(u64, usize)> = Vec::new();
    for line in String::from_utf8_lossy(bytes).lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            e.usage = Some(u.clone());
        }
        let Some(choice) = v["choices"].get(0) else {
            continue;
        };
        let delta = &choice["delta"];
        match &delta["content"] {
            Value::String(s) => e.text.push_str(s),
            Value::Array(parts) => {
                for p in parts {
                    match p["type"].as_str() {
                        Some("text") => e.text.push_str(p["text"].as_str().unwrap()),
                        Some("thinking") => {
                            for t in p["thinking"].as_array().unwrap() {
                                e.thinking.push_str(t["text"].as_str().unwrap())
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        if let Some(r) = delta["reasoning_content"].as_str() {
            e.thinking.push_str(r);
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            for (pos, c) in calls.iter().enumerate() {
                let k = c["index"].as_u64().unwrap_or(pos as u64);
                let slot = match by_index.iter().find(|(i, _)| *i == k) {
                    Some((_, s)) => *s,
                    None => {
                        e.tools.push((
                            c["id"].as_str().unwrap().to_string(),
                            c["function"]["name"].as_str().unwrap().to_string(),
                            String::new(),
                        ));
                        by_index.push((k, e.tools.len() - 1));
                        e.tools.len() - 1
                    }
                };
                if let Some(a) = c["function"]["arguments"].as_str() {
                    e.tools[slot].2.push_str(a);
                }
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            e.finish = Some(f.to_string());
        }
    }
    e
}

/// The same summary, read from decoded events; also checks the event grammar.
fn observed(events: &[Event]) -> Expected {
    let mut e = Expected::default();
    let mut tool_slot: Vec<(usize, usize)> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    assert!(
        matches!(events.first(), Some(Event::Start { .. })),
        "starts with Start: {events:?}"
    );
    assert_eq!(events.last(), Some(&Event::Done));
    let mut stopped = false;
    for ev in events {
        match ev {
            Event::BlockStart { index, block } => {
                assert!(!stopped);
                open.push(*index);
                if let Block::ToolUse { id, name } = block {
                    e.tools.push((id.clone(), name.clone(), String::new()));
                    tool_slot.push((*index, e.tools.len() - 1));
                }
            }
            Event::Delta { index, delta } => {
                assert!(open.contains(index), "delta on an open block");
                match delta {
                    Delta::Text(s) => e.text.push_str(s),
                    Delta::Thinking(s) => e.thinking.push_str(s),
                    Delta::ToolArgs(s) => {
                        let slot = tool_slot.iter().find(|(b, _)| b == index).unwrap().1;
                        e.tools[slot].2.push_str(s);
                    }
                    Delta::Signature(_) => {}
                }
            }
            Event::BlockStop { index } => open.retain(|i| i != index),
            Event::Stop { reason, .. } => {
                assert!(open.is_empty(), "every block closed before Stop");
                stopped = true;
                e.finish = Some(match reason {
                    StopReason::EndTurn => "stop".into(),
                    StopReason::MaxTokens => "length".into(),
                    StopReason::ToolUse => "tool_calls".into(),
                    StopReason::Refusal => "content_filter".into(),
                    other => format!("{other:?}"),
                });
            }
            _ => {}
        }
    }
    e
}

fn merged_usage(events: &[Event]) -> Option<UsageUpdate> {
    let mut u: Option<UsageUpdate> = None;
    for ev in events {
        if let Event::Usage(x) = ev {
            u.get_or_insert_with(UsageUpdate::default).merge(x);
        }
    }
    u
}

fn encode(events: &[Event], include_usage: bool) -> Vec<u8> {
    let mut enc = Encoder::new(ClientOpts {
        model: "m".into(),
        fallback_id: "f".into(),
        include_usage,
        created: 1,
    });
    let mut out = Vec::new();
    for ev in events {
        enc.encode(ev, &mut out);
    }
    out
}

#[test]
fn sse_fixtures_decode_to_what_they_say() {
    for (name, bytes) in files(SSE_DIR, "sse") {
        let events = decode_whole(&bytes);
        let want = expected_from_fixture(&bytes);
        let got = observed(&events);
        assert_eq!(got.text, want.text, "{name}: text");
        assert_eq!(got.thinking, want.thinking, "{name}: thinking");
        assert_eq!(got.tools, want.tools, "{name}: tools");
        assert_eq!(got.finish, want.finish, "{name}: finish");
        let usage = merged_usage(&events);
        match &want.usage {
            None => assert_eq!(usage, None, "{name}"),
            Some(u) => {
                let usage = usage.unwrap_or_else(|| panic!("{name}: usage"));
                assert_eq!(usage.input, u["prompt_tokens"].as_u64(), "{name}: input");
                assert_eq!(
                    usage.output,
                    u["completion_tokens"].as_u64(),
                    "{name}: output"
                );
                assert_eq!(
                    usage.cached_input,
                    u["prompt_tokens_details"]["cached_tokens"].as_u64(),
                    "{name}: cached"
                );
                assert_eq!(
                    usage.reasoning,
                    u["completion_tokens_details"]["reasoning_tokens"].as_u64(),
                    "{name}: reasoning"
                );
            }
        }
    }
}

/// Events with usage taken out (the encoder holds usage to the end and writes zeros for
/// counts never given, so usage is compared as the totals it bills).
fn without_usage(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| !matches!(e, Event::Usage(_)))
        .cloned()
        .collect()
}

#[test]
fn sse_fixtures_survive_encode_then_decode() {
    for (name, bytes) in files(SSE_DIR, "sse") {
        let events = decode_whole(&bytes);
        let again = decode_whole(&encode(&events, true));
        assert_eq!(without_usage(&again), without_usage(&events), "{name}");
        assert_eq!(
            merged_usage(&again).map(|u| u.to_usage()),
            Some(merged_usage(&events).unwrap_or_default().to_usage()),
            "{name}: usage"
        );
        // Without include_usage the client sees no usage chunk at all.
        let plain = encode(&events, false);
        assert!(
            !String::from_utf8_lossy(&plain).contains("\"usage\""),
            "{name}"
        );
        assert_eq!(merged_usage(&decode_whole(&plain)), None);
    }
}

#[test]
fn small_fixtures_split_at_every_byte_give_the_same_events() {
    for (name, bytes) in files(SSE_DIR, "sse")
        .into_iter()
        .filter(|(_, b)| b.len() < 4096)
    {
        let whole = decode_whole(&bytes);
        for cut in 0..=bytes.len() {
            assert_eq!(
                decode_chunks(&[&bytes[..cut], &bytes[cut..]]),
                whole,
                "{name} cut at {cut}"
            );
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_chunks(&singles), whole, "{name} byte by byte");
    }
}

fn crlf(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes)
        .replace('\n', "\r\n")
        .into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_splits_give_the_same_events(file in 0usize..10, cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40), use_crlf in any::<bool>()) {
        let all = files(SSE_DIR, "sse");
        let (_, bytes) = &all[file % all.len()];
        let bytes = if use_crlf { crlf(bytes) } else { bytes.clone() };
        let whole = decode_whole(&bytes);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for p in points {
            chunks.push(&bytes[at..p]);
            at = p;
        }
        chunks.push(&bytes[at..]);
        prop_assert_eq!(decode_chunks(&chunks), whole);
    }

    #[test]
    fn decoder_never_panics_on_noise(noise in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut d = Decoder::new(256);
        let mut out = Vec::new();
        let _ = d.feed(&noise, &mut out);
        let _ = d.finish(&mut out);
    }

    #[test]
    fn decode_request_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_request(&body);
        let _ = decode_response(&body);
        let _ = decode_error(500, &body);
    }
}

// ───────────────────────────── cassettes ─────────────────────────────

struct Interaction {
    name: String,
    request: String,
    status: u16,
    response: String,
}

fn cassettes() -> Vec<Interaction> {
    let mut out = Vec::new();
    for (name, bytes) in files(CASSETTE_DIR, "yaml") {
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&bytes).unwrap();
        for it in doc["interactions"].as_sequence().unwrap() {
            out.push(Interaction {
                name: name.clone(),
                request: it["request"]["body"].as_str().unwrap().to_string(),
                status: it["response"]["code"].as_u64().unwrap() as u16,
                response: it["response"]["body"].as_str().unwrap().to_string(),
            });
        }
    }
    out
}

fn target() -> Target<'static> {
    Target {
        provider: "vllm",
        model: "upstream-model",
        default_max_tokens: 1024,
    }
}

#[test]
fn cassette_requests_decode_or_name_what_cannot_be_translated() {
    let refused = [
        (
            "chat-audio-to-text.yaml",
            "messages[0].content[1].type=input_audio",
        ),
        ("chat-text-to-audio.yaml", "audio"),
        ("chat-web-search.yaml", "web_search_options"),
        ("chat-streaming-web-search.yaml", "web_search_options"),
    ];
    let mut decoded = 0;
    for it in cassettes() {
        let req = match decode_request(it.request.as_bytes()) {
            Ok(r) => r,
            Err(e) => {
                // Only the recording of a request without messages may fail to decode.
                let v: Value = serde_json::from_str(&it.request).unwrap();
                assert!(
                    v["messages"].as_array().is_none_or(|m| m.is_empty()),
                    "{}: {e:?}",
                    it.name
                );
                continue;
            }
        };
        decoded += 1;
        match refused.iter().find(|(n, _)| *n == it.name) {
            Some((_, field)) => {
                assert!(
                    req.untranslatable.iter().any(|u| u == field),
                    "{}: {:?}",
                    it.name,
                    req.untranslatable
                );
                let e = translate::encode_request(Wire::OpenAiChat, &req, &target()).unwrap_err();
                assert_eq!(e.status, 400);
                assert!(e.message.contains("vllm"), "{}", e.message);
            }
            None => assert!(
                req.untranslatable.is_empty(),
                "{}: {:?}",
                it.name,
                req.untranslatable
            ),
        }
    }
    assert!(decoded >= 19, "decoded {decoded}");
}

/// decode_request → encode_request keeps the conversation: roles, texts, tool calls and
/// their ids, and the tools.
#[test]
fn cassette_requests_round_trip_to_an_openai_upstream() {
    let mut checked = 0;
    for it in cassettes() {
        let Ok(req) = decode_request(it.request.as_bytes()) else {
            continue;
        };
        if !req.untranslatable.is_empty() {
            continue;
        }
        let body = encode_request(&req, &target()).unwrap();
        let sent: Value = serde_json::from_slice(&body).unwrap();
        let orig: Value = serde_json::from_str(&it.request).unwrap();
        assert_eq!(sent["model"], "upstream-model");
        let (a, b) = (
            orig["messages"].as_array().unwrap(),
            sent["messages"].as_array().unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{}", it.name);
        for (x, y) in a.iter().zip(b) {
            let role = |m: &Value| match m["role"].as_str().unwrap() {
                "developer" => "system".to_string(),
                r => r.to_string(),
            };
            assert_eq!(role(x), role(y), "{}", it.name);
            let texts = |m: &Value| -> String {
                match &m["content"] {
                    Value::String(s) => s.clone(),
                    Value::Array(p) => p
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .collect::<Vec<_>>()
                        .join("\n\n"),
                    _ => String::new(),
                }
            };
            assert_eq!(texts(x), texts(y), "{}", it.name);
            let images = |m: &Value| -> Vec<String> {
                m["content"]
                    .as_array()
                    .map(|p| {
                        p.iter()
                            .filter_map(|p| p["image_url"]["url"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            assert_eq!(images(x), images(y), "{}", it.name);
            let calls = |m: &Value| -> Vec<(String, String, Value)> {
                m["tool_calls"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .map(|c| {
                                (
                                    c["id"].as_str().unwrap().to_string(),
                                    c["function"]["name"].as_str().unwrap().to_string(),
                                    serde_json::from_str(
                                        c["function"]["arguments"].as_str().unwrap(),
                                    )
                                    .unwrap(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            assert_eq!(calls(x), calls(y), "{}", it.name);
            assert_eq!(x["tool_call_id"], y["tool_call_id"], "{}", it.name);
        }
        let tools = |v: &Value| -> Vec<(Value, Value)> {
            v["tools"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .map(|t| {
                            (
                                t["function"]["name"].clone(),
                                t["function"]["parameters"].clone(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(tools(&orig), tools(&sent), "{}", it.name);
        for key in ["tool_choice", "parallel_tool_calls", "response_format"] {
            if !orig[key].is_null() {
                assert_eq!(orig[key], sent[key], "{}: {key}", it.name);
            }
        }
        assert_eq!(
            orig["temperature"].as_f64(),
            sent["temperature"].as_f64(),
            "{}",
            it.name
        );
        if let Some(m) = orig["max_completion_tokens"]
            .as_u64()
            .or(orig["max_tokens"].as_u64())
        {
            assert_eq!(sent["max_tokens"].as_u64(), Some(m), "{}", it.name);
        }
        checked += 1;
    }
    assert!(checked >= 14, "checked {checked}");
}

#[test]
fn cassette_responses_decode() {
    let mut whole = 0;
    let mut streamed = 0;
    let mut errors = 0;
    for it in cassettes() {
        if it.status != 200 {
            let want: Value = serde_json::from_str(&it.response).unwrap();
            let e = decode_error(it.status, it.response.as_bytes());
            assert_eq!(e.status, it.status);
            assert_eq!(
                e.message,
                want["error"]["message"].as_str().unwrap(),
                "{}",
                it.name
            );
            errors += 1;
        } else if it.response.trim_start().starts_with("data:") {
            let events = decode_whole(it.response.as_bytes());
            let want = expected_from_fixture(it.response.as_bytes());
            let got = observed(&events);
            assert_eq!(
                (got.text, got.finish),
                (want.text, want.finish),
                "{}",
                it.name
            );
            if let Some(u) = want.usage {
                assert_eq!(
                    merged_usage(&events).unwrap().input,
                    u["prompt_tokens"].as_u64()
                );
            }
            streamed += 1;
        } else {
            let r = decode_response(it.response.as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e:?}", it.name));
            let v: Value = serde_json::from_str(&it.response).unwrap();
            let msg = &v["choices"][0]["message"];
            assert_eq!(r.id, v["id"].as_str().unwrap());
            assert_eq!(r.model, v["model"].as_str().unwrap());
            let text: String = r
                .content
                .iter()
                .filter_map(|p| match p {
                    Part::Text { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(text, msg["content"].as_str().unwrap_or(""), "{}", it.name);
            let ids: Vec<&str> = r
                .content
                .iter()
                .filter_map(|p| match p {
                    Part::ToolUse { id, .. } => Some(id.as_str()),
                    _ => None,
                })
                .collect();
            let want_ids: Vec<&str> = msg["tool_calls"]
                .as_array()
                .map(|c| c.iter().map(|c| c["id"].as_str().unwrap()).collect())
                .unwrap_or_default();
            assert_eq!(ids, want_ids, "{}", it.name);
            let u = &v["usage"];
            assert_eq!(r.usage.input, u["prompt_tokens"].as_u64());
            assert_eq!(r.usage.output, u["completion_tokens"].as_u64());
            assert_eq!(
                r.usage.cached_input,
                u["prompt_tokens_details"]["cached_tokens"].as_u64()
            );
            assert_eq!(
                r.usage.reasoning,
                u["completion_tokens_details"]["reasoning_tokens"].as_u64()
            );
            // And back out to an OpenAI client: same text, tool calls and usage.
            let out: Value = serde_json::from_slice(&translate::encode_response(
                switchyard::errors::ClientDialect::OpenAi,
                &r,
                &ClientOpts::default(),
            ))
            .unwrap();
            assert_eq!(
                out["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or(""),
                msg["content"].as_str().unwrap_or(""),
                "{}",
                it.name
            );
            assert_eq!(
                out["choices"][0]["message"]["content"].is_null(),
                msg["content"].is_null() && !msg["tool_calls"].is_null(),
                "{}",
                it.name
            );
            assert_eq!(
                out["choices"][0]["finish_reason"], v["choices"][0]["finish_reason"],
                "{}",
                it.name
            );
            assert_eq!(
                out["usage"]["total_tokens"], u["total_tokens"],
                "{}",
                it.name
            );
            if !msg["tool_calls"].is_null() {
                assert_eq!(
                    out["choices"][0]["message"]["tool_calls"], msg["tool_calls"],
                    "{}",
                    it.name
                );
            }
            whole += 1;
        }
    }
    assert_eq!((whole, streamed, errors), (14, 3, 3));
}
