//! How the router config maps onto Envoy objects. The filter and the config generator both
//! use these names, so they cannot drift apart.
//!
//! Failover is Envoy's: a pool request goes to an aggregate cluster listing the pool's models
//! as priorities, starting at the chosen first model and wrapping around in pool order, and
//! the retry policy's `previous_priorities` moves each retry to the next model.

use crate::config::{ModelId, PoolId, RouterConfig};

/// Request header the downstream filter sets and the route reads (`cluster_header`).
pub const CLUSTER_HEADER: &str = "x-model-router-cluster";
/// Request header carrying the downstream filter's findings to the per-attempt filter.
pub const ATTEMPT_HEADER: &str = "x-model-router-attempt";
/// Endpoint metadata namespace and key naming the model a host serves.
pub const METADATA_NAMESPACE: &str = "model_router";
pub const METADATA_MODEL_KEY: &str = "model";
/// `root_id`s that tell the two roles of the one `.wasm` apart.
pub const ROOT_ID_DOWNSTREAM: &str = "model_router";
pub const ROOT_ID_ATTEMPT: &str = "model_router_attempt";
pub const VM_ID: &str = "model_router";

pub fn model_cluster(model: ModelId) -> String {
    format!("mr.model.{model}")
}

/// The aggregate cluster that starts a pool's failover at `first_position` of its list.
pub fn pool_cluster(pool: PoolId, first_position: usize) -> String {
    format!("mr.pool.{pool}.from.{first_position}")
}

/// Models of `pool` in the order an aggregate starting at `first_position` tries them.
pub fn failover_order(config: &RouterConfig, pool: PoolId, first_position: usize) -> Vec<ModelId> {
    let Some(pool) = config.pool(pool) else {
        return Vec::new();
    };
    let n = pool.members.len();
    (0..n)
        .filter_map(|i| pool.members.get((first_position + i) % n).copied())
        .collect()
}

/// Every cluster the router needs, for the config generator.
pub struct ClusterPlan {
    pub name: String,
    pub kind: ClusterKind,
}

pub enum ClusterKind {
    Model(ModelId),
    /// An aggregate trying these models in order.
    Failover(Vec<ModelId>),
}

pub fn clusters(config: &RouterConfig) -> Vec<ClusterPlan> {
    let mut out: Vec<ClusterPlan> = (0..config.models.len())
        .map(|m| ClusterPlan {
            name: model_cluster(m),
            kind: ClusterKind::Model(m),
        })
        .collect();
    for (p, pool) in config.pools.iter().enumerate() {
        for first in 0..pool.members.len() {
            out.push(ClusterPlan {
                name: pool_cluster(p, first),
                kind: ClusterKind::Failover(failover_order(config, p, first)),
            });
        }
    }
    out
}
