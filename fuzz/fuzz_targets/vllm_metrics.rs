//! `fleet::vllm_metrics::parse` on arbitrary `/metrics` pages (an upstream's bytes):
//! nothing panics, every value read is finite and not negative, and KV usage stays in 0..=1.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::fleet::vllm_metrics::parse;

fuzz_target!(|page: &[u8]| {
    let s = parse(page);
    for v in [s.running, s.waiting, s.prefix_queries, s.prefix_hits].into_iter().flatten() {
        assert!(v.is_finite() && v >= 0.0, "{v}");
    }
    if let Some(kv) = s.kv_usage {
        assert!((0.0..=1.0).contains(&kv), "{kv}");
    }
});
