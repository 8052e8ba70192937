//! Prometheus metrics, named after the OpenTelemetry GenAI conventions (contract §9).
//! All live in the default registry, which `/metrics` encodes.

use once_cell::sync::Lazy;
use prometheus::{
    exponential_buckets, register_counter_vec, register_histogram_vec, register_int_counter_vec,
    register_int_gauge_vec, CounterVec, Histogram, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::rc::Rc;

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

fn fleet_gauge(name: &str, help: &str) -> prometheus::GaugeVec {
    prometheus::register_gauge_vec!(name, help, &["provider", "endpoint"])
        .unwrap_or_else(|e| panic!("metric {name}: {e}"))
}

pub static FLEET_MODEL_IN_FLIGHT: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec!(
        "switchyard_fleet_model_in_flight",
        "Requests this gateway has in flight on a fleet endpoint, per model as sent upstream",
        &["provider", "endpoint", "model"]
    )
    .unwrap_or_else(|e| panic!("metric: {e}"))
});

pub static FLEET_IN_FLIGHT: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec!(
        "switchyard_fleet_in_flight",
        "Requests this gateway has in flight on a fleet endpoint",
        &["provider", "endpoint"]
    )
    .unwrap_or_else(|e| panic!("metric: {e}"))
});

pub static FLEET_RUNNING: Lazy<prometheus::GaugeVec> = Lazy::new(|| {
    fleet_gauge(
        "switchyard_fleet_requests_running",
        "vllm:num_requests_running of a fleet endpoint, as last scraped",
    )
});

pub static FLEET_WAITING: Lazy<prometheus::GaugeVec> = Lazy::new(|| {
    fleet_gauge(
        "switchyard_fleet_requests_waiting",
        "vllm:num_requests_waiting of a fleet endpoint, as last scraped",
    )
});

pub static FLEET_KV_USAGE: Lazy<prometheus::GaugeVec> = Lazy::new(|| {
    fleet_gauge(
        "switchyard_fleet_kv_cache_usage_ratio",
        "vllm:kv_cache_usage_perc of a fleet endpoint (0..1), as last scraped",
    )
});

pub static FLEET_PREFIX_HIT_RATIO: Lazy<prometheus::GaugeVec> = Lazy::new(|| {
    fleet_gauge(
        "switchyard_fleet_prefix_cache_hit_ratio",
        "Prefix cache hits / queries (tokens) of a fleet endpoint since it started, as last scraped",
    )
});

pub static FLEET_PICKS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "switchyard_fleet_picks_total",
        "Fleet endpoint picks by reason (prefix_hit, spill, least_loaded, session, round_robin)",
        &["provider", "reason"]
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
    Lazy::force(&FLEET_IN_FLIGHT);
    Lazy::force(&FLEET_MODEL_IN_FLIGHT);
    Lazy::force(&FLEET_RUNNING);
    Lazy::force(&FLEET_WAITING);
    Lazy::force(&FLEET_KV_USAGE);
    Lazy::force(&FLEET_PREFIX_HIT_RATIO);
    Lazy::force(&FLEET_PICKS);
}

/// Prometheus text of the default registry.
pub fn render() -> Vec<u8> {
    use prometheus::Encoder;
    let mut buf = Vec::with_capacity(16 * 1024);
    let _ = prometheus::TextEncoder::new().encode(&prometheus::gather(), &mut buf);
    buf
}

/// The label value standing for every model name that is not from a bounded set.
pub const OTHER_MODEL: &str = "other";

/// The longest label value kept; longer names are cut (configured names are never this long).
pub const LABEL_MAX: usize = 128;

/// A name as a label value: at most `LABEL_MAX` bytes, control characters replaced (the text
/// format escapes only `\\`, `"` and line feeds; a raw CR would corrupt a scrape).
pub fn label_value(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() <= LABEL_MAX && !name.bytes().any(|b| b.is_ascii_control()) {
        return std::borrow::Cow::Borrowed(name);
    }
    let clipped = crate::errors::clip(name, LABEL_MAX);
    std::borrow::Cow::Owned(
        clipped
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
    )
}

/// The token types of `gen_ai_client_token_usage`, in `RouteMetrics::tokens` order.
pub const TOKEN_TYPES: [&str; 5] = [
    "input",
    "cached_input",
    "cache_creation_input",
    "output",
    "reasoning",
];

/// The label-resolved series of one route (operation, provider, model, upstream model).
///
/// `with_label_values` hashes every label and takes the family's lock on each call; a
/// request records nine series, so resolving them once per route and keeping the handles
/// in a per-thread cache takes that off the request path.
pub struct RouteMetrics {
    pub duration: Histogram,
    pub ttft: Histogram,
    pub per_output_token: Histogram,
    pub tokens: [Histogram; 5],
    pub overhead: Histogram,
    /// `switchyard_unpriced_requests_total` of this route.
    pub unpriced: IntCounter,
    /// `switchyard_cost_usd_total` of this route, by key name (names come from the config).
    costs: RefCell<Vec<(Box<str>, prometheus::Counter)>>,
    /// `switchyard_requests_total` with status 200, the one status nearly every request has.
    requests_ok: IntCounter,
    model: Box<str>,
    provider: Box<str>,
}

impl RouteMetrics {
    fn resolve(op: &'static str, provider: &str, model: &str, upstream: &str) -> RouteMetrics {
        let labels = [op, provider, model, upstream];
        RouteMetrics {
            duration: REQUEST_DURATION.with_label_values(&labels),
            ttft: TIME_TO_FIRST_TOKEN.with_label_values(&labels),
            per_output_token: TIME_PER_OUTPUT_TOKEN.with_label_values(&labels),
            tokens: TOKEN_TYPES
                .map(|kind| TOKEN_USAGE.with_label_values(&[op, provider, model, upstream, kind])),
            overhead: OVERHEAD.with_label_values(&[op]),
            unpriced: UNPRICED.with_label_values(&[model, provider]),
            costs: RefCell::new(Vec::new()),
            requests_ok: REQUESTS.with_label_values(&[model, provider, "200"]),
            model: model.into(),
            provider: provider.into(),
        }
    }

    /// One observation per token type of `u`, in `TOKEN_TYPES` order.
    pub fn observe_tokens(&self, u: &crate::usage::Usage) {
        let counts = [
            u.input,
            u.cached_input,
            u.cache_creation_input,
            u.output,
            u.reasoning,
        ];
        for (h, n) in self.tokens.iter().zip(counts) {
            h.observe(n as f64);
        }
    }

    /// The spend counter of this route for `key` (a key name, `""` on an open gateway).
    pub fn cost(&self, key: &str) -> prometheus::Counter {
        let mut costs = self.costs.borrow_mut();
        if let Some((_, c)) = costs.iter().find(|(k, _)| &**k == key) {
            return c.clone();
        }
        let c = COST_USD.with_label_values(&[&*self.model, &*self.provider, key]);
        costs.push((key.into(), c.clone()));
        c
    }

    /// Count one finished request with its final status.
    pub fn count_request(&self, status: u16) {
        if status == 200 {
            self.requests_ok.inc();
        } else {
            let mut buf = [0u8; 5];
            REQUESTS
                .with_label_values(&[&*self.model, &*self.provider, status_str(status, &mut buf)])
                .inc();
        }
    }
}

fn status_str(status: u16, buf: &mut [u8; 5]) -> &str {
    let mut n = status;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// Routes whose handles a worker thread keeps. Model names can come from clients
/// (`provider/model`), so the cache is bounded: past this size it starts over (Prometheus
/// keeps the series themselves either way).
const ROUTE_CACHE_MAX: usize = 4096;

struct CachedRoute {
    key: (&'static str, Box<str>, Box<str>, Box<str>),
    metrics: Rc<RouteMetrics>,
}

thread_local! {
    static ROUTES: RefCell<HashMap<u64, Vec<CachedRoute>, BuildHasherDefault<PreHashed>>> =
        RefCell::new(HashMap::default());
}

/// The handles of a route, resolved on this thread's first request for it.
pub fn route(op: &'static str, provider: &str, model: &str, upstream: &str) -> Rc<RouteMetrics> {
    let mut h = std::hash::DefaultHasher::new();
    (op, provider, model, upstream).hash(&mut h);
    let hash = h.finish();
    ROUTES.with(|cell| {
        let mut map = cell.borrow_mut();
        if let Some(hit) = map.get(&hash).and_then(|bucket| {
            bucket.iter().find(|c| {
                c.key.0 == op
                    && &*c.key.1 == provider
                    && &*c.key.2 == model
                    && &*c.key.3 == upstream
            })
        }) {
            return hit.metrics.clone();
        }
        if map.len() >= ROUTE_CACHE_MAX {
            map.clear();
        }
        let metrics = Rc::new(RouteMetrics::resolve(op, provider, model, upstream));
        map.entry(hash).or_default().push(CachedRoute {
            key: (op, provider.into(), model.into(), upstream.into()),
            metrics: metrics.clone(),
        });
        metrics
    })
}

/// The cache's keys are already hashes: use them as they are.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_handles_update_the_registry_series() {
        let before = REQUESTS
            .with_label_values(&["m-cache-test", "p-cache-test", "200"])
            .get();
        let a = route("chat", "p-cache-test", "m-cache-test", "up");
        let b = route("chat", "p-cache-test", "m-cache-test", "up");
        assert!(Rc::ptr_eq(&a, &b), "second lookup is a cache hit");
        let other = route("chat", "p-cache-test", "m-cache-test", "up2");
        assert!(!Rc::ptr_eq(&a, &other));
        a.count_request(200);
        b.count_request(200);
        a.count_request(503);
        assert_eq!(
            REQUESTS
                .with_label_values(&["m-cache-test", "p-cache-test", "200"])
                .get(),
            before + 2
        );
        assert_eq!(
            REQUESTS
                .with_label_values(&["m-cache-test", "p-cache-test", "503"])
                .get(),
            1
        );
        a.observe_tokens(&crate::usage::Usage {
            input: 11,
            output: 7,
            ..Default::default()
        });
        let sum = |kind: &str| {
            TOKEN_USAGE
                .with_label_values(&["chat", "p-cache-test", "m-cache-test", "up", kind])
                .get_sample_sum()
        };
        assert_eq!(
            (sum("input"), sum("output"), sum("reasoning")),
            (11.0, 7.0, 0.0)
        );
    }

    #[test]
    fn label_values_are_bounded_and_clean() {
        assert_eq!(label_value("gpt-4o-mini"), "gpt-4o-mini");
        assert_eq!(label_value("a\rb\nc"), "a?b?c");
        let long = "m".repeat(10_000);
        let v = label_value(&long);
        assert!(v.len() <= LABEL_MAX + '…'.len_utf8(), "{}", v.len());
    }

    #[test]
    fn status_labels() {
        let mut buf = [0u8; 5];
        assert_eq!(status_str(499, &mut buf), "499");
        assert_eq!(status_str(0, &mut buf), "0");
    }
}
