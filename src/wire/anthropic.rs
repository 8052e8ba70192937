//! The `anthropic` dialect's wire structs (serde).
