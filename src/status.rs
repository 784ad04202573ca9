//! The live status document: every pool and model with its live numbers, sample age and
//! state, as the routing decisions see them.

use crate::cooldown::Availability;
use crate::prepared::Prepared;
use crate::resolve::LiveData;
use serde_json::{json, Value};

/// The live page served at `<status_path>/ui`: it polls the status document and charts it.
pub const PAGE_HTML: &str = include_str!("status_page.html");

fn round(x: Option<f64>, digits: i32) -> Value {
    let scale = 10f64.powi(digits);
    x.filter(|v| v.is_finite())
        .map_or(Value::Null, |v| json!((v * scale).round() / scale))
}

/// `picks[model]` is how often the model was picked first since Envoy started (every pool,
/// strategy and direct request); `None`, rendered as `null`, when it could not be read.
pub fn render(
    prepared: &Prepared,
    now_ms: u64,
    live: &mut impl LiveData,
    picks: &[Option<u64>],
) -> String {
    let config = &prepared.config;
    let models: Vec<Value> = config
        .models
        .iter()
        .enumerate()
        .map(|(id, m)| {
            let cooldown = live.cooldown(id);
            let stats = live.stats(id);
            let state = match cooldown.availability(now_ms) {
                Availability::Healthy => "ready",
                Availability::Cooling => "cooling",
                // Past its cooldown, waiting for (or running) the one probe request.
                Availability::Probe | Availability::Probing => "half-open",
            };
            json!({
                "name": m.name,
                "upstream_model": m.upstream_model,
                "endpoint": format!("{}://{}", if m.endpoint.tls { "https" } else { "http" }, m.endpoint.authority()),
                "state": state,
                "cooldown_remaining_ms": cooldown.until_ms.saturating_sub(now_ms),
                "consecutive_failures": cooldown.consecutive_failures,
                "in_flight": live.in_flight(id),
                "ttft_ms": round(stats.ttft_ms, 1),
                "tokens_per_sec": round(stats.tokens_per_sec, 1),
                "error_rate": round(Some(stats.error_rate), 3),
                "weight_ttft": round(Some(stats.weight_ttft), 2),
                "weight_tokens_per_sec": round(Some(stats.weight_tps), 2),
                "load_slope_ttft": round(Some(stats.load_slope_ttft), 3),
                "load_slope_tokens_per_sec": round(Some(stats.load_slope_tps), 3),
                "ttft_ms_per_kib": round(Some(stats.ttft_ms_per_kib), 3),
                "typical_prompt_kib": round(Some(stats.typical_prompt_kib), 2),
                "samples": stats.samples,
                "sample_age_ms": stats.age_ms,
                "picks": picks.get(id).copied().flatten(),
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
        let v: Value = serde_json::from_str(&render(&p, 1000, &mut live, &[None, None])).unwrap();
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

    #[test]
    fn model_past_its_cooldown_without_a_success_is_half_open() {
        let config = RouterConfig::from_json(
            br#"{"models":[{"name":"a","endpoint":"http://127.0.0.1:1"}],"pools":{"p":["a"]}}"#,
        )
        .unwrap();
        let p = Prepared::new(config, |_| None).unwrap();
        // Cooled down until 500 after a failure; now is 1000 and no success since.
        let mut live = Table(vec![(500, None, None, 0)], vec![]);
        let v: Value = serde_json::from_str(&render(&p, 1000, &mut live, &[None])).unwrap();
        assert_eq!(v["models"][0]["state"], "half-open");
    }

    #[test]
    fn status_reports_cumulative_picks_or_null_when_unreadable() {
        let config = RouterConfig::from_json(
            br#"{"models":[{"name":"a","endpoint":"http://127.0.0.1:1"},{"name":"b","endpoint":"http://127.0.0.1:2"},{"name":"c","endpoint":"http://127.0.0.1:3"}],
                 "pools":{"default":["a","b"]}}"#,
        )
        .unwrap();
        let p = Prepared::new(config, |_| None).unwrap();
        let mut live = Table(vec![(0, None, None, 0); 3], vec![]);
        // Fewer counts than models: the missing one is unknown, not zero.
        let v: Value = serde_json::from_str(&render(&p, 0, &mut live, &[Some(40), None])).unwrap();
        let picks: Vec<&Value> = (0..3).map(|i| &v["models"][i]["picks"]).collect();
        assert_eq!(picks, [&json!(40), &Value::Null, &Value::Null]);
    }

    #[test]
    fn status_page_polls_the_status_document_and_loads_nothing_from_elsewhere() {
        assert!(PAGE_HTML.starts_with("<!doctype html>"));
        assert!(PAGE_HTML.contains("fetch("));
        for external in ["http://", "https://", "//cdn", "<link", "src="] {
            assert!(!PAGE_HTML.contains(external), "page refers to {external}");
        }
    }
}
