//! The `openai` dialect's wire structs (serde).
