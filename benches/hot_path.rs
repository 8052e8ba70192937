//! Hot-path pieces: request-head scan, body rewrite, SSE relay.
//! `cargo bench --bench hot_path`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use switchyard::body::{force_include_usage, set_model, splice, RequestHead};
use switchyard::sse::SseRelay;

/// A chat body of about `size` bytes with `model` last, as the SDKs write it.
fn chat_body(size: usize) -> Bytes {
    let turn = r#"{"role":"user","content":"The quick brown fox jumps over the lazy dog, \"quoted\" and \u00e9scaped."},"#;
    let mut s = String::with_capacity(size + 256);
    s.push_str(r#"{"messages":["#);
    while s.len() < size {
        s.push_str(turn);
    }
    s.pop();
    s.push_str(r#"],"temperature":0.2,"stream":true,"model":"gpt-4o-mini"}"#);
    Bytes::from(s)
}

fn head_scan(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_scan");
    for (name, size) in [
        ("1KiB", 1 << 10),
        ("100KiB", 100 << 10),
        ("10MiB", 10 << 20),
    ] {
        let body = chat_body(size);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| RequestHead::scan(body).expect("valid"))
        });
    }
    g.finish();
}

fn rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("rewrite");
    for (name, size) in [("1KiB", 1 << 10), ("100KiB", 100 << 10)] {
        let body = chat_body(size);
        let head = RequestHead::scan(&body).expect("valid");
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("model+include_usage", name),
            &body,
            |b, body| {
                b.iter(|| {
                    let edits = vec![
                        set_model(&head, "meta-llama/Llama-3.1-8B-Instruct").expect("model"),
                        force_include_usage(body, &head).expect("edit"),
                    ];
                    splice(body, edits)
                })
            },
        );
    }
    g.finish();
}

fn sse_scan(c: &mut Criterion) {
    let mut stream = String::new();
    for i in 0..100 {
        stream.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ));
    }
    stream.push_str("data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":100,\"total_tokens\":107}}\n\ndata: [DONE]\n\n");
    // Chunks as a server writes them: one event each.
    let chunks: Vec<Bytes> = stream
        .split_inclusive("\n\n")
        .map(|e| Bytes::copy_from_slice(e.as_bytes()))
        .collect();
    let mut g = c.benchmark_group("sse_scan");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    for strip in [false, true] {
        g.bench_function(
            if strip {
                "100_events_strip_usage"
            } else {
                "100_events_passthrough"
            },
            |b| {
                b.iter(|| {
                    let mut relay = SseRelay::new(strip);
                    for ch in &chunks {
                        let _ = relay.feed(ch);
                    }
                    relay.usage.expect("usage")
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, head_scan, rewrite, sse_scan);
criterion_main!(benches);
