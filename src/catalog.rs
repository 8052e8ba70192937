//! The model catalogue: prices, context windows and providers of ~2,000 models.
//!
//! Compiled in from `catalog/models.json`, a compact form of LiteLLM's public
//! `model_prices_and_context_window.json` (MIT; see `catalog/README.md` and
//! `tools/compact_catalog.py`). Parsed once, on first use of [`global`].
//!
//! # Names
//!
//! Every entry has three names:
//! * `name`: the LiteLLM key, as in the source (`gpt-4o`, `gemini/gemini-2.5-pro`,
//!   `together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo`, `bedrock/us-east-1/anthropic.claude-v2:1`);
//! * `provider`: the switchyard provider id (`openai`, `gemini`, `together`, `bedrock`, ...);
//! * `id`: the model id a client sends to that provider, i.e. the key without LiteLLM's provider
//!   prefix and without a region / data-zone segment (`gemini-2.5-pro`,
//!   `meta-llama/Llama-3.3-70B-Instruct-Turbo`, `anthropic.claude-v2:1`). Region-qualified entries
//!   (`region` is `Some`) carry regional prices; they are reachable by key and by
//!   [`Catalog::get_in_region`], never listed and never chosen by name resolution.
//!
//! When one provider has several entries with the same `id` (e.g. `deepseek-chat` and
//! `deepseek/deepseek-chat`), the one with the shortest key (then the lexicographically first)
//! is canonical for that `(provider, id)`.
//!
//! # Lookup rules
//!
//! [`Catalog::get`] tries, in order:
//! 1. the exact LiteLLM key (`gpt-4o`, `gemini/gemini-2.5-pro`, `azure/eu/gpt-4o`);
//! 2. `provider/model` in switchyard ids: when the part before the first `/` is a switchyard
//!    provider id, the canonical entry of that provider whose `id` is the rest
//!    (`openai/gpt-4o` → `gpt-4o`, `bedrock/anthropic.claude-3-5-haiku-20241022-v1:0`,
//!    `vertex-ai/claude-sonnet-4-5@20250929` → `vertex_ai/claude-sonnet-4-5@20250929`,
//!    `together/meta-llama/…` → `together_ai/meta-llama/…`);
//! 3. the whole name as a client id, resolved across providers by [`PROVIDER_ORDER`]
//!    (`llama-3.1-8b-instant`, `openai/gpt-oss-120b` → Groq's entry).
//!
//! [`Catalog::provider_of`] answers which provider serves a name: rule 2 (a switchyard-prefixed
//! name that provider really lists), then rule 3 (first provider in [`PROVIDER_ORDER`] listing that
//! id: `gemini-2.5-pro` is `gemini`, not `vertex-ai`, although the bare LiteLLM key is Vertex's),
//! then the provider of an exact LiteLLM key (`together_ai/…` → `together`), and last a
//! model-family rule for first-party names absent from the catalogue (`claude-*` → anthropic,
//! `gpt-*`/`o1`/`o3`/`o4*` → openai, `gemini-*` → gemini, `deepseek-*` → deepseek,
//! `grok-*` → xai, `mistral-*`/`codestral-*`/… → mistral, `command-*` → cohere, `jamba-*` → ai21,
//! `sonar*` → perplexity).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::Deserialize;

/// The compiled-in catalogue file.
pub const MODELS_JSON: &str = include_str!("../catalog/models.json");

/// Switchyard provider ids the catalogue knows, in name-resolution preference order:
/// first-party model makers, then clouds, then hosts of open models, then local ones.
pub const PROVIDER_ORDER: &[&str] = &[
    "openai",
    "anthropic",
    "gemini",
    "mistral",
    "cohere",
    "deepseek",
    "xai",
    "ai21",
    "perplexity",
    "azure-openai",
    "azure-foundry",
    "bedrock",
    "vertex-ai",
    "groq",
    "together",
    "fireworks",
    "deepinfra",
    "sambanova",
    "replicate",
    "hugging-face",
    "ollama",
];

/// Input size (tokens, cache reads and writes included) above which the `_above_200k` prices apply.
pub const TIER_200K: u64 = 200_000;

/// What kind of endpoint a model is priced for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Chat,
    Completion,
    Embedding,
    Responses,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Completion => "completion",
            Mode::Embedding => "embedding",
            Mode::Responses => "responses",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "chat" => Mode::Chat,
            "completion" => Mode::Completion,
            "embedding" => Mode::Embedding,
            "responses" => Mode::Responses,
            _ => return None,
        })
    }
}

/// Prices in USD per token. `None` where the source gives none.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Price {
    pub input: Option<f64>,
    pub output: Option<f64>,
    /// Cache read (cached input) tokens.
    pub cache_read: Option<f64>,
    /// Cache creation (cache write) tokens.
    pub cache_write: Option<f64>,
    /// Reasoning tokens, where they are priced apart from output.
    pub reasoning: Option<f64>,
    /// Input price for the whole request when its input exceeds [`TIER_200K`].
    pub input_above_200k: Option<f64>,
    /// Output price for the whole request when its input exceeds [`TIER_200K`].
    pub output_above_200k: Option<f64>,
    pub cache_read_above_200k: Option<f64>,
    pub cache_write_above_200k: Option<f64>,
}

/// Normalised usage of one request (gateway.md §7, translation.md §10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// All input tokens, cache reads and cache writes included.
    pub input: u64,
    /// Of `input`, tokens read from the prompt cache.
    pub cached_input: u64,
    /// Of `input`, tokens written to the prompt cache.
    pub cache_creation_input: u64,
    /// All output tokens, reasoning included.
    pub output: u64,
    /// Of `output`, reasoning tokens.
    pub reasoning: u64,
}

impl Price {
    /// Whether `usage` falls in the above-200k tier of this price.
    pub fn above_200k(&self, usage: &TokenCounts) -> bool {
        usage.input > TIER_200K
            && (self.input_above_200k.is_some() || self.output_above_200k.is_some())
    }

    /// Cost of one request in USD.
    ///
    /// `(input − cached − cache_creation)·input + cached·cache_read + cache_creation·cache_write`
    /// `+ (output − reasoning)·output + reasoning·reasoning`, where a missing cache price falls back
    /// to the input price and a missing reasoning price to the output price; every token is billed
    /// once. When the input exceeds 200,000 tokens and the entry has `_above_200k` prices, those
    /// apply to the whole request (a missing tiered price falls back to the base one). Missing
    /// input/output prices count as zero. Inconsistent counts are clamped (cached ≤ input, ...).
    pub fn cost(&self, usage: &TokenCounts) -> f64 {
        let tier = self.above_200k(usage);
        let pick = |base: Option<f64>, tiered: Option<f64>| {
            if tier {
                tiered.or(base)
            } else {
                base
            }
        };
        let input_p = pick(self.input, self.input_above_200k).unwrap_or(0.0);
        let output_p = pick(self.output, self.output_above_200k).unwrap_or(0.0);
        let cache_read_p = pick(self.cache_read, self.cache_read_above_200k).unwrap_or(input_p);
        let cache_write_p = pick(self.cache_write, self.cache_write_above_200k).unwrap_or(input_p);
        let reasoning_p = self.reasoning.unwrap_or(output_p);

        let cached = usage.cached_input.min(usage.input);
        let creation = usage.cache_creation_input.min(usage.input - cached);
        let fresh = usage.input - cached - creation;
        let reasoning = usage.reasoning.min(usage.output);
        let text_out = usage.output - reasoning;

        fresh as f64 * input_p
            + cached as f64 * cache_read_p
            + creation as f64 * cache_write_p
            + text_out as f64 * output_p
            + reasoning as f64 * reasoning_p
    }
}

/// One catalogue entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The LiteLLM key, as in the source file.
    pub name: String,
    /// The model id a client sends to `provider` (the key without LiteLLM prefix and region).
    pub id: String,
    /// Switchyard provider id (one of [`PROVIDER_ORDER`]).
    pub provider: &'static str,
    /// Region or data zone of region-specific prices (`us-east-1`, `eu`, ...), else `None`.
    pub region: Option<String>,
    pub mode: Mode,
    pub price: Price,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
}

impl ModelInfo {
    /// Shorthand for `self.price.cost(usage)`.
    pub fn cost(&self, usage: &TokenCounts) -> f64 {
        self.price.cost(usage)
    }
}

#[derive(Debug, Default)]
struct ProviderIndex {
    /// Canonical (non-regional) entries by client id, sorted.
    ids: BTreeMap<String, usize>,
    /// Regional entries by (region, id).
    regional: HashMap<(String, String), usize>,
}

/// The parsed catalogue. Cheap to query; build once ([`global`]).
#[derive(Debug)]
pub struct Catalog {
    models: Vec<ModelInfo>,
    by_key: HashMap<String, usize>,
    providers: HashMap<&'static str, ProviderIndex>,
    /// Client id → preferred entry across providers (by [`PROVIDER_ORDER`]).
    by_id: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(borrow)]
    k: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    rg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    p: Cow<'a, str>,
    #[serde(borrow)]
    m: Cow<'a, str>,
    i: Option<f64>,
    o: Option<f64>,
    cr: Option<f64>,
    cw: Option<f64>,
    r: Option<f64>,
    i2: Option<f64>,
    o2: Option<f64>,
    cr2: Option<f64>,
    cw2: Option<f64>,
    mi: Option<u64>,
    mo: Option<u64>,
}

fn provider_rank(provider: &str) -> usize {
    PROVIDER_ORDER
        .iter()
        .position(|p| *p == provider)
        .unwrap_or(PROVIDER_ORDER.len())
}

/// Whether entry `a` is preferred over `b` for the same `(provider, id)`: shorter key, then smaller.
fn key_preferred(a: &str, b: &str) -> bool {
    (a.len(), a) < (b.len(), b)
}

static GLOBAL: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog::from_json(MODELS_JSON).expect("compiled-in catalog/models.json is valid")
});

/// The compiled-in catalogue, parsed on first use.
pub fn global() -> &'static Catalog {
    &GLOBAL
}

impl Catalog {
    /// The compiled-in catalogue (same as [`global`]).
    pub fn global() -> &'static Catalog {
        global()
    }

    /// Parses a catalogue in the `catalog/models.json` format. Entries with an unknown provider
    /// id or mode are skipped.
    pub fn from_json(json: &str) -> Result<Catalog, serde_json::Error> {
        let raw: Vec<RawEntry<'_>> = serde_json::from_str(json)?;
        let mut models = Vec::with_capacity(raw.len());
        for r in raw {
            let Some(&provider) = PROVIDER_ORDER.iter().find(|p| **p == r.p) else {
                continue;
            };
            let Some(mode) = Mode::parse(&r.m) else {
                continue;
            };
            let name = r.k.into_owned();
            let id = match r.id {
                Some(id) => id.into_owned(),
                None => name.clone(),
            };
            models.push(ModelInfo {
                name,
                id,
                provider,
                region: r.rg.map(Cow::into_owned),
                mode,
                price: Price {
                    input: r.i,
                    output: r.o,
                    cache_read: r.cr,
                    cache_write: r.cw,
                    reasoning: r.r,
                    input_above_200k: r.i2,
                    output_above_200k: r.o2,
                    cache_read_above_200k: r.cr2,
                    cache_write_above_200k: r.cw2,
                },
                max_input_tokens: r.mi,
                max_output_tokens: r.mo,
            });
        }
        Ok(Catalog::from_models(models))
    }

    fn from_models(models: Vec<ModelInfo>) -> Catalog {
        let mut by_key = HashMap::with_capacity(models.len());
        let mut providers: HashMap<&'static str, ProviderIndex> = HashMap::new();
        for (i, m) in models.iter().enumerate() {
            by_key.insert(m.name.clone(), i);
            let index = providers.entry(m.provider).or_default();
            let slot = match &m.region {
                Some(region) => index
                    .regional
                    .entry((region.clone(), m.id.clone()))
                    .or_insert(i),
                None => index.ids.entry(m.id.clone()).or_insert(i),
            };
            if key_preferred(&m.name, &models[*slot].name) {
                *slot = i;
            }
        }
        let mut by_id: HashMap<String, usize> = HashMap::with_capacity(models.len());
        for (&provider, index) in &providers {
            let rank = provider_rank(provider);
            for (id, &i) in &index.ids {
                by_id
                    .entry(id.clone())
                    .and_modify(|cur| {
                        if rank < provider_rank(models[*cur].provider) {
                            *cur = i;
                        }
                    })
                    .or_insert(i);
            }
        }
        Catalog {
            models,
            by_key,
            providers,
            by_id,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// All entries, sorted by LiteLLM key.
    pub fn iter(&self) -> impl Iterator<Item = &ModelInfo> {
        self.models.iter()
    }

    /// Entry for a model name; see the module docs for the three lookup rules
    /// (exact key, `provider/model`, client id across providers).
    pub fn get(&self, name: &str) -> Option<&ModelInfo> {
        if let Some(&i) = self.by_key.get(name) {
            return Some(&self.models[i]);
        }
        if let Some(m) = self.get_prefixed(name) {
            return Some(m);
        }
        self.by_id.get(name).map(|&i| &self.models[i])
    }

    /// The entry `provider` serves under client id `model` (no fallback to other providers).
    /// This is what pricing an upstream call should use: `get_for("groq", "openai/gpt-oss-120b")`.
    pub fn get_for(&self, provider: &str, model: &str) -> Option<&ModelInfo> {
        let index = self.providers.get(provider)?;
        index.ids.get(model).map(|&i| &self.models[i])
    }

    /// Like [`get_for`](Self::get_for), preferring the region-specific price of `region`
    /// (`us-east-1` for Bedrock; `eu`, `us`, `global` data zones for Azure) where there is one.
    pub fn get_in_region(&self, provider: &str, region: &str, model: &str) -> Option<&ModelInfo> {
        let index = self.providers.get(provider)?;
        index
            .regional
            .get(&(region.to_string(), model.to_string()))
            .or_else(|| index.ids.get(model))
            .map(|&i| &self.models[i])
    }

    fn get_prefixed(&self, name: &str) -> Option<&ModelInfo> {
        let (provider, rest) = name.split_once('/')?;
        self.get_for(provider, rest)
    }

    /// Which switchyard provider serves `name`; see the module docs for the order of the rules.
    pub fn provider_of(&self, name: &str) -> Option<&str> {
        if let Some(m) = self.get_prefixed(name) {
            return Some(m.provider);
        }
        if let Some(&i) = self.by_id.get(name) {
            return Some(self.models[i].provider);
        }
        if let Some(&i) = self.by_key.get(name) {
            return Some(self.models[i].provider);
        }
        family_provider(name)
    }

    /// The models a client can ask `provider` for (client ids, sorted), for `/v1/models`.
    /// Region-specific entries and fine-tuning price templates (`ft:…`) are left out.
    pub fn models_for_provider<'a>(
        &'a self,
        provider: &str,
    ) -> impl Iterator<Item = (&'a str, &'a ModelInfo)> + 'a {
        self.providers
            .get(provider)
            .into_iter()
            .flat_map(|index| index.ids.iter())
            .filter(|(id, _)| !id.starts_with("ft:"))
            .map(move |(id, &i)| (id.as_str(), &self.models[i]))
    }
}

/// Provider of a first-party model family, for names the catalogue lacks.
fn family_provider(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| n.starts_with(p));
    // o1, o3, o4-mini, o3-2025-04-16 ...
    let openai_o = {
        let b = n.as_bytes();
        b.len() >= 2 && b[0] == b'o' && b[1].is_ascii_digit() && (b.len() == 2 || b[2] == b'-')
    };
    if openai_o
        || starts(&[
            "gpt-",
            "chatgpt-",
            "text-embedding-",
            "davinci-",
            "babbage-",
            "omni-moderation",
        ])
    {
        Some("openai")
    } else if starts(&["claude-"]) {
        Some("anthropic")
    } else if starts(&["gemini-"]) {
        Some("gemini")
    } else if starts(&["deepseek-"]) {
        Some("deepseek")
    } else if starts(&["grok-"]) {
        Some("xai")
    } else if starts(&[
        "mistral-",
        "ministral-",
        "codestral-",
        "pixtral-",
        "magistral-",
        "devstral-",
        "open-mistral-",
        "open-mixtral-",
    ]) {
        Some("mistral")
    } else if starts(&["command-", "embed-english-", "embed-multilingual-", "c4ai-"]) {
        Some("cohere")
    } else if starts(&["jamba-"]) {
        Some("ai21")
    } else if starts(&["sonar"]) {
        Some("perplexity")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn cat() -> &'static Catalog {
        global()
    }

    #[test]
    fn builds_fast_and_prints_time() {
        let t = Instant::now();
        let raw: Vec<RawEntry<'_>> = serde_json::from_str(MODELS_JSON).unwrap();
        eprintln!(
            "catalog: serde_json parse alone {:?} ({} rows)",
            t.elapsed(),
            raw.len()
        );
        let t = Instant::now();
        let c = Catalog::from_json(MODELS_JSON).unwrap();
        let took = t.elapsed();
        eprintln!(
            "catalog: {} entries parsed and indexed in {:?} ({} bytes of JSON)",
            c.len(),
            took,
            MODELS_JSON.len()
        );
        assert!(c.len() > 1500, "{}", c.len());
        // Generous bound so slow CI machines pass; typically a few ms.
        assert!(took.as_millis() < 500, "took {took:?}");
        let t = Instant::now();
        let g = global();
        eprintln!("catalog: global() first use {:?}", t.elapsed());
        assert_eq!(g.len(), c.len());
    }

    #[test]
    fn every_entry_has_known_provider_and_a_price_or_limit() {
        for m in cat().iter() {
            assert!(PROVIDER_ORDER.contains(&m.provider), "{}", m.name);
            assert!(!m.id.is_empty(), "{}", m.name);
            assert!(
                m.price != Price::default()
                    || m.max_input_tokens.is_some()
                    || m.max_output_tokens.is_some(),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn gpt_4o_exact_prices() {
        let m = cat().get("gpt-4o").unwrap();
        assert_eq!(m.name, "gpt-4o");
        assert_eq!(m.id, "gpt-4o");
        assert_eq!(m.provider, "openai");
        assert_eq!(m.mode, Mode::Chat);
        assert_eq!(m.price.input, Some(2.5e-06));
        assert_eq!(m.price.output, Some(1e-05));
        assert_eq!(m.price.cache_read, Some(1.25e-06));
        assert_eq!(m.price.cache_write, None);
        assert_eq!(m.max_input_tokens, Some(128000));
        assert_eq!(m.max_output_tokens, Some(16384));
        assert_eq!(m.region, None);
    }

    #[test]
    fn anthropic_and_gemini_prices() {
        let m = cat().get("claude-sonnet-4-5").unwrap();
        assert_eq!(m.provider, "anthropic");
        assert_eq!(m.price.input, Some(3e-06));
        assert_eq!(m.price.output, Some(1.5e-05));
        assert_eq!(m.price.cache_read, Some(3e-07));
        assert_eq!(m.price.cache_write, Some(3.75e-06));
        assert_eq!(m.max_input_tokens, Some(200000));
        assert_eq!(m.max_output_tokens, Some(64000));

        let g = cat().get("gemini/gemini-2.5-pro").unwrap();
        assert_eq!(g.provider, "gemini");
        assert_eq!(g.id, "gemini-2.5-pro");
        assert_eq!(g.price.input, Some(1.25e-06));
        assert_eq!(g.price.output, Some(1e-05));
        assert_eq!(g.price.input_above_200k, Some(2.5e-06));
        assert_eq!(g.price.output_above_200k, Some(1.5e-05));
        assert_eq!(g.price.cache_read, Some(1.25e-07));
        assert_eq!(g.price.cache_read_above_200k, Some(2.5e-07));
        assert_eq!(g.max_input_tokens, Some(1048576));
        assert_eq!(g.max_output_tokens, Some(65536));

        let f = cat().get("gemini/gemini-2.5-flash").unwrap();
        assert_eq!(f.price.reasoning, Some(2.5e-06));
    }

    #[test]
    fn exact_key_wins_over_resolution() {
        // The bare LiteLLM key `gemini-2.5-pro` belongs to Vertex AI.
        let v = cat().get("gemini-2.5-pro").unwrap();
        assert_eq!(v.name, "gemini-2.5-pro");
        assert_eq!(v.provider, "vertex-ai");
        assert_eq!(v.max_output_tokens, Some(65535));
    }

    #[test]
    fn prefixed_lookups() {
        let c = cat();
        let m = c.get("openai/gpt-4o").unwrap();
        assert_eq!(m.name, "gpt-4o");

        let m = c.get("gemini/gemini-2.5-pro").unwrap();
        assert_eq!(m.name, "gemini/gemini-2.5-pro");

        let m = c
            .get("bedrock/anthropic.claude-3-5-haiku-20241022-v1:0")
            .unwrap();
        assert_eq!(m.name, "anthropic.claude-3-5-haiku-20241022-v1:0");
        assert_eq!(m.provider, "bedrock");
        assert_eq!(m.price.input, Some(8e-07));
        assert_eq!(m.price.output, Some(4e-06));
        assert_eq!(m.price.cache_read, Some(8e-08));
        assert_eq!(m.price.cache_write, Some(1e-06));

        let m = c.get("anthropic/claude-sonnet-4-5").unwrap();
        assert_eq!(m.name, "claude-sonnet-4-5");

        let m = c.get("vertex-ai/claude-sonnet-4-5@20250929").unwrap();
        assert_eq!(m.name, "vertex_ai/claude-sonnet-4-5@20250929");
        assert_eq!(m.provider, "vertex-ai");

        let m = c.get("azure-openai/gpt-4o").unwrap();
        assert_eq!(m.name, "azure/gpt-4o");

        let m = c
            .get("together/meta-llama/Llama-3.3-70B-Instruct-Turbo")
            .unwrap();
        assert_eq!(
            m.name,
            "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"
        );
        assert_eq!(m.provider, "together");

        // Groq's id contains a slash; a prefix that the provider does not list falls through
        // to client-id resolution.
        let m = c.get("groq/openai/gpt-oss-120b").unwrap();
        assert_eq!(m.provider, "groq");
        assert_eq!(m.id, "openai/gpt-oss-120b");
        assert_eq!(c.get("openai/gpt-oss-120b").unwrap().provider, "groq");

        // A provider that lacks the model does not borrow another's price in get_for.
        assert!(c.get_for("openai", "claude-sonnet-4-5").is_none());
        assert_eq!(
            c.get_for("groq", "openai/gpt-oss-120b").unwrap().name,
            "groq/openai/gpt-oss-120b"
        );
        // Duplicates within a provider: the shortest key is canonical.
        assert_eq!(
            c.get_for("deepseek", "deepseek-chat").unwrap().name,
            "deepseek-chat"
        );
        assert_eq!(
            c.get("deepseek/deepseek-chat").unwrap().name,
            "deepseek/deepseek-chat"
        );
    }

    #[test]
    fn regional_entries() {
        let c = cat();
        let eu = c.get("azure/eu/gpt-4o").unwrap();
        assert_eq!(eu.provider, "azure-openai");
        assert_eq!(eu.region.as_deref(), Some("eu"));
        assert_eq!(eu.id, "gpt-4o");
        assert_eq!(eu.price.input, Some(2.75e-06));
        assert_eq!(
            c.get_in_region("azure-openai", "eu", "gpt-4o")
                .unwrap()
                .name,
            "azure/eu/gpt-4o"
        );
        // no regional price: the plain one
        assert_eq!(
            c.get_in_region("azure-openai", "mars", "gpt-4o")
                .unwrap()
                .name,
            "azure/gpt-4o"
        );
        let b = c
            .get_in_region("bedrock", "us-east-1", "anthropic.claude-v2:1")
            .unwrap();
        assert_eq!(b.name, "bedrock/us-east-1/anthropic.claude-v2:1");
        assert_eq!(b.price.input, Some(8e-06));
        assert_eq!(b.price.output, Some(2.4e-05));
        // regional entries are never listed
        assert!(c
            .models_for_provider("azure-openai")
            .all(|(_, m)| m.region.is_none()));
        // provisioned-throughput commitments were dropped
        assert!(c
            .get("bedrock/*/1-month-commitment/cohere.command-text-v14")
            .is_none());
    }

    #[test]
    fn provider_of_bare_names() {
        let c = cat();
        assert_eq!(c.provider_of("gpt-4o-mini"), Some("openai"));
        assert_eq!(c.provider_of("gpt-4o"), Some("openai"));
        assert_eq!(c.provider_of("claude-sonnet-4-5"), Some("anthropic"));
        assert_eq!(
            c.provider_of("claude-haiku-4-5-20251001"),
            Some("anthropic")
        );
        // Not in this catalogue snapshot: the family rule.
        assert!(c.get("claude-3-5-haiku-20241022").is_none());
        assert_eq!(
            c.provider_of("claude-3-5-haiku-20241022"),
            Some("anthropic")
        );
        // Bare key is Vertex's, but gemini is preferred.
        assert_eq!(c.provider_of("gemini-2.5-pro"), Some("gemini"));
        assert_eq!(c.provider_of("gemini-2.5-flash"), Some("gemini"));
        assert_eq!(c.provider_of("deepseek-chat"), Some("deepseek"));
        assert_eq!(c.provider_of("deepseek-reasoner"), Some("deepseek"));
        assert_eq!(c.provider_of("text-embedding-3-small"), Some("openai"));
        assert_eq!(c.provider_of("command-r-08-2024"), Some("cohere"));
        // Only keyed as provider/model in the source: the tail resolves.
        assert_eq!(c.provider_of("llama-guard-3-8b"), Some("groq"));
        assert_eq!(c.provider_of("grok-4.20"), Some("xai"));
        assert_eq!(c.provider_of("mistral-large-latest"), Some("mistral"));
        assert_eq!(
            c.provider_of("meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            Some("together")
        );
        assert_eq!(
            c.provider_of("anthropic.claude-3-5-haiku-20241022-v1:0"),
            Some("bedrock")
        );
        assert_eq!(c.provider_of("llama3.1"), Some("ollama"));
        // prefixed forms
        assert_eq!(c.provider_of("openai/gpt-4o"), Some("openai"));
        assert_eq!(c.provider_of("vertex-ai/gemini-2.5-pro"), Some("vertex-ai"));
        assert_eq!(
            c.provider_of("together_ai/openai/gpt-oss-120b"),
            Some("together")
        );
        // family rule
        assert_eq!(c.provider_of("o3"), Some("openai"));
        assert_eq!(c.provider_of("o9-preview"), Some("openai"));
        assert_eq!(c.provider_of("gemini-99-ultra"), Some("gemini"));
        assert_eq!(c.provider_of("omega"), None);
    }

    #[test]
    fn unknown_models() {
        let c = cat();
        assert!(c.get("no-such-model-xyz").is_none());
        assert!(c.get("openai/no-such-model-xyz").is_none());
        assert!(c.get("").is_none());
        assert!(c.get_for("nope", "gpt-4o").is_none());
        assert_eq!(c.provider_of("no-such-model-xyz"), None);
        assert_eq!(c.models_for_provider("nope").count(), 0);
        // dropped modes and providers
        assert!(c.get("dall-e-3").is_none());
        assert!(c.get("whisper-1").is_none());
        assert!(c.get("tts-1").is_none());
        assert!(c.get("together-ai-4.1b-8b").is_none());
    }

    #[test]
    fn models_for_provider_lists_client_ids() {
        let c = cat();
        let openai: Vec<_> = c.models_for_provider("openai").collect();
        assert!(openai.iter().any(|(id, _)| *id == "gpt-4o"));
        assert!(openai.iter().all(|(id, _)| !id.starts_with("ft:")));
        let ids: Vec<&str> = openai.iter().map(|(id, _)| *id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted, "sorted, no duplicates");

        let gemini: Vec<_> = c.models_for_provider("gemini").map(|(id, _)| id).collect();
        assert!(gemini.contains(&"gemini-2.5-pro"));
        assert!(gemini.iter().all(|id| !id.starts_with("gemini/")));

        let groq: Vec<_> = c.models_for_provider("groq").map(|(id, _)| id).collect();
        assert!(groq.contains(&"openai/gpt-oss-120b"));
        assert!(groq.contains(&"llama-guard-3-8b"));

        let vertex: Vec<_> = c
            .models_for_provider("vertex-ai")
            .map(|(id, _)| id)
            .collect();
        assert!(vertex.contains(&"claude-sonnet-4-5@20250929"));
        assert!(vertex.contains(&"gemini-2.5-pro"));

        let (id, m) = c
            .models_for_provider("bedrock")
            .find(|(id, _)| *id == "anthropic.claude-3-5-haiku-20241022-v1:0")
            .unwrap();
        assert_eq!(id, m.id);
        assert_eq!(m.provider, "bedrock");
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} != {b}");
    }

    #[test]
    fn cost_plain_and_cached() {
        let p = cat().get("gpt-4o").unwrap().price;
        // 1000 in, 500 out
        let u = TokenCounts {
            input: 1000,
            output: 500,
            ..Default::default()
        };
        close(p.cost(&u), 1000.0 * 2.5e-06 + 500.0 * 1e-05);
        // 400 of the 1000 input tokens were cache reads: billed once, at the cache price
        let u = TokenCounts {
            input: 1000,
            cached_input: 400,
            output: 500,
            ..Default::default()
        };
        close(
            p.cost(&u),
            600.0 * 2.5e-06 + 400.0 * 1.25e-06 + 500.0 * 1e-05,
        );
        // no cache-write price: cache creation billed at the input price
        let u = TokenCounts {
            input: 1000,
            cache_creation_input: 300,
            ..Default::default()
        };
        close(p.cost(&u), 1000.0 * 2.5e-06);
        assert_eq!(p.cost(&TokenCounts::default()), 0.0);
    }

    #[test]
    fn cost_anthropic_cache_read_and_write() {
        let p = cat().get("claude-sonnet-4-5").unwrap().price;
        let u = TokenCounts {
            input: 10_000,
            cached_input: 6_000,
            cache_creation_input: 3_000,
            output: 2_000,
            reasoning: 500,
        };
        close(
            p.cost(&u),
            1_000.0 * 3e-06 + 6_000.0 * 3e-07 + 3_000.0 * 3.75e-06 + 2_000.0 * 1.5e-05,
        );
        // inconsistent counts are clamped, never negative
        let u = TokenCounts {
            input: 100,
            cached_input: 80,
            cache_creation_input: 80,
            ..Default::default()
        };
        close(p.cost(&u), 80.0 * 3e-07 + 20.0 * 3.75e-06);
    }

    #[test]
    fn cost_200k_tier() {
        let p = cat().get("gemini/gemini-2.5-pro").unwrap().price;
        let below = TokenCounts {
            input: 200_000,
            cached_input: 50_000,
            output: 1_000,
            ..Default::default()
        };
        assert!(!p.above_200k(&below));
        close(
            p.cost(&below),
            150_000.0 * 1.25e-06 + 50_000.0 * 1.25e-07 + 1_000.0 * 1e-05,
        );
        let above = TokenCounts {
            input: 200_001,
            cached_input: 50_000,
            output: 1_000,
            ..Default::default()
        };
        assert!(p.above_200k(&above));
        // whole request at the tiered prices, cached tokens at the tiered cache price
        close(
            p.cost(&above),
            150_001.0 * 2.5e-06 + 50_000.0 * 2.5e-07 + 1_000.0 * 1.5e-05,
        );
        // no tier on gpt-4o: base prices at any size
        let g = cat().get("gpt-4o").unwrap().price;
        let big = TokenCounts {
            input: 300_000,
            output: 10,
            ..Default::default()
        };
        close(g.cost(&big), 300_000.0 * 2.5e-06 + 10.0 * 1e-05);
    }

    #[test]
    fn cost_reasoning_price() {
        let p = Price {
            input: Some(1e-06),
            output: Some(8e-06),
            reasoning: Some(3e-06),
            ..Default::default()
        };
        let u = TokenCounts {
            input: 10,
            output: 100,
            reasoning: 40,
            ..Default::default()
        };
        close(p.cost(&u), 10.0 * 1e-06 + 60.0 * 8e-06 + 40.0 * 3e-06);
        // without a reasoning price, reasoning is output
        let q = Price {
            reasoning: None,
            ..p
        };
        close(q.cost(&u), 10.0 * 1e-06 + 100.0 * 8e-06);
        // real entry priced apart
        let s = cat().get("perplexity/sonar-deep-research").unwrap().price;
        assert_eq!(s.reasoning, Some(3e-06));
        assert_eq!(s.output, Some(8e-06));
    }

    #[test]
    fn parses_custom_json_and_skips_unknowns() {
        let c = Catalog::from_json(
            r#"[
{"k":"a","p":"openai","m":"chat","i":1e-06,"o":2e-06,"mi":10},
{"k":"x/b","id":"b","p":"nowhere","m":"chat","i":1},
{"k":"c","p":"openai","m":"image_generation","i":1}
]"#,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("openai/a").unwrap().max_input_tokens, Some(10));
        assert!(Catalog::from_json("{").is_err());
    }
}
