//! switchyard: an LLM edge gateway on Cloudflare Pingora.
pub mod catalog;
pub mod config;
