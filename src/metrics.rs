//! Names of the Envoy stats the filter defines (shown under `wasmcustom.` in Envoy's admin
//! `/stats` and `/stats/prometheus`).

use crate::resolve::{Strategy, Target};

/// Stat names allow only a plain alphabet; anything else in a model name becomes `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn model_metric(model_name: &str, what: &str) -> String {
    format!("model_router.model.{}.{what}", sanitize(model_name))
}

/// How a request chose its first model, for the per-model pick counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickKind {
    Failover = 0,
    Latency = 1,
    Throughput = 2,
    /// The request named the model itself.
    Direct = 3,
}

impl PickKind {
    pub const ALL: [PickKind; 4] = [
        PickKind::Failover,
        PickKind::Latency,
        PickKind::Throughput,
        PickKind::Direct,
    ];

    pub fn of(target: Target) -> Self {
        match target {
            Target::Model(_) => PickKind::Direct,
            Target::Pool { strategy, .. } => match strategy {
                Strategy::Failover => PickKind::Failover,
                Strategy::Latency => PickKind::Latency,
                Strategy::Throughput => PickKind::Throughput,
            },
        }
    }

    pub fn metric_suffix(self) -> &'static str {
        match self {
            PickKind::Failover => "picks.failover",
            PickKind::Latency => "picks.latency",
            PickKind::Throughput => "picks.throughput",
            PickKind::Direct => "picks.direct",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_become_safe_stat_names() {
        assert_eq!(
            model_metric("qwen:7b/chat", "ttft_ms"),
            "model_router.model.qwen_7b_chat.ttft_ms"
        );
        assert_eq!(
            model_metric("fast-7b", "picks.latency"),
            "model_router.model.fast-7b.picks.latency"
        );
    }
}
