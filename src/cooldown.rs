//! Cooldown of failing models, kept per model in shared data so every worker skips them.
//!
//! A failure (429, 5xx, refused, reset, timed out) cools a model down for a time that doubles
//! with each consecutive failure up to a cap, and never less than the upstream's
//! `Retry-After`. One success ends it. New requests skip cooling models when they choose
//! the first model; failover can still reach them, so no request fails untried.
//!
//! When a cooldown runs out the model is **half-open**: it has failed and not yet succeeded
//! since. Only one request at a time may probe it, the one that takes the probe lease;
//! everyone else keeps skipping it until the probe succeeds (healthy again), fails (a longer
//! cooldown) or its lease runs out (the probe never reported, e.g. its client left). So a
//! recovered model gets its traffic back after one good answer, and a still-broken one costs
//! one attempt per cooldown instead of one per request that arrived in the meantime.

/// What shared data holds for one model. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CooldownState {
    pub until_ms: u64,
    pub consecutive_failures: u32,
    /// While `now < probe_until_ms`, a probe of this half-open model is outstanding.
    pub probe_until_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownPolicy {
    pub base_ms: u64,
    pub max_ms: u64,
}

/// How a new request may use a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// No failure since its last success: any request may go there.
    Healthy,
    /// Failed recently; skipped until `until_ms`.
    Cooling,
    /// Cooldown over, no probe outstanding: the request that takes the lease probes it.
    Probe,
    /// Cooldown over, another request's probe is outstanding: skipped like a cooling model.
    Probing,
}

/// Length of the value; values written before probe leases existed are 12 bytes long.
pub const ENCODED_LEN: usize = 20;
const LEGACY_LEN: usize = 12;

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes.get(at..at + 8)?);
    Some(u64::from_le_bytes(b))
}

impl CooldownState {
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        out[..8].copy_from_slice(&self.until_ms.to_le_bytes());
        out[8..12].copy_from_slice(&self.consecutive_failures.to_le_bytes());
        out[12..].copy_from_slice(&self.probe_until_ms.to_le_bytes());
        out
    }

    /// Unknown or damaged values read as "healthy": a bad key must not block a model.
    pub fn decode(bytes: &[u8]) -> Self {
        if bytes.len() != ENCODED_LEN && bytes.len() != LEGACY_LEN {
            return Self::default();
        }
        let (Some(until), Some(failures)) = (u64_at(bytes, 0), bytes.get(8..12)) else {
            return Self::default();
        };
        let mut f = [0u8; 4];
        f.copy_from_slice(failures);
        CooldownState {
            until_ms: until,
            consecutive_failures: u32::from_le_bytes(f),
            probe_until_ms: u64_at(bytes, 12).unwrap_or(0),
        }
    }

    pub fn is_cooling(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }

    pub fn availability(&self, now_ms: u64) -> Availability {
        if self.is_cooling(now_ms) {
            Availability::Cooling
        } else if self.consecutive_failures == 0 {
            Availability::Healthy
        } else if now_ms < self.probe_until_ms {
            Availability::Probing
        } else {
            Availability::Probe
        }
    }

    /// The state with this request's probe lease taken, or `None` when the model is not
    /// waiting for a probe (healthy, cooling, or someone else's probe is outstanding).
    pub fn with_probe_lease(&self, now_ms: u64, lease_ms: u64) -> Option<Self> {
        (self.availability(now_ms) == Availability::Probe).then(|| CooldownState {
            probe_until_ms: now_ms.saturating_add(lease_ms.max(1)),
            ..*self
        })
    }

    /// A failure also ends any probe: the model cools down again, longer.
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
            probe_until_ms: 0,
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
            probe_until_ms: 0,
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
            probe_until_ms: 1_700_000_000_456,
        };
        assert_eq!(CooldownState::decode(&s.encode()), s);
        assert_eq!(CooldownState::decode(b"short"), CooldownState::default());
        assert_eq!(
            CooldownState::decode(&[1u8; ENCODED_LEN + 1]),
            CooldownState::default()
        );
        // A value written before probe leases existed keeps its cooldown, with no lease.
        let legacy = &s.encode()[..LEGACY_LEN];
        assert_eq!(
            CooldownState::decode(legacy),
            CooldownState {
                probe_until_ms: 0,
                ..s
            }
        );
    }

    #[test]
    fn availability_by_state_and_time() {
        let state = |until_ms, consecutive_failures, probe_until_ms| CooldownState {
            until_ms,
            consecutive_failures,
            probe_until_ms,
        };
        let cases = [
            (CooldownState::default(), 0, Availability::Healthy),
            (state(2000, 1, 0), 1999, Availability::Cooling),
            (state(2000, 1, 0), 2000, Availability::Probe),
            (state(2000, 3, 2500), 2400, Availability::Probing),
            (state(2000, 3, 2500), 2500, Availability::Probe),
            // A cooldown that ran out on a model with no failures (cleared count) is healthy.
            (state(2000, 0, 0), 2000, Availability::Healthy),
        ];
        for (s, now, want) in cases {
            assert_eq!(s.availability(now), want, "{s:?} at {now}");
        }
    }

    #[test]
    fn one_probe_lease_at_a_time_until_it_ends() {
        let expired = CooldownState::default().after_failure(0, None, POLICY);
        let now = expired.until_ms;
        assert_eq!(
            CooldownState::default().with_probe_lease(now, 500),
            None,
            "healthy: no probe needed"
        );
        assert_eq!(
            expired.with_probe_lease(now - 1, 500),
            None,
            "still cooling"
        );
        let leased = expired.with_probe_lease(now, 500).unwrap();
        assert_eq!(leased.probe_until_ms, now + 500);
        assert_eq!(leased.with_probe_lease(now + 499, 500), None, "taken");
        // A lease whose probe never reported lets the next request probe.
        assert!(leased.with_probe_lease(now + 500, 500).is_some());
        // The probe's outcome ends the lease either way.
        let failed = leased.after_failure(now + 10, None, POLICY);
        assert_eq!((failed.probe_until_ms, failed.consecutive_failures), (0, 2));
        assert_eq!(failed.availability(now + 10), Availability::Cooling);
        assert_eq!(leased.after_success(), Some(CooldownState::default()));
    }

    #[test]
    fn retry_after_parses_seconds() {
        assert_eq!(parse_retry_after_ms("3"), Some(3000));
        assert_eq!(parse_retry_after_ms(" 0 "), Some(0));
        assert_eq!(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
