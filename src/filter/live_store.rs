//! Live data in shared data, visible to every worker: cooldowns, performance stats and
//! in-flight counts per model. Reads are plain; writes are compare-and-swap with a few retries.

use super::host::{self, CasOutcome};
use crate::config::ModelId;
use crate::cooldown::CooldownState;
use crate::measure::Record;
use crate::prepared::{Prepared, PreparedModel};
use crate::resolve::LiveData;
use crate::stats::{InFlight, ModelStats, StatsView};

/// Conflicts are rare (two workers updating the same model at once); give up after a few.
const MAX_CAS_TRIES: usize = 4;

fn read<T>(key: &str, decode: impl Fn(&[u8]) -> T, default: T) -> T {
    match host::shared_data(key) {
        Ok((Some(bytes), _)) => decode(&bytes),
        _ => default,
    }
}

/// Applies `change` to the stored value and returns what was written; `None` from `change`
/// means "nothing to write".
fn update<T, const N: usize>(
    key: &str,
    decode: impl Fn(&[u8]) -> T,
    encode: impl Fn(&T) -> [u8; N],
    default: impl Fn() -> T,
    change: impl Fn(&T) -> Option<T>,
) -> Option<T> {
    for _ in 0..MAX_CAS_TRIES {
        let (bytes, cas) = host::shared_data(key).ok()?;
        let current = bytes.map_or_else(&default, |b| decode(&b));
        let next = change(&current)?;
        match host::set_shared_data(key, &encode(&next), cas) {
            Ok(CasOutcome::Written) => return Some(next),
            Err(_) => return None,
            Ok(CasOutcome::Conflict) => continue,
        }
    }
    None
}

fn update_cooldown(m: &PreparedModel, change: impl Fn(&CooldownState) -> Option<CooldownState>) {
    let _ = update(
        &m.cooldown_key,
        CooldownState::decode,
        CooldownState::encode,
        CooldownState::default,
        change,
    );
}

fn update_stats(m: &PreparedModel, change: impl Fn(&mut ModelStats)) -> Option<ModelStats> {
    update(
        &m.stats_key,
        ModelStats::decode,
        ModelStats::encode,
        ModelStats::default,
        |s| {
            let mut next = *s;
            change(&mut next);
            Some(next)
        },
    )
}

/// Carries out what the attempt meter decided about `model`; returns the model's stats
/// when they changed.
pub fn record(
    prepared: &Prepared,
    model: ModelId,
    record: &Record,
    others: u32,
    prompt_kib: f64,
    now_ms: u64,
) -> Option<StatsView> {
    let m = prepared.model(model)?;
    let policy = prepared.stats_policy;
    let updated = match *record {
        Record::FirstToken { ttft_ms } => update_stats(m, |s| {
            s.record_ttft(ttft_ms, others, prompt_kib, now_ms, policy)
        }),
        Record::Completed { tokens_per_sec, ok } => {
            update_cooldown(m, CooldownState::after_success);
            update_stats(m, |s| {
                if let Some(tps) = tokens_per_sec {
                    s.record_tokens_per_sec(tps, others, now_ms, policy);
                }
                s.record_outcome(ok, now_ms, policy);
            })
        }
        Record::Failed {
            elapsed_ms,
            had_first_token,
            retry_after_ms,
        } => {
            let cooldown = prepared.cooldown_policy;
            update_cooldown(m, |c| {
                Some(c.after_failure(now_ms, retry_after_ms, cooldown))
            });
            update_stats(m, |s| {
                if !had_first_token {
                    s.record_censored_ttft(elapsed_ms, others, prompt_kib, now_ms, policy);
                }
                s.record_outcome(false, now_ms, policy);
            })
        }
    };
    updated.map(|s| s.view(now_ms, policy))
}

/// Returns the model's requests in flight after the change.
pub fn in_flight_changed(prepared: &Prepared, model: ModelId, started: bool, now_ms: u64) -> u32 {
    let Some(m) = prepared.model(model) else {
        return 0;
    };
    update(
        &m.in_flight_key,
        InFlight::decode,
        InFlight::encode,
        InFlight::default,
        |f| {
            Some(if started {
                f.started(now_ms)
            } else {
                f.finished(now_ms)
            })
        },
    )
    .map_or(0, |f| f.effective(now_ms))
}

/// Reads shared data for the routing decision, at one instant.
pub struct SharedLive<'a> {
    pub prepared: &'a Prepared,
    pub now_ms: u64,
}

impl LiveData for SharedLive<'_> {
    fn cooldown(&mut self, model: ModelId) -> CooldownState {
        self.prepared
            .model(model)
            .map_or_else(CooldownState::default, |m| {
                read(
                    &m.cooldown_key,
                    CooldownState::decode,
                    CooldownState::default(),
                )
            })
    }

    fn stats(&mut self, model: ModelId) -> StatsView {
        self.prepared
            .model(model)
            .map_or_else(StatsView::default, |m| {
                read(&m.stats_key, ModelStats::decode, ModelStats::default())
                    .view(self.now_ms, self.prepared.stats_policy)
            })
    }

    fn in_flight(&mut self, model: ModelId) -> u32 {
        self.prepared.model(model).map_or(0, |m| {
            read(&m.in_flight_key, InFlight::decode, InFlight::default()).effective(self.now_ms)
        })
    }

    /// Compare-and-swap on the model's cooldown value: of all workers that find the lease
    /// free at once, exactly one writes it. A conflict or host error means "not yours", so
    /// the request skips the model like a cooling one.
    fn take_probe_lease(&mut self, model: ModelId, now_ms: u64, lease_ms: u64) -> bool {
        self.prepared.model(model).is_some_and(|m| {
            update(
                &m.cooldown_key,
                CooldownState::decode,
                CooldownState::encode,
                CooldownState::default,
                |c| c.with_probe_lease(now_ms, lease_ms),
            )
            .is_some()
        })
    }
}
