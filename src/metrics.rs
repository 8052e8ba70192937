//! Prometheus metrics, named after the OpenTelemetry GenAI conventions (contract §9).
//! All live in the default registry, which `/metrics` encodes.

use once_cell::sync::Lazy;
use prometheus::{
    exponential_buckets, register_counter_vec, register_histogram_vec, register_int_counter_vec,
    register_int_gauge_vec, CounterVec, HistogramVec, IntCounterVec, IntGaugeVec,
};

const GENAI_LABELS: &[&str] = &[
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
];

fn hist(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    register_histogram_vec!(name, help, labels, buckets)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

pub static TOKEN_USAGE: Lazy<HistogramVec> = Lazy::new(|| {
    let mut labels = GENAI_LABELS.to_vec();
    labels.push("gen_ai_token_type");
    hist(
        "gen_ai_client_token_usage",
        "Tokens used per request, by token type",
        &labels,
        exponential_buckets(1.0, 4.0, 14).unwrap_or_default(),
    )
});

pub static REQUEST_DURATION: Lazy<HistogramVec> = Lazy::new(|| {
    hist(
        "gen_ai_server_request_duration_seconds",
        "Time from request start to the end of the response",
        GENAI_LABELS,
        exponential_buckets(0.01, 2.0, 14).unwrap_or_default(),
    )
});

pub static TIME_TO_FIRST_TOKEN: Lazy<HistogramVec> = Lazy::new(|| {
    hist(
        "gen_ai_server_time_to_first_token_seconds",
        "Time from request start to the first response body byte",
        GENAI_LABELS,
        vec![
            0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
            10.0, 30.0, 60.0,
        ],
    )
});

pub static TIME_PER_OUTPUT_TOKEN: Lazy<HistogramVec> = Lazy::new(|| {
    hist(
        "gen_ai_server_time_per_output_token_seconds",
        "Time per output token after the first, for streamed answers",
        GENAI_LABELS,
        vec![
            0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
        ],
    )
});

pub static REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "switchyard_requests_total",
        "Requests by model, provider and final status",
        &["model", "provider", "status"]
    )
    .unwrap_or_else(|e| panic!("metric: {e}"))
});

pub static COST_USD: Lazy<CounterVec> = Lazy::new(|| {
    register_counter_vec!(
        "switchyard_cost_usd_total",
        "Spend in USD by model, provider and key",
        &["model", "provider", "key"]
    )
    .unwrap_or_else(|e| panic!("metric: {e}"))
});

pub static RATELIMIT_REJECTIONS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "switchyard_ratelimit_rejections_total",
        "Requests refused by a gateway limit",
        &["key", "kind"]
    )
    .unwrap_or_else(|e| panic!("metric: {e}"))
});

pub static UPSTREAM_UP: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec!(
        "switchyard_upstream_up",
        "1 when an endpoint passes its health check",
        &["provider", "endpoint"]
    )
    .unwrap_or_else(|e| panic!("metric: {e}"))
});

pub static OVERHEAD: Lazy<HistogramVec> = Lazy::new(|| {
    hist(
        "switchyard_overhead_seconds",
        "Time spent in the gateway itself, upstream time excluded",
        &["gen_ai_operation_name"],
        exponential_buckets(0.00001, 2.0, 18).unwrap_or_default(),
    )
});

pub static UNPRICED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "switchyard_unpriced_requests_total",
        "Requests for models absent from the catalogue",
        &["model", "provider"]
    )
    .unwrap_or_else(|e| panic!("metric: {e}"))
});

/// Register every family at start, so `/metrics` lists each TYPE before the first request.
pub fn init() {
    Lazy::force(&TOKEN_USAGE);
    Lazy::force(&REQUEST_DURATION);
    Lazy::force(&TIME_TO_FIRST_TOKEN);
    Lazy::force(&TIME_PER_OUTPUT_TOKEN);
    Lazy::force(&REQUESTS);
    Lazy::force(&COST_USD);
    Lazy::force(&RATELIMIT_REJECTIONS);
    Lazy::force(&UPSTREAM_UP);
    Lazy::force(&OVERHEAD);
    Lazy::force(&UNPRICED);
}

/// Prometheus text of the default registry.
pub fn render() -> Vec<u8> {
    use prometheus::Encoder;
    let mut buf = Vec::with_capacity(16 * 1024);
    let _ = prometheus::TextEncoder::new().encode(&prometheus::gather(), &mut buf);
    buf
}
