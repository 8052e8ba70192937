//! switchyard: an LLM edge gateway on Cloudflare Pingora.
//!
//! A request walks one way through the modules: `proxy::ingress` (key, body, model) →
//! `routing` (model → targets) → `pool` (healthy endpoint) → `providers` (the target's
//! dialect) → upstream → `proxy::relay` (stream back, read usage) → `proxy::settle`.
pub mod access_log;
pub mod accounting;
pub mod auth;
pub mod body;
pub mod catalog;
pub mod config;
pub mod control;
pub mod count_tokens;
pub mod errors;
pub mod eventstream;
pub mod fleet;
pub mod gateway;
pub mod head_deadline;
pub mod lifecycle;
pub mod metrics;
pub mod pool;
pub mod providers;
pub mod proxy;
pub mod routing;
pub mod server;
pub mod sse;
pub mod translate;
pub mod usage;
pub mod wire;
