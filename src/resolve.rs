//! From the body's `model` to where the request goes: an exact model name first, then a pool
//! alias (case-insensitive) with an optional `:strategy`.

use crate::config::{ModelId, PoolId, RouterConfig, STRATEGY_LATENCY, STRATEGY_THROUGHPUT};
use crate::cooldown::{first_available, CooldownState};
use crate::errors::ClientError;

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

/// Where the first attempt goes and how many more Envoy may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDecision {
    pub target: Target,
    pub first_model: ModelId,
    /// Position of `first_model` in the pool's list (0 for a model target).
    pub first_position: usize,
    /// Retries Envoy may make: one per remaining model of the pool.
    pub max_retries: usize,
}

pub fn decide(
    config: &RouterConfig,
    target: Target,
    now_ms: u64,
    state_of: impl FnMut(ModelId) -> CooldownState,
) -> Option<RouteDecision> {
    match target {
        Target::Model(model) => Some(RouteDecision {
            target,
            first_model: model,
            first_position: 0,
            max_retries: 0,
        }),
        Target::Pool { pool, strategy: _ } => {
            let members = &config.pool(pool)?.members;
            let first_position = first_available(members, state_of, now_ms);
            Some(RouteDecision {
                target,
                first_model: *members.get(first_position)?,
                first_position,
                max_retries: members.len().saturating_sub(1),
            })
        }
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn pool_decision_starts_at_first_healthy_model_with_retries_for_the_rest() {
        let c = config();
        let target = resolve(&c, "default").unwrap();
        let healthy = decide(&c, target, 0, |_| CooldownState::default()).unwrap();
        assert_eq!(
            (
                healthy.first_model,
                healthy.first_position,
                healthy.max_retries
            ),
            (0, 0, 2)
        );
        let big_cooling = decide(&c, target, 0, |m| CooldownState {
            until_ms: if m == 0 { 10 } else { 0 },
            consecutive_failures: 1,
        })
        .unwrap();
        assert_eq!(
            (big_cooling.first_model, big_cooling.first_position),
            (1, 1)
        );
        let model = decide(&c, Target::Model(1), 0, |_| CooldownState::default()).unwrap();
        assert_eq!((model.first_model, model.max_retries), (1, 0));
    }
}
