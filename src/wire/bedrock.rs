//! The `bedrock` dialect's wire structs (serde).
