//! Bedrock Converse translation against recorded answers: eventstream fixtures through the
//! stream decoder (checked against the decoded `.chunks.txt` events they were built from),
//! Converse JSON through `decode_response`, errors, request encoding, paths.

use proptest::prelude::*;
use serde_json::{json, Value};
use switchyard::eventstream::encode_frame;
use switchyard::translate::bedrock::{self, Decoder};
use switchyard::translate::ir::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bedrock/");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Streams with the `.chunks.txt` they were framed from.
const STREAMS: &[&str] = &[
    "amazon-bedrock-json-only-text-first.1",
    "amazon-bedrock-json-other-tool.1",
    "amazon-bedrock-json-tool-text-then-weather-then-json.1",
    "amazon-bedrock-json-tool.1",
    "amazon-bedrock-json-tool.2",
    "amazon-bedrock-json-tool.3",
    "amazon-bedrock-json-with-tool.1",
    "amazon-bedrock-json-with-tools.1",
    "amazon-bedrock-reasoning",
    "amazon-bedrock-text",
    "amazon-bedrock-tool-call.1",
    "amazon-bedrock-tool-no-args",
];

const MAX_EVENT: usize = 1 << 20;

fn decode_chunks(
    bytes: &[u8],
    cuts: &[usize],
) -> Result<Vec<Event>, switchyard::errors::GatewayError> {
    let mut d = Decoder::new(MAX_EVENT);
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts {
        let end = (at + c).min(bytes.len());
        d.feed(&bytes[at..end], &mut out)?;
        at = end;
    }
    d.feed(&bytes[at..], &mut out)?;
    d.finish(&mut out)?;
    Ok(out)
}

fn decode_all(bytes: &[u8]) -> Vec<Event> {
    decode_chunks(bytes, &[]).expect("stream decodes")
}

/// One content block as a client would assemble it.
#[derive(Debug, Default, PartialEq)]
struct Assembled {
    kind: &'static str,
    text: String,
    signature: Option<String>,
    tool_id: String,
    tool_name: String,
    data: String,
}

#[derive(Debug, Default, PartialEq)]
struct Answer {
    blocks: Vec<Assembled>,
    stop: Option<StopReason>,
    usage: UsageUpdate,
    done: bool,
}

/// Folds events into an answer, checking the ir order on the way.
fn assemble(events: &[Event]) -> Answer {
    let mut a = Answer::default();
    let mut open: Vec<usize> = Vec::new();
    assert!(
        matches!(events.first(), Some(Event::Start { .. })),
        "Start first: {events:?}"
    );
    for (n, e) in events.iter().enumerate() {
        assert!(!a.done, "event after Done: {e:?}");
        match e {
            Event::Start { id, model } => {
                assert_eq!(n, 0, "one Start");
                assert!(id.is_empty() && model.is_empty());
            }
            Event::BlockStart { index, block } => {
                assert_eq!(*index, a.blocks.len(), "indices count from 0 in order");
                assert!(a.stop.is_none());
                let mut b = Assembled::default();
                match block {
                    Block::Text => b.kind = "text",
                    Block::Thinking => b.kind = "thinking",
                    Block::RedactedThinking { data } => {
                        b.kind = "redacted";
                        b.data = data.clone();
                    }
                    Block::ToolUse { id, name } => {
                        b.kind = "tool";
                        b.tool_id = id.clone();
                        b.tool_name = name.clone();
                    }
                }
                a.blocks.push(b);
                open.push(*index);
            }
            Event::Delta { index, delta } => {
                assert!(open.contains(index), "delta on a closed block");
                let b = &mut a.blocks[*index];
                match delta {
                    Delta::Text(t) => {
                        assert_eq!(b.kind, "text");
                        b.text.push_str(t)
                    }
                    Delta::Thinking(t) => {
                        assert_eq!(b.kind, "thinking");
                        b.text.push_str(t)
                    }
                    Delta::Signature(s) => {
                        assert_eq!(b.kind, "thinking");
                        b.signature = Some(s.clone())
                    }
                    Delta::ToolArgs(t) => {
                        assert_eq!(b.kind, "tool");
                        b.text.push_str(t)
                    }
                }
            }
            Event::BlockStop { index } => {
                assert!(open.contains(index), "stop of a closed block");
                open.retain(|i| i != index);
            }
            Event::Stop { reason, .. } => {
                assert!(open.is_empty(), "Stop with blocks open");
                a.stop = Some(reason.clone());
            }
            Event::Usage(u) => a.usage.merge(u),
            Event::Error(e) => panic!("unexpected error {e:?}"),
            Event::Done => a.done = true,
        }
    }
    a
}

/// The same answer, read straight from the decoded events of the `.chunks.txt`.
fn expected(chunks: &str) -> Answer {
    let mut a = Answer::default();
    // Bedrock index → position in a.blocks.
    let mut by_index: Vec<(u64, usize)> = Vec::new();
    for line in chunks.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let (kind, p) = v.as_object().unwrap().iter().next().unwrap();
        let bi = p["contentBlockIndex"].as_u64().unwrap_or(0);
        let pos = by_index.iter().find(|(i, _)| *i == bi).map(|(_, p)| *p);
        let mut block_at = |a: &mut Answer, kind: &'static str| -> usize {
            match pos {
                Some(p) => p,
                None => {
                    a.blocks.push(Assembled {
                        kind,
                        ..Default::default()
                    });
                    by_index.push((bi, a.blocks.len() - 1));
                    a.blocks.len() - 1
                }
            }
        };
        match kind.as_str() {
            "contentBlockStart" => {
                if let Some(t) = p["start"].get("toolUse") {
                    let i = block_at(&mut a, "tool");
                    a.blocks[i].tool_id = t["toolUseId"].as_str().unwrap().into();
                    a.blocks[i].tool_name = t["name"].as_str().unwrap().into();
                }
            }
            "contentBlockDelta" => {
                let d = &p["delta"];
                if let Some(t) = d.get("text") {
                    let i = block_at(&mut a, "text");
                    a.blocks[i].text.push_str(t.as_str().unwrap());
                } else if let Some(t) = d.get("toolUse") {
                    let i = block_at(&mut a, "tool");
                    a.blocks[i].text.push_str(t["input"].as_str().unwrap());
                } else if let Some(r) = d.get("reasoningContent") {
                    let i = block_at(&mut a, "thinking");
                    if let Some(t) = r.get("text") {
                        a.blocks[i].text.push_str(t.as_str().unwrap());
                    }
                    if let Some(s) = r.get("signature") {
                        a.blocks[i].signature = Some(s.as_str().unwrap().into());
                    }
                }
            }
            "contentBlockStop" => by_index.retain(|(i, _)| *i != bi),
            "messageStop" => {
                a.stop = Some(match p["stopReason"].as_str().unwrap() {
                    "end_turn" => StopReason::EndTurn,
                    "tool_use" => StopReason::ToolUse,
                    "max_tokens" => StopReason::MaxTokens,
                    "stop_sequence" => StopReason::StopSequence,
                    other => panic!("fixture stop reason {other}"),
                })
            }
            "metadata" => {
                let u = &p["usage"];
                let n = |k: &str| u.get(k).and_then(Value::as_u64);
                a.usage = UsageUpdate {
                    input: Some(
                        n("inputTokens").unwrap()
                            + n("cacheReadInputTokens").unwrap_or(0)
                            + n("cacheWriteInputTokens").unwrap_or(0),
                    ),
                    cached_input: n("cacheReadInputTokens"),
                    cache_creation_input: n("cacheWriteInputTokens"),
                    output: n("outputTokens"),
                    reasoning: None,
                };
            }
            "messageStart" => {}
            other => panic!("fixture event {other}"),
        }
    }
    // Done once messageStop was seen (with metadata at once, else at the end of the body).
    a.done = a.stop.is_some();
    a
}

#[test]
fn every_stream_fixture_matches_its_decoded_events() {
    for name in STREAMS {
        let events = decode_all(&read(&format!("{name}.converse-stream.bin")));
        let chunks = String::from_utf8(read(&format!("{name}.chunks.txt"))).unwrap();
        assert_eq!(assemble(&events), expected(&chunks), "{name}");
    }
}

#[test]
fn reasoning_stream_event_by_event() {
    let events = decode_all(&read("amazon-bedrock-reasoning.converse-stream.bin"));
    assert_eq!(
        &events[..3],
        &[
            Event::Start {
                id: String::new(),
                model: String::new()
            },
            Event::BlockStart {
                index: 0,
                block: Block::Thinking
            },
            Event::Delta {
                index: 0,
                delta: Delta::Thinking("Let me count the r".into())
            },
        ]
    );
    let n = events.len();
    assert_eq!(
        &events[n - 3..],
        &[
            Event::Stop {
                reason: StopReason::EndTurn,
                sequence: None
            },
            Event::Usage(UsageUpdate {
                input: Some(51),
                cached_input: None,
                cache_creation_input: None,
                output: Some(94),
                reasoning: None
            }),
            Event::Done,
        ]
    );
    assert!(events.contains(&Event::BlockStop { index: 0 }));
    assert!(events.contains(&Event::BlockStart {
        index: 1,
        block: Block::Text
    }));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Delta { index: 0, delta: Delta::Signature(s) } if s.starts_with("Ep0CCkgICxAB")
    )));
}

#[test]
fn metadata_before_message_stop_still_ends_with_done() {
    // tool-no-args sends `metadata` before `messageStop`.
    let events = decode_all(&read("amazon-bedrock-tool-no-args.converse-stream.bin"));
    assert_eq!(events.last(), Some(&Event::Done));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::BlockStart { block: Block::ToolUse { id, name }, .. }
            if id == "tool-use-id" && name == "updateIssueList"
    )));
    // Done goes out at messageStop, not only at finish().
    let mut d = Decoder::new(MAX_EVENT);
    let mut out = Vec::new();
    d.feed(
        &read("amazon-bedrock-tool-no-args.converse-stream.bin"),
        &mut out,
    )
    .unwrap();
    assert_eq!(out.last(), Some(&Event::Done));
    let mut more = Vec::new();
    d.finish(&mut more).unwrap();
    assert!(more.is_empty());
}

#[test]
fn model_stream_error_exception_is_a_terminal_error() {
    let events = decode_all(&read("model-stream-error-exception.converse-stream.bin"));
    assert_eq!(
        events,
        vec![
            Event::Start {
                id: String::new(),
                model: String::new()
            },
            Event::BlockStart {
                index: 0,
                block: Block::Text
            },
            Event::Delta {
                index: 0,
                delta: Delta::Text("before error".into())
            },
            Event::Error(switchyard::errors::GatewayError::new(
                502,
                "Model Stream Error"
            )),
        ]
    );
}

fn event_frame(kind: &str, payload: Value) -> Vec<u8> {
    encode_frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

#[test]
fn exception_frames_map_to_statuses_and_stop_the_stream() {
    for (kind, status) in [
        ("throttlingException", 429),
        ("serviceUnavailableException", 503),
        ("modelStreamErrorException", 502),
        ("validationException", 400),
        ("internalServerException", 500),
        ("modelTimeoutException", 504),
        ("somethingNewException", 502),
    ] {
        let mut bytes = event_frame("messageStart", json!({"role": "assistant"}));
        bytes.extend(encode_frame(
            &[(":message-type", "exception"), (":exception-type", kind)],
            br#"{"message":"Too many tokens, please wait."}"#,
        ));
        // Nothing after the error, even a well-formed event.
        bytes.extend(event_frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "late"}}),
        ));
        let events = decode_all(&bytes);
        assert_eq!(events.len(), 2, "{kind}: {events:?}");
        assert_eq!(
            events[1],
            Event::Error(switchyard::errors::GatewayError::new(
                status,
                "Too many tokens, please wait."
            ))
        );
    }
}

#[test]
fn error_frames_use_their_headers() {
    let bytes = encode_frame(
        &[
            (":message-type", "error"),
            (":error-code", "ThrottlingException"),
            (":error-message", "Rate exceeded"),
        ],
        b"",
    );
    assert_eq!(
        decode_all(&bytes),
        vec![Event::Error(switchyard::errors::GatewayError::new(
            429,
            "Rate exceeded"
        ))]
    );
}

#[test]
fn redacted_reasoning_and_stop_without_metadata() {
    let mut bytes = event_frame("messageStart", json!({"role": "assistant"}));
    bytes.extend(event_frame(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"redactedContent": "c2VjcmV0"}}}),
    ));
    bytes.extend(event_frame(
        "contentBlockStop",
        json!({"contentBlockIndex": 0}),
    ));
    bytes.extend(event_frame(
        "contentBlockDelta",
        json!({"contentBlockIndex": 1, "delta": {"text": "hi"}}),
    ));
    bytes.extend(event_frame(
        "messageStop",
        json!({"stopReason": "guardrail_intervened"}),
    ));
    let mut d = Decoder::new(MAX_EVENT);
    let mut out = Vec::new();
    d.feed(&bytes, &mut out).unwrap();
    assert_ne!(out.last(), Some(&Event::Done), "Done waits for metadata");
    d.finish(&mut out).unwrap();
    assert_eq!(
        out,
        vec![
            Event::Start {
                id: String::new(),
                model: String::new()
            },
            Event::BlockStart {
                index: 0,
                block: Block::RedactedThinking {
                    data: "c2VjcmV0".into()
                }
            },
            Event::BlockStop { index: 0 },
            Event::BlockStart {
                index: 1,
                block: Block::Text
            },
            Event::Delta {
                index: 1,
                delta: Delta::Text("hi".into())
            },
            // messageStop closes what Bedrock left open.
            Event::BlockStop { index: 1 },
            Event::Stop {
                reason: StopReason::Refusal,
                sequence: None
            },
            Event::Done,
        ]
    );
}

#[test]
fn a_cut_stream_emits_no_done() {
    let bytes = read("amazon-bedrock-text.converse-stream.bin");
    let cut = &bytes[..bytes.len() / 2];
    let events = decode_chunks(cut, &[]).unwrap();
    assert!(!events.contains(&Event::Done));
}

#[test]
fn corrupted_frames_are_errors() {
    let good = read("amazon-bedrock-text.converse-stream.bin");
    for at in [0, 5, 9, 14, 40, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x20;
        let err = decode_chunks(&bad, &[]).unwrap_err();
        assert_eq!(err.status, 502, "byte {at}: {err:?}");
    }
    // A frame over the limit.
    let mut d = Decoder::new(64);
    let mut out = Vec::new();
    let err = d.feed(&good, &mut out).unwrap_err();
    assert_eq!(err.status, 502);
    assert!(err.message.contains("frame"), "{}", err.message);
}

#[test]
fn every_two_way_split_gives_the_same_events() {
    let bytes = read("amazon-bedrock-json-tool-text-then-weather-then-json.1.converse-stream.bin");
    let whole = decode_all(&bytes);
    for at in 0..=bytes.len() {
        assert_eq!(
            decode_chunks(&bytes, &[at]).unwrap(),
            whole,
            "split at {at}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_splits_give_the_same_events(
        which in 0..STREAMS.len() + 1,
        cuts in proptest::collection::vec(0usize..200, 0..40),
    ) {
        let name = STREAMS.get(which).copied().unwrap_or("model-stream-error-exception");
        let bytes = read(&format!("{name}.converse-stream.bin"));
        let whole = decode_chunks(&bytes, &[]).unwrap();
        prop_assert_eq!(decode_chunks(&bytes, &cuts).unwrap(), whole);
    }
}

// ---- whole answers -------------------------------------------------------------------

#[test]
fn every_converse_json_fixture_decodes() {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("amazon-bedrock-") && n.ends_with(".json"))
        .filter(|n| !n.contains("validation-error"))
        .collect();
    names.push("issue-11363-stop-sequence-null.json".into());
    names.sort();
    assert!(names.len() >= 13, "{names:?}");
    for name in &names {
        let raw = read(name);
        let v: Value = serde_json::from_slice(&raw).unwrap();
        let r = bedrock::decode_response(&raw).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(r.id.is_empty() && r.model.is_empty());
        let blocks = v["output"]["message"]["content"].as_array().unwrap();
        assert_eq!(r.content.len(), blocks.len(), "{name}: every block kept");
        for (b, p) in blocks.iter().zip(&r.content) {
            match p {
                Part::Text { text, .. } => assert_eq!(b["text"], json!(text), "{name}"),
                Part::ToolUse {
                    id, name: n, input, ..
                } => {
                    assert_eq!(b["toolUse"]["toolUseId"], json!(id));
                    assert_eq!(b["toolUse"]["name"], json!(n));
                    assert_eq!(&b["toolUse"]["input"], input);
                }
                Part::Thinking { text, signature } => {
                    let rt = &b["reasoningContent"]["reasoningText"];
                    assert_eq!(rt["text"], json!(text));
                    assert_eq!(rt["signature"], json!(signature));
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let u = &v["usage"];
        let n = |k: &str| u[k].as_u64().unwrap_or(0);
        assert_eq!(
            r.usage.input,
            Some(n("inputTokens") + n("cacheReadInputTokens") + n("cacheWriteInputTokens")),
            "{name}"
        );
        assert_eq!(r.usage.output, Some(n("outputTokens")));
        let stop = v["stopReason"].as_str().unwrap();
        let want = match stop {
            "end_turn" => StopReason::EndTurn,
            "tool_use" => StopReason::ToolUse,
            "max_tokens" => StopReason::MaxTokens,
            "stop_sequence" => StopReason::StopSequence,
            "guardrail_intervened" | "content_filtered" => StopReason::Refusal,
            other => StopReason::Other(other.into()),
        };
        assert_eq!(r.stop, want, "{name}");
    }
}

#[test]
fn all_text_blocks_are_kept_and_cache_usage_is_inclusive() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "one"}, {"text": "two"},
            {"reasoningContent": {"redactedContent": "AAEC"}}
        ]}},
        "stopReason": "content_filtered",
        "additionalModelResponseFields": {"stop_sequence": null},
        "usage": {"inputTokens": 10, "outputTokens": 5, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 7}
    });
    let r = bedrock::decode_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        r.content,
        vec![
            Part::Text {
                text: "one".into(),
                cache: None
            },
            Part::Text {
                text: "two".into(),
                cache: None
            },
            Part::RedactedThinking {
                data: "AAEC".into()
            },
        ]
    );
    assert_eq!(r.stop, StopReason::Refusal);
    assert_eq!(
        r.usage,
        UsageUpdate {
            input: Some(117),
            cached_input: Some(100),
            cache_creation_input: Some(7),
            output: Some(5),
            reasoning: None
        }
    );
    let r = bedrock::decode_response(
        br#"{"output":{"message":{"content":[]}},"stopReason":"stop_sequence","additionalModelResponseFields":{"stop_sequence":"END"}}"#,
    )
    .unwrap();
    assert_eq!(r.stop, StopReason::StopSequence);
    assert_eq!(r.stop_sequence.as_deref(), Some("END"));
}

#[test]
fn a_200_without_output_is_a_502() {
    let e = bedrock::decode_response(&read("issue-17523-unknown-operation.json")).unwrap_err();
    assert_eq!(e.status, 502);
    assert!(
        e.message
            .contains("com.amazon.coral.service#UnknownOperationException"),
        "{}",
        e.message
    );
    for body in [&b"not json"[..], b"{}", b"[]", b""] {
        assert_eq!(bedrock::decode_response(body).unwrap_err().status, 502);
    }
}

// ---- errors ----------------------------------------------------------------------------

#[test]
fn errors_keep_status_message_and_type() {
    let rec: Value =
        serde_json::from_slice(&read("amazon-bedrock-empty-message-validation-error.json"))
            .unwrap();
    let body = rec["body"].to_string();
    let e = bedrock::decode_error(
        rec["status"].as_u64().unwrap() as u16,
        rec["headers"]["x-amzn-errortype"].as_str(),
        body.as_bytes(),
    );
    assert_eq!(e.status, 400);
    assert_eq!(
        e.message,
        "ValidationException: The content field in the Message object at messages.1 is empty. Add a ContentBlock object to the content field and try again."
    );
    let e = bedrock::decode_error(400, None, &read("issue-18199-sonnet-5-strict-error.json"));
    assert_eq!(
        e.message,
        "The model returned the following errors: tools.0.custom.strict: Extra inputs are not permitted"
    );
    let e = bedrock::decode_error(
        403,
        Some("AccessDeniedException"),
        br#"{"Message":"denied"}"#,
    );
    assert_eq!(
        (e.status, e.message.as_str()),
        (403, "AccessDeniedException: denied")
    );
    let e = bedrock::decode_error(503, None, b"  <html>Service Unavailable</html>\n");
    assert_eq!(
        (e.status, e.message.as_str()),
        (503, "<html>Service Unavailable</html>")
    );
    let e = bedrock::decode_error(500, Some(""), b"");
    assert_eq!(e.message, "upstream answered 500 with an empty body");
    let long = "x".repeat(5000);
    assert_eq!(
        bedrock::decode_error(502, None, long.as_bytes())
            .message
            .len(),
        2000
    );
}

// ---- requests ---------------------------------------------------------------------------

fn target() -> Target<'static> {
    Target {
        provider: "bedrock",
        model: "anthropic.claude-3-5-haiku-20241022-v1:0",
        default_max_tokens: 4096,
    }
}

fn text(t: &str) -> Part {
    Part::Text {
        text: t.into(),
        cache: None,
    }
}

fn user(parts: Vec<Part>) -> Message {
    Message {
        role: Role::User,
        content: parts,
    }
}

fn assistant(parts: Vec<Part>) -> Message {
    Message {
        role: Role::Assistant,
        content: parts,
    }
}

fn encode(req: &Request) -> Value {
    serde_json::from_slice(&bedrock::encode_request(req, &target()).unwrap()).unwrap()
}

fn refusal(req: &Request) -> switchyard::errors::GatewayError {
    bedrock::encode_request(req, &target()).unwrap_err()
}

#[test]
fn basic_request_shape() {
    let req = Request {
        model: "claude".into(),
        system: vec![
            text("Be brief."),
            Part::Text {
                text: "Cached.".into(),
                cache: Some(json!({"type":"ephemeral"})),
            },
        ],
        messages: vec![user(vec![text("Hi")])],
        max_tokens: Some(100),
        temperature: Some(0.5),
        top_p: Some(0.9),
        stop: vec!["END".into()],
        ..Default::default()
    };
    assert_eq!(
        encode(&req),
        json!({
            "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            "system": [{"text": "Be brief."}, {"text": "Cached."}, {"cachePoint": {"type": "default"}}],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]}
        })
    );
    // No max_tokens: the target's default.
    let req = Request {
        messages: vec![user(vec![text("Hi")])],
        ..Default::default()
    };
    assert_eq!(encode(&req)["inferenceConfig"], json!({"maxTokens": 4096}));
    assert!(encode(&req).get("model").is_none());
}

#[test]
fn messages_are_merged_and_system_messages_promoted() {
    let req = Request {
        messages: vec![
            user(vec![text("a")]),
            Message {
                role: Role::System,
                content: vec![text("mid-system")],
            },
            user(vec![text("b")]),
            assistant(vec![text("")]), // empty: dropped
            user(vec![text("c")]),
            assistant(vec![
                Part::Thinking {
                    text: "hmm".into(),
                    signature: Some("sig".into()),
                },
                Part::RedactedThinking {
                    data: "AAEC".into(),
                },
                text("calling"),
                Part::ToolUse {
                    id: "tooluse_1".into(),
                    name: "get".into(),
                    input: json!({"q": 1}),
                    cache: None,
                },
                Part::ToolUse {
                    id: "tooluse_2".into(),
                    name: "get".into(),
                    input: Value::Null,
                    cache: Some(json!({"type":"ephemeral"})),
                },
            ]),
            user(vec![Part::ToolResult {
                tool_use_id: "tooluse_1".into(),
                content: vec![text("42")],
                is_error: false,
                cache: None,
            }]),
            user(vec![Part::ToolResult {
                tool_use_id: "tooluse_2".into(),
                content: vec![
                    text("boom"),
                    Part::Image {
                        source: MediaSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBOR".into(),
                        },
                        cache: None,
                    },
                ],
                is_error: true,
                cache: None,
            }]),
        ],
        tools: vec![Tool {
            name: "get".into(),
            description: Some("Get".into()),
            schema: json!({"type":"object"}),
            strict: None,
            cache: None,
        }],
        ..Default::default()
    };
    let v = encode(&req);
    assert_eq!(v["system"], json!([{"text": "mid-system"}]));
    assert_eq!(
        v["messages"],
        json!([
            {"role": "user", "content": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
            {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
                {"reasoningContent": {"redactedContent": "AAEC"}},
                {"text": "calling"},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "get", "input": {"q": 1}}},
                {"toolUse": {"toolUseId": "tooluse_2", "name": "get", "input": {}}},
                {"cachePoint": {"type": "default"}}
            ]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "42"}]}},
                {"toolResult": {"toolUseId": "tooluse_2", "status": "error", "content": [
                    {"text": "boom"}, {"image": {"format": "png", "source": {"bytes": "iVBOR"}}}
                ]}}
            ]}
        ])
    );
    assert_eq!(
        v["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "get", "description": "Get", "inputSchema": {"json": {"type": "object"}}}}]})
    );
}

#[test]
fn a_cache_hint_on_nothing_makes_no_message() {
    let req = Request {
        messages: vec![
            user(vec![text("a")]),
            assistant(vec![Part::Text {
                text: String::new(),
                cache: Some(json!({"type":"ephemeral"})),
            }]),
            user(vec![text("b")]),
        ],
        ..Default::default()
    };
    assert_eq!(
        encode(&req)["messages"],
        json!([{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}])
    );
}

#[test]
fn media_inline_only() {
    let img = |source| {
        user(vec![Part::Image {
            source,
            cache: Some(json!({"type":"ephemeral"})),
        }])
    };
    let req = Request {
        messages: vec![img(MediaSource::Base64 {
            media_type: "image/jpeg".into(),
            data: "/9j/".into(),
        })],
        ..Default::default()
    };
    assert_eq!(
        encode(&req)["messages"][0]["content"],
        json!([{"image": {"format": "jpeg", "source": {"bytes": "/9j/"}}}, {"cachePoint": {"type": "default"}}])
    );
    let req = Request {
        messages: vec![img(MediaSource::Url("https://x/y.png".into()))],
        ..Default::default()
    };
    let e = refusal(&req);
    assert_eq!(e.status, 400);
    assert!(
        e.message.contains("messages[0].content[0]") && e.message.contains("`bedrock`"),
        "{}",
        e.message
    );
    let req = Request {
        messages: vec![img(MediaSource::Base64 {
            media_type: "image/tiff".into(),
            data: "x".into(),
        })],
        ..Default::default()
    };
    assert_eq!(refusal(&req).status, 400);
    let req = Request {
        messages: vec![user(vec![Part::Document {
            source: MediaSource::Base64 {
                media_type: "application/pdf".into(),
                data: "JVBER".into(),
            },
            cache: None,
        }])],
        ..Default::default()
    };
    assert_eq!(
        encode(&req)["messages"][0]["content"],
        json!([{"document": {"format": "pdf", "name": "document-1", "source": {"bytes": "JVBER"}}}])
    );
}

fn tool(name: &str, cache: bool) -> Tool {
    Tool {
        name: name.into(),
        description: None,
        schema: json!({"type": "object", "properties": {}}),
        strict: Some(true),
        cache: cache.then(|| json!({"type": "ephemeral"})),
    }
}

#[test]
fn tool_choice_rows() {
    let base = Request {
        messages: vec![user(vec![text("hi")])],
        tools: vec![tool("a", true)],
        ..Default::default()
    };
    let spec = json!([
        {"toolSpec": {"name": "a", "inputSchema": {"json": {"type": "object", "properties": {}}}, "strict": true}},
        {"cachePoint": {"type": "default"}}
    ]);
    for (choice, want) in [
        (None, None),
        (Some(ToolChoice::Auto), Some(json!({"auto": {}}))),
        (Some(ToolChoice::Any), Some(json!({"any": {}}))),
        (
            Some(ToolChoice::Tool("a".into())),
            Some(json!({"tool": {"name": "a"}})),
        ),
    ] {
        let req = Request {
            tool_choice: choice,
            ..base.clone()
        };
        let v = encode(&req);
        assert_eq!(v["toolConfig"]["tools"], spec);
        assert_eq!(v["toolConfig"].get("toolChoice"), want.as_ref());
    }
    // none: no toolConfig at all...
    let req = Request {
        tool_choice: Some(ToolChoice::None),
        ..base.clone()
    };
    assert!(encode(&req).get("toolConfig").is_none());
    // ...unless the history has tool blocks: tools kept, no toolChoice.
    let mut req = req;
    req.messages = vec![
        user(vec![text("hi")]),
        assistant(vec![Part::ToolUse {
            id: "t1".into(),
            name: "a".into(),
            input: json!({}),
            cache: None,
        }]),
        user(vec![Part::ToolResult {
            tool_use_id: "t1".into(),
            content: vec![text("ok")],
            is_error: false,
            cache: None,
        }]),
    ];
    let v = encode(&req);
    assert_eq!(v["toolConfig"], json!({"tools": spec}));
    // History with tools but none declared: the used ones are declared.
    req.tools.clear();
    req.tool_choice = None;
    let v = encode(&req);
    assert_eq!(v["toolConfig"]["tools"][0]["toolSpec"]["name"], "a");
    assert_eq!(
        v["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        json!({"type": "object"})
    );
    // A forced tool without tools.
    let req = Request {
        messages: vec![user(vec![text("hi")])],
        tool_choice: Some(ToolChoice::Any),
        ..Default::default()
    };
    let e = refusal(&req);
    assert_eq!((e.status, e.param), (400, Some("tool_choice")));
}

#[test]
fn extras_go_to_additional_fields_and_output_config() {
    let req = Request {
        messages: vec![user(vec![text("hi")])],
        top_k: Some(40),
        thinking: Some(json!({"type": "enabled", "budget_tokens": 1024})),
        reasoning_effort: Some("high".into()),
        user: Some("user-123@example.com".into()),
        parallel_tool_calls: Some(false),
        response_format: Some(ResponseFormat::JsonSchema {
            name: Some("person".into()),
            schema: json!({"type": "object"}),
            strict: Some(true),
        }),
        ..Default::default()
    };
    let nova = Target {
        model: "us.amazon.nova-2-lite-v1:0",
        ..target()
    };
    let v: Value = serde_json::from_slice(&bedrock::encode_request(&req, &nova).unwrap()).unwrap();
    assert_eq!(
        v["additionalModelRequestFields"],
        json!({"top_k": 40, "thinking": {"type": "enabled", "budget_tokens": 1024}, "reasoning_config": "high"})
    );
    // Claude: Anthropic's own effort field.
    let v = encode(&req);
    assert_eq!(
        v["additionalModelRequestFields"]["output_config"],
        json!({"effort": "high"})
    );
    assert!(v["additionalModelRequestFields"]
        .get("reasoning_config")
        .is_none());
    assert_eq!(
        v["outputConfig"],
        json!({"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {"schema": "{\"type\":\"object\"}", "name": "person"}}}})
    );
    assert_eq!(
        v["requestMetadata"],
        json!({"user": "user-123@example.com"})
    );
    // A user id Converse's metadata rules refuse is left out, not sent to fail.
    let req2 = Request {
        user: Some("ünïcode<>".into()),
        ..req.clone()
    };
    assert!(encode(&req2).get("requestMetadata").is_none());
    let req3 = Request {
        response_format: Some(ResponseFormat::JsonObject),
        ..req
    };
    let e = refusal(&req3);
    assert_eq!((e.status, e.param), (400, Some("response_format")));
    assert!(e.message.contains("`bedrock`"));
}

#[test]
fn untranslatable_fields_are_refused_by_the_registry() {
    let req = Request {
        messages: vec![user(vec![text("hi")])],
        untranslatable: vec!["logprobs".into()],
        ..Default::default()
    };
    let e = switchyard::translate::encode_request(
        switchyard::translate::Wire::BedrockConverse,
        &req,
        &target(),
    )
    .unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("logprobs") && e.message.contains("bedrock"));
}

#[test]
fn count_tokens_body_and_answer() {
    let req = Request {
        system: vec![text("sys")],
        messages: vec![user(vec![text("hi")])],
        tools: vec![tool("a", false)],
        max_tokens: Some(5),
        ..Default::default()
    };
    let v: Value =
        serde_json::from_slice(&bedrock::encode_count_tokens(&req, &target()).unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"input": {"converse": {
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "system": [{"text": "sys"}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "a", "inputSchema": {"json": {"type": "object", "properties": {}}}, "strict": true}}]}
        }}})
    );
    assert_eq!(
        bedrock::decode_count_tokens(br#"{"inputTokens": 123}"#),
        Some(123)
    );
    assert_eq!(bedrock::decode_count_tokens(b"nope"), None);
}

#[test]
fn model_paths() {
    assert_eq!(
        bedrock::model_path("anthropic.claude-3-5-haiku-20241022-v1:0", false),
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    assert_eq!(
        bedrock::model_path("us.anthropic.claude-sonnet-4-20250514-v1:0", true),
        "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream"
    );
    assert_eq!(
        bedrock::model_path("arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/abc123", true),
        "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse-stream"
    );
    assert_eq!(
        bedrock::count_tokens_path("us.anthropic.claude-sonnet-4-20250514-v1:0"),
        "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/count-tokens"
    );
}

#[test]
fn tool_call_stream_event_by_event() {
    // metadata comes before messageStop in this recording.
    let events = decode_all(&read("amazon-bedrock-tool-call.1.converse-stream.bin"));
    assert_eq!(
        events,
        vec![
            Event::Start {
                id: String::new(),
                model: String::new()
            },
            Event::BlockStart {
                index: 0,
                block: Block::ToolUse {
                    id: "tool-use-id".into(),
                    name: "test-tool".into()
                }
            },
            Event::Delta {
                index: 0,
                delta: Delta::ToolArgs("{\"value\":".into())
            },
            Event::Delta {
                index: 0,
                delta: Delta::ToolArgs("\"Sparkle Day\"}".into())
            },
            Event::BlockStop { index: 0 },
            Event::Usage(UsageUpdate {
                input: Some(125),
                output: Some(45),
                ..Default::default()
            }),
            Event::Stop {
                reason: StopReason::ToolUse,
                sequence: None
            },
            Event::Done,
        ]
    );
}

const EVENT_TYPES: &[&str] = &[
    "messageStart",
    "contentBlockStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
    "other",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes: an error or events, never a panic; nothing after Error/Done.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(events) = decode_chunks(&bytes, &[7, 1, 30]) {
            if let Some(p) = events.iter().position(|e| matches!(e, Event::Error(_) | Event::Done)) {
                prop_assert_eq!(p + 1, events.len());
            }
        }
    }

    /// Well-framed events with arbitrary (often wrong) payloads: same invariants.
    #[test]
    fn arbitrary_payloads_in_valid_frames(
        frames in proptest::collection::vec(
            (0..EVENT_TYPES.len(), prop_oneof![
                Just(r#"{"contentBlockIndex":0,"delta":{"text":"x"}}"#.to_owned()),
                Just(r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t","name":"n"}}}"#.to_owned()),
                Just(r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{}"}}}"#.to_owned()),
                Just(r#"{"contentBlockIndex":2,"delta":{"reasoningContent":{"signature":"s"}}}"#.to_owned()),
                Just(r#"{"stopReason":"end_turn"}"#.to_owned()),
                Just(r#"{"usage":{"inputTokens":1,"outputTokens":2}}"#.to_owned()),
                Just(r#"{"contentBlockIndex":18446744073709551615}"#.to_owned()),
                ".{0,40}",
            ]),
            0..20,
        ),
        exception in any::<bool>(),
    ) {
        let mut bytes = Vec::new();
        for (t, p) in &frames {
            bytes.extend(event_frame_raw(EVENT_TYPES[*t], p));
        }
        if exception {
            bytes.extend(encode_frame(&[(":message-type", "exception"), (":exception-type", "x")], b"{}"));
        }
        if let Ok(events) = decode_chunks(&bytes, &[13]) {
            if let Some(p) = events.iter().position(|e| matches!(e, Event::Error(_) | Event::Done)) {
                prop_assert_eq!(p + 1, events.len());
            }
            if exception && !events.contains(&Event::Done) {
                prop_assert!(matches!(events.last(), Some(Event::Error(_))));
            }
        }
    }

    /// encode_frame → FrameDecoder gives back the headers and payload.
    #[test]
    fn frames_round_trip(
        headers in proptest::collection::vec(("[a-z:-]{1,20}", ".{0,40}"), 0..6),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut d = switchyard::eventstream::FrameDecoder::new(1 << 16);
        d.feed(&encode_frame(&hs, &payload));
        let f = d.next_frame().unwrap().unwrap();
        prop_assert_eq!(&f.payload[..], &payload[..]);
        prop_assert_eq!(f.headers.len(), hs.len());
        for ((n, v), (gn, gv)) in hs.iter().zip(&f.headers) {
            prop_assert_eq!(n, gn);
            prop_assert_eq!(gv, &switchyard::eventstream::HeaderValue::String((*v).to_owned()));
        }
        prop_assert!(d.next_frame().unwrap().is_none());
    }
}

fn event_frame_raw(kind: &str, payload: &str) -> Vec<u8> {
    encode_frame(
        &[(":message-type", "event"), (":event-type", kind)],
        payload.as_bytes(),
    )
}
