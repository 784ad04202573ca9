//! `GET /v1/models` and `GET /v1/models/{id}`, answered by the router itself: every model,
//! every pool alias, and each alias with its strategies.

use crate::config::{RouterConfig, STRATEGY_LATENCY, STRATEGY_THROUGHPUT};
use serde_json::{json, Value};

const OWNER: &str = "model-router";

/// Every id a client may send as `model`.
pub fn model_ids(config: &RouterConfig) -> Vec<String> {
    let mut ids: Vec<String> = config.models.iter().map(|m| m.name.clone()).collect();
    for pool in &config.pools {
        ids.push(pool.alias.clone());
        ids.push(format!("{}:{STRATEGY_LATENCY}", pool.alias));
        ids.push(format!("{}:{STRATEGY_THROUGHPUT}", pool.alias));
    }
    ids
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": OWNER})
}

/// The list body, built once per config.
pub fn list_body(config: &RouterConfig) -> String {
    let data: Vec<Value> = model_ids(config)
        .iter()
        .map(|id| model_object(id))
        .collect();
    json!({"object": "list", "data": data}).to_string()
}

/// The body for `GET /v1/models/{id}`, if `id` is served.
pub fn retrieve_body(config: &RouterConfig, id: &str) -> Option<String> {
    crate::resolve::resolve(config, id)
        .ok()
        .map(|_| model_object(id).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_has_models_pools_and_strategies() {
        let c = RouterConfig::from_json(
            br#"{"models":[{"name":"a","endpoint":"http://h:1"},{"name":"b","endpoint":"http://h:2"}],
                 "pools":{"default":["a","b"]}}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&list_body(&c)).unwrap();
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["a", "b", "default", "default:latency", "default:throughput"]
        );
        assert_eq!(v["object"], "list");
        assert!(retrieve_body(&c, "DEFAULT:latency").is_some());
        assert!(retrieve_body(&c, "c").is_none());
    }
}
