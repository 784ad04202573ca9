//! Loads and validates the config once per plugin; a bad config refuses to load with the
//! validation message in Envoy's log rather than half-working.

use super::attempt::Attempt;
use super::downstream::Downstream;
use super::host::{self, Buffer};
use super::metrics::Metrics;
use crate::config::RouterConfig;
use crate::prepared::Prepared;
use crate::topology::ROOT_ID_ATTEMPT;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;

#[derive(Default)]
pub struct Root {
    prepared: Option<Rc<Prepared>>,
    metrics: Rc<Metrics>,
    per_attempt: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, config_size: usize) -> bool {
        self.per_attempt = matches!(
            host::property(&["plugin_root_id"]),
            Ok(Some(id)) if id == ROOT_ID_ATTEMPT.as_bytes()
        );
        let role = if self.per_attempt {
            "per-attempt"
        } else {
            "downstream"
        };
        let bytes = match host::buffer(Buffer::PluginConfiguration, 0, config_size) {
            Ok(b) => b,
            Err(e) => {
                log::error!(
                    "model-router ({role}): cannot read the plugin configuration (status {})",
                    e.0
                );
                return false;
            }
        };
        let prepared = RouterConfig::from_json(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|config| Prepared::new(config, |env| std::env::var(env).ok()));
        match prepared {
            Ok(p) => {
                log::info!(
                    "model-router ({role}): loaded {} models, {} pools",
                    p.config.models.len(),
                    p.config.pools.len()
                );
                self.metrics = Rc::new(Metrics::define(&p));
                self.prepared = Some(Rc::new(p));
                true
            }
            Err(message) => {
                log::error!("model-router ({role}) refused its configuration: {message}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let (prepared, metrics) = (self.prepared.clone(), self.metrics.clone());
        Some(if self.per_attempt {
            Box::new(Attempt::new(prepared, metrics))
        } else {
            Box::new(Downstream::new(prepared, metrics, context_id))
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
