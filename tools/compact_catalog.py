#!/usr/bin/env python3
"""Compact LiteLLM's model_prices_and_context_window.json into catalog/models.json.

Usage:
    python3 tools/compact_catalog.py /path/to/model_prices_and_context_window.json [OUT]

OUT defaults to catalog/models.json next to this script's repository root.
Python 3 standard library only. The output is deterministic (sorted by key,
one entry per line) so regenerations diff cleanly. See catalog/README.md for
the field meanings.
"""

import json
import os
import re
import sys

# LiteLLM `litellm_provider` value -> switchyard provider id (gateway.md section 7).
# Anything not listed (and not `vertex_ai-*`) is dropped.
PROVIDER_MAP = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure-openai",
    "azure_text": "azure-openai",
    "azure_ai": "azure-foundry",
    "bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "vertex_ai": "vertex-ai",
    "gemini": "gemini",
    "groq": "groq",
    "mistral": "mistral",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "deepseek": "deepseek",
    "together_ai": "together",
    "perplexity": "perplexity",
    "fireworks_ai": "fireworks",
    "fireworks_ai-embedding-models": "fireworks",
    "ai21": "ai21",
    "xai": "xai",
    "deepinfra": "deepinfra",
    "sambanova": "sambanova",
    "replicate": "replicate",
    "ollama": "ollama",
    "ollama_chat": "ollama",
    "huggingface": "hugging-face",
}

# Key prefixes LiteLLM puts in front of a provider's model id. The client-facing
# id is the key with one of these stripped (e.g. `together_ai/meta-llama/X` -> `meta-llama/X`).
KEY_PREFIXES = {
    "openai": ["openai/", "text-completion-openai/"],
    "anthropic": ["anthropic/"],
    "azure-openai": ["azure/", "azure_text/"],
    "azure-foundry": ["azure_ai/"],
    "bedrock": ["bedrock/", "bedrock_converse/"],
    "vertex-ai": ["vertex_ai/"],
    "gemini": ["gemini/"],
    "groq": ["groq/"],
    "mistral": ["mistral/"],
    "cohere": ["cohere/", "cohere_chat/"],
    "deepseek": ["deepseek/"],
    "together": ["together_ai/"],
    "perplexity": ["perplexity/"],
    "fireworks": ["fireworks_ai/"],
    "ai21": ["ai21/"],
    "xai": ["xai/"],
    "deepinfra": ["deepinfra/"],
    "sambanova": ["sambanova/"],
    "replicate": ["replicate/"],
    "ollama": ["ollama/", "ollama_chat/"],
    "hugging-face": ["huggingface/"],
}

KEEP_MODES = {"chat", "completion", "embedding", "responses"}

# source field -> short field in models.json
PRICE_FIELDS = [
    ("input_cost_per_token", "i"),
    ("output_cost_per_token", "o"),
    ("cache_read_input_token_cost", "cr"),
    ("cache_creation_input_token_cost", "cw"),
    ("output_cost_per_reasoning_token", "r"),
    ("input_cost_per_token_above_200k_tokens", "i2"),
    ("output_cost_per_token_above_200k_tokens", "o2"),
    ("cache_read_input_token_cost_above_200k_tokens", "cr2"),
    ("cache_creation_input_token_cost_above_200k_tokens", "cw2"),
]
LIMIT_FIELDS = [("max_input_tokens", "mi"), ("max_output_tokens", "mo")]

AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d+$")
AZURE_ZONES = {"eu", "us", "us-gov", "apac", "global", "global-standard"}
# LiteLLM route selectors inside bedrock keys (`bedrock/invoke/<model>`): not part of the model id.
BEDROCK_ROUTES = {"invoke", "converse"}
# Pricing buckets by parameter count, not model ids (e.g. `together-ai-4.1b-8b`).
BUCKET_KEY = re.compile(r"^(together-ai|fireworks-ai)-")


def map_provider(litellm_provider):
    if not isinstance(litellm_provider, str):
        return None
    if litellm_provider in PROVIDER_MAP:
        return PROVIDER_MAP[litellm_provider]
    if litellm_provider.startswith("vertex_ai-"):
        return "vertex-ai"
    return None


def split_key(key, provider):
    """Return (client_id, region) for a key, or None to drop the entry."""
    rest = key
    for prefix in KEY_PREFIXES[provider]:
        if key.startswith(prefix):
            rest = key[len(prefix):]
            break
    region = None
    if provider == "bedrock" and rest != key:
        if "-month-commitment/" in rest:
            return None  # provisioned throughput, priced per second/hour
        head, sep, tail = rest.partition("/")
        if sep and AWS_REGION.match(head):
            region, rest = head, tail
            head, sep, tail = rest.partition("/")
        if sep and head in BEDROCK_ROUTES:
            rest = tail
    elif provider == "azure-openai" and rest != key:
        head, sep, tail = rest.partition("/")
        if sep and head in AZURE_ZONES:
            region, rest = head, tail
    if not rest:
        return None
    return rest, region


def number(value, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if integer:
        return int(value)
    # keep exact source values; ints stay ints (serde reads them as f64 fine)
    return value


def compact(source):
    out = []
    for key in sorted(source):
        if key == "sample_spec":
            continue
        spec = source[key]
        if not isinstance(spec, dict):
            continue
        provider = map_provider(spec.get("litellm_provider"))
        mode = spec.get("mode")
        if provider is None or mode not in KEEP_MODES:
            continue
        if BUCKET_KEY.match(key):
            continue
        split = split_key(key, provider)
        if split is None:
            continue
        client_id, region = split
        entry = {"k": key}
        if client_id != key:
            entry["id"] = client_id
        if region is not None:
            entry["rg"] = region
        entry["p"] = provider
        entry["m"] = mode
        useful = False
        for src, short in PRICE_FIELDS:
            v = number(spec.get(src))
            if v is not None:
                entry[short] = v
                useful = True
        for src, short in LIMIT_FIELDS:
            v = number(spec.get(src), integer=True)
            if v is not None:
                entry[short] = v
                useful = True
        if not useful:
            continue  # nothing to price or limit (e.g. per-session tools)
        out.append(entry)
    return out


def render(entries):
    lines = [json.dumps(e, separators=(",", ":"), ensure_ascii=True) for e in entries]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        source = json.load(f)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_path = argv[2] if len(argv) == 3 else os.path.join(root, "catalog", "models.json")
    entries = compact(source)
    text = render(entries)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    by_provider = {}
    for e in entries:
        by_provider[e["p"]] = by_provider.get(e["p"], 0) + 1
    sys.stderr.write(
        "wrote %s: %d entries, %d bytes\n" % (out_path, len(entries), len(text.encode()))
    )
    for p in sorted(by_provider):
        sys.stderr.write("  %-14s %d\n" % (p, by_provider[p]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
