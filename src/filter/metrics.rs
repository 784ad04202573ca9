//! Envoy stats per model, defined once per plugin and updated best effort.

use super::host::{self, MetricKind};
use crate::config::ModelId;
use crate::metrics::{model_metric, PickKind};
use crate::prepared::Prepared;
use crate::stats::StatsView;

#[derive(Default)]
struct ModelMetrics {
    picks: [Option<u32>; 4],
    attempts: Option<u32>,
    failures: Option<u32>,
    ttft_ms: Option<u32>,
    tokens_per_sec: Option<u32>,
}

#[derive(Default)]
pub struct Metrics {
    models: Vec<ModelMetrics>,
}

impl Metrics {
    pub fn define(prepared: &Prepared) -> Self {
        let define = |kind, name: &str, what: &str| {
            host::define_metric(kind, &model_metric(name, what)).ok()
        };
        let models = prepared
            .config
            .models
            .iter()
            .map(|m| ModelMetrics {
                picks: PickKind::ALL
                    .map(|k| define(MetricKind::Counter, &m.name, k.metric_suffix())),
                attempts: define(MetricKind::Counter, &m.name, "attempts"),
                failures: define(MetricKind::Counter, &m.name, "failures"),
                ttft_ms: define(MetricKind::Gauge, &m.name, "ttft_ms"),
                tokens_per_sec: define(MetricKind::Gauge, &m.name, "tokens_per_sec"),
            })
            .collect();
        Metrics { models }
    }

    fn model(&self, model: ModelId) -> Option<&ModelMetrics> {
        self.models.get(model)
    }

    pub fn picked(&self, model: ModelId, kind: PickKind) {
        if let Some(id) = self
            .model(model)
            .and_then(|m| m.picks.get(kind as usize).copied().flatten())
        {
            host::increment_metric(id, 1);
        }
    }

    pub fn attempt_started(&self, model: ModelId) {
        if let Some(id) = self.model(model).and_then(|m| m.attempts) {
            host::increment_metric(id, 1);
        }
    }

    pub fn attempt_failed(&self, model: ModelId) {
        if let Some(id) = self.model(model).and_then(|m| m.failures) {
            host::increment_metric(id, 1);
        }
    }

    pub fn live_numbers(&self, model: ModelId, view: &StatsView) {
        let Some(m) = self.model(model) else { return };
        if let (Some(id), Some(v)) = (m.ttft_ms, view.ttft_ms) {
            host::record_metric(id, v.round() as u64);
        }
        if let (Some(id), Some(v)) = (m.tokens_per_sec, view.tokens_per_sec) {
            host::record_metric(id, v.round() as u64);
        }
    }
}
