//! The live status document: every pool and model with its live numbers, sample age and
//! state, as the routing decisions see them.

use crate::prepared::Prepared;
use crate::resolve::LiveData;
use serde_json::{json, Value};

fn round(x: Option<f64>, digits: i32) -> Value {
    let scale = 10f64.powi(digits);
    x.filter(|v| v.is_finite())
        .map_or(Value::Null, |v| json!((v * scale).round() / scale))
}

pub fn render(prepared: &Prepared, now_ms: u64, live: &mut impl LiveData) -> String {
    let config = &prepared.config;
    let models: Vec<Value> = config
        .models
        .iter()
        .enumerate()
        .map(|(id, m)| {
            let cooldown = live.cooldown(id);
            let stats = live.stats(id);
            let cooling = cooldown.is_cooling(now_ms);
            json!({
                "name": m.name,
                "upstream_model": m.upstream_model,
                "endpoint": format!("{}://{}", if m.endpoint.tls { "https" } else { "http" }, m.endpoint.authority()),
                "state": if cooling { "cooling" } else { "ready" },
                "cooldown_remaining_ms": cooldown.until_ms.saturating_sub(now_ms),
                "consecutive_failures": cooldown.consecutive_failures,
                "in_flight": live.in_flight(id),
                "ttft_ms": round(stats.ttft_ms, 1),
                "tokens_per_sec": round(stats.tokens_per_sec, 1),
                "error_rate": round(Some(stats.error_rate), 3),
                "weight_ttft": round(Some(stats.weight_ttft), 2),
                "weight_tokens_per_sec": round(Some(stats.weight_tps), 2),
                "samples": stats.samples,
                "sample_age_ms": stats.age_ms,
            })
        })
        .collect();
    let pools: Vec<Value> = config
        .pools
        .iter()
        .map(|p| {
            let members: Vec<&str> = p
                .members
                .iter()
                .filter_map(|&m| config.model(m).map(|m| m.name.as_str()))
                .collect();
            json!({"alias": p.alias, "models": members})
        })
        .collect();
    let s = &config.settings;
    json!({
        "now_ms": now_ms,
        "pools": pools,
        "models": models,
        "settings": {
            "cooldown_base_ms": s.cooldown_base_ms,
            "cooldown_max_ms": s.cooldown_max_ms,
            "stats_half_life_ms": s.stats_half_life_ms,
            "load_factor": s.load_factor,
            "explore_share": s.explore_share,
        },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouterConfig;
    use crate::resolve::tests::Table;

    #[test]
    fn status_lists_pools_and_models_with_live_numbers_and_state() {
        let config = RouterConfig::from_json(
            br#"{"models":[{"name":"a","endpoint":"http://127.0.0.1:1"},{"name":"b","endpoint":"https://x.example"}],
                 "pools":{"default":["b","a"]}}"#,
        )
        .unwrap();
        let p = Prepared::new(config, |_| None).unwrap();
        let mut live = Table(
            vec![(0, Some(123.45), Some(50.0), 2), (5000, None, None, 0)],
            vec![],
        );
        let v: Value = serde_json::from_str(&render(&p, 1000, &mut live)).unwrap();
        assert_eq!(v["pools"][0]["models"], json!(["b", "a"]));
        let a = &v["models"][0];
        assert_eq!(
            (
                a["state"].as_str(),
                a["ttft_ms"].as_f64(),
                a["in_flight"].as_u64()
            ),
            (Some("ready"), Some(123.5), Some(2))
        );
        let b = &v["models"][1];
        assert_eq!(
            (b["state"].as_str(), b["cooldown_remaining_ms"].as_u64()),
            (Some("cooling"), Some(4000))
        );
        assert!(b["ttft_ms"].is_null());
        assert_eq!(b["endpoint"], "https://x.example");
    }
}
