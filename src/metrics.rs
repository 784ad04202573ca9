//! Names of the Envoy stats the filter defines, and the tag extraction that turns them into
//! Prometheus labels.
//!
//! Envoy shows Wasm-defined stats under `wasmcustom.` in admin `/stats`. Each name is a
//! fixed metric name followed by `key.value` pairs, model last:
//!
//! ```text
//! model_router.picks.pool.<pool>.strategy.<strategy>.model.<model>
//! model_router.picks.strategy.direct.model.<model>
//! model_router.{attempts,failures,ttft_ms,tokens_per_sec}.model.<model>
//! ```
//!
//! The bootstrap's `stats_config.stats_tags` ([`TAG_EXTRACTORS`]) cut the pairs out of the
//! name, so `/stats/prometheus` serves `model_router_picks{pool,strategy,model}` and
//! `model_router_<stat>{model}`. The model comes last because model names may contain `.`
//! (`gpt-4.1`): its regex takes everything after `.model.` and the label keeps the exact
//! name, `:` and `/` included. A pool alias may contain `.` too; only the sequence
//! `.strategy.` inside an alias would split it in the wrong place.

use crate::resolve::Strategy;
use std::borrow::Cow;

/// Metric name (after tag extraction) of the pick counters.
pub const PICKS: &str = "model_router.picks";
/// The strategy label of picks where the request named a model itself.
pub const STRATEGY_DIRECT: &str = "direct";

/// Per-model stats besides picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelStat {
    /// Counter: attempts sent to the model (every try, retries included).
    Attempts,
    /// Counter: attempts that failed (429/5xx, refused, reset, timeout, cut stream); each
    /// one starts or extends the model's cooldown.
    Failures,
    /// Gauge: live time to first token, normalised to an idle model.
    TtftMs,
    /// Gauge: live output tokens per second, normalised to an idle model.
    TokensPerSec,
}

impl ModelStat {
    pub const ALL: [ModelStat; 4] = [
        ModelStat::Attempts,
        ModelStat::Failures,
        ModelStat::TtftMs,
        ModelStat::TokensPerSec,
    ];

    pub fn metric(self) -> &'static str {
        match self {
            ModelStat::Attempts => "model_router.attempts",
            ModelStat::Failures => "model_router.failures",
            ModelStat::TtftMs => "model_router.ttft_ms",
            ModelStat::TokensPerSec => "model_router.tokens_per_sec",
        }
    }

    pub fn is_gauge(self) -> bool {
        matches!(self, ModelStat::TtftMs | ModelStat::TokensPerSec)
    }
}

/// Envoy drops a trailing `.` from stat names (`m.` would become `m` and collide with a model
/// named `m`); every other character of a name, `.` included, survives as written.
pub fn stat_segment(name: &str) -> Cow<'_, str> {
    let kept = name.trim_end_matches('.');
    if kept.len() == name.len() {
        Cow::Borrowed(name)
    } else {
        let dots = name.len() - kept.len();
        Cow::Owned(format!("{kept}{}", "_".repeat(dots)))
    }
}

pub fn model_stat_name(stat: ModelStat, model: &str) -> String {
    format!("{}.model.{}", stat.metric(), stat_segment(model))
}

/// The pick counter of `model` chosen first by a pool request with `strategy`.
pub fn pool_pick_name(pool: &str, strategy: Strategy, model: &str) -> String {
    format!(
        "{PICKS}.pool.{}.strategy.{}.model.{}",
        stat_segment(pool),
        strategy.as_str(),
        stat_segment(model)
    )
}

/// The pick counter of a request that named `model` itself.
pub fn direct_pick_name(model: &str) -> String {
    format!(
        "{PICKS}.strategy.{STRATEGY_DIRECT}.model.{}",
        stat_segment(model)
    )
}

/// One Envoy `stats_tags` entry: the regex's first group is cut from the stat name, its
/// second group is the label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagExtractor {
    pub tag_name: &'static str,
    pub regex: &'static str,
}

/// Envoy matches each regex against the full stat name, `wasmcustom.` prefix included.
pub const TAG_EXTRACTORS: [TagExtractor; 4] = [
    TagExtractor {
        tag_name: "pool",
        regex: r"^wasmcustom\.model_router\.picks(\.pool\.(.+?))\.strategy\.",
    },
    TagExtractor {
        tag_name: "strategy",
        regex: r"^wasmcustom\.model_router\.picks(?:\.pool\..+?)?(\.strategy\.([a-z]+))\.model\.",
    },
    TagExtractor {
        tag_name: "model",
        regex: r"^wasmcustom\.model_router\.[a-z_]+(?:\.pool\..+?\.strategy\.[a-z]+|\.strategy\.[a-z]+)?(\.model\.(.+))$",
    },
    // Envoy's default `envoy.cluster_name` tag stops at the first `.` of a cluster name, so the
    // router's clusters (`mr.model.<n>`, `mr.pool.<p>.from.<k>`, see `topology`) would show as
    // `envoy_cluster_pool_0_from_0_upstream_rq_retry{envoy_cluster_name="mr"}`. A default tag
    // cannot be given another regex (Envoy skips the duplicate), so this one has its own name:
    // `envoy_cluster_upstream_rq_retry{model_router_cluster="mr.pool.0.from.0"}`.
    TagExtractor {
        tag_name: CLUSTER_TAG,
        regex: r"^cluster\.((mr\.(?:model\.[0-9]+|pool\.[0-9]+\.from\.[0-9]+))\.)",
    },
];

/// The label that carries the router's full cluster names on Envoy's cluster stats.
pub const CLUSTER_TAG: &str = "model_router_cluster";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology;

    #[test]
    fn model_names_are_kept_as_written_in_stat_names() {
        let cases = [
            ("qwen:7b/chat", "model_router.ttft_ms.model.qwen:7b/chat"),
            ("gpt-4.1", "model_router.ttft_ms.model.gpt-4.1"),
            ("a b\"c", "model_router.ttft_ms.model.a b\"c"),
            ("ends.", "model_router.ttft_ms.model.ends_"),
            ("dots..", "model_router.ttft_ms.model.dots__"),
        ];
        for (model, want) in cases {
            assert_eq!(model_stat_name(ModelStat::TtftMs, model), want, "{model}");
        }
    }

    #[test]
    fn pick_names_carry_pool_strategy_and_model() {
        assert_eq!(
            pool_pick_name("default", Strategy::Latency, "big"),
            "model_router.picks.pool.default.strategy.latency.model.big"
        );
        assert_eq!(
            pool_pick_name("my.pool", Strategy::Failover, "gpt-4.1"),
            "model_router.picks.pool.my.pool.strategy.failover.model.gpt-4.1"
        );
        assert_eq!(
            direct_pick_name("qwen:7b"),
            "model_router.picks.strategy.direct.model.qwen:7b"
        );
    }

    #[test]
    fn the_cluster_tag_expects_the_topology_cluster_names() {
        // The regex spells the shapes out; these are the names the topology produces.
        assert_eq!(topology::model_cluster(12), "mr.model.12");
        assert_eq!(topology::pool_cluster(3, 1), "mr.pool.3.from.1");
        assert!(TAG_EXTRACTORS[3]
            .regex
            .contains(r"mr\.(?:model\.[0-9]+|pool\.[0-9]+\.from\.[0-9]+)"));
    }

    #[test]
    fn only_live_numbers_are_gauges() {
        let gauges: Vec<_> = ModelStat::ALL
            .into_iter()
            .filter(|s| s.is_gauge())
            .collect();
        assert_eq!(gauges, [ModelStat::TtftMs, ModelStat::TokensPerSec]);
    }

    #[test]
    fn every_stat_name_starts_with_the_prefix_the_tag_regexes_expect() {
        let names = [
            pool_pick_name("p", Strategy::Throughput, "m"),
            direct_pick_name("m"),
        ]
        .into_iter()
        .chain(ModelStat::ALL.map(|s| model_stat_name(s, "m")));
        for name in names {
            assert!(name.starts_with("model_router."), "{name}");
            let metric = name.split(".model.").next().unwrap_or_default();
            let after_prefix = &metric["model_router.".len()..];
            let word = after_prefix.split('.').next().unwrap_or_default();
            assert!(
                word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}: the model regex expects [a-z_]+ after model_router."
            );
        }
        for extractor in &TAG_EXTRACTORS[..3] {
            assert!(
                extractor.regex.starts_with(r"^wasmcustom\.model_router\."),
                "{}",
                extractor.tag_name
            );
        }
    }
}
