//! From the body's `model` to where the request goes: an exact model name first, then a pool
//! alias (case-insensitive) with an optional `:strategy`.

use crate::config::{ModelId, PoolId, RouterConfig, STRATEGY_LATENCY, STRATEGY_THROUGHPUT};
use crate::cooldown::{first_available, CooldownState};
use crate::errors::ClientError;
use crate::stats::StatsView;
use crate::strategy::{pick, Candidate, Objective, PickReason, RankPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Pool order; models cooling down are skipped for the first attempt.
    Failover,
    Latency,
    Throughput,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Failover => "failover",
            Strategy::Latency => STRATEGY_LATENCY,
            Strategy::Throughput => STRATEGY_THROUGHPUT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Model(ModelId),
    Pool { pool: PoolId, strategy: Strategy },
}

pub fn resolve(config: &RouterConfig, requested: &str) -> Result<Target, ClientError> {
    if let Some(model) = config.model_by_name(requested) {
        return Ok(Target::Model(model));
    }
    let (alias, strategy) = match requested.split_once(':') {
        None => (requested, None),
        Some((alias, strategy)) => (alias, Some(strategy)),
    };
    let Some(pool) = config.pool_by_alias(alias) else {
        return Err(ClientError::unknown_model(requested));
    };
    let strategy = match strategy {
        None => Strategy::Failover,
        Some(s) if s.eq_ignore_ascii_case(STRATEGY_LATENCY) => Strategy::Latency,
        Some(s) if s.eq_ignore_ascii_case(STRATEGY_THROUGHPUT) => Strategy::Throughput,
        Some(_) => return Err(ClientError::unknown_strategy(requested, alias)),
    };
    Ok(Target::Pool { pool, strategy })
}

/// Live data about models, read from wherever it is kept (shared data in the filter).
pub trait LiveData {
    fn cooldown(&mut self, model: ModelId) -> CooldownState;
    fn stats(&mut self, model: ModelId) -> StatsView;
    fn in_flight(&mut self, model: ModelId) -> u32;
}

/// Where the first attempt goes and how many more Envoy may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDecision {
    pub target: Target,
    pub first_model: ModelId,
    /// Position of `first_model` in the pool's list (0 for a model target).
    pub first_position: usize,
    /// Retries Envoy may make: one per remaining model of the pool.
    pub max_retries: usize,
    /// Why a ranked strategy picked `first_model` (`None` for failover and models).
    pub reason: Option<PickReason>,
}

/// `random` drives exploration; the same value gives the same decision.
pub fn decide(
    config: &RouterConfig,
    target: Target,
    now_ms: u64,
    live: &mut impl LiveData,
    random: u64,
    policy: &RankPolicy,
) -> Option<RouteDecision> {
    let Target::Pool { pool, strategy } = target else {
        let Target::Model(model) = target else {
            return None;
        };
        return Some(RouteDecision {
            target,
            first_model: model,
            first_position: 0,
            max_retries: 0,
            reason: None,
        });
    };
    let members = &config.pool(pool)?.members;
    let (first_position, reason) = match strategy {
        Strategy::Failover => (first_available(members, |m| live.cooldown(m), now_ms), None),
        Strategy::Latency | Strategy::Throughput => {
            let objective = if strategy == Strategy::Latency {
                Objective::Latency
            } else {
                Objective::Throughput
            };
            let candidates: Vec<Candidate> = members
                .iter()
                .enumerate()
                .map(|(position, &m)| Candidate {
                    position,
                    stats: live.stats(m),
                    in_flight: live.in_flight(m),
                    cooling: live.cooldown(m).is_cooling(now_ms),
                })
                .collect();
            // Cold start: a model never measured at all gets one probe at a time, so a new or
            // restarted router learns every model within its first requests instead of
            // waiting for the random exploration share to land on each.
            let cold = candidates
                .iter()
                .find(|c| c.stats.samples == 0 && c.in_flight == 0 && !c.cooling);
            match cold {
                Some(c) => (c.position, Some(PickReason::Explore)),
                None => {
                    let p = pick(objective, &candidates, random, policy)?;
                    (p.position, Some(p.reason))
                }
            }
        }
    };
    Some(RouteDecision {
        target,
        first_model: *members.get(first_position)?,
        first_position,
        max_retries: members.len().saturating_sub(1),
        reason,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn config() -> RouterConfig {
        RouterConfig::from_json(
            br#"{"models":[
                {"name":"big","endpoint":"http://127.0.0.1:1"},
                {"name":"fast","endpoint":"http://127.0.0.1:2"},
                {"name":"qwen:7b","endpoint":"http://127.0.0.1:3"},
                {"name":"default:latency","endpoint":"http://127.0.0.1:4"}],
              "pools":{"Default":["big","fast","qwen:7b"],"solo":["fast"]}}"#,
        )
        .unwrap()
    }

    #[test]
    fn model_names_win_then_aliases_match_case_insensitively() {
        let c = config();
        let pool = |alias| c.pool_by_alias(alias).unwrap();
        let cases: &[(&str, Target)] = &[
            ("big", Target::Model(0)),
            ("qwen:7b", Target::Model(2)),
            ("default:latency", Target::Model(3)),
            (
                "default",
                Target::Pool {
                    pool: pool("default"),
                    strategy: Strategy::Failover,
                },
            ),
            (
                "DEFAULT",
                Target::Pool {
                    pool: pool("default"),
                    strategy: Strategy::Failover,
                },
            ),
            (
                "Default:Throughput",
                Target::Pool {
                    pool: pool("default"),
                    strategy: Strategy::Throughput,
                },
            ),
            (
                "solo:latency",
                Target::Pool {
                    pool: pool("solo"),
                    strategy: Strategy::Latency,
                },
            ),
        ];
        for (requested, want) in cases {
            assert_eq!(resolve(&c, requested), Ok(*want), "{requested}");
        }
    }

    #[test]
    fn unknown_names_and_strategies_are_model_not_found() {
        let c = config();
        for requested in [
            "Big",
            "nope",
            "default:cheapest",
            "default:",
            ":latency",
            "",
        ] {
            let e = resolve(&c, requested).unwrap_err();
            assert_eq!((e.status, e.code), (404, "model_not_found"), "{requested}");
        }
        assert!(resolve(&c, "default:cheapest")
            .unwrap_err()
            .message
            .contains("default:latency"));
    }

    /// Live data for tests: per model (cooling until, ttft ms, tokens/s, in flight).
    /// `.1` holds sample counts per model; missing entries mean "measured" (10 samples).
    pub(crate) struct Table(pub Vec<(u64, Option<f64>, Option<f64>, u32)>, pub Vec<u64>);

    impl LiveData for Table {
        fn cooldown(&mut self, m: ModelId) -> CooldownState {
            let until_ms = self.0[m].0;
            CooldownState {
                until_ms,
                consecutive_failures: u32::from(until_ms > 0),
            }
        }
        fn stats(&mut self, m: ModelId) -> StatsView {
            let (_, ttft, tps, _) = self.0[m];
            StatsView {
                ttft_ms: ttft,
                tokens_per_sec: tps,
                weight_ttft: if ttft.is_some() { 5.0 } else { 0.0 },
                weight_tps: if tps.is_some() { 5.0 } else { 0.0 },
                age_ms: Some(100),
                samples: self.1.get(m).copied().unwrap_or(10),
                ..StatsView::default()
            }
        }
        fn in_flight(&mut self, m: ModelId) -> u32 {
            self.0[m].3
        }
    }

    type Row = (u64, Option<f64>, Option<f64>, u32);
    const NO_EXPLORE: RankPolicy = RankPolicy {
        explore_share: 0.0,
        ..RankPolicy::DEFAULT
    };
    const IDLE: Row = (0, None, None, 0);

    fn first(c: &RouterConfig, requested: &str, table: &[Row]) -> (ModelId, usize) {
        let target = resolve(c, requested).unwrap();
        let d = decide(
            c,
            target,
            0,
            &mut Table(table.to_vec(), Vec::new()),
            0,
            &NO_EXPLORE,
        )
        .unwrap();
        (d.first_model, d.max_retries)
    }

    #[test]
    fn never_measured_models_are_probed_one_at_a_time() {
        let c = config();
        let measured = |ttft| (0, Some(ttft), Some(50.0), 0);
        // Model 1 has never been seen and is idle: it gets the probe over the measured best.
        let mut t = Table(
            vec![measured(100.0), IDLE, measured(300.0), IDLE],
            vec![10, 0, 10, 0],
        );
        let target = resolve(&c, "Default:latency").unwrap();
        let d = decide(&c, target, 0, &mut t, 0, &NO_EXPLORE).unwrap();
        assert_eq!((d.first_model, d.reason), (1, Some(PickReason::Explore)));
        // While its probe is in flight, ranking goes on among the measured.
        t.0[1].3 = 1;
        let d = decide(&c, target, 0, &mut t, 0, &NO_EXPLORE).unwrap();
        assert_eq!((d.first_model, d.reason), (0, Some(PickReason::Best)));
    }

    #[test]
    fn pool_decisions_by_strategy() {
        let c = config();
        let ttfts = [
            (0, Some(400.0), None, 0),
            (0, Some(100.0), None, 0),
            (0, Some(200.0), None, 0),
            IDLE,
        ];
        let rates = [
            (0, None, Some(50.0), 0),
            (0, None, Some(90.0), 0),
            (0, None, Some(150.0), 0),
            IDLE,
        ];
        let mut rates_best_cooling = rates;
        rates_best_cooling[2].0 = 10;
        let cases: &[(&str, [Row; 4], (ModelId, usize))] = &[
            ("default", [IDLE; 4], (0, 2)),
            ("default", [(10, None, None, 0), IDLE, IDLE, IDLE], (1, 2)),
            // Latency: lowest TTFT wins (`default:latency` is a model here, hence the case);
            // the failover strategy ignores the numbers.
            ("Default:latency", ttfts, (1, 2)),
            ("default", ttfts, (0, 2)),
            // Throughput: highest tokens/s wins, unless it is cooling down.
            ("default:throughput", rates, (2, 2)),
            ("default:throughput", rates_best_cooling, (1, 2)),
            // No data at all: pool order.
            ("Default:latency", [IDLE; 4], (0, 2)),
            ("fast", [IDLE; 4], (1, 0)),
        ];
        for (requested, table, want) in cases {
            assert_eq!(first(&c, requested, table), *want, "{requested} {table:?}");
        }
    }
}
