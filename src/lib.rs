//! model-router: an OpenAI-compatible model router that runs inside Envoy.
//!
//! Everything outside [`filter`] is pure Rust with time and bytes passed in, tested on the
//! host. `filter` is the thin proxy-wasm shell that carries out what the core decides.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access_log;
pub mod attempt;
pub mod body_scan;
pub mod config;
pub mod cooldown;
pub mod endpoint;
pub mod errors;
pub mod header_map;
pub mod measure;
pub mod metrics;
pub mod models_list;
pub mod prepared;
pub mod request;
pub mod resolve;
pub mod sse;
pub mod stats;
pub mod status;
pub mod strategy;
pub mod topology;

#[cfg(test)]
mod test_support;

#[cfg(target_arch = "wasm32")]
mod filter;
