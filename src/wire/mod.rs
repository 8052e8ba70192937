//! Typed wire structs per dialect (serde), apart from the mapping code in `translate`.

pub mod anthropic;
pub mod bedrock;
pub mod openai;
