//! Router configuration: raw serde structs (what the JSON says) validated into a typed
//! [`RouterConfig`] (what the filter and the CLI use). Every error names the field and the fix.

use crate::endpoint::Endpoint;
use hashbrown::HashMap;
use serde::Deserialize;
use std::fmt;

pub const MAX_POOL_MODELS: usize = 20;
pub const MAX_ALIAS_LEN: usize = 64;
pub const MAX_MODEL_NAME_LEN: usize = 256;
pub const STRATEGY_LATENCY: &str = "latency";
pub const STRATEGY_THROUGHPUT: &str = "throughput";

/// Index of a model in [`RouterConfig::models`].
pub type ModelId = usize;
/// Index of a pool in [`RouterConfig::pools`].
pub type PoolId = usize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    models: Vec<RawModel>,
    #[serde(default)]
    pools: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    settings: RawSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    endpoint: String,
    upstream_model: Option<String>,
    api_key_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    cooldown_base_ms: Option<u64>,
    cooldown_max_ms: Option<u64>,
    attempt_timeout_ms: Option<u64>,
    stream_idle_timeout_ms: Option<u64>,
    non_stream_attempt_timeout_ms: Option<u64>,
    max_body_bytes: Option<u64>,
    routed_paths: Option<Vec<String>>,
    passthrough_model: Option<String>,
    stats_half_life_ms: Option<u64>,
    load_factor: Option<f64>,
    explore_share: Option<f64>,
    status_path: Option<String>,
    max_concurrent_failovers: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub name: String,
    pub endpoint: Endpoint,
    /// What the body's `model` becomes on this model's attempts.
    pub upstream_model: String,
    pub api_key_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The alias as written in the config (used in listings).
    pub alias: String,
    /// Models in priority order.
    pub members: Vec<ModelId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// First cooldown after a failure; doubles with each consecutive failure.
    pub cooldown_base_ms: u64,
    pub cooldown_max_ms: u64,
    /// Per-attempt deadline for the response to start (Envoy `per_try_timeout`).
    pub attempt_timeout_ms: u64,
    /// A stream with no bytes for this long is closed (Envoy route and HCM idle timeouts):
    /// ends responses that stall mid-stream, which no retry can rescue.
    pub stream_idle_timeout_ms: u64,
    /// Per-attempt deadline for requests without `"stream": true`: their response starts
    /// only when the whole completion is done, so the streamed first-byte deadline is too short.
    pub non_stream_attempt_timeout_ms: u64,
    pub max_body_bytes: u64,
    /// Paths whose JSON body's `model` is routed; other requests pass through.
    pub routed_paths: Vec<String>,
    /// Where requests on other paths go; `None` answers them 404.
    pub passthrough_model: Option<ModelId>,
    /// Live stats lose half their weight in this time: old numbers fade.
    pub stats_half_life_ms: u64,
    /// How much each in-flight request is assumed to inflate a model's TTFT (and deflate its
    /// tokens/s) until the model's own samples give a fitted slope; 0 turns load awareness off.
    pub load_factor: f64,
    /// Share of `:latency` / `:throughput` picks that probe models with no or stale data.
    pub explore_share: f64,
    /// `GET` on this path answers the live status JSON; `None` disables it.
    pub status_path: Option<String>,
    /// Envoy retry budget of each pool cluster: at most this many failovers (retries) in
    /// flight at once, across workers. A ceiling for bursts; the filter's storm control (no
    /// failover to models cooling down) keeps a fleet-wide outage at one attempt per request.
    pub max_concurrent_failovers: u32,
}

impl Settings {
    pub const DEFAULT_COOLDOWN_BASE_MS: u64 = 1_000;
    pub const DEFAULT_COOLDOWN_MAX_MS: u64 = 30_000;
    pub const DEFAULT_ATTEMPT_TIMEOUT_MS: u64 = 60_000;
    pub const DEFAULT_STREAM_IDLE_TIMEOUT_MS: u64 = 300_000;
    pub const DEFAULT_NON_STREAM_ATTEMPT_TIMEOUT_MS: u64 = 300_000;
    pub const DEFAULT_MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;
    pub const DEFAULT_STATS_HALF_LIFE_MS: u64 = 30_000;
    pub const DEFAULT_LOAD_FACTOR: f64 = 0.5;
    pub const DEFAULT_EXPLORE_SHARE: f64 = 0.05;
    pub const DEFAULT_STATUS_PATH: &'static str = "/model-router/status";
    pub const DEFAULT_MAX_CONCURRENT_FAILOVERS: u32 = 1_000;
    pub const MAX_CONCURRENT_FAILOVERS_LIMIT: u32 = 1_000_000;
    pub const DEFAULT_ROUTED_PATHS: [&'static str; 4] = [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/responses",
    ];
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouterConfig {
    pub models: Vec<Model>,
    pub pools: Vec<Pool>,
    pub settings: Settings,
    model_index: HashMap<String, ModelId>,
    /// Lower-cased alias → pool.
    pool_index: HashMap<String, PoolId>,
}

/// A config problem: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// All problems found in one config, so a user fixes them in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid model-router config ({} error", self.0.len())?;
        if self.0.len() != 1 {
            write!(f, "s")?;
        }
        write!(f, ")")?;
        for error in &self.0 {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

struct Collector(Vec<ConfigError>);

impl Collector {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError {
            field: field.into(),
            message: message.into(),
        });
    }
}

impl RouterConfig {
    /// Parses and validates a config document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigErrors> {
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                field: "(document)".into(),
                message: format!(
                    "{e}; expected {{\"models\": [...], \"pools\": {{...}}, \"settings\": {{...}}}}"
                ),
            }])
        })?;
        Self::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Self, ConfigErrors> {
        let mut errors = Collector(Vec::new());
        let mut models = Vec::with_capacity(raw.models.len());
        let mut model_index: HashMap<String, ModelId> = HashMap::new();
        if raw.models.is_empty() {
            errors.push("models", "at least one model is required");
        }
        for (i, m) in raw.models.into_iter().enumerate() {
            let field = format!("models[{i}]");
            validate_model_name(&m.name, &format!("{field}.name"), &mut errors);
            if model_index.insert(m.name.clone(), models.len()).is_some() {
                errors.push(
                    format!("{field}.name"),
                    format!(
                        "duplicate model name {:?}; model names must be unique",
                        m.name
                    ),
                );
            }
            let endpoint = match Endpoint::parse(&m.endpoint) {
                Ok(e) => e,
                Err(why) => {
                    errors.push(
                        format!("{field}.endpoint"),
                        format!("{:?}: {why}", m.endpoint),
                    );
                    Endpoint::placeholder()
                }
            };
            let upstream_model = m.upstream_model.unwrap_or_else(|| m.name.clone());
            if upstream_model.is_empty() || upstream_model.len() > MAX_MODEL_NAME_LEN {
                errors.push(
                    format!("{field}.upstream_model"),
                    format!("must be 1 to {MAX_MODEL_NAME_LEN} bytes"),
                );
            }
            if let Some(env) = &m.api_key_env {
                let ok = !env.is_empty()
                    && env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !env.as_bytes()[0].is_ascii_digit();
                if !ok {
                    errors.push(
                        format!("{field}.api_key_env"),
                        format!("{env:?} is not an environment variable name (letters, digits, _; not starting with a digit)"),
                    );
                }
            }
            models.push(Model {
                name: m.name,
                endpoint,
                upstream_model,
                api_key_env: m.api_key_env,
            });
        }

        let mut pools = Vec::with_capacity(raw.pools.len());
        let mut pool_index: HashMap<String, PoolId> = HashMap::new();
        for (alias, members) in raw.pools {
            let field = format!("pools.{alias}");
            if let Err(why) = validate_alias(&alias) {
                errors.push(&field, why);
            }
            let lower = alias.to_ascii_lowercase();
            if pool_index.insert(lower, pools.len()).is_some() {
                errors.push(
                    &field,
                    "duplicate pool alias (aliases are matched case-insensitively)",
                );
            }
            if model_index.contains_key(&alias) {
                errors.push(
                    &field,
                    format!("alias {alias:?} is also a model name; requests for it would always go to the model, never the pool"),
                );
            }
            let names = match members {
                serde_json::Value::Array(items) => items,
                _ => {
                    errors.push(&field, "must be a list of model names in priority order");
                    Vec::new()
                }
            };
            if names.is_empty() || names.len() > MAX_POOL_MODELS {
                errors.push(
                    &field,
                    format!(
                        "has {} models; a pool holds 1 to {MAX_POOL_MODELS} models",
                        names.len()
                    ),
                );
            }
            let mut ids: Vec<ModelId> = Vec::with_capacity(names.len());
            for (j, name) in names.iter().enumerate() {
                let Some(name) = name.as_str() else {
                    errors.push(format!("{field}[{j}]"), "must be a model name (a string)");
                    continue;
                };
                match model_index.get(name) {
                    Some(&id) if ids.contains(&id) => errors.push(
                        format!("{field}[{j}]"),
                        format!("model {name:?} is listed twice; pool models must be distinct"),
                    ),
                    Some(&id) => ids.push(id),
                    None => errors.push(
                        format!("{field}[{j}]"),
                        format!("unknown model {name:?}; define it under \"models\" first"),
                    ),
                }
            }
            pools.push(Pool {
                alias,
                members: ids,
            });
        }

        let settings = validate_settings(raw.settings, &model_index, &mut errors);
        if errors.0.is_empty() {
            Ok(RouterConfig {
                models,
                pools,
                settings,
                model_index,
                pool_index,
            })
        } else {
            Err(ConfigErrors(errors.0))
        }
    }

    pub fn model_by_name(&self, name: &str) -> Option<ModelId> {
        self.model_index.get(name).copied()
    }

    /// Case-insensitive alias lookup without allocating for aliases of legal length.
    pub fn pool_by_alias(&self, alias: &str) -> Option<PoolId> {
        let bytes = alias.as_bytes();
        if bytes.len() > MAX_ALIAS_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_ALIAS_LEN];
        let lower = buf.get_mut(..bytes.len())?;
        lower.copy_from_slice(bytes);
        lower.make_ascii_lowercase();
        let lower = std::str::from_utf8(lower).ok()?;
        self.pool_index.get(lower).copied()
    }

    pub fn model(&self, id: ModelId) -> Option<&Model> {
        self.models.get(id)
    }

    pub fn pool(&self, id: PoolId) -> Option<&Pool> {
        self.pools.get(id)
    }

    /// Largest pool size: how many attempts one request may need.
    pub fn max_pool_len(&self) -> usize {
        self.pools
            .iter()
            .map(|p| p.members.len())
            .max()
            .unwrap_or(1)
    }

    pub fn is_routed_path(&self, path: &str) -> bool {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        self.settings.routed_paths.iter().any(|p| p == path)
    }
}

fn validate_model_name(name: &str, field: &str, errors: &mut Collector) {
    if name.is_empty() || name.len() > MAX_MODEL_NAME_LEN {
        errors.push(
            field,
            format!("must be 1 to {MAX_MODEL_NAME_LEN} characters"),
        );
    } else if !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        errors.push(
            field,
            format!(
                "{name:?} has a character outside printable ASCII (it is sent in response headers)"
            ),
        );
    }
}

fn validate_alias(alias: &str) -> Result<(), String> {
    if alias.is_empty() || alias.len() > MAX_ALIAS_LEN {
        return Err(format!("alias must be 1 to {MAX_ALIAS_LEN} characters"));
    }
    if let Some(c) = alias
        .chars()
        .find(|c| !c.is_ascii_graphic() || *c == ':' || *c == ',')
    {
        return Err(format!(
            "alias {alias:?} contains {c:?}; use printable ASCII without spaces, ':' or ','"
        ));
    }
    Ok(())
}

fn validate_settings(
    raw: RawSettings,
    model_index: &HashMap<String, ModelId>,
    errors: &mut Collector,
) -> Settings {
    let cooldown_base_ms = raw
        .cooldown_base_ms
        .unwrap_or(Settings::DEFAULT_COOLDOWN_BASE_MS);
    let cooldown_max_ms = raw
        .cooldown_max_ms
        .unwrap_or(Settings::DEFAULT_COOLDOWN_MAX_MS);
    if cooldown_base_ms == 0 {
        errors.push(
            "settings.cooldown_base_ms",
            "must be at least 1 (milliseconds)",
        );
    }
    if cooldown_max_ms < cooldown_base_ms {
        errors.push(
            "settings.cooldown_max_ms",
            format!("{cooldown_max_ms} is below cooldown_base_ms ({cooldown_base_ms})"),
        );
    }
    let attempt_timeout_ms = raw
        .attempt_timeout_ms
        .unwrap_or(Settings::DEFAULT_ATTEMPT_TIMEOUT_MS);
    if attempt_timeout_ms == 0 {
        errors.push(
            "settings.attempt_timeout_ms",
            "must be at least 1 (milliseconds until an attempt's response starts)",
        );
    }
    let stream_idle_timeout_ms = raw
        .stream_idle_timeout_ms
        .unwrap_or(Settings::DEFAULT_STREAM_IDLE_TIMEOUT_MS);
    if stream_idle_timeout_ms < attempt_timeout_ms.max(1000) {
        errors.push(
            "settings.stream_idle_timeout_ms",
            format!("{stream_idle_timeout_ms} must be at least 1000 and at least attempt_timeout_ms ({attempt_timeout_ms}), or it would cut attempts before their own deadline"),
        );
    }
    // Unset, it follows a shorter idle timeout rather than failing validation.
    let non_stream_attempt_timeout_ms = raw
        .non_stream_attempt_timeout_ms
        .unwrap_or(Settings::DEFAULT_NON_STREAM_ATTEMPT_TIMEOUT_MS.min(stream_idle_timeout_ms));
    if non_stream_attempt_timeout_ms == 0 || non_stream_attempt_timeout_ms > stream_idle_timeout_ms
    {
        errors.push(
            "settings.non_stream_attempt_timeout_ms",
            format!("{non_stream_attempt_timeout_ms} must be between 1 and stream_idle_timeout_ms ({stream_idle_timeout_ms}): a response that has not started is idle, and the idle timeout would end it first"),
        );
    }
    let max_body_bytes = raw
        .max_body_bytes
        .unwrap_or(Settings::DEFAULT_MAX_BODY_BYTES);
    if !(1024..=(1u64 << 30)).contains(&max_body_bytes) {
        errors.push(
            "settings.max_body_bytes",
            "must be between 1024 and 1073741824",
        );
    }
    let routed_paths = match raw.routed_paths {
        Some(paths) => {
            for (i, p) in paths.iter().enumerate() {
                if !p.starts_with('/') || p.contains('?') {
                    errors.push(
                        format!("settings.routed_paths[{i}]"),
                        format!("{p:?} must be a path starting with '/' and without a query"),
                    );
                }
            }
            paths
        }
        None => Settings::DEFAULT_ROUTED_PATHS
            .iter()
            .map(|p| (*p).to_string())
            .collect(),
    };
    let passthrough_model = raw.passthrough_model.and_then(|name| {
        let id = model_index.get(&name).copied();
        if id.is_none() {
            errors.push(
                "settings.passthrough_model",
                format!("unknown model {name:?}; name one of \"models\""),
            );
        }
        id
    });
    let stats_half_life_ms = raw
        .stats_half_life_ms
        .unwrap_or(Settings::DEFAULT_STATS_HALF_LIFE_MS);
    if !(100..=3_600_000).contains(&stats_half_life_ms) {
        errors.push(
            "settings.stats_half_life_ms",
            "must be between 100 and 3600000 (milliseconds)",
        );
    }
    let load_factor = raw.load_factor.unwrap_or(Settings::DEFAULT_LOAD_FACTOR);
    if !(0.0..=10.0).contains(&load_factor) {
        errors.push("settings.load_factor", "must be between 0 and 10");
    }
    let explore_share = raw.explore_share.unwrap_or(Settings::DEFAULT_EXPLORE_SHARE);
    if !(0.0..=0.5).contains(&explore_share) {
        errors.push("settings.explore_share", "must be between 0 and 0.5");
    }
    let status_path = match raw.status_path {
        None => Some(Settings::DEFAULT_STATUS_PATH.to_string()),
        Some(p) if p.is_empty() => None,
        Some(p) => {
            if !p.starts_with('/') || p.contains('?') {
                errors.push(
                    "settings.status_path",
                    format!("{p:?} must be a path starting with '/' (or \"\" to disable the status endpoint)"),
                );
            }
            Some(p)
        }
    };
    let max_concurrent_failovers = match raw.max_concurrent_failovers {
        None => Settings::DEFAULT_MAX_CONCURRENT_FAILOVERS,
        Some(n) => match u32::try_from(n) {
            Ok(n) if (1..=Settings::MAX_CONCURRENT_FAILOVERS_LIMIT).contains(&n) => n,
            _ => {
                errors.push(
                    "settings.max_concurrent_failovers",
                    format!(
                        "{n} must be between 1 and {}: failovers beyond it at one instant get the failing model's error instead of the next model",
                        Settings::MAX_CONCURRENT_FAILOVERS_LIMIT
                    ),
                );
                Settings::DEFAULT_MAX_CONCURRENT_FAILOVERS
            }
        },
    };
    Settings {
        max_concurrent_failovers,
        stats_half_life_ms,
        load_factor,
        explore_share,
        status_path,
        cooldown_base_ms,
        cooldown_max_ms,
        attempt_timeout_ms,
        stream_idle_timeout_ms,
        non_stream_attempt_timeout_ms,
        max_body_bytes,
        routed_paths,
        passthrough_model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_settings(settings: &str) -> Result<RouterConfig, ConfigErrors> {
        RouterConfig::from_json(
            format!(
                r#"{{"models":[{{"name":"a","endpoint":"http://h"}}],"settings":{{{settings}}}}}"#
            )
            .as_bytes(),
        )
    }

    #[test]
    fn max_concurrent_failovers_is_bounded_and_defaults_to_a_generous_ceiling() {
        let accepted = [
            ("", Settings::DEFAULT_MAX_CONCURRENT_FAILOVERS),
            (r#""max_concurrent_failovers": 1"#, 1),
            (r#""max_concurrent_failovers": 1000000"#, 1_000_000),
        ];
        for (settings, want) in accepted {
            let c = with_settings(settings).unwrap();
            assert_eq!(c.settings.max_concurrent_failovers, want, "{settings}");
        }
        for bad in ["0", "1000001", "4294967296"] {
            let errors =
                with_settings(&format!(r#""max_concurrent_failovers": {bad}"#)).expect_err(bad);
            assert_eq!(errors.0.len(), 1, "{bad}: {errors}");
            assert_eq!(errors.0[0].field, "settings.max_concurrent_failovers");
            assert!(
                errors.0[0].message.contains("between 1 and 1000000"),
                "{errors}"
            );
        }
        // Not a whole number: refused by the JSON schema itself.
        for bad in ["-1", "2.5", "\"10\""] {
            assert!(
                with_settings(&format!(r#""max_concurrent_failovers": {bad}"#)).is_err(),
                "{bad}"
            );
        }
    }
}
