//! Envoy stats, defined once per plugin and updated best effort. Names and the labels they
//! become are in [`crate::metrics`].

use super::host::{self, MetricKind};
use crate::config::ModelId;
use crate::metrics::{direct_pick_name, model_stat_name, pool_pick_name, ModelStat};
use crate::prepared::Prepared;
use crate::resolve::{RouteDecision, Strategy, Target};
use crate::stats::StatsView;

const POOL_STRATEGIES: [Strategy; 3] =
    [Strategy::Failover, Strategy::Latency, Strategy::Throughput];

#[derive(Default)]
struct ModelMetrics {
    direct_picks: Option<u32>,
    /// Indexed like [`ModelStat::ALL`].
    stats: [Option<u32>; 4],
}

/// Pick counters of one pool: `[position][strategy]`, strategies as in [`POOL_STRATEGIES`].
struct PoolMetrics {
    members: Vec<ModelId>,
    picks: Vec<[Option<u32>; 3]>,
}

#[derive(Default)]
pub struct Metrics {
    models: Vec<ModelMetrics>,
    pools: Vec<PoolMetrics>,
}

fn define(kind: MetricKind, name: &str) -> Option<u32> {
    host::define_metric(kind, name).ok()
}

fn strategy_index(strategy: Strategy) -> usize {
    match strategy {
        Strategy::Failover => 0,
        Strategy::Latency => 1,
        Strategy::Throughput => 2,
    }
}

impl Metrics {
    pub fn define(prepared: &Prepared) -> Self {
        let config = &prepared.config;
        let models = config
            .models
            .iter()
            .map(|m| ModelMetrics {
                direct_picks: define(MetricKind::Counter, &direct_pick_name(&m.name)),
                stats: ModelStat::ALL.map(|stat| {
                    let kind = if stat.is_gauge() {
                        MetricKind::Gauge
                    } else {
                        MetricKind::Counter
                    };
                    define(kind, &model_stat_name(stat, &m.name))
                }),
            })
            .collect();
        let pools = config
            .pools
            .iter()
            .map(|pool| PoolMetrics {
                members: pool.members.clone(),
                picks: pool
                    .members
                    .iter()
                    .map(|&member| {
                        let name = config.model(member).map_or("", |m| m.name.as_str());
                        POOL_STRATEGIES.map(|strategy| {
                            define(
                                MetricKind::Counter,
                                &pool_pick_name(&pool.alias, strategy, name),
                            )
                        })
                    })
                    .collect(),
            })
            .collect();
        Metrics { models, pools }
    }

    fn stat(&self, model: ModelId, stat: ModelStat) -> Option<u32> {
        self.models.get(model)?.stats[stat as usize]
    }

    pub fn picked(&self, decision: &RouteDecision) {
        let id = match decision.target {
            Target::Model(model) => self.models.get(model).and_then(|m| m.direct_picks),
            Target::Pool { pool, strategy } => self
                .pools
                .get(pool)
                .and_then(|p| p.picks.get(decision.first_position))
                .and_then(|by_strategy| by_strategy[strategy_index(strategy)]),
        };
        if let Some(id) = id {
            host::increment_metric(id, 1);
        }
    }

    /// How often each model was picked first since Envoy started, over every pool and
    /// strategy, for the status document (not for the request path). `None` when a counter
    /// could not be read.
    pub fn pick_totals(&self) -> Vec<Option<u64>> {
        let read = |id: Option<u32>| host::metric(id?).ok();
        let mut totals: Vec<Option<u64>> =
            self.models.iter().map(|m| read(m.direct_picks)).collect();
        for pool in &self.pools {
            for (&member, by_strategy) in pool.members.iter().zip(&pool.picks) {
                if let Some(total) = totals.get_mut(member) {
                    for &id in by_strategy {
                        *total = total.zip(read(id)).map(|(sum, n)| sum + n);
                    }
                }
            }
        }
        totals
    }

    pub fn attempt_started(&self, model: ModelId) {
        if let Some(id) = self.stat(model, ModelStat::Attempts) {
            host::increment_metric(id, 1);
        }
    }

    pub fn attempt_failed(&self, model: ModelId) {
        if let Some(id) = self.stat(model, ModelStat::Failures) {
            host::increment_metric(id, 1);
        }
    }

    pub fn live_numbers(&self, model: ModelId, view: &StatsView) {
        if let (Some(id), Some(v)) = (self.stat(model, ModelStat::TtftMs), view.ttft_ms) {
            host::record_metric(id, v.round() as u64);
        }
        if let (Some(id), Some(v)) = (
            self.stat(model, ModelStat::TokensPerSec),
            view.tokens_per_sec,
        ) {
            host::record_metric(id, v.round() as u64);
        }
    }
}
