//! switchyard: an LLM edge gateway on Cloudflare Pingora.
pub mod config;
