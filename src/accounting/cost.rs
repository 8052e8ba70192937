//! What a request cost, from the compiled-in catalogue (contract §7, §12).

use crate::catalog::{Catalog, ModelInfo, TokenCounts, PROVIDER_ORDER};
use crate::config::{Dialect, Provider};
use crate::usage::Usage;

/// The catalogue entry that prices a call: the upstream model id at the provider that served
/// it (its region's price where there is one), then the upstream model id on its own, then the
/// name the client asked for. `None`: the model is unpriced (served, priced at zero, counted).
pub fn entry<'c>(
    catalog: &'c Catalog,
    provider: Option<&Provider>,
    upstream: Option<&str>,
    requested: &str,
) -> Option<&'c ModelInfo> {
    if let (Some(p), Some(model)) = (provider, upstream) {
        if let Some(id) = catalog_provider(p) {
            let hit = match p.region.as_deref() {
                Some(region) => catalog.get_in_region(id, region, model),
                None => catalog.get_for(id, model),
            };
            if hit.is_some() {
                return hit;
            }
        }
    }
    upstream
        .and_then(|m| catalog.get(m))
        .or_else(|| catalog.get(requested))
}

/// The catalogue's name for a configured provider: its id when the catalogue knows it
/// (`openai`, `groq`, `bedrock`, ...), else the one its dialect implies.
fn catalog_provider(p: &Provider) -> Option<&str> {
    if let Some(known) = PROVIDER_ORDER.iter().find(|id| **id == p.id) {
        return Some(known);
    }
    match p.dialect {
        Dialect::Anthropic => Some("anthropic"),
        Dialect::Bedrock => Some("bedrock"),
        Dialect::AzureOpenAi => Some("azure-openai"),
        Dialect::AzureFoundry => Some("azure-foundry"),
        Dialect::Vertex => Some("vertex-ai"),
        Dialect::Gemini => Some("gemini"),
        _ => None,
    }
}

/// USD of `usage` at `entry`'s prices: a cached token billed once at its cached price,
/// reasoning as output (or its own price), the above-200k tier where the entry has one.
pub fn cost(entry: &ModelInfo, usage: &Usage) -> f64 {
    entry.cost(&TokenCounts {
        input: usage.input,
        cached_input: usage.cached_input,
        cache_creation_input: usage.cache_creation_input,
        output: usage.output,
        reasoning: usage.reasoning,
    })
}

/// Nano-dollars, the unit budgets add up in (exact integers, in Redis too).
pub fn nano(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::global;

    fn usage(input: u64, cached: u64, creation: u64, output: u64, reasoning: u64) -> Usage {
        Usage {
            input,
            cached_input: cached,
            cache_creation_input: creation,
            output,
            reasoning,
            total: input + output,
            estimated: false,
        }
    }

    fn price(name: &str) -> crate::catalog::Price {
        global().get(name).expect(name).price
    }

    // Golden figures: each is computed here by hand from the entry's per-token prices.
    #[test]
    fn plain_usage() {
        let p = price("gpt-4o-mini");
        let want = 1000.0 * p.input.unwrap() + 500.0 * p.output.unwrap();
        let got = cost(
            global().get("gpt-4o-mini").unwrap(),
            &usage(1000, 0, 0, 500, 0),
        );
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        // gpt-4o-mini: $0.15 / $0.60 per million tokens.
        assert!((got - (0.00015 + 0.0003)).abs() < 1e-9, "{got}");
    }

    #[test]
    fn cached_tokens_are_billed_once_at_the_cache_price() {
        let e = global().get("gpt-4o-mini").unwrap();
        let p = e.price;
        let got = cost(e, &usage(1000, 600, 0, 10, 0));
        let want =
            400.0 * p.input.unwrap() + 600.0 * p.cache_read.unwrap() + 10.0 * p.output.unwrap();
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        assert!(got < cost(e, &usage(1000, 0, 0, 10, 0)));
    }

    #[test]
    fn cache_writes_at_their_own_price() {
        let e = global().get("claude-sonnet-4-5").unwrap();
        let p = e.price;
        let got = cost(e, &usage(3000, 1000, 1500, 200, 0));
        let want = 500.0 * p.input.unwrap()
            + 1000.0 * p.cache_read.unwrap()
            + 1500.0 * p.cache_write.unwrap()
            + 200.0 * p.output.unwrap();
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }

    #[test]
    fn reasoning_is_billed_as_output() {
        let e = global().get("o3-mini").unwrap();
        let p = e.price;
        let got = cost(e, &usage(100, 0, 0, 900, 800));
        let want = 100.0 * p.input.unwrap() + 900.0 * p.reasoning.or(p.output).unwrap();
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }

    #[test]
    fn the_tier_above_200k_prices_the_whole_request() {
        let e = global().get("gemini/gemini-2.5-pro").unwrap();
        // $2.50 / $15 per million above 200k input tokens, for the whole request.
        let got = cost(e, &usage(250_000, 50_000, 0, 1000, 0));
        let want = 200_000.0 * 2.5e-6 + 50_000.0 * 2.5e-7 + 1000.0 * 1.5e-5;
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        // At 200k and below, the base prices ($1.25 / $10).
        let base = cost(e, &usage(200_000, 0, 0, 1000, 0));
        assert!(
            (base - (200_000.0 * 1.25e-6 + 1000.0 * 1e-5)).abs() < 1e-9,
            "{base}"
        );
    }

    #[test]
    fn the_upstream_model_prices_before_the_requested_name() {
        let cat = global();
        let by_upstream = entry(cat, None, Some("gpt-4o"), "my-alias").unwrap();
        assert_eq!(by_upstream.id, "gpt-4o");
        let by_name = entry(cat, None, Some("prod-deployment-7"), "gpt-4o-mini").unwrap();
        assert_eq!(by_name.id, "gpt-4o-mini");
        assert!(entry(cat, None, Some("no-such-model-x"), "nor-this").is_none());
        assert_eq!(nano(0.00045), 450_000);
        assert_eq!(nano(f64::NAN), 0);
    }
}
