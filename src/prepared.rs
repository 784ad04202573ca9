//! Everything the filter needs per request, computed once per config load so the hot path
//! only borrows: cluster names, JSON tokens for body rewrites, shared-data keys, the model list.

use crate::body_scan::json_string;
use crate::config::{ModelId, RouterConfig};
use crate::cooldown::CooldownPolicy;
use crate::resolve::{RouteDecision, Target};
use crate::stats::StatsPolicy;
use crate::strategy::RankPolicy;
use crate::topology;

pub struct Prepared {
    pub config: RouterConfig,
    pub models: Vec<PreparedModel>,
    /// `pool_clusters[pool][first_position]`.
    pool_clusters: Vec<Vec<String>>,
    pub models_list_body: String,
    pub cooldown_policy: CooldownPolicy,
    pub stats_policy: StatsPolicy,
    pub rank_policy: RankPolicy,
    pub passthrough_cluster: Option<String>,
}

pub struct PreparedModel {
    pub cluster: String,
    /// The upstream model name as a JSON string token, ready to splice into a body.
    pub upstream_token: String,
    pub authority: String,
    pub cooldown_key: String,
    pub stats_key: String,
    pub in_flight_key: String,
    /// `Bearer <key>` when the model has an API key.
    pub authorization: Option<String>,
}

/// Shared-data key prefix; every key of the router starts with it.
pub const KEY_PREFIX: &str = "model_router/v1/";

impl Prepared {
    /// `api_key` returns the value of an environment variable, or `None` when it is unset.
    pub fn new(
        config: RouterConfig,
        mut api_key: impl FnMut(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut models = Vec::with_capacity(config.models.len());
        for (id, m) in config.models.iter().enumerate() {
            let authorization = match &m.api_key_env {
                None => None,
                Some(env) => match api_key(env) {
                    Some(key) if !key.trim().is_empty() => Some(format!("Bearer {}", key.trim())),
                    _ => {
                        return Err(format!(
                            "models[{id}].api_key_env: environment variable {env} (API key of model {:?}) is unset or empty in Envoy's environment; export it before starting Envoy and list it in vm_config.environment_variables.host_env_keys",
                            m.name
                        ))
                    }
                },
            };
            models.push(PreparedModel {
                cluster: topology::model_cluster(id),
                upstream_token: json_string(&m.upstream_model),
                authority: m.endpoint.authority(),
                cooldown_key: format!("{KEY_PREFIX}cooldown/{}", m.name),
                stats_key: format!("{KEY_PREFIX}stats/{}", m.name),
                in_flight_key: format!("{KEY_PREFIX}in_flight/{}", m.name),
                authorization,
            });
        }
        let pool_clusters = config
            .pools
            .iter()
            .enumerate()
            .map(|(p, pool)| {
                (0..pool.members.len())
                    .map(|first| topology::pool_cluster(p, first))
                    .collect()
            })
            .collect();
        Ok(Prepared {
            models_list_body: crate::models_list::list_body(&config),
            cooldown_policy: CooldownPolicy {
                base_ms: config.settings.cooldown_base_ms,
                max_ms: config.settings.cooldown_max_ms,
            },
            stats_policy: StatsPolicy {
                half_life_ms: config.settings.stats_half_life_ms,
                load_prior: config.settings.load_factor,
            },
            rank_policy: RankPolicy {
                explore_share: config.settings.explore_share,
                stale_after_ms: config.settings.stats_half_life_ms,
                ..RankPolicy::DEFAULT
            },
            passthrough_cluster: config
                .settings
                .passthrough_model
                .map(topology::model_cluster),
            pool_clusters,
            models,
            config,
        })
    }

    pub fn model(&self, id: ModelId) -> Option<&PreparedModel> {
        self.models.get(id)
    }

    pub fn cluster_for(&self, decision: &RouteDecision) -> Option<&str> {
        match decision.target {
            Target::Model(m) => self.models.get(m).map(|m| m.cluster.as_str()),
            Target::Pool { pool, .. } => self
                .pool_clusters
                .get(pool)?
                .get(decision.first_position)
                .map(String::as_str),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{decide, resolve, LiveData};
    use crate::strategy::RankPolicy;

    const CONFIG: &[u8] = br#"{"models":[
        {"name":"big","endpoint":"https://llm.example.com","upstream_model":"org/big","api_key_env":"BIG_KEY"},
        {"name":"fast","endpoint":"http://127.0.0.1:8081"}],
      "pools":{"default":["big","fast"]},
      "settings":{"passthrough_model":"fast"}}"#;

    #[test]
    fn decisions_map_to_the_generated_clusters() {
        let p = Prepared::new(RouterConfig::from_json(CONFIG).unwrap(), |_| {
            Some("k".into())
        })
        .unwrap();
        let target = resolve(&p.config, "default").unwrap();
        let policy = RankPolicy::DEFAULT;
        let mut big_cooling =
            crate::resolve::tests::Table(vec![(99, None, None, 0), (0, None, None, 0)], Vec::new());
        let d = decide(&p.config, target, 0, &mut big_cooling, 0, 0.0, &policy).unwrap();
        assert_eq!(p.cluster_for(&d), Some("mr.pool.0.from.1"));
        let big = resolve(&p.config, "big").unwrap();
        let d = decide(&p.config, big, 0, &mut big_cooling, 0, 0.0, &policy).unwrap();
        assert_eq!(p.cluster_for(&d), Some("mr.model.0"));
        let _ = big_cooling.cooldown(0);
        assert_eq!(p.passthrough_cluster.as_deref(), Some("mr.model.1"));
        let big = p.model(0).unwrap();
        assert_eq!(big.upstream_token, "\"org/big\"");
        assert_eq!(big.authority, "llm.example.com");
        assert_eq!(big.authorization.as_deref(), Some("Bearer k"));
    }

    #[test]
    fn missing_api_key_refuses_the_config_by_name() {
        let err = Prepared::new(RouterConfig::from_json(CONFIG).unwrap(), |_| None)
            .err()
            .unwrap();
        assert!(
            err.contains("BIG_KEY") && err.contains("api_key_env"),
            "{err}"
        );
    }
}
