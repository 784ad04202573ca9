//! The proxy-wasm shell. One `.wasm`, two roles told apart by the plugin's `root_id`:
//! - downstream (`model_router`): reads the body, picks the cluster, answers errors;
//! - per attempt (`model_router_attempt`, in the router's `upstream_http_filters`): adapts
//!   each attempt to the model Envoy picked and records how that model did.

mod attempt;
mod downstream;
mod host;
mod live_store;
mod metrics;
mod root;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // Info and above only: the SDK formats every message before the host filters it.
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(root::Root::default()));
}}
