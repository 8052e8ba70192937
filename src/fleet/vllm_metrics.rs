//! Reading a vLLM `/metrics` page (Prometheus text) for the load signals fleet routing uses.
//! The bytes come from the network: every line is bounded, unknown lines are skipped, a
//! malformed value is ignored, and nothing here can panic (fuzzed: `fuzz/fuzz_targets/vllm_metrics.rs`).

/// What one scrape said. `None`: the page did not have it (llama-server, SGLang, Ollama).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scraped {
    pub running: Option<f64>,
    pub waiting: Option<f64>,
    /// KV cache in use, 0..1.
    pub kv_usage: Option<f64>,
    /// Prefix cache lookups and hits, in tokens (counters since the server started).
    pub prefix_queries: Option<f64>,
    pub prefix_hits: Option<f64>,
}

/// Lines longer than this are skipped (histogram buckets with many labels stay well under).
const LINE_MAX: usize = 4096;

/// Sum each known metric over its label sets (one series per served model).
pub fn parse(page: &[u8]) -> Scraped {
    let mut s = Scraped::default();
    for line in page.split(|b| *b == b'\n') {
        if line.len() > LINE_MAX || line.first() == Some(&b'#') || !line.starts_with(b"vllm:") {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let line = line.trim_end_matches('\r');
        // `name{labels} value [timestamp]`, or `name value [timestamp]`.
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) if line.as_bytes()[i] == b'{' => match line[i..].rfind('}') {
                Some(j) => (&line[..i], &line[i + j + 1..]),
                None => continue,
            },
            Some(i) => (&line[..i], &line[i..]),
            None => continue,
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        if !value.is_finite() || value < 0.0 {
            continue;
        }
        let slot = match name {
            "vllm:num_requests_running" => &mut s.running,
            "vllm:num_requests_waiting" => &mut s.waiting,
            // vLLM ≥ 0.10 names it kv_cache_usage_perc; older ones gpu_cache_usage_perc.
            "vllm:kv_cache_usage_perc" | "vllm:gpu_cache_usage_perc" => &mut s.kv_usage,
            "vllm:prefix_cache_queries_total" | "vllm:gpu_prefix_cache_queries_total" => {
                &mut s.prefix_queries
            }
            "vllm:prefix_cache_hits_total" | "vllm:gpu_prefix_cache_hits_total" => {
                &mut s.prefix_hits
            }
            _ => continue,
        };
        *slot = Some(slot.unwrap_or(0.0) + value);
    }
    // Several models on one server: KV usage is a share, not a sum.
    s.kv_usage = s.kv_usage.map(|k| k.min(1.0));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vllm_names_and_sums_models() {
        let page =
            b"# HELP vllm:num_requests_running Number of requests in model execution batches.\n\
# TYPE vllm:num_requests_running gauge\n\
vllm:num_requests_running{engine=\"0\",model_name=\"a\"} 3.0\n\
vllm:num_requests_running{engine=\"0\",model_name=\"b\"} 2.0\n\
vllm:num_requests_waiting{model_name=\"a\"} 7.0\r\n\
vllm:kv_cache_usage_perc{model_name=\"a\"} 0.42\n\
vllm:prefix_cache_queries_total{model_name=\"a\"} 1000.0\n\
vllm:prefix_cache_hits_total{model_name=\"a\"} 250.0\n\
vllm:e2e_request_latency_seconds_bucket{le=\"0.3\",model_name=\"a\"} 1.0\n";
        let s = parse(page);
        assert_eq!(s.running, Some(5.0));
        assert_eq!(s.waiting, Some(7.0));
        assert_eq!(s.kv_usage, Some(0.42));
        assert_eq!(s.prefix_queries, Some(1000.0));
        assert_eq!(s.prefix_hits, Some(250.0));
    }

    #[test]
    fn older_names_and_servers_without_them() {
        let s = parse(b"vllm:gpu_cache_usage_perc 0.9\n");
        assert_eq!(s.kv_usage, Some(0.9));
        assert_eq!(s.running, None);
        let llama = parse(b"llamacpp:requests_processing 2\nllamacpp:requests_deferred 1\n");
        assert_eq!(llama, Scraped::default());
    }

    #[test]
    fn hostile_lines_are_skipped() {
        let s = parse(b"vllm:num_requests_running{a=\"}\" NaN\nvllm:num_requests_waiting -4\nvllm:num_requests_running{ 1e400\nvllm:kv_cache_usage_perc 7\n");
        assert_eq!(s.running, None);
        assert_eq!(s.waiting, None);
        assert_eq!(s.kv_usage, Some(1.0));
    }
}
