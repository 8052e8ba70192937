//! switchyard: an LLM edge gateway on Cloudflare Pingora.
pub mod body;
pub mod config;
pub mod sse;
pub mod usage;
