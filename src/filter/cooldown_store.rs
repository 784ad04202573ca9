//! Cooldown state in shared data, visible to every worker; updated with compare-and-swap.

use super::host::{self, CasOutcome};
use crate::cooldown::CooldownState;
use crate::prepared::Prepared;

/// Conflicts are rare (two workers failing the same model at once); give up after a few.
const MAX_CAS_TRIES: usize = 4;

pub fn read(key: &str) -> CooldownState {
    match host::shared_data(key) {
        Ok((Some(bytes), _)) => CooldownState::decode(&bytes),
        _ => CooldownState::default(),
    }
}

fn update(key: &str, change: impl Fn(&CooldownState) -> Option<CooldownState>) {
    for _ in 0..MAX_CAS_TRIES {
        let Ok((bytes, cas)) = host::shared_data(key) else {
            return;
        };
        let current = bytes.map_or_else(CooldownState::default, |b| CooldownState::decode(&b));
        let Some(next) = change(&current) else {
            return;
        };
        match host::set_shared_data(key, &next.encode(), cas) {
            Ok(CasOutcome::Written) | Err(_) => return,
            Ok(CasOutcome::Conflict) => continue,
        }
    }
}

pub fn record_failure(prepared: &Prepared, model: usize, retry_after_ms: Option<u64>) {
    let Some(m) = prepared.model(model) else {
        return;
    };
    let now = host::now_ms();
    let policy = prepared.cooldown_policy;
    update(&m.cooldown_key, |s| {
        Some(s.after_failure(now, retry_after_ms, policy))
    });
}

pub fn record_success(prepared: &Prepared, model: usize) {
    let Some(m) = prepared.model(model) else {
        return;
    };
    update(&m.cooldown_key, CooldownState::after_success);
}
