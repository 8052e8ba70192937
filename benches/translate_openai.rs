//! OpenAI chat translation: per-event stream cost (Decoder + Encoder) and whole-request
//! cost (decode_request / encode_request on a ~50 KB agent request with tools).
//! `cargo bench --bench translate_openai`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use switchyard::translate::ir::{ClientOpts, Event, StreamDecoder, StreamEncoder, Target};
use switchyard::translate::openai::{decode_request, encode_request, Decoder, Encoder};

/// An upstream stream of about 200 events: reasoning, text, two tool calls, finish, usage.
fn upstream_stream() -> Vec<Vec<u8>> {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        let c = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n").into_bytes()
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        json!(null),
    )];
    for i in 0..40 {
        out.push(chunk(
            json!({"reasoning_content": format!("step {i} of the plan, ")}),
            json!(null),
        ));
    }
    for i in 0..120 {
        out.push(chunk(json!({"content": format!("word{i} ")}), json!(null)));
    }
    for (k, id) in ["call_a", "call_b"].iter().enumerate() {
        out.push(chunk(json!({"tool_calls": [{"index": k, "id": id, "type": "function", "function": {"name": "lookup", "arguments": ""}}]}), json!(null)));
        for p in [
            "{\"query\":",
            " \"weather in",
            " Paris\",",
            " \"units\": \"c\"}",
        ] {
            out.push(chunk(
                json!({"tool_calls": [{"index": k, "function": {"arguments": p}}]}),
                json!(null),
            ));
        }
    }
    out.push(chunk(json!({}), json!("tool_calls")));
    out.push(format!("data: {}\n\n", json!({"id": "chatcmpl-bench", "choices": [], "usage": {"prompt_tokens": 900, "completion_tokens": 300}})).into_bytes());
    out.push(b"data: [DONE]\n\n".to_vec());
    out
}

fn stream(c: &mut Criterion) {
    let chunks = upstream_stream();
    let mut events = Vec::new();
    let mut d = Decoder::new(1 << 20);
    for ch in &chunks {
        d.feed(ch, &mut events).unwrap();
    }
    let n_events = events.len() as u64;
    let opts = ClientOpts {
        model: "m".into(),
        fallback_id: "r".into(),
        include_usage: true,
        created: 1,
    };

    let mut g = c.benchmark_group("openai_stream");
    g.throughput(Throughput::Elements(n_events));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut d = Decoder::new(1 << 20);
            let mut out: Vec<Event> = Vec::with_capacity(8);
            for ch in &chunks {
                d.feed(black_box(ch), &mut out).unwrap();
                out.clear();
            }
        })
    });
    g.bench_function("encode", |b| {
        b.iter(|| {
            let mut e = Encoder::new(opts.clone());
            let mut out = Vec::with_capacity(512);
            for ev in &events {
                e.encode(black_box(ev), &mut out);
                out.clear();
            }
        })
    });
    g.bench_function("decode_then_encode", |b| {
        b.iter(|| {
            let mut d = Decoder::new(1 << 20);
            let mut e = Encoder::new(opts.clone());
            let mut evs: Vec<Event> = Vec::with_capacity(8);
            let mut out = Vec::with_capacity(512);
            for ch in &chunks {
                d.feed(black_box(ch), &mut evs).unwrap();
                for ev in evs.drain(..) {
                    e.encode(&ev, &mut out);
                }
                out.clear();
            }
        })
    });
    g.finish();
}

/// A ~50 KB agent request: 12 tools with real-sized schemas, a system prompt, and a
/// conversation of text, tool calls and tool results.
fn agent_request() -> Vec<u8> {
    let tools: Vec<_> = (0..12)
        .map(|i| json!({"type": "function", "function": {
            "name": format!("tool_{i}"),
            "description": "Reads, edits or searches files in the workspace. ".repeat(12),
            "parameters": {"type": "object", "properties": {
                "path": {"type": "string", "description": "Absolute path of the file to operate on."},
                "pattern": {"type": "string", "description": "A regular expression to search for."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                "options": {"type": "object", "properties": {"case": {"type": "boolean"}, "context": {"type": "integer"}}}
            }, "required": ["path"]}}}))
        .collect();
    let mut messages =
        vec![json!({"role": "system", "content": "You are a careful coding agent. ".repeat(60)})];
    let mut i = 0;
    while serde_json::to_vec(&messages).unwrap().len() < 36_000 {
        messages.push(json!({"role": "user", "content": format!("Please look at file number {i} and tell me what the function does, then fix the bug in it.")}));
        messages.push(json!({"role": "assistant", "content": "Let me read it.", "tool_calls": [
            {"id": format!("call_{i}"), "type": "function", "function": {"name": "tool_1", "arguments": format!("{{\"path\":\"/src/file_{i}.rs\",\"limit\":200}}")}}]}));
        messages.push(json!({"role": "tool", "tool_call_id": format!("call_{i}"), "content": "fn main() { println!(\"hello\"); }\n".repeat(12)}));
        i += 1;
    }
    serde_json::to_vec(&json!({"model": "gpt-4o", "messages": messages, "tools": tools, "tool_choice": "auto",
        "stream": true, "stream_options": {"include_usage": true}, "max_completion_tokens": 4096, "temperature": 0.2})).unwrap()
}

fn request(c: &mut Criterion) {
    let body = agent_request();
    let req = decode_request(&body).unwrap();
    let target = Target {
        provider: "vllm",
        model: "qwen",
        default_max_tokens: 4096,
    };
    let mut g = c.benchmark_group("openai_request");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("decode_request_50KB", |b| {
        b.iter(|| decode_request(black_box(&body)).unwrap())
    });
    g.bench_function("encode_request_50KB", |b| {
        b.iter(|| encode_request(black_box(&req), &target).unwrap())
    });
    g.finish();
}

criterion_group!(benches, stream, request);
criterion_main!(benches);
