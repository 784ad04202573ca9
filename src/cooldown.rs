//! Cooldown of failing models, kept per model in shared data so every worker skips them.
//!
//! A failure (429, 5xx, refused, reset, timed out) cools a model down for a time that doubles
//! with each consecutive failure up to a cap, and never less than the upstream's
//! `Retry-After`. One success ends it. New requests skip cooling models when they choose
//! the first model; failover can still reach them, so no request fails untried.

/// What shared data holds for one model. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CooldownState {
    pub until_ms: u64,
    pub consecutive_failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownPolicy {
    pub base_ms: u64,
    pub max_ms: u64,
}

pub const ENCODED_LEN: usize = 12;

impl CooldownState {
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        out[..8].copy_from_slice(&self.until_ms.to_le_bytes());
        out[8..].copy_from_slice(&self.consecutive_failures.to_le_bytes());
        out
    }

    /// Unknown or damaged values read as "healthy": a bad key must not block a model.
    pub fn decode(bytes: &[u8]) -> Self {
        let (Some(until), Some(failures)) = (bytes.get(..8), bytes.get(8..ENCODED_LEN)) else {
            return Self::default();
        };
        let mut u = [0u8; 8];
        u.copy_from_slice(until);
        let mut f = [0u8; 4];
        f.copy_from_slice(failures);
        CooldownState {
            until_ms: u64::from_le_bytes(u),
            consecutive_failures: u32::from_le_bytes(f),
        }
    }

    pub fn is_cooling(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }

    pub fn after_failure(
        &self,
        now_ms: u64,
        retry_after_ms: Option<u64>,
        policy: CooldownPolicy,
    ) -> Self {
        let failures = self.consecutive_failures.saturating_add(1);
        let doublings = failures.saturating_sub(1).min(32);
        let backoff = policy
            .base_ms
            .saturating_mul(1u64 << doublings)
            .min(policy.max_ms);
        let wait = retry_after_ms.map_or(backoff, |r| backoff.max(r.min(policy.max_ms)));
        CooldownState {
            until_ms: self.until_ms.max(now_ms.saturating_add(wait)),
            consecutive_failures: failures,
        }
    }

    /// `None` when there is nothing to clear, so a healthy model costs no write.
    pub fn after_success(&self) -> Option<Self> {
        (*self != Self::default()).then(Self::default)
    }
}

/// Parses `Retry-After` as delay-seconds (HTTP dates are rare from model servers and ignored).
pub fn parse_retry_after_ms(value: &str) -> Option<u64> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| s.saturating_mul(1000))
}

/// Position in `members` of the first model not cooling down; the first when all are.
pub fn first_available(
    members: &[usize],
    mut state_of: impl FnMut(usize) -> CooldownState,
    now_ms: u64,
) -> usize {
    members
        .iter()
        .position(|&m| !state_of(m).is_cooling(now_ms))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: CooldownPolicy = CooldownPolicy {
        base_ms: 1000,
        max_ms: 8000,
    };

    #[test]
    fn cooldown_doubles_with_consecutive_failures_up_to_the_cap() {
        let mut s = CooldownState::default();
        let mut waits = Vec::new();
        for _ in 0..6 {
            s = s.after_failure(10_000, None, POLICY);
            waits.push(s.until_ms - 10_000);
        }
        assert_eq!(waits, [1000, 2000, 4000, 8000, 8000, 8000]);
    }

    #[test]
    fn retry_after_lengthens_but_is_capped() {
        let s = CooldownState::default();
        let cases = [
            (None, 1000),
            (Some(500), 1000),
            (Some(5000), 5000),
            (Some(60_000), 8000),
        ];
        for (retry_after, wait) in cases {
            assert_eq!(
                s.after_failure(0, retry_after, POLICY).until_ms,
                wait,
                "{retry_after:?}"
            );
        }
    }

    #[test]
    fn a_failure_never_shortens_a_running_cooldown() {
        let s = CooldownState {
            until_ms: 50_000,
            consecutive_failures: 1,
        };
        assert_eq!(s.after_failure(10_000, None, POLICY).until_ms, 50_000);
    }

    #[test]
    fn success_clears_and_costs_no_write_when_healthy() {
        assert_eq!(CooldownState::default().after_success(), None);
        let cooling = CooldownState::default().after_failure(0, None, POLICY);
        assert_eq!(cooling.after_success(), Some(CooldownState::default()));
    }

    #[test]
    fn encoding_round_trips_and_damage_reads_healthy() {
        let s = CooldownState {
            until_ms: 1_700_000_000_123,
            consecutive_failures: 7,
        };
        assert_eq!(CooldownState::decode(&s.encode()), s);
        assert_eq!(CooldownState::decode(b"short"), CooldownState::default());
    }

    #[test]
    fn failover_skips_model_in_cooldown() {
        let cooling = CooldownState {
            until_ms: 2000,
            consecutive_failures: 1,
        };
        let cases: &[(&[usize], &[usize], usize)] = &[
            (&[0, 1, 2], &[], 0),
            (&[0, 1, 2], &[0], 1),
            (&[0, 1, 2], &[0, 1], 2),
            (&[2, 0, 1], &[2], 1),
            (&[0, 1, 2], &[0, 1, 2], 0), // all cooling: still tried, in pool order
        ];
        for (members, cooling_models, want) in cases {
            let got = first_available(
                members,
                |m| {
                    if cooling_models.contains(&m) {
                        cooling
                    } else {
                        CooldownState::default()
                    }
                },
                1000,
            );
            assert_eq!(got, *want, "members {members:?} cooling {cooling_models:?}");
        }
        // Once the cooldown has passed, the model is first again.
        assert_eq!(first_available(&[0, 1], |_| cooling, 2000), 0);
    }

    #[test]
    fn retry_after_parses_seconds() {
        assert_eq!(parse_retry_after_ms("3"), Some(3000));
        assert_eq!(parse_retry_after_ms(" 0 "), Some(0));
        assert_eq!(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
