use super::*;
use serde_json::json;

fn decode(v: Value) -> Result<Request, GatewayError> {
    decode_request(v.to_string().as_bytes())
}

fn target(provider: &str) -> Target<'_> {
    Target {
        provider,
        model: "up-model",
        default_max_tokens: 4096,
    }
}

fn encode(req: &Request, provider: &str) -> Value {
    serde_json::from_slice(&encode_request(req, &target(provider)).unwrap()).unwrap()
}

#[test]
fn malformed_and_missing_messages() {
    let e = decode_request(b"{not json").unwrap_err();
    assert_eq!(e.status, 400);
    let e = decode(json!({"model": "m"})).unwrap_err();
    assert_eq!((e.status, e.param), (400, Some("messages")));
    let e = decode(json!({"model": "m", "messages": "hi"})).unwrap_err();
    assert_eq!((e.status, e.param), (400, Some("messages")));
    assert_eq!(decode_request(b"[]").unwrap_err().status, 400);
}

#[test]
fn system_developer_and_roles() {
    let r = decode(json!({"model": "m", "messages": [
        {"role": "system", "content": "a"},
        {"role": "developer", "content": [{"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "later"},
    ]}))
    .unwrap();
    assert_eq!(
        r.system,
        vec![
            Part::Text {
                text: "a".into(),
                cache: None
            },
            Part::Text {
                text: "b".into(),
                cache: Some(json!({"type": "ephemeral"}))
            },
        ]
    );
    assert_eq!(r.messages.len(), 2);
    assert_eq!(r.messages[1].role, Role::System);
    assert!(r.untranslatable.is_empty());
}

#[test]
fn user_media_parts() {
    let r = decode(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
        {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-1"}},
    ]}]}))
    .unwrap();
    let c = &r.messages[0].content;
    assert_eq!(
        c[1],
        Part::Image {
            source: MediaSource::Base64 {
                media_type: "image/jpeg".into(),
                data: "AAAA".into()
            },
            cache: None
        }
    );
    assert_eq!(
        c[2],
        Part::Image {
            source: MediaSource::Url("https://x/y.png".into()),
            cache: None
        }
    );
    assert_eq!(
        c[3],
        Part::Document {
            source: MediaSource::Base64 {
                media_type: "application/pdf".into(),
                data: "JVBE".into()
            },
            cache: None
        }
    );
    assert_eq!(
        r.untranslatable,
        vec![
            "messages[0].content[4].type=input_audio",
            "messages[0].content[5].file.file_id"
        ]
    );
    let e = decode(json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]})).unwrap_err();
    assert_eq!(e.status, 400);
}

#[test]
fn assistant_order_thinking_text_tools() {
    let r = decode(json!({"messages": [{"role": "assistant",
        "content": "answer", "refusal": "no",
        "reasoning_content": "ignored when blocks hold thinking",
        "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "sig"}, {"type": "redacted_thinking", "data": "enc"}],
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
            {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "not json"}}
        ]}]}))
    .unwrap();
    let c = &r.messages[0].content;
    assert_eq!(
        c[0],
        Part::Thinking {
            text: "hm".into(),
            signature: Some("sig".into())
        }
    );
    assert_eq!(c[1], Part::RedactedThinking { data: "enc".into() });
    assert_eq!(
        c[2],
        Part::Text {
            text: "answer".into(),
            cache: None
        }
    );
    assert_eq!(
        c[3],
        Part::Text {
            text: "no".into(),
            cache: None
        }
    );
    assert_eq!(
        c[4],
        Part::ToolUse {
            id: "call_1".into(),
            name: "f".into(),
            input: json!({"a": 1}),
            cache: None
        }
    );
    assert_eq!(
        c[5],
        Part::ToolUse {
            id: "call_2".into(),
            name: "g".into(),
            input: json!("not json"),
            cache: None
        }
    );
}

#[test]
fn reasoning_content_alone_is_thinking() {
    let r = decode(
        json!({"messages": [{"role": "assistant", "content": null, "reasoning_content": "r"}]}),
    )
    .unwrap();
    assert_eq!(
        r.messages[0].content,
        vec![Part::Thinking {
            text: "r".into(),
            signature: None
        }]
    );
}

#[test]
fn consecutive_tool_messages_make_one_user_message() {
    let r = decode(json!({"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "one", "name": "f"},
        {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "two"}]},
        {"role": "user", "content": "next"},
    ]}))
    .unwrap();
    assert_eq!(r.messages.len(), 4);
    assert_eq!(r.messages[2].role, Role::User);
    assert_eq!(r.messages[2].content.len(), 2);
    assert!(
        matches!(&r.messages[2].content[1], Part::ToolResult { tool_use_id, content, .. }
        if tool_use_id == "b" && content == &vec![Part::Text { text: "two".into(), cache: None }])
    );
    assert!(r.untranslatable.is_empty());
    let e = decode(json!({"messages": [{"role": "tool", "content": "x"}]})).unwrap_err();
    assert_eq!(e.param, Some("messages"));
}

#[test]
fn scalar_fields() {
    let r = decode(json!({"model": "gpt", "messages": [], "max_tokens": 10, "max_completion_tokens": 20,
        "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop": "###", "stream": true,
        "stream_options": {"include_usage": true, "include_obfuscation": false},
        "parallel_tool_calls": false, "user": "u1", "reasoning_effort": "low",
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "store": true, "metadata": {"a": "b"}, "seed": 3, "service_tier": "auto", "n": 1, "logprobs": false,
        "presence_penalty": 0, "tool_choice": null}))
    .unwrap();
    assert_eq!(r.max_tokens, Some(20));
    assert_eq!(
        (r.temperature, r.top_p, r.top_k),
        (Some(0.5), Some(0.9), Some(40))
    );
    assert_eq!(r.stop, vec!["###"]);
    assert!(r.stream && r.include_usage);
    assert_eq!(r.parallel_tool_calls, Some(false));
    assert_eq!(r.user.as_deref(), Some("u1"));
    assert_eq!(r.reasoning_effort.as_deref(), Some("low"));
    assert_eq!(
        r.thinking,
        Some(json!({"type": "enabled", "budget_tokens": 2000}))
    );
    assert!(r.untranslatable.is_empty(), "{:?}", r.untranslatable);
    assert_eq!(
        decode(json!({"messages": [], "stop": ["a", "b"]}))
            .unwrap()
            .stop,
        vec!["a", "b"]
    );
    assert_eq!(
        decode(json!({"messages": [], "max_tokens": -1}))
            .unwrap_err()
            .param,
        Some("max_tokens")
    );
}

#[test]
fn untranslatable_fields_are_named() {
    let r = decode(json!({"messages": [
            {"role": "user", "content": "x", "name": "bob"},
            {"role": "function", "name": "f", "content": "y"}],
        "n": 2, "logprobs": true, "top_logprobs": 2, "logit_bias": {"1": 3}, "frequency_penalty": 0.5,
        "audio": {"voice": "x"}, "modalities": ["text", "audio"], "web_search_options": {}, "functions": [],
        "function_call": "auto", "verbosity": "low", "min_p": 0.1,
        "tools": [{"type": "function", "function": {"name": "f"}}, {"type": "custom", "custom": {"name": "g"}}]}))
    .unwrap();
    let mut u = r.untranslatable.clone();
    u.sort();
    let mut want = vec![
        "messages[0].name",
        "messages[1].role=function",
        "n",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "frequency_penalty",
        "audio",
        "modalities",
        "web_search_options",
        "functions",
        "function_call",
        "verbosity",
        "min_p",
        "tools[1].type",
    ];
    want.sort();
    assert_eq!(u, want);
    assert_eq!(r.tools.len(), 1);
    assert_eq!(
        r.tools[0].schema,
        json!({"type": "object", "properties": {}})
    );
}

#[test]
fn tool_choice_and_response_format() {
    let tc = |v: Value| {
        decode(json!({"messages": [], "tool_choice": v})).map(|r| (r.tool_choice, r.untranslatable))
    };
    assert_eq!(tc(json!("auto")).unwrap().0, Some(ToolChoice::Auto));
    assert_eq!(tc(json!("none")).unwrap().0, Some(ToolChoice::None));
    assert_eq!(tc(json!("required")).unwrap().0, Some(ToolChoice::Any));
    assert_eq!(
        tc(json!({"type": "function", "function": {"name": "f"}}))
            .unwrap()
            .0,
        Some(ToolChoice::Tool("f".into()))
    );
    assert_eq!(
        tc(json!({"type": "allowed_tools", "allowed_tools": {}}))
            .unwrap()
            .1,
        vec!["tool_choice"]
    );
    assert_eq!(
        tc(json!("sometimes")).unwrap_err().param,
        Some("tool_choice")
    );

    let rf =
        |v: Value| decode(json!({"messages": [], "response_format": v})).map(|r| r.response_format);
    assert_eq!(
        rf(json!({"type": "json_object"})).unwrap(),
        Some(ResponseFormat::JsonObject)
    );
    assert_eq!(
        rf(json!({"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": true}})).unwrap(),
        Some(ResponseFormat::JsonSchema { name: Some("n".into()), schema: json!({"type": "object"}), strict: Some(true) })
    );
    assert_eq!(
        rf(json!({"type": "yaml"})).unwrap_err().param,
        Some("response_format")
    );
}

#[test]
fn cache_control_on_tools_and_messages() {
    let r = decode(json!({"messages": [{"role": "user", "content": "x", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}, "cache_control": {"type": "ephemeral"}}]}))
    .unwrap();
    assert_eq!(
        r.messages[0].content[0],
        Part::Text {
            text: "x".into(),
            cache: Some(json!({"type": "ephemeral"}))
        }
    );
    assert_eq!(r.tools[0].cache, Some(json!({"type": "ephemeral"})));
}

// ───────────── encode ─────────────

fn text(t: &str) -> Part {
    Part::Text {
        text: t.into(),
        cache: None,
    }
}

#[test]
fn encodes_system_users_and_tool_results_in_order() {
    let req = Request {
        model: "client-model".into(),
        system: vec![text("s1"), text("s2")],
        messages: vec![
            Message {
                role: Role::User,
                content: vec![text("hi"), text("there")],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    Part::Thinking {
                        text: "think".into(),
                        signature: Some("sig".into()),
                    },
                    Part::RedactedThinking { data: "x".into() },
                    text("calling"),
                    Part::ToolUse {
                        id: "toolu_1".into(),
                        name: "f".into(),
                        input: json!({"a": [1, 2]}),
                        cache: None,
                    },
                    Part::ToolUse {
                        id: "toolu_2".into(),
                        name: "g".into(),
                        input: json!("raw{"),
                        cache: None,
                    },
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    Part::ToolResult {
                        tool_use_id: "toolu_1".into(),
                        content: vec![
                            text("r1"),
                            Part::Image {
                                source: MediaSource::Base64 {
                                    media_type: "image/png".into(),
                                    data: "AA".into(),
                                },
                                cache: None,
                            },
                        ],
                        is_error: false,
                        cache: None,
                    },
                    Part::ToolResult {
                        tool_use_id: "toolu_2".into(),
                        content: vec![text("r2")],
                        is_error: true,
                        cache: None,
                    },
                    text("thanks"),
                    Part::Image {
                        source: MediaSource::Url("https://i".into()),
                        cache: None,
                    },
                ],
            },
            Message {
                role: Role::System,
                content: vec![text("mid")],
            },
        ],
        max_tokens: Some(100),
        stream: true,
        ..Default::default()
    };
    let v = encode(&req, "vllm");
    assert_eq!(v["model"], "up-model");
    assert_eq!(v["max_tokens"], 100);
    assert_eq!(v["stream"], true);
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
    let m = v["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "s1\n\ns2"}));
    assert_eq!(m[1], json!({"role": "user", "content": "hi\n\nthere"}));
    assert_eq!(
        m[2],
        json!({"role": "assistant", "content": "calling", "reasoning_content": "think", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":[1,2]}"}},
        {"id": "toolu_2", "type": "function", "function": {"name": "g", "arguments": "raw{"}}]})
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "r1"})
    );
    assert_eq!(
        m[4],
        json!({"role": "tool", "tool_call_id": "toolu_2", "content": "r2"})
    );
    assert_eq!(
        m[5],
        json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]})
    );
    assert_eq!(
        m[6],
        json!({"role": "user", "content": [{"type": "text", "text": "thanks"}, {"type": "image_url", "image_url": {"url": "https://i"}}]})
    );
    assert_eq!(m[7], json!({"role": "system", "content": "mid"}));
    assert_eq!(m.len(), 8);
}

#[test]
fn assistant_with_only_tools_has_null_content() {
    let req = Request {
        messages: vec![Message {
            role: Role::Assistant,
            content: vec![Part::ToolUse {
                id: "c".into(),
                name: "f".into(),
                input: json!({}),
                cache: None,
            }],
        }],
        ..Default::default()
    };
    let v = encode(&req, "openai");
    assert_eq!(v["messages"][0]["content"], Value::Null);
    assert!(v.get("stream").is_none() && v.get("stream_options").is_none());
    let thinking_only = Request {
        messages: vec![Message {
            role: Role::Assistant,
            content: vec![Part::RedactedThinking { data: "x".into() }],
        }],
        ..Default::default()
    };
    assert_eq!(
        encode(&thinking_only, "vllm")["messages"][0],
        json!({"role": "assistant", "content": ""})
    );
}

#[test]
fn documents_as_file_parts_and_url_documents_refused() {
    let doc = |source| Request {
        messages: vec![Message {
            role: Role::User,
            content: vec![Part::Document {
                source,
                cache: None,
            }],
        }],
        ..Default::default()
    };
    let v = encode(
        &doc(MediaSource::Base64 {
            media_type: "application/pdf".into(),
            data: "JV".into(),
        }),
        "vllm",
    );
    assert_eq!(
        v["messages"][0]["content"][0],
        json!({"type": "file", "file": {"file_data": "data:application/pdf;base64,JV"}})
    );
    let e = encode_request(
        &doc(MediaSource::Url("https://d.pdf".into())),
        &target("vllm"),
    )
    .unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("`vllm`"));
}

#[test]
fn top_k_refused_for_openai_only() {
    let req = Request {
        top_k: Some(5),
        ..Default::default()
    };
    let e = encode_request(&req, &target("openai")).unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("top_k") && e.message.contains("openai"));
    assert_eq!(encode(&req, "vllm")["top_k"], 5);
}

#[test]
fn tools_choice_format_and_effort() {
    let mut req = Request {
        tools: vec![Tool {
            name: "f".into(),
            description: Some("d".into()),
            schema: json!({"type": "object"}),
            strict: Some(true),
            cache: Some(json!({"type": "ephemeral"})),
        }],
        tool_choice: Some(ToolChoice::Tool("f".into())),
        parallel_tool_calls: Some(false),
        response_format: Some(ResponseFormat::JsonSchema {
            name: None,
            schema: json!({"type": "object"}),
            strict: None,
        }),
        thinking: Some(json!({"type": "enabled", "budget_tokens": 5000})),
        stop: vec!["x".into()],
        user: Some("u".into()),
        ..Default::default()
    };
    let v = encode(&req, "vllm");
    assert_eq!(
        v["tools"],
        json!([{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": true}}])
    );
    assert_eq!(
        v["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(v["parallel_tool_calls"], false);
    assert_eq!(
        v["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"}}})
    );
    assert_eq!(v["reasoning_effort"], "medium");
    assert_eq!(v["stop"], json!(["x"]));
    assert_eq!(v["user"], "u");
    for (budget, effort) in [(1024, "low"), (8192, "medium"), (8193, "high")] {
        req.thinking = Some(json!({"type": "enabled", "budget_tokens": budget}));
        assert_eq!(encode(&req, "vllm")["reasoning_effort"], effort);
    }
    req.thinking = Some(json!({"type": "adaptive"}));
    assert!(encode(&req, "vllm").get("reasoning_effort").is_none());
    req.reasoning_effort = Some("minimal".into());
    assert_eq!(encode(&req, "vllm")["reasoning_effort"], "minimal");
    req.tools.clear();
    let v = encode(&req, "vllm");
    assert!(v.get("tool_choice").is_none() && v.get("parallel_tool_calls").is_none());
}
