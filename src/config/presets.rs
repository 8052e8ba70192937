//! The provider presets of the spec's section 2: for each provider id, the
//! dialect it speaks, where it lives by default and which environment
//! variables hold its secret and its base-URL override.
//!
//! Adding an OpenAI-compatible provider is one row here. Base URLs include
//! the `/v1`-style prefix (section 11), exactly as `<ID>_BASE_URL` would.

use super::model::Dialect;

/// What a preset needs beyond a key and a base URL; decides how
/// [`super::provider`] fills in the rest and how zero-config activates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A cloud API at a fixed URL, with one secret in `key_var`.
    Hosted,
    /// Azure: the URL is per resource, so `base_url_var` (the endpoint) must be set.
    Azure,
    /// AWS Bedrock: a region, and SigV4 credentials or a bearer token.
    Bedrock,
    /// Vertex AI: a region, and a Google service account.
    Vertex,
    /// One keyless Ollama server.
    Ollama,
    /// A keyless vLLM fleet: a list of `host:port`.
    Vllm,
}

/// One row of the preset table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// The provider id (`groq`, `azure-openai`, ...), also usable as `type:`.
    pub id: &'static str,
    pub dialect: Dialect,
    pub kind: Kind,
    /// Where it lives unless overridden; `None` when that comes from elsewhere
    /// (an Azure endpoint, a Bedrock or Vertex region, a vLLM list).
    pub base_url: Option<&'static str>,
    /// The variable holding its secret; `None` for keyless servers and for
    /// providers with their own credential chains (AWS, Google).
    pub key_var: Option<&'static str>,
    /// The variable that points it somewhere else (`<ID>_BASE_URL`, the Azure
    /// endpoint, `OLLAMA_HOST`, ...).
    pub base_url_var: Option<&'static str>,
}

const fn hosted(
    id: &'static str,
    dialect: Dialect,
    base_url: &'static str,
    key_var: &'static str,
    base_url_var: &'static str,
) -> Preset {
    Preset {
        id,
        dialect,
        kind: Kind::Hosted,
        base_url: Some(base_url),
        key_var: Some(key_var),
        base_url_var: Some(base_url_var),
    }
}

/// An OpenAI-compatible cloud API; its variables follow the `<ID>_API_KEY`,
/// `<ID>_BASE_URL` rule (checked by a test).
const fn compatible(
    id: &'static str,
    base_url: &'static str,
    key_var: &'static str,
    base_url_var: &'static str,
) -> Preset {
    hosted(id, Dialect::OpenAi, base_url, key_var, base_url_var)
}

/// Every preset, in the order of the spec's table.
pub const PRESETS: &[Preset] = &[
    hosted(
        "openai",
        Dialect::OpenAi,
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    ),
    hosted(
        "anthropic",
        Dialect::Anthropic,
        "https://api.anthropic.com",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    ),
    Preset {
        id: "azure-openai",
        dialect: Dialect::AzureOpenAi,
        kind: Kind::Azure,
        base_url: None,
        key_var: Some("AZURE_OPENAI_API_KEY"),
        base_url_var: Some("AZURE_OPENAI_ENDPOINT"),
    },
    Preset {
        id: "azure-foundry",
        dialect: Dialect::AzureFoundry,
        kind: Kind::Azure,
        base_url: None,
        key_var: Some("AZURE_FOUNDRY_API_KEY"),
        base_url_var: Some("AZURE_FOUNDRY_ENDPOINT"),
    },
    Preset {
        id: "bedrock",
        dialect: Dialect::Bedrock,
        kind: Kind::Bedrock,
        base_url: None,
        key_var: None,
        base_url_var: Some("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"),
    },
    Preset {
        id: "vertex-ai",
        dialect: Dialect::Vertex,
        kind: Kind::Vertex,
        base_url: None,
        key_var: None,
        base_url_var: Some("VERTEX_AI_BASE_URL"),
    },
    hosted(
        "gemini",
        Dialect::Gemini,
        "https://generativelanguage.googleapis.com",
        "GEMINI_API_KEY",
        "GEMINI_BASE_URL",
    ),
    compatible(
        "groq",
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
        "GROQ_BASE_URL",
    ),
    compatible(
        "mistral",
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        "MISTRAL_BASE_URL",
    ),
    compatible(
        "cohere",
        "https://api.cohere.ai/compatibility/v1",
        "COHERE_API_KEY",
        "COHERE_BASE_URL",
    ),
    compatible(
        "deepseek",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        "DEEPSEEK_BASE_URL",
    ),
    compatible(
        "together",
        "https://api.together.xyz/v1",
        "TOGETHER_API_KEY",
        "TOGETHER_BASE_URL",
    ),
    // Perplexity serves `/chat/completions` at the root: no `/v1` prefix.
    compatible(
        "perplexity",
        "https://api.perplexity.ai",
        "PERPLEXITY_API_KEY",
        "PERPLEXITY_BASE_URL",
    ),
    compatible(
        "fireworks",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_API_KEY",
        "FIREWORKS_BASE_URL",
    ),
    compatible(
        "ai21",
        "https://api.ai21.com/studio/v1",
        "AI21_API_KEY",
        "AI21_BASE_URL",
    ),
    compatible("xai", "https://api.x.ai/v1", "XAI_API_KEY", "XAI_BASE_URL"),
    compatible(
        "deepinfra",
        "https://api.deepinfra.com/v1/openai",
        "DEEPINFRA_API_KEY",
        "DEEPINFRA_BASE_URL",
    ),
    compatible(
        "sambanova",
        "https://api.sambanova.ai/v1",
        "SAMBANOVA_API_KEY",
        "SAMBANOVA_BASE_URL",
    ),
    compatible(
        "hunyuan",
        "https://api.hunyuan.cloud.tencent.com/v1",
        "HUNYUAN_API_KEY",
        "HUNYUAN_BASE_URL",
    ),
    compatible(
        "tencent-lke",
        "https://api.lkeap.cloud.tencent.com/v1",
        "TENCENT_LKE_API_KEY",
        "TENCENT_LKE_BASE_URL",
    ),
    compatible(
        "hugging-face",
        "https://router.huggingface.co/v1",
        "HUGGING_FACE_API_KEY",
        "HUGGING_FACE_BASE_URL",
    ),
    hosted(
        "replicate",
        Dialect::Replicate,
        "https://api.replicate.com",
        "REPLICATE_API_TOKEN",
        "REPLICATE_BASE_URL",
    ),
    Preset {
        id: "ollama",
        dialect: Dialect::OpenAi,
        kind: Kind::Ollama,
        base_url: Some("http://127.0.0.1:11434/v1"),
        key_var: None,
        base_url_var: Some("OLLAMA_HOST"),
    },
    Preset {
        id: "vllm",
        dialect: Dialect::OpenAi,
        kind: Kind::Vllm,
        base_url: None,
        key_var: None,
        base_url_var: None,
    },
];

/// The dialect names `type:` accepts besides the preset ids.
const DIALECT_TYPES: &[(&str, &str)] = &[
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("azure_openai", "azure-openai"),
    ("azure_foundry", "azure-foundry"),
    ("bedrock", "bedrock"),
    ("vertex", "vertex-ai"),
    ("gemini", "gemini"),
    ("replicate", "replicate"),
];

/// The preset with this provider id.
pub fn find(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

/// The preset a file's `type:` names: a dialect name (`azure_openai`,
/// `vertex`, ...) or a preset id (`groq`, `tencent-lke`; `_` and `-` alike).
pub fn for_type(type_name: &str) -> Option<&'static Preset> {
    let id = DIALECT_TYPES
        .iter()
        .find(|(name, _)| *name == type_name)
        .map_or_else(|| type_name.replace('_', "-"), |(_, id)| id.to_string());
    find(&id)
}

/// The accepted `type:` values, for error messages.
pub fn type_names() -> String {
    let dialects: Vec<&str> = DIALECT_TYPES.iter().map(|(name, _)| *name).collect();
    let others: Vec<&str> = PRESETS
        .iter()
        .map(|p| p.id)
        .filter(|id| !DIALECT_TYPES.iter().any(|(_, d)| d == id))
        .collect();
    format!(
        "{}, or a preset id: {}",
        dialects.join(", "),
        others.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::address::parse_url;

    #[test]
    fn openai_compatible_variables_follow_the_id_rule() {
        for preset in PRESETS
            .iter()
            .filter(|p| p.kind == Kind::Hosted && p.id != "replicate")
        {
            let prefix = preset.id.to_ascii_uppercase().replace('-', "_");
            assert_eq!(preset.key_var, Some(format!("{prefix}_API_KEY").as_str()));
            assert_eq!(
                preset.base_url_var,
                Some(format!("{prefix}_BASE_URL").as_str())
            );
        }
        assert_eq!(
            find("replicate").unwrap().key_var,
            Some("REPLICATE_API_TOKEN")
        );
        assert_eq!(
            find("hugging-face").unwrap().key_var,
            Some("HUGGING_FACE_API_KEY")
        );
    }

    #[test]
    fn default_base_urls_parse_with_their_prefix() {
        let path = |id: &str| {
            parse_url(find(id).unwrap().base_url.unwrap())
                .unwrap()
                .base_path
        };
        assert_eq!(path("openai"), "/v1");
        assert_eq!(path("groq"), "/openai/v1");
        assert_eq!(path("deepinfra"), "/v1/openai");
        assert_eq!(path("perplexity"), "");
        assert_eq!(path("anthropic"), "");
        for preset in PRESETS {
            if let Some(url) = preset.base_url {
                assert!(parse_url(url).is_ok(), "{url}");
            }
        }
    }

    #[test]
    fn types_map_to_presets() {
        assert_eq!(for_type("openai").unwrap().id, "openai");
        assert_eq!(for_type("azure_openai").unwrap().id, "azure-openai");
        assert_eq!(for_type("azure-openai").unwrap().id, "azure-openai");
        assert_eq!(for_type("vertex").unwrap().id, "vertex-ai");
        assert_eq!(for_type("tencent_lke").unwrap().id, "tencent-lke");
        assert_eq!(for_type("groq").unwrap().dialect, Dialect::OpenAi);
        assert!(for_type("nope").is_none());
        assert!(type_names().contains("azure_openai"));
        assert!(type_names().contains("hugging-face"));
    }
}
