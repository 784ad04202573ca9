//! Live per-model performance, kept per model in shared data and updated by compare-and-swap.
//!
//! Each series (time to first token, output tokens per second, error rate) is a mean whose
//! evidence fades with elapsed time, not with the number of samples: at every update the old
//! weight is multiplied by `2^(-elapsed / half_life)` and the new sample adds a weight of 1.
//! So a model idle for a few half-lives keeps its last numbers but with little weight, and a
//! fresh sample then mostly replaces them; under steady traffic the mean covers about the
//! last half-life of samples. The weight tells callers how much recent evidence there is.
//!
//! Also here: the in-flight request counter per model, for load-aware ranking.

/// Time is milliseconds since the Unix epoch throughout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecayPolicy {
    pub half_life_ms: u64,
}

pub const DEFAULT_HALF_LIFE_MS: u64 = 30_000;

impl DecayPolicy {
    pub const DEFAULT: DecayPolicy = DecayPolicy {
        half_life_ms: DEFAULT_HALF_LIFE_MS,
    };

    /// The factor old weight keeps after `elapsed_ms`.
    pub fn factor(self, elapsed_ms: u64) -> f64 {
        if elapsed_ms == 0 {
            1.0
        } else if self.half_life_ms == 0 {
            0.0
        } else {
            (-(elapsed_ms as f64) / self.half_life_ms as f64).exp2()
        }
    }
}

impl Default for DecayPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An attempt that ended without a first token after `t` ms only says "TTFT > t". It is
/// recorded as `max(t, mean) * CENSORED_PENALTY`, so it always pulls the mean up: a model
/// that breaks early must not look fast because it broke early.
pub const CENSORED_PENALTY: f64 = 1.5;

/// What shared data holds for one model. Floats are `f32` so a record stays small; the
/// arithmetic is done in `f64`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelStats {
    /// Time of the last update of any series; the weights below are as of this time.
    pub updated_ms: u64,
    /// Samples recorded of any kind, never decayed.
    pub samples: u64,
    pub ttft_ms: f32,
    pub ttft_weight: f32,
    pub tokens_per_sec: f32,
    pub tps_weight: f32,
    /// Share of failed attempts, 0..=1.
    pub error_rate: f32,
    pub error_weight: f32,
}

/// The stats as of a given time, for ranking.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatsView {
    /// `None` until measured.
    pub ttft_ms: Option<f64>,
    pub tokens_per_sec: Option<f64>,
    /// 0 while nothing is known.
    pub error_rate: f64,
    /// Evidence behind the means, decayed to the time of the view.
    pub weight_ttft: f64,
    pub weight_tps: f64,
    /// Time since the last update; `None` if never updated.
    pub age_ms: Option<u64>,
    pub samples: u64,
}

pub const ENCODED_LEN: usize = 41;
const VERSION: u8 = 1;

impl ModelStats {
    pub fn record_ttft(&mut self, ttft_ms: u64, now_ms: u64, policy: DecayPolicy) {
        self.advance(now_ms, policy);
        mix(&mut self.ttft_ms, &mut self.ttft_weight, ttft_ms as f64);
        self.count();
    }

    /// An attempt that failed or broke `at_least_ms` after it started, before any token.
    ///
    /// Without an earlier TTFT there is no mean to compare with, and a quick failure would
    /// become the model's only, flattering, TTFT; so it is then not recorded here (the
    /// failure still counts through [`Self::record_outcome`] and the cooldown).
    pub fn record_censored_ttft(&mut self, at_least_ms: u64, now_ms: u64, policy: DecayPolicy) {
        if self.ttft_weight <= 0.0 {
            return;
        }
        let value = (at_least_ms as f64).max(f64::from(self.ttft_ms)) * CENSORED_PENALTY;
        self.advance(now_ms, policy);
        mix(&mut self.ttft_ms, &mut self.ttft_weight, value);
        self.count();
    }

    /// Negative or non-finite rates are ignored.
    pub fn record_tokens_per_sec(&mut self, tps: f64, now_ms: u64, policy: DecayPolicy) {
        if !tps.is_finite() || tps < 0.0 {
            return;
        }
        self.advance(now_ms, policy);
        mix(&mut self.tokens_per_sec, &mut self.tps_weight, tps);
        self.count();
    }

    pub fn record_outcome(&mut self, ok: bool, now_ms: u64, policy: DecayPolicy) {
        self.advance(now_ms, policy);
        let x = if ok { 0.0 } else { 1.0 };
        mix(&mut self.error_rate, &mut self.error_weight, x);
        self.error_rate = self.error_rate.clamp(0.0, 1.0);
        self.count();
    }

    pub fn view(&self, now_ms: u64, policy: DecayPolicy) -> StatsView {
        let factor = policy.factor(now_ms.saturating_sub(self.updated_ms));
        let known = |mean: f32, weight: f32| (weight > 0.0).then_some(f64::from(mean));
        StatsView {
            ttft_ms: known(self.ttft_ms, self.ttft_weight),
            tokens_per_sec: known(self.tokens_per_sec, self.tps_weight),
            error_rate: known(self.error_rate, self.error_weight).unwrap_or(0.0),
            weight_ttft: f64::from(self.ttft_weight) * factor,
            weight_tps: f64::from(self.tps_weight) * factor,
            age_ms: (self.samples > 0).then(|| now_ms.saturating_sub(self.updated_ms)),
            samples: self.samples,
        }
    }

    /// Decays every weight to `now_ms`. A clock behind the record (another worker's slightly
    /// older `now`) decays nothing rather than growing the weights.
    fn advance(&mut self, now_ms: u64, policy: DecayPolicy) {
        let factor = policy.factor(now_ms.saturating_sub(self.updated_ms));
        for weight in [
            &mut self.ttft_weight,
            &mut self.tps_weight,
            &mut self.error_weight,
        ] {
            *weight = (f64::from(*weight) * factor) as f32;
        }
        self.updated_ms = self.updated_ms.max(now_ms);
    }

    fn count(&mut self) {
        self.samples = self.samples.saturating_add(1);
    }

    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        out[0] = VERSION;
        out[1..9].copy_from_slice(&self.updated_ms.to_le_bytes());
        out[9..17].copy_from_slice(&self.samples.to_le_bytes());
        let floats = [
            self.ttft_ms,
            self.ttft_weight,
            self.tokens_per_sec,
            self.tps_weight,
            self.error_rate,
            self.error_weight,
        ];
        for (slot, value) in out[17..].chunks_exact_mut(4).zip(floats) {
            slot.copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Short, damaged or other-version records read as "no data": a bad key must neither
    /// favour nor block a model.
    pub fn decode(bytes: &[u8]) -> Self {
        Self::try_decode(bytes).unwrap_or_default()
    }

    fn try_decode(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.get(..ENCODED_LEN)?;
        if bytes.first() != Some(&VERSION) {
            return None;
        }
        let u64_at = |at: usize| -> Option<u64> {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes.get(at..at + 8)?);
            Some(u64::from_le_bytes(b))
        };
        let f32_at = |i: usize| -> Option<f32> {
            let at = 17 + 4 * i;
            let mut b = [0u8; 4];
            b.copy_from_slice(bytes.get(at..at + 4)?);
            let v = f32::from_le_bytes(b);
            (v.is_finite() && v >= 0.0).then_some(v)
        };
        let stats = ModelStats {
            updated_ms: u64_at(1)?,
            samples: u64_at(9)?,
            ttft_ms: f32_at(0)?,
            ttft_weight: f32_at(1)?,
            tokens_per_sec: f32_at(2)?,
            tps_weight: f32_at(3)?,
            error_rate: f32_at(4)?,
            error_weight: f32_at(5)?,
        };
        (stats.error_rate <= 1.0).then_some(stats)
    }
}

/// Folds one sample of weight 1 into a mean whose weight is already decayed.
/// Evidence a mean may hold: under heavy traffic time decay alone would let thousands of
/// samples pile up and a sudden change (a model slowing down) would take the whole half-life
/// to show. Capped, each new sample moves the mean by at least 1/(MAX_WEIGHT + 1).
/// 4 rather than 8: in the routing bench (bench/results/routing.md) it followed a speed swap
/// sooner (throughput: 3.0-3.5 s instead of 6.4 s; latency 6.0-7.3 s instead of 8.4 s) with
/// the same mean TTFT and tokens/s.
pub const MAX_WEIGHT: f64 = 4.0;

fn mix(mean: &mut f32, weight: &mut f32, x: f64) {
    let w = f64::from(*weight).min(MAX_WEIGHT);
    *mean = ((f64::from(*mean) * w + x) / (w + 1.0)) as f32;
    *weight = (w + 1.0).min(MAX_WEIGHT) as f32;
}

/// A count untouched this long is read as 0: a VM that crashed mid-request never decrements.
pub const IN_FLIGHT_FORGET_MS: u64 = 10 * 60 * 1000;

pub const IN_FLIGHT_ENCODED_LEN: usize = 12;

/// Requests in flight to one model across all workers, as shared data holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InFlight {
    pub count: i32,
    pub last_change_ms: u64,
}

impl InFlight {
    pub fn encode(&self) -> [u8; IN_FLIGHT_ENCODED_LEN] {
        let mut out = [0u8; IN_FLIGHT_ENCODED_LEN];
        out[..4].copy_from_slice(&self.count.to_le_bytes());
        out[4..].copy_from_slice(&self.last_change_ms.to_le_bytes());
        out
    }

    /// Short or damaged values read as nothing in flight.
    pub fn decode(bytes: &[u8]) -> Self {
        let (Some(count), Some(at)) = (bytes.get(..4), bytes.get(4..IN_FLIGHT_ENCODED_LEN)) else {
            return Self::default();
        };
        let mut c = [0u8; 4];
        c.copy_from_slice(count);
        let mut t = [0u8; 8];
        t.copy_from_slice(at);
        InFlight {
            count: i32::from_le_bytes(c),
            last_change_ms: u64::from_le_bytes(t),
        }
    }

    pub fn effective(&self, now_ms: u64) -> u32 {
        effective_in_flight(self.count, self.last_change_ms, now_ms)
    }

    /// One more request. Counts from the effective value, so a leaked count is dropped
    /// rather than carried on.
    pub fn started(&self, now_ms: u64) -> Self {
        self.changed(1, now_ms)
    }

    /// One request fewer; never below 0.
    pub fn finished(&self, now_ms: u64) -> Self {
        self.changed(-1, now_ms)
    }

    fn changed(&self, delta: i32, now_ms: u64) -> Self {
        let base = i32::try_from(self.effective(now_ms)).unwrap_or(i32::MAX);
        InFlight {
            count: base.saturating_add(delta).max(0),
            last_change_ms: self.last_change_ms.max(now_ms),
        }
    }
}

pub fn effective_in_flight(count: i32, last_change_ms: u64, now_ms: u64) -> u32 {
    if now_ms.saturating_sub(last_change_ms) > IN_FLIGHT_FORGET_MS {
        return 0;
    }
    u32::try_from(count).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: DecayPolicy = DecayPolicy::DEFAULT;
    const T0: u64 = 1_700_000_000_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-3 * b.abs().max(1.0)
    }

    #[test]
    fn decay_halves_weight_after_each_half_life() {
        let mut s = ModelStats::default();
        s.record_ttft(200, T0, P);
        s.record_ttft(200, T0, P);
        s.record_tokens_per_sec(50.0, T0, P);
        let cases = [(0, 2.0, 1.0), (30_000, 1.0, 0.5), (60_000, 0.5, 0.25)];
        for (after, ttft_w, tps_w) in cases {
            let v = s.view(T0 + after, P);
            assert!(close(v.weight_ttft, ttft_w), "{after}: {v:?}");
            assert!(close(v.weight_tps, tps_w), "{after}: {v:?}");
            assert_eq!(v.ttft_ms, Some(200.0), "decay keeps the mean");
            assert_eq!(v.age_ms, Some(after));
        }
    }

    #[test]
    fn fresh_sample_dominates_stale_history() {
        let mut s = ModelStats::default();
        for i in 0..20 {
            s.record_ttft(1000, T0 + i, P);
        }
        // Just after, one fast sample moves twenty slow ones by its capped share...
        let mut recent = s;
        recent.record_ttft(100, T0 + 20, P);
        let moved = 1000.0 - recent.view(T0 + 20, P).ttft_ms.unwrap();
        assert!(close(moved, 900.0 / (MAX_WEIGHT + 1.0)), "{moved}");
        // ...but ten minutes later the old evidence has faded away.
        let mut later = s;
        later.record_ttft(100, T0 + 600_000, P);
        let v = later.view(T0 + 600_000, P);
        assert!(v.ttft_ms.unwrap() < 101.0, "{v:?}");
        assert!(close(v.weight_ttft, 1.0), "{v:?}");
    }

    #[test]
    fn a_sustained_change_shows_within_a_few_samples_under_heavy_traffic() {
        let mut s = ModelStats::default();
        for i in 0..1000 {
            s.record_ttft(100, T0 + i, P);
        }
        for i in 0..10 {
            s.record_ttft(500, T0 + 1000 + i, P);
        }
        assert!(s.view(T0 + 1010, P).ttft_ms.unwrap() > 350.0);
    }

    #[test]
    fn censored_samples_never_lower_the_mean() {
        // (history ttft, censored at, ms later)
        let cases = [
            (500, 10, 0),
            (500, 499, 0),
            (500, 500, 1000),
            (500, 30_000, 0),
            (20, 5, 600_000),
        ];
        for (mean, at_least, later) in cases {
            let mut s = ModelStats::default();
            s.record_ttft(mean, T0, P);
            let mut plain = s;
            s.record_censored_ttft(at_least, T0 + later, P);
            plain.record_ttft(at_least, T0 + later, P);
            let got = s.view(T0 + later, P).ttft_ms.unwrap();
            assert!(got > mean as f64, "mean {mean}, censored {at_least}: {got}");
            // Slower too than if the first token had come at that very moment.
            let uncensored = plain.view(T0 + later, P).ttft_ms.unwrap();
            assert!(
                got > uncensored,
                "mean {mean}, censored {at_least}: {got} vs {uncensored}"
            );
        }
    }

    #[test]
    fn censored_sample_without_history_is_not_a_ttft() {
        let mut s = ModelStats::default();
        s.record_censored_ttft(5, T0, P);
        assert_eq!(s, ModelStats::default());
        assert_eq!(s.view(T0, P).ttft_ms, None);
    }

    #[test]
    fn error_rate_rises_on_failures_and_falls_back_after_successes() {
        let mut s = ModelStats::default();
        assert_eq!(s.view(T0, P).error_rate, 0.0);
        let mut t = T0;
        for _ in 0..10 {
            s.record_outcome(true, t, P);
            t += 100;
        }
        assert_eq!(s.view(t, P).error_rate, 0.0);
        let mut rising = Vec::new();
        for _ in 0..5 {
            s.record_outcome(false, t, P);
            rising.push(s.view(t, P).error_rate);
            t += 100;
        }
        assert!(rising.windows(2).all(|w| w[0] < w[1]), "{rising:?}");
        assert!(rising[4] > 0.3, "{rising:?}");
        // Three half-lives later, a few successes outweigh the faded failures.
        t += 90_000;
        for _ in 0..5 {
            s.record_outcome(true, t, P);
            t += 100;
        }
        let after = s.view(t, P).error_rate;
        assert!(after < rising[4] / 2.0, "{after} vs {rising:?}");
    }

    #[test]
    fn bad_samples_are_ignored() {
        let mut s = ModelStats::default();
        for tps in [f64::NAN, f64::INFINITY, -1.0] {
            s.record_tokens_per_sec(tps, T0, P);
        }
        assert_eq!(s, ModelStats::default());
        assert_eq!(s.view(T0, P), StatsView::default());
    }

    #[test]
    fn a_clock_behind_the_record_neither_grows_weights_nor_rewinds_time() {
        let mut s = ModelStats::default();
        s.record_ttft(100, T0, P);
        s.record_ttft(300, T0 - 5_000, P);
        assert_eq!(s.updated_ms, T0);
        let v = s.view(T0 - 5_000, P);
        assert_eq!(
            (v.ttft_ms, v.weight_ttft, v.age_ms),
            (Some(200.0), 2.0, Some(0))
        );
    }

    #[test]
    fn zero_half_life_keeps_only_the_latest_sample() {
        let p = DecayPolicy { half_life_ms: 0 };
        let mut s = ModelStats::default();
        s.record_ttft(100, T0, p);
        s.record_ttft(300, T0 + 1, p);
        assert_eq!(s.view(T0 + 1, p).ttft_ms, Some(300.0));
    }

    #[test]
    fn encoding_round_trips() {
        let mut s = ModelStats::default();
        s.record_ttft(321, T0, P);
        s.record_tokens_per_sec(87.5, T0 + 10, P);
        s.record_outcome(false, T0 + 20, P);
        s.record_outcome(true, T0 + 30, P);
        assert_eq!(ModelStats::decode(&s.encode()), s);
        assert_eq!(
            ModelStats::decode(&ModelStats::default().encode()),
            ModelStats::default()
        );
    }

    #[test]
    fn damaged_bytes_decode_to_no_data() {
        let mut s = ModelStats::default();
        s.record_ttft(321, T0, P);
        let good = s.encode();
        let with = |at: usize, bytes: &[u8]| {
            let mut b = good;
            b[at..at + bytes.len()].copy_from_slice(bytes);
            b
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "empty"),
            (good[..ENCODED_LEN - 1].to_vec(), "short"),
            (with(0, &[2]).to_vec(), "other version"),
            (with(17, &f32::NAN.to_le_bytes()).to_vec(), "NaN mean"),
            (
                with(21, &f32::INFINITY.to_le_bytes()).to_vec(),
                "infinite weight",
            ),
            (with(17, &(-1.0f32).to_le_bytes()).to_vec(), "negative mean"),
            (
                with(33, &2.0f32.to_le_bytes()).to_vec(),
                "error rate above 1",
            ),
            (vec![0xff; ENCODED_LEN], "all ones"),
        ];
        for (bytes, why) in cases {
            assert_eq!(ModelStats::decode(&bytes), ModelStats::default(), "{why}");
        }
        let mut longer = good.to_vec();
        longer.push(0);
        assert_eq!(ModelStats::decode(&longer), s, "trailing bytes are ignored");
    }

    #[test]
    fn effective_in_flight_clamps_negatives_and_forgets_leaks() {
        let cases = [
            (3, T0, T0, 3),
            (3, T0, T0 + IN_FLIGHT_FORGET_MS, 3),
            (3, T0, T0 + IN_FLIGHT_FORGET_MS + 1, 0),
            (-2, T0, T0, 0),
            (i32::MAX, T0, T0, i32::MAX as u32),
            (5, T0 + 1000, T0, 5), // written by a worker whose clock is ahead
        ];
        for (count, last, now, want) in cases {
            assert_eq!(
                effective_in_flight(count, last, now),
                want,
                "{count} {last} {now}"
            );
        }
    }

    #[test]
    fn in_flight_counts_up_and_down_and_drops_leaks() {
        let mut f = InFlight::default();
        f = f
            .started(T0)
            .started(T0 + 1)
            .started(T0 + 2)
            .finished(T0 + 3);
        assert_eq!((f.count, f.effective(T0 + 3)), (2, 2));
        assert_eq!(f.finished(T0).finished(T0).finished(T0).count, 0);
        let leaked = InFlight {
            count: 40,
            last_change_ms: T0,
        };
        assert_eq!(leaked.started(T0 + IN_FLIGHT_FORGET_MS + 1).count, 1);
        let negative = InFlight {
            count: -3,
            last_change_ms: T0,
        };
        assert_eq!(negative.started(T0).count, 1);
    }

    #[test]
    fn in_flight_encoding_round_trips_and_damage_reads_zero() {
        let f = InFlight {
            count: -7,
            last_change_ms: T0,
        };
        assert_eq!(InFlight::decode(&f.encode()), f);
        assert_eq!(InFlight::decode(b"short"), InFlight::default());
    }
}
