//! What the router leaves in Envoy's filter state for access logs.
//!
//! A Wasm filter's `set_property(name, value)` creates filter state `wasm.<name>`, which an
//! access log prints with `%FILTER_STATE(wasm.<name>:PLAIN)%`. Measured in Envoy 1.40: values
//! set by the downstream filter and by the per-attempt (upstream) filter both reach the
//! downstream access log, and a later attempt overwrites an earlier attempt's value. One
//! property per role keeps it to one host call in each: values are logfmt (`key=value`,
//! quoted when needed), so log pipelines can split them into fields.

use crate::config::RouterConfig;
use crate::metrics::STRATEGY_DIRECT;
use crate::resolve::{RouteDecision, Strategy, Target};
use crate::strategy::PickReason;

/// Set once per routed request by the downstream filter:
/// `pool=<alias> strategy=<failover|latency|throughput> first=<model>`, followed for
/// `:latency` / `:throughput` by `pick=<best|cold-start|explore|no-data|all-cooling>` (why
/// that model went first); for a request that named a model `pool=- strategy=direct first=<model>`.
pub const DECISION_PROPERTY: &str = "model_router.decision";
/// Set by every attempt (the last one wins): `model=<model> attempt=<n>`.
pub const ATTEMPT_PROPERTY: &str = "model_router.attempt";

/// The filter-state keys as access-log format strings use them.
pub fn filter_state_key(property: &str) -> String {
    format!("wasm.{property}")
}

/// `pool` is `None` when the request named the model itself; `pick` is the ranking's reason.
pub fn decision_value(
    pool: Option<(&str, Strategy)>,
    first_model: &str,
    pick: Option<PickReason>,
) -> String {
    let mut out = String::with_capacity(48 + first_model.len());
    match pool {
        Some((alias, strategy)) => {
            push_pair(&mut out, "pool", alias);
            push_pair(&mut out, "strategy", strategy.as_str());
        }
        None => {
            push_pair(&mut out, "pool", "-");
            push_pair(&mut out, "strategy", STRATEGY_DIRECT);
        }
    }
    push_pair(&mut out, "first", first_model);
    if let Some(pick) = pick {
        push_pair(&mut out, "pick", pick.as_str());
    }
    out
}

/// The [`DECISION_PROPERTY`] value of a routing decision.
pub fn describe_decision(config: &RouterConfig, decision: &RouteDecision) -> String {
    let first = config
        .model(decision.first_model)
        .map_or("?", |m| m.name.as_str());
    let pool = match decision.target {
        Target::Model(_) => None,
        Target::Pool { pool, strategy } => Some((
            config.pool(pool).map_or("?", |p| p.alias.as_str()),
            strategy,
        )),
    };
    decision_value(pool, first, decision.reason)
}

/// `attempt` is Envoy's `x-envoy-attempt-count` as received ("1" for the first try).
pub fn attempt_value(model: &str, attempt: &str) -> String {
    let mut out = String::with_capacity(24 + model.len());
    push_pair(&mut out, "model", model);
    push_pair(&mut out, "attempt", attempt);
    out
}

fn push_pair(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(key);
    out.push('=');
    let needs_quotes = value.is_empty()
        || value
            .bytes()
            .any(|b| b == b' ' || b == b'"' || b == b'=' || b == b'\\' || !b.is_ascii_graphic());
    if !needs_quotes {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_name_pool_strategy_and_first_model() {
        let cases = [
            (
                Some(("default", Strategy::Latency)),
                "big",
                Some(PickReason::Best),
                "pool=default strategy=latency first=big pick=best",
            ),
            (
                Some(("default", Strategy::Throughput)),
                "small",
                Some(PickReason::ColdStart),
                "pool=default strategy=throughput first=small pick=cold-start",
            ),
            (
                Some(("cheap", Strategy::Failover)),
                "qwen:7b/chat",
                None,
                "pool=cheap strategy=failover first=qwen:7b/chat",
            ),
            (
                None,
                "gpt-4.1",
                None,
                "pool=- strategy=direct first=gpt-4.1",
            ),
        ];
        for (pool, first, pick, want) in cases {
            assert_eq!(decision_value(pool, first, pick), want);
        }
    }

    #[test]
    fn decisions_are_described_with_config_names() {
        let config = RouterConfig::from_json(
            br#"{"models":[{"name":"a","endpoint":"http://127.0.0.1:1"},{"name":"b c","endpoint":"http://127.0.0.1:2"}],
                 "pools":{"Main":["a","b c"]}}"#,
        )
        .unwrap();
        let pool = RouteDecision {
            target: Target::Pool {
                pool: 0,
                strategy: Strategy::Throughput,
            },
            first_model: 1,
            first_position: 1,
            max_retries: 1,
            reason: Some(PickReason::Explore),
        };
        assert_eq!(
            describe_decision(&config, &pool),
            "pool=Main strategy=throughput first=\"b c\" pick=explore"
        );
        let direct = RouteDecision {
            target: Target::Model(0),
            first_model: 0,
            first_position: 0,
            max_retries: 0,
            reason: None,
        };
        assert_eq!(
            describe_decision(&config, &direct),
            "pool=- strategy=direct first=a"
        );
    }

    #[test]
    fn values_that_would_break_logfmt_are_quoted() {
        let cases = [
            ("plain-name_1.2:x/y", "model=plain-name_1.2:x/y attempt=2"),
            ("with space", "model=\"with space\" attempt=2"),
            ("a=b", "model=\"a=b\" attempt=2"),
            ("say \"hi\"", "model=\"say \\\"hi\\\"\" attempt=2"),
            ("back\\slash", "model=\"back\\\\slash\" attempt=2"),
            ("", "model=\"\" attempt=2"),
        ];
        for (model, want) in cases {
            assert_eq!(attempt_value(model, "2"), want, "{model:?}");
        }
    }

    #[test]
    fn filter_state_keys_carry_the_wasm_prefix() {
        assert_eq!(
            filter_state_key(DECISION_PROPERTY),
            "wasm.model_router.decision"
        );
        assert_eq!(
            filter_state_key(ATTEMPT_PROPERTY),
            "wasm.model_router.attempt"
        );
    }
}
