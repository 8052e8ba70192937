use super::*;
use serde_json::json;

fn decode_all(stream: &[u8]) -> Result<Vec<Event>, GatewayError> {
    let mut d = Decoder::new(1 << 20);
    let mut out = Vec::new();
    d.feed(stream, &mut out)?;
    d.finish(&mut out)?;
    Ok(out)
}

fn sse(chunks: &[Value]) -> Vec<u8> {
    let mut s = Vec::new();
    for c in chunks {
        s.extend_from_slice(format!("data: {c}\n\n").as_bytes());
    }
    s
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c1", "model": "m1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

#[test]
fn text_then_thinking_switch_and_stop() {
    let mut s = sse(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"reasoning_content": "r1"}), None),
        chunk(json!({"reasoning": "r2"}), None),
        chunk(json!({"content": "a"}), None),
        chunk(json!({"content": "b"}), None),
        chunk(json!({}), Some("length")),
        json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}),
    ]);
    s.extend_from_slice(b"data: [DONE]\n\n");
    let ev = decode_all(&s).unwrap();
    assert_eq!(
        ev,
        vec![
            Event::Start {
                id: "c1".into(),
                model: "m1".into()
            },
            Event::BlockStart {
                index: 0,
                block: Block::Thinking
            },
            Event::Delta {
                index: 0,
                delta: Delta::Thinking("r1".into())
            },
            Event::Delta {
                index: 0,
                delta: Delta::Thinking("r2".into())
            },
            Event::BlockStop { index: 0 },
            Event::BlockStart {
                index: 1,
                block: Block::Text
            },
            Event::Delta {
                index: 1,
                delta: Delta::Text("a".into())
            },
            Event::Delta {
                index: 1,
                delta: Delta::Text("b".into())
            },
            Event::BlockStop { index: 1 },
            Event::Stop {
                reason: StopReason::MaxTokens,
                sequence: None
            },
            Event::Usage(UsageUpdate {
                input: Some(3),
                output: Some(4),
                ..Default::default()
            }),
            Event::Done,
        ]
    );
}

#[test]
fn parallel_tools_and_index_reuse() {
    let s = sse(&[
        chunk(json!({"content": "let me"}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g", "arguments": "{}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            None,
        ),
        // Index 1 reused by a different call: the earlier one is complete.
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_c", "function": {"name": "h", "arguments": {"k": 2}}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
    ]);
    let ev = decode_all(&s).unwrap();
    assert_eq!(
        ev,
        vec![
            Event::Start {
                id: "c1".into(),
                model: "m1".into()
            },
            Event::BlockStart {
                index: 0,
                block: Block::Text
            },
            Event::Delta {
                index: 0,
                delta: Delta::Text("let me".into())
            },
            Event::BlockStop { index: 0 },
            Event::BlockStart {
                index: 1,
                block: Block::ToolUse {
                    id: "call_a".into(),
                    name: "f".into()
                }
            },
            Event::Delta {
                index: 1,
                delta: Delta::ToolArgs("{\"x\"".into())
            },
            Event::BlockStart {
                index: 2,
                block: Block::ToolUse {
                    id: "call_b".into(),
                    name: "g".into()
                }
            },
            Event::Delta {
                index: 2,
                delta: Delta::ToolArgs("{}".into())
            },
            Event::Delta {
                index: 1,
                delta: Delta::ToolArgs(":1}".into())
            },
            Event::BlockStop { index: 2 },
            Event::BlockStart {
                index: 3,
                block: Block::ToolUse {
                    id: "call_c".into(),
                    name: "h".into()
                }
            },
            Event::Delta {
                index: 3,
                delta: Delta::ToolArgs("{\"k\":2}".into())
            },
            Event::BlockStop { index: 1 },
            Event::BlockStop { index: 3 },
            Event::Stop {
                reason: StopReason::ToolUse,
                sequence: None
            },
            // No [DONE], but a Stop was seen.
            Event::Done,
        ]
    );
}

#[test]
fn signatures_redacted_and_mistral_parts() {
    let s = sse(&[
        chunk(
            json!({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "t"}]}]}),
            None,
        ),
        chunk(
            json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "sig"}]}),
            None,
        ),
        chunk(
            json!({"thinking_blocks": [{"type": "redacted_thinking", "data": "enc"}]}),
            None,
        ),
        chunk(
            json!({"content": [{"type": "text", "text": "x"}]}),
            Some("stop"),
        ),
    ]);
    let ev = decode_all(&s).unwrap();
    assert_eq!(
        &ev[1..],
        &[
            Event::BlockStart {
                index: 0,
                block: Block::Thinking
            },
            Event::Delta {
                index: 0,
                delta: Delta::Thinking("t".into())
            },
            Event::Delta {
                index: 0,
                delta: Delta::Signature("sig".into())
            },
            Event::BlockStop { index: 0 },
            Event::BlockStart {
                index: 1,
                block: Block::RedactedThinking { data: "enc".into() }
            },
            Event::BlockStop { index: 1 },
            Event::BlockStart {
                index: 2,
                block: Block::Text
            },
            Event::Delta {
                index: 2,
                delta: Delta::Text("x".into())
            },
            Event::BlockStop { index: 2 },
            Event::Stop {
                reason: StopReason::EndTurn,
                sequence: None
            },
            Event::Done,
        ]
    );
}

#[test]
fn thinking_text_from_blocks_only_without_reasoning_content() {
    let s = sse(&[
        chunk(
            json!({"reasoning_content": "a", "thinking_blocks": [{"type": "thinking", "thinking": "a", "signature": "s1"}]}),
            None,
        ),
        chunk(
            json!({"thinking_blocks": [{"type": "thinking", "thinking": "b", "signature": "s2"}]}),
            Some("stop"),
        ),
    ]);
    let ev = decode_all(&s).unwrap();
    assert_eq!(
        &ev[1..6],
        &[
            Event::BlockStart {
                index: 0,
                block: Block::Thinking
            },
            Event::Delta {
                index: 0,
                delta: Delta::Thinking("a".into())
            },
            Event::Delta {
                index: 0,
                delta: Delta::Signature("s1".into())
            },
            Event::Delta {
                index: 0,
                delta: Delta::Thinking("b".into())
            },
            Event::Delta {
                index: 0,
                delta: Delta::Signature("s2".into())
            },
        ]
    );
}

#[test]
fn azure_prompt_filter_chunk_is_skipped() {
    let s = sse(&[
        json!({"choices": [], "id": "", "model": "", "prompt_filter_results": []}),
        json!({"id": "real", "model": "gpt", "choices": [{"index": 0, "delta": {"content": "x"}}]}),
    ]);
    let ev = decode_all(&s).unwrap();
    assert_eq!(
        ev[0],
        Event::Start {
            id: "real".into(),
            model: "gpt".into()
        }
    );
    // No Stop: a cut stream ends with nothing more.
    assert_eq!(ev.len(), 3);
}

#[test]
fn in_band_errors() {
    let mut s = sse(&[
        chunk(json!({"content": "x"}), None),
        json!({"error": {"message": "Rate limited: try later", "code": 429}}),
    ]);
    s.extend_from_slice(b"data: {\"ignored\": true}\n\ndata: [DONE]\n\n");
    let ev = decode_all(&s).unwrap();
    assert_eq!(
        ev.last(),
        Some(&Event::Error(GatewayError::new(
            429,
            "Rate limited: try later"
        )))
    );
    let ev = decode_all(&sse(&[
        json!({"error": {"message": "boom", "type": "server_error"}}),
    ]))
    .unwrap();
    assert_eq!(ev, vec![Event::Error(GatewayError::new(502, "boom"))]);
    let ev = decode_all(&sse(&[
        json!({"object": "error", "message": "bad", "code": 400}),
    ]))
    .unwrap();
    assert_eq!(ev, vec![Event::Error(GatewayError::new(400, "bad"))]);
}

#[test]
fn framing_tolerance_and_garbage() {
    let s = b": comment\r\nevent: message\r\ndata:{\"id\":\"i\",\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\",\"stop_reason\":\"###\"}]}\r\n\r\ndata: [DONE]";
    let ev = decode_all(s).unwrap();
    assert_eq!(
        ev[ev.len() - 2],
        Event::Stop {
            reason: StopReason::StopSequence,
            sequence: Some("###".into())
        }
    );
    assert_eq!(ev.last(), Some(&Event::Done));
    assert_eq!(decode_all(b"data: {nope\n\n").unwrap_err().status, 502);
    // A cut JSON chunk at the end is a cut, not an error.
    assert_eq!(decode_all(b"data: {\"id\":\"i\",\"cho").unwrap(), vec![]);
}

#[test]
fn oversized_event_names_the_limit() {
    let mut d = Decoder::new(64);
    let mut out = Vec::new();
    let e = d.feed(&[b'a'; 100], &mut out).unwrap_err();
    assert_eq!(e.status, 502);
    assert!(e.message.contains("limits.max_stream_event"));
    // Nothing more is read after it.
    d.feed(b"\n\ndata: [DONE]\n\n", &mut out).unwrap();
    d.finish(&mut out).unwrap();
    assert!(out.is_empty());
}

// ───────────── encoder ─────────────

fn opts(include_usage: bool) -> ClientOpts {
    ClientOpts {
        model: "fallback-model".into(),
        fallback_id: "req9".into(),
        include_usage,
        created: 42,
    }
}

fn encode_all(events: &[Event], include_usage: bool) -> String {
    let mut e = Encoder::new(opts(include_usage));
    let mut out = Vec::new();
    for ev in events {
        e.encode(ev, &mut out);
    }
    String::from_utf8(out).unwrap()
}

fn data_lines(s: &str) -> Vec<Value> {
    s.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn sample_events() -> Vec<Event> {
    vec![
        Event::Start {
            id: String::new(),
            model: String::new(),
        },
        Event::BlockStart {
            index: 0,
            block: Block::Thinking,
        },
        Event::Delta {
            index: 0,
            delta: Delta::Thinking("hm".into()),
        },
        Event::Delta {
            index: 0,
            delta: Delta::Signature("sig".into()),
        },
        Event::BlockStop { index: 0 },
        Event::BlockStart {
            index: 1,
            block: Block::ToolUse {
                id: "toolu_a".into(),
                name: "f".into(),
            },
        },
        Event::Delta {
            index: 1,
            delta: Delta::ToolArgs("{}".into()),
        },
        Event::BlockStop { index: 1 },
        Event::BlockStart {
            index: 2,
            block: Block::ToolUse {
                id: "toolu_b".into(),
                name: "g".into(),
            },
        },
        Event::Delta {
            index: 2,
            delta: Delta::ToolArgs("{\"a\":1}".into()),
        },
        Event::BlockStop { index: 2 },
        Event::Usage(UsageUpdate {
            input: Some(10),
            cached_input: Some(2),
            output: Some(1),
            ..Default::default()
        }),
        Event::Stop {
            reason: StopReason::ToolUse,
            sequence: None,
        },
        Event::Usage(UsageUpdate {
            output: Some(7),
            ..Default::default()
        }),
        Event::Done,
    ]
}

#[test]
fn encoder_chunks_and_tool_indices() {
    let s = encode_all(&sample_events(), false);
    assert!(s.ends_with("data: [DONE]\n\n"));
    let c = data_lines(&s);
    assert_eq!(c.len(), 8);
    for x in &c {
        assert_eq!(
            (x["id"].as_str(), x["model"].as_str(), x["created"].as_u64()),
            (Some("chatcmpl-req9"), Some("fallback-model"), Some(42))
        );
        assert_eq!(x["object"], "chat.completion.chunk");
    }
    assert_eq!(
        c[0]["choices"][0],
        json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null})
    );
    assert_eq!(
        c[1]["choices"][0]["delta"],
        json!({"reasoning_content": "hm"})
    );
    assert_eq!(
        c[2]["choices"][0]["delta"],
        json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "sig"}]})
    );
    assert_eq!(
        c[3]["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "f", "arguments": ""}}]})
    );
    assert_eq!(
        c[4]["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})
    );
    assert_eq!(c[5]["choices"][0]["delta"]["tool_calls"][0]["index"], 1);
    assert_eq!(
        c[6]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
    assert_eq!(
        c[7]["choices"][0],
        json!({"index": 0, "delta": {}, "finish_reason": "tool_calls"})
    );
}

#[test]
fn encoder_usage_chunk_only_when_asked() {
    let s = encode_all(&sample_events(), true);
    let c = data_lines(&s);
    let u = c.last().unwrap();
    assert_eq!(u["choices"], json!([]));
    assert_eq!(
        u["usage"],
        json!({"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 0}})
    );
    assert!(!encode_all(&sample_events(), false).contains("\"usage\""));
}

#[test]
fn encoder_terminal_error_shape() {
    let s = encode_all(
        &[
            Event::Start {
                id: "x".into(),
                model: "m".into(),
            },
            Event::BlockStart {
                index: 0,
                block: Block::Text,
            },
            Event::Delta {
                index: 0,
                delta: Delta::Text("par".into()),
            },
            Event::Error(GatewayError::new(529, "Overloaded")),
            Event::Stop {
                reason: StopReason::EndTurn,
                sequence: None,
            },
            Event::Done,
        ],
        true,
    );
    let tail = s
        .split("\n\n")
        .filter(|x| !x.is_empty())
        .collect::<Vec<_>>();
    assert_eq!(
        tail[tail.len() - 2],
        r#"data: {"error":{"message":"Overloaded","type":"api_error","param":null,"code":null}}"#
    );
    assert_eq!(tail[tail.len() - 1], "data: [DONE]");
    assert!(!s.contains("finish_reason\":\"stop"));

    let mut e = Encoder::new(opts(false));
    let mut out = Vec::new();
    e.terminal_error(&GatewayError::new(429, "slow down"), &mut out);
    e.encode(&Event::Done, &mut out);
    assert_eq!(String::from_utf8(out).unwrap(),
        "data: {\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":null}}\n\ndata: [DONE]\n\n");
}

#[test]
fn encoder_redacted_block() {
    let s = encode_all(
        &[
            Event::Start {
                id: "x".into(),
                model: "m".into(),
            },
            Event::BlockStart {
                index: 0,
                block: Block::RedactedThinking { data: "enc".into() },
            },
        ],
        false,
    );
    let c = data_lines(&s);
    assert_eq!(
        c[1]["choices"][0]["delta"],
        json!({"thinking_blocks": [{"type": "redacted_thinking", "data": "enc"}]})
    );
}

#[test]
fn encode_then_decode_round_trips() {
    let events = sample_events();
    let bytes = encode_all(&events, true);
    let back = decode_all(bytes.as_bytes()).unwrap();
    let expected: Vec<Event> = vec![
        Event::Start {
            id: "chatcmpl-req9".into(),
            model: "fallback-model".into(),
        },
        Event::BlockStart {
            index: 0,
            block: Block::Thinking,
        },
        Event::Delta {
            index: 0,
            delta: Delta::Thinking("hm".into()),
        },
        Event::Delta {
            index: 0,
            delta: Delta::Signature("sig".into()),
        },
        Event::BlockStop { index: 0 },
        Event::BlockStart {
            index: 1,
            block: Block::ToolUse {
                id: "toolu_a".into(),
                name: "f".into(),
            },
        },
        Event::Delta {
            index: 1,
            delta: Delta::ToolArgs("{}".into()),
        },
        Event::BlockStart {
            index: 2,
            block: Block::ToolUse {
                id: "toolu_b".into(),
                name: "g".into(),
            },
        },
        Event::Delta {
            index: 2,
            delta: Delta::ToolArgs("{\"a\":1}".into()),
        },
        Event::BlockStop { index: 1 },
        Event::BlockStop { index: 2 },
        Event::Stop {
            reason: StopReason::ToolUse,
            sequence: None,
        },
        Event::Usage(UsageUpdate {
            input: Some(10),
            cached_input: Some(2),
            cache_creation_input: None,
            output: Some(7),
            reasoning: Some(0),
        }),
        Event::Done,
    ];
    assert_eq!(back, expected);
}
