//! Anthropic translation: stream decode + re-encode per event, request decode/encode.
//! `cargo bench --bench translate_anthropic`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use switchyard::translate::anthropic::{decode_request, encode_request, Decoder, Encoder};
use switchyard::translate::ir::{ClientOpts, StreamDecoder, StreamEncoder, Target};

/// A ~200-event Anthropic stream: a thinking block, a text block and a tool call.
fn stream() -> (Vec<u8>, u64) {
    let mut s = String::new();
    let mut n = 0u64;
    let mut ev = |name: &str, data: String| {
        s.push_str(&format!("event: {name}\ndata: {data}\n\n"));
        n += 1;
    };
    ev("message_start", r#"{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"cache_read_input_tokens":30000,"cache_creation_input_tokens":0,"output_tokens":1}}}"#.into());
    ev("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#.into());
    for _ in 0..40 {
        ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" considering the files"}}"#.into());
    }
    ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}"#.into());
    ev(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#.into(),
    );
    ev(
        "content_block_start",
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#
            .into(),
    );
    for i in 0..120 {
        ev(
            "content_block_delta",
            format!(
                r#"{{"type":"content_block_delta","index":1,"delta":{{"type":"text_delta","text":"word {i} of the answer, "}}}}"#
            ),
        );
    }
    ev(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":1}"#.into(),
    );
    ev("content_block_start", r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01","name":"Read","input":{}}}"#.into());
    for _ in 0..30 {
        ev("content_block_delta", r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"path\": \"src/"}}"#.into());
    }
    ev(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":2}"#.into(),
    );
    ev("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":640}}"#.into());
    ev("message_stop", r#"{"type":"message_stop"}"#.into());
    (s.into_bytes(), n)
}

/// A Claude-Code-like request of about 50 KB: 12 tools with long descriptions.
fn big_request() -> Vec<u8> {
    let desc =
        "Reads a file from the local filesystem. Usage notes and caveats follow. ".repeat(40);
    let tools: Vec<_> = (0..12)
        .map(|i| json!({"name": format!("Tool{i}"), "description": desc,
            "input_schema": {"type":"object","properties":{"path":{"type":"string","description":"absolute path"},"limit":{"type":"integer"}},"required":["path"]}}))
        .collect();
    let mut messages = Vec::new();
    for i in 0..20 {
        messages.push(json!({"role":"user","content":[{"type":"text","text":format!("question {i}: what does this code do? {}", "x".repeat(200))}]}));
        messages.push(json!({"role":"assistant","content":[{"type":"text","text":"Let me look."},{"type":"tool_use","id":format!("toolu_{i}"),"name":"Tool0","input":{"path":"/a"}}]}));
        messages.push(json!({"role":"user","content":[{"type":"tool_result","tool_use_id":format!("toolu_{i}"),"content":"fn main() {}".repeat(20)}]}));
    }
    messages.push(json!({"role":"user","content":"summarize"}));
    serde_json::to_vec(&json!({
        "model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,
        "system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
        "messages":messages,"tools":tools,"thinking":{"type":"adaptive"},
        "metadata":{"user_id":"u"},"context_management":{"edits":[]}
    }))
    .unwrap()
}

fn stream_bench(c: &mut Criterion) {
    let (sse, n) = stream();
    let mut g = c.benchmark_group("anthropic_stream");
    g.throughput(Throughput::Elements(n));
    g.bench_function("decode+encode per event", |b| {
        let mut events = Vec::with_capacity(8);
        let mut out = Vec::with_capacity(64 << 10);
        b.iter(|| {
            let mut d = Decoder::new(1 << 20);
            let mut e = Encoder::new(ClientOpts {
                model: "m".into(),
                fallback_id: "x".into(),
                ..Default::default()
            });
            out.clear();
            // Fed event-sized pieces, as an upstream sends them.
            for chunk in sse.split_inclusive(|&b| b == b'\n') {
                events.clear();
                d.feed(chunk, &mut events).unwrap();
                for ev in &events {
                    e.encode(ev, &mut out);
                }
            }
            out.len()
        })
    });
    g.finish();
}

fn request_bench(c: &mut Criterion) {
    let body = big_request();
    let mut g = c.benchmark_group("anthropic_request");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("decode_request 50KB", |b| {
        b.iter(|| decode_request(&body).unwrap())
    });
    // The parse alone, serde_json against simd-json (which needs a mutable copy to parse in place).
    g.bench_function("parse InRequest 50KB serde_json", |b| {
        b.iter(|| serde_json::from_slice::<switchyard::wire::anthropic::InRequest>(&body).unwrap())
    });
    g.bench_function("parse InRequest 50KB simd-json", |b| {
        let mut copy = Vec::with_capacity(body.len());
        b.iter(|| {
            copy.clear();
            copy.extend_from_slice(&body);
            simd_json::serde::from_slice::<switchyard::wire::anthropic::InRequest>(&mut copy)
                .unwrap()
        })
    });
    let req = decode_request(&body).unwrap();
    let target = Target {
        provider: "anthropic",
        model: "claude-up",
        default_max_tokens: 4096,
    };
    g.bench_function("encode_request 50KB", |b| {
        b.iter(|| encode_request(&req, &target).unwrap())
    });
    g.finish();
}

criterion_group!(benches, stream_bench, request_bench);
criterion_main!(benches);
