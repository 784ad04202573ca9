//! Runtime configuration, request statistics and the state shared by all
//! connection threads.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::http::Head;

/// Locks a mutex, recovering the data if a panicking thread poisoned it, so
/// one bad connection can never take the whole server down.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the simulated backend misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    None,
    TooManyRequests,
    Unavailable,
    Internal,
    Refuse,
    Reset,
    Hang,
    CloseMidStream,
    StallMidStream,
}

impl FailMode {
    pub const NAMES: &'static [&'static str] = &[
        "none",
        "429",
        "503",
        "500",
        "refuse",
        "reset",
        "hang",
        "close-mid-stream",
        "stall-mid-stream",
    ];

    pub fn parse(s: &str) -> Option<FailMode> {
        Some(match s {
            "none" => FailMode::None,
            "429" => FailMode::TooManyRequests,
            "503" => FailMode::Unavailable,
            "500" => FailMode::Internal,
            "refuse" => FailMode::Refuse,
            "reset" => FailMode::Reset,
            "hang" => FailMode::Hang,
            "close-mid-stream" => FailMode::CloseMidStream,
            "stall-mid-stream" => FailMode::StallMidStream,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailMode::None => "none",
            FailMode::TooManyRequests => "429",
            FailMode::Unavailable => "503",
            FailMode::Internal => "500",
            FailMode::Refuse => "refuse",
            FailMode::Reset => "reset",
            FailMode::Hang => "hang",
            FailMode::CloseMidStream => "close-mid-stream",
            FailMode::StallMidStream => "stall-mid-stream",
        }
    }

    fn from_json(v: &Value) -> Result<FailMode, String> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        FailMode::parse(&text).ok_or_else(|| {
            format!(
                "fail must be one of {}; got {v}",
                FailMode::NAMES.join(", ")
            )
        })
    }
}

impl Serialize for FailMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Everything that can be changed at runtime through `POST /sim/config`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub model: String,
    pub ttft_ms: u64,
    pub tokens_per_sec: f64,
    pub output_tokens: u64,
    pub fail: FailMode,
    pub retry_after: u64,
    pub fail_after_events: u64,
    pub concurrency_slowdown: f64,
    /// Spread of each request's TTFT: multiplied by `exp(jitter × z)`, z standard normal
    /// (so `ttft_ms` is the median). 0 keeps TTFT exact.
    pub ttft_jitter: f64,
    /// Prefill time added to TTFT per KiB of request body.
    pub prefill_ms_per_kib: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: "sim".to_string(),
            ttft_ms: 50,
            tokens_per_sec: 200.0,
            output_tokens: 16,
            fail: FailMode::None,
            retry_after: 1,
            fail_after_events: 3,
            concurrency_slowdown: 0.0,
            ttft_jitter: 0.0,
            prefill_ms_per_kib: 0.0,
        }
    }
}

pub const FIELDS: &[&str] = &[
    "model",
    "ttft_ms",
    "tokens_per_sec",
    "output_tokens",
    "fail",
    "retry_after",
    "fail_after_events",
    "concurrency_slowdown",
    "ttft_jitter",
    "prefill_ms_per_kib",
];

fn int_in(v: &Value, name: &str, max: u64) -> Result<u64, String> {
    let n = match v.as_u64() {
        Some(n) => Some(n),
        None => v
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f <= max as f64)
            .map(|f| f as u64),
    };
    match n {
        Some(n) if n <= max => Ok(n),
        _ => Err(format!(
            "{name} must be an integer from 0 to {max}; got {v}"
        )),
    }
}

fn float_in(v: &Value, name: &str, min_exclusive: bool, max: f64) -> Result<f64, String> {
    let ok = |f: f64| f.is_finite() && f <= max && if min_exclusive { f > 0.0 } else { f >= 0.0 };
    match v.as_f64() {
        Some(f) if ok(f) => Ok(f),
        _ => {
            let lower = if min_exclusive { "> 0" } else { ">= 0" };
            Err(format!(
                "{name} must be a number {lower} and <= {max}; got {v}"
            ))
        }
    }
}

impl Config {
    /// Sets one field from a JSON value, validating it.
    pub fn set_field(&mut self, name: &str, v: &Value) -> Result<(), String> {
        match name {
            "model" => match v.as_str() {
                Some(s) if !s.is_empty() && s.len() <= 256 && !s.contains(['\r', '\n']) => {
                    self.model = s.to_string()
                }
                _ => {
                    return Err(format!(
                        "model must be a non-empty one-line string; got {v}"
                    ))
                }
            },
            "ttft_ms" => self.ttft_ms = int_in(v, name, 600_000)?,
            "tokens_per_sec" => self.tokens_per_sec = float_in(v, name, true, 1_000_000.0)?,
            "output_tokens" => self.output_tokens = int_in(v, name, 100_000)?,
            "fail" => self.fail = FailMode::from_json(v)?,
            "retry_after" => self.retry_after = int_in(v, name, 86_400)?,
            "fail_after_events" => self.fail_after_events = int_in(v, name, 1_000_000)?,
            "concurrency_slowdown" => {
                self.concurrency_slowdown = float_in(v, name, false, 1_000.0)?
            }
            "ttft_jitter" => self.ttft_jitter = float_in(v, name, false, 3.0)?,
            "prefill_ms_per_kib" => self.prefill_ms_per_kib = float_in(v, name, false, 60_000.0)?,
            _ => {
                return Err(format!(
                    "unknown field '{name}'; known fields: {}",
                    FIELDS.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// A copy with every field of the JSON object `patch` applied, or the
    /// first validation error (in which case nothing should change).
    pub fn with_patch(&self, patch: &Value) -> Result<Config, String> {
        let obj = patch
            .as_object()
            .ok_or_else(|| "config patch must be a JSON object".to_string())?;
        let mut next = self.clone();
        for (k, v) in obj {
            next.set_field(k, v)?;
        }
        Ok(next)
    }

    /// Queueing slowdown with `in_flight` requests: 1 + F*(k-1).
    pub fn slowdown_factor(&self, in_flight: u64) -> f64 {
        1.0 + self.concurrency_slowdown * in_flight.saturating_sub(1) as f64
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LastRequest {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: u64,
    pub by_model: BTreeMap<String, u64>,
    pub last_request: Option<LastRequest>,
}

/// Whether the main listening socket should be open, and whether it is.
#[derive(Debug)]
pub struct Gate {
    pub want_open: bool,
    pub is_open: bool,
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub struct Shared {
    pub config: Mutex<Config>,
    pub stats: Mutex<Stats>,
    pub in_flight: AtomicU64,
    /// The address the main listener is bound to (port resolved).
    pub listen_addr: SocketAddr,
    pub gate: Mutex<Gate>,
    pub gate_cv: Condvar,
    /// Clones of open main-port connections, so `refuse` can close them.
    pub conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn_id: AtomicU64,
    next_response_id: AtomicU64,
    next_draw: AtomicU64,
}

impl Shared {
    pub fn new(config: Config, listen_addr: SocketAddr) -> Shared {
        let want_open = config.fail != FailMode::Refuse;
        Shared {
            config: Mutex::new(config),
            stats: Mutex::new(Stats::default()),
            in_flight: AtomicU64::new(0),
            listen_addr,
            gate: Mutex::new(Gate {
                want_open,
                is_open: true,
            }),
            gate_cv: Condvar::new(),
            conns: Mutex::new(HashMap::new()),
            next_conn_id: AtomicU64::new(1),
            next_response_id: AtomicU64::new(1),
            next_draw: AtomicU64::new(0),
        }
    }

    /// A standard normal draw; the sequence is the same in every run (fixed seed).
    pub fn standard_normal(&self) -> f64 {
        let n = self.next_draw.fetch_add(1, Ordering::Relaxed);
        let uniform = |x: u64| ((splitmix64(x) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let (u1, u2) = (uniform(2 * n), uniform(2 * n + 1));
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn config(&self) -> Config {
        lock(&self.config).clone()
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn next_response_id(&self) -> u64 {
        self.next_response_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Counts a fully read `/v1/*` request.
    pub fn record_request(&self, head: &Head, body: &[u8], parsed: Option<&Value>) {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &head.headers {
            headers
                .entry(name.clone())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(value)
                })
                .or_insert_with(|| value.clone());
        }
        let model = parsed
            .and_then(|v| v.get("model"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut stats = lock(&self.stats);
        stats.requests += 1;
        if let Some(m) = model {
            *stats.by_model.entry(m).or_insert(0) += 1;
        }
        stats.last_request = Some(LastRequest {
            path: head.path().to_string(),
            headers,
            body: String::from_utf8_lossy(body).into_owned(),
        });
    }

    pub fn stats_json(&self) -> Value {
        let stats = lock(&self.stats);
        json!({
            "requests": stats.requests,
            "by_model": stats.by_model,
            "in_flight": self.in_flight(),
            "last_request": stats.last_request,
        })
    }

    pub fn reset_stats(&self) {
        *lock(&self.stats) = Stats::default();
    }
}

/// Counts a request as in flight for as long as it lives.
pub struct InFlight<'a> {
    shared: &'a Shared,
    /// Requests in flight right after this one entered.
    pub level: u64,
}

impl<'a> InFlight<'a> {
    pub fn enter(shared: &'a Shared) -> Self {
        let level = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        InFlight { shared, level }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn patch_updates_only_named_fields() {
        let base = Config::default();
        let next = base
            .with_patch(&json!({"fail": "429", "ttft_ms": 5, "tokens_per_sec": 12.5}))
            .unwrap();
        assert_eq!(next.fail, FailMode::TooManyRequests);
        assert_eq!(next.ttft_ms, 5);
        assert_eq!(next.tokens_per_sec, 12.5);
        assert_eq!(next.model, base.model);
        assert_eq!(next.output_tokens, base.output_tokens);
    }

    #[test]
    fn patch_accepts_numeric_fail_codes() {
        let next = Config::default().with_patch(&json!({"fail": 503})).unwrap();
        assert_eq!(next.fail, FailMode::Unavailable);
    }

    #[test]
    fn patch_rejects_unknown_fields_and_bad_values() {
        let base = Config::default();
        for bad in [
            json!({"nope": 1}),
            json!({"fail": "explode"}),
            json!({"ttft_ms": -1}),
            json!({"ttft_ms": 1.5}),
            json!({"ttft_ms": "10"}),
            json!({"tokens_per_sec": 0}),
            json!({"concurrency_slowdown": -0.1}),
            json!({"ttft_jitter": 3.5}),
            json!({"model": ""}),
            json!({"output_tokens": 100_001}),
            json!([1, 2]),
        ] {
            assert!(base.with_patch(&bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn failed_patch_is_all_or_nothing() {
        let base = Config::default();
        assert!(base
            .with_patch(&json!({"ttft_ms": 1, "bogus": true}))
            .is_err());
        assert_eq!(base, Config::default());
    }

    #[test]
    fn config_serializes_with_the_documented_field_names() {
        let v = serde_json::to_value(Config::default()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = FIELDS.to_vec();
        expected.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, expected);
        assert_eq!(v["fail"], "none");
    }

    #[test]
    fn normal_draws_have_mean_zero_and_unit_spread() {
        let shared = Shared::new(Config::default(), "127.0.0.1:1".parse().unwrap());
        let draws: Vec<f64> = (0..20_000).map(|_| shared.standard_normal()).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
        assert!(draws.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn slowdown_grows_linearly_with_extra_requests() {
        let cfg = Config {
            concurrency_slowdown: 0.5,
            ..Config::default()
        };
        assert_eq!(cfg.slowdown_factor(0), 1.0);
        assert_eq!(cfg.slowdown_factor(1), 1.0);
        assert_eq!(cfg.slowdown_factor(3), 2.0);
    }

    #[test]
    fn every_fail_mode_name_round_trips() {
        for name in FailMode::NAMES {
            assert_eq!(FailMode::parse(name).unwrap().as_str(), *name);
        }
    }
}
