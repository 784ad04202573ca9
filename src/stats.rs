//! Live per-model performance, kept per model in shared data and updated by compare-and-swap.
//!
//! Each series (time to first token, output tokens per second, error rate) is a mean whose
//! evidence fades with elapsed time, not with the number of samples: at every update the old
//! weight is multiplied by `2^(-elapsed / half_life)` and the new sample adds a weight of 1.
//! So a model idle for a few half-lives keeps its last numbers but with little weight, and a
//! fresh sample then mostly replaces them; under steady traffic the mean covers about the
//! last half-life of samples. The weight tells callers how much recent evidence there is.
//!
//! TTFT and tokens/s are kept as an idle model would show them. How much a model slows down
//! per request it is already serving differs between servers (a batching server barely, a
//! single-slot one fully), so each model's load slope is fitted from its own samples and the
//! request count each was taken under (see [`LineFit::load_slope`]); `load_prior` stands in
//! until there is evidence. TTFT also grows with the prompt (prefill), by a rate fitted per
//! model against the request body's size (see [`LineFit::prefill_ms_per_kib`]), so ranking
//! can predict it for each request.
//!
//! Also here: the in-flight request counter per model, for load-aware ranking.

/// Time is milliseconds since the Unix epoch throughout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsPolicy {
    pub half_life_ms: u64,
    /// A model's load slope before its own samples say otherwise; 0 turns load awareness off.
    pub load_prior: f64,
}

pub const DEFAULT_HALF_LIFE_MS: u64 = 30_000;
pub const DEFAULT_LOAD_PRIOR: f64 = 0.5;

impl StatsPolicy {
    pub const DEFAULT: StatsPolicy = StatsPolicy {
        half_life_ms: DEFAULT_HALF_LIFE_MS,
        load_prior: DEFAULT_LOAD_PRIOR,
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

impl Default for StatsPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An attempt that ended without a first token after `t` ms only says "TTFT > t". It is
/// recorded as `max(t, mean) * CENSORED_PENALTY`, so it always pulls the mean up: a model
/// that breaks early must not look fast because it broke early.
pub const CENSORED_PENALTY: f64 = 1.5;

/// A sample at least this many times above or below a series' mean is a surprise, unless the
/// series' own spread says such deviations are normal for this model (see [`Level`]).
pub const SHIFT_RATIO: f64 = 2.0;

/// How many spreads away from the mean a sample must be to surprise.
const SHIFT_SPREADS: f64 = 3.0;

/// Whether a series is a cost (TTFT: grows with load) or a rate (tokens/s: falls with load).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Series {
    Cost,
    Rate,
}

impl Series {
    /// The sample as the model would show it idle, given `load = 1 + slope × others`.
    fn idle(self, sample: f64, load: f64) -> f64 {
        match self {
            Series::Cost => sample / load,
            Series::Rate => sample * load,
        }
    }

    /// The quantity that grows linearly with load: the cost itself, or time per token.
    fn linear(self, sample: f64) -> Option<f64> {
        match self {
            Series::Cost => Some(sample),
            Series::Rate => (sample > 0.0).then(|| 1.0 / sample),
        }
    }
}

/// Bounds of a fitted load slope. The floor keeps some load awareness (no herding onto a
/// leader whose slowdown has not shown yet); the ceiling bounds one bad fit.
pub const MIN_LOAD_SLOPE: f64 = 0.05;
pub const MAX_LOAD_SLOPE: f64 = 4.0;

/// Evidence the prior counts as, in units of "samples × variance of the load": a fit needs
/// samples taken under different loads before it outweighs the prior.
const PRIOR_EVIDENCE: f64 = 4.0;

/// Decayed sums for a weighted least-squares line `y = a + b × x`: of 1, `x`, `x²`, `y` and
/// `x × y`. They fade with time like the means, so a fit follows a server whose behaviour
/// changes. Two fits use it: the load fit (`x` = other requests in flight, `y` = TTFT or time
/// per token, see [`LineFit::load_slope`]) and the prompt fit (`x` = request KiB, `y` = idle
/// TTFT, see [`LineFit::prefill_ms_per_kib`]). The load fit leaves surprising samples out (a
/// level shift or an outlier says nothing about load); the prompt fit keeps them, since before
/// the prefill rate is known a long prompt's TTFT *is* a surprise.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LineFit {
    pub w: f32,
    pub x: f32,
    pub xx: f32,
    pub y: f32,
    pub xy: f32,
}

/// A fitted line, where the samples' `x` varied at all.
struct Line {
    mean_x: f64,
    mean_y: f64,
    /// `b`.
    slope: f64,
    /// Samples × variance of `x`: how much the data pins the slope down.
    evidence: f64,
}

impl LineFit {
    fn add(&mut self, x: f64, y: f64) {
        let add = |sum: &mut f32, v: f64| *sum = (f64::from(*sum) + v) as f32;
        add(&mut self.w, 1.0);
        add(&mut self.x, x);
        add(&mut self.xx, x * x);
        add(&mut self.y, y);
        add(&mut self.xy, x * y);
    }

    /// The level moved by `factor`: so did every sample's `y`, as far as the line is concerned.
    fn rescale_y(&mut self, factor: f64) {
        if factor.is_finite() && factor > 0.0 {
            self.y = (f64::from(self.y) * factor) as f32;
            self.xy = (f64::from(self.xy) * factor) as f32;
        }
    }

    fn decay(&mut self, factor: f64) {
        for sum in [
            &mut self.w,
            &mut self.x,
            &mut self.xx,
            &mut self.y,
            &mut self.xy,
        ] {
            *sum = (f64::from(*sum) * factor) as f32;
        }
    }

    fn mean_x(&self) -> f64 {
        let w = f64::from(self.w);
        if w > 0.0 {
            f64::from(self.x) / w
        } else {
            0.0
        }
    }

    fn line(&self) -> Option<Line> {
        let w = f64::from(self.w);
        if w <= 0.0 {
            return None;
        }
        let (mean_x, mean_y) = (f64::from(self.x) / w, f64::from(self.y) / w);
        let var_x = f64::from(self.xx) / w - mean_x * mean_x;
        let evidence = w * var_x;
        if evidence.is_nan() || evidence <= 1e-6 {
            return None;
        }
        let slope = (f64::from(self.xy) / w - mean_x * mean_y) / var_x;
        slope.is_finite().then_some(Line {
            mean_x,
            mean_y,
            slope,
            evidence,
        })
    }

    /// As a load fit: `c / a` of `y = a + c × k`, the model's slowdown per request in flight,
    /// shrunk towards `prior` by how little the samples' loads varied.
    pub fn load_slope(&self, prior: f64) -> f64 {
        if prior <= 0.0 || prior.is_nan() {
            return 0.0;
        }
        let prior = prior.clamp(MIN_LOAD_SLOPE, MAX_LOAD_SLOPE);
        let Some(line) = self.line().filter(|l| l.mean_y > 0.0) else {
            return prior;
        };
        let a = line.mean_y - line.slope * line.mean_x;
        let fitted = if a > 0.0 {
            (line.slope / a).clamp(MIN_LOAD_SLOPE, MAX_LOAD_SLOPE)
        } else {
            MAX_LOAD_SLOPE
        };
        (line.evidence * fitted + PRIOR_EVIDENCE * prior) / (line.evidence + PRIOR_EVIDENCE)
    }

    /// As a prompt fit: prefill time per KiB, shrunk towards 0 while sizes have barely varied.
    pub fn prefill_ms_per_kib(&self) -> f64 {
        self.line().map_or(0.0, |line| {
            line.slope.clamp(0.0, MAX_PREFILL_MS_PER_KIB) * line.evidence
                / (line.evidence + PREFILL_PRIOR_EVIDENCE)
        })
    }

    /// As a prompt fit: the size the TTFT mean refers to, the mean size of the samples.
    pub fn typical_kib(&self) -> f64 {
        self.mean_x()
    }

    /// As a prompt fit: an idle TTFT taken at `from_kib`, as it would be at `to_kib`.
    fn moved(&self, idle_ttft: f64, from_kib: f64, to_kib: f64) -> f64 {
        moved_along_prefill(idle_ttft, self.prefill_ms_per_kib(), from_kib, to_kib)
    }

    fn floats(&self) -> [f32; LINE_FLOATS] {
        [self.w, self.x, self.xx, self.y, self.xy]
    }

    fn from_floats([w, x, xx, y, xy]: [f32; LINE_FLOATS]) -> Self {
        LineFit { w, x, xx, y, xy }
    }
}

const LINE_FLOATS: usize = 5;

/// Evidence (samples × variance of the size in KiB²) at which a fitted prefill rate counts half.
const PREFILL_PRIOR_EVIDENCE: f64 = 1.0;
/// Bounds a fitted prefill rate: no model gets faster with longer prompts.
const MAX_PREFILL_MS_PER_KIB: f64 = 10_000.0;
/// A TTFT moved to another size never drops below this share of the value it came from.
const MIN_SIZE_ADJUSTED_SHARE: f64 = 0.05;

/// A TTFT measured for a request of `from_kib`, as it would be for one of `to_kib`.
fn moved_along_prefill(ttft: f64, ms_per_kib: f64, from_kib: f64, to_kib: f64) -> f64 {
    let moved = ttft + ms_per_kib * (to_kib - from_kib);
    moved.max(ttft * MIN_SIZE_ADJUSTED_SHARE)
}

/// A request body's size as the prompt fit measures it.
pub fn prompt_kib(body_bytes: usize) -> f64 {
    body_bytes as f64 / 1024.0
}

/// A mean that also notices when its level has moved.
///
/// A capped mean moves 1/(MAX_WEIGHT + 1) of the way per sample, so a model that became three
/// times slower needs about ten samples to look it; ten samples of a slow model take seconds
/// and keep traffic on it meanwhile. So each series also keeps its typical deviation (`spread`,
/// a mean of `|ln(sample / mean)|`) and the last surprising sample. Two surprises in a row on
/// the same side are read as a level shift: the mean becomes their average and its weight 2,
/// so later samples refine it quickly. One surprise alone (an outlier) moves the mean by its
/// usual share. A model whose samples are naturally spread (long and short prompts mixed)
/// needs a proportionally larger surprise, so its mean does not flip between the two.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Level {
    /// As an idle model would show it.
    pub mean: f32,
    pub weight: f32,
    /// Mean absolute deviation of `ln(sample / mean)`.
    pub spread: f32,
    /// The last sample, if it was a surprise; 0 otherwise.
    pub surprise: f32,
    /// Against the other requests in flight: the load slope.
    pub fit: LineFit,
}

impl Level {
    /// A measured sample, taken while `others` other requests ran on the model.
    /// `to_reference` moves the idle value to the series' reference prompt length (TTFT) or
    /// leaves it (tokens/s). Returns what the sample did and its idle value.
    fn record(
        &mut self,
        series: Series,
        sample: f64,
        others: u32,
        prior: f64,
        to_reference: impl FnOnce(f64) -> f64,
    ) -> (Folded, f64) {
        let k = f64::from(others);
        let idle = series.idle(sample, self.load(others, prior));
        let folded = self.fold(to_reference(idle));
        match folded {
            Folded::Typical => {
                if let Some(y) = series.linear(sample) {
                    self.fit.add(k, y);
                }
            }
            Folded::Outlier => {}
            Folded::Shift(factor) => self.fit.rescale_y(match series {
                Series::Cost => factor,
                Series::Rate => 1.0 / factor,
            }),
        }
        (folded, idle)
    }

    /// A censored TTFT ("at least this"), already for an idle model at the reference size:
    /// it moves the mean but is no measurement of the load slope.
    fn record_censored(&mut self, value: f64) -> Folded {
        let folded = self.fold(value);
        if let Folded::Shift(factor) = folded {
            self.fit.rescale_y(factor);
        }
        folded
    }

    /// The load `1 + slope × others` a sample taken under `others` was measured at.
    fn load(&self, others: u32, prior: f64) -> f64 {
        1.0 + self.fit.load_slope(prior) * f64::from(others)
    }

    /// Folds a value already expressed for an idle model.
    fn fold(&mut self, x: f64) -> Folded {
        let mean = f64::from(self.mean);
        let deviation = if self.weight > 0.0 && mean > 0.0 && x > 0.0 {
            (x / mean).ln()
        } else {
            0.0
        };
        let threshold = SHIFT_RATIO.ln().max(SHIFT_SPREADS * f64::from(self.spread));
        if deviation.abs() <= threshold {
            self.fold_spread(deviation.abs());
            mix(&mut self.mean, &mut self.weight, x);
            self.surprise = 0.0;
            return Folded::Typical;
        }
        let previous = f64::from(self.surprise);
        if previous > 0.0 && (previous > mean) == (deviation > 0.0) {
            // The spread is left alone: these deviations came from the shift, not from noise.
            let shifted = (previous + x) / 2.0;
            self.mean = shifted as f32;
            self.weight = 2.0;
            self.surprise = 0.0;
            Folded::Shift(shifted / mean)
        } else {
            // Capped, so one wild outlier does not make every later shift look like noise.
            self.fold_spread(threshold);
            mix(&mut self.mean, &mut self.weight, x);
            self.surprise = x as f32;
            Folded::Outlier
        }
    }

    fn fold_spread(&mut self, deviation: f64) {
        let w = f64::from(self.weight).min(MAX_WEIGHT);
        self.spread = ((f64::from(self.spread) * w + deviation) / (w + 1.0)) as f32;
    }

    fn known(&self) -> Option<f64> {
        (self.weight > 0.0).then_some(f64::from(self.mean))
    }

    fn decay(&mut self, factor: f64) {
        self.weight = (f64::from(self.weight) * factor) as f32;
        self.fit.decay(factor);
    }

    fn floats(&self) -> [f32; LEVEL_FLOATS] {
        let [w, x, xx, y, xy] = self.fit.floats();
        [
            self.mean,
            self.weight,
            self.spread,
            self.surprise,
            w,
            x,
            xx,
            y,
            xy,
        ]
    }

    fn from_floats(v: [f32; LEVEL_FLOATS]) -> Self {
        let [mean, weight, spread, surprise, w, x, xx, y, xy] = v;
        Level {
            mean,
            weight,
            spread,
            surprise,
            fit: LineFit::from_floats([w, x, xx, y, xy]),
        }
    }
}

const LEVEL_FLOATS: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Folded {
    Typical,
    /// Surprising, not (yet) confirmed by a second surprise.
    Outlier,
    /// A level shift: the mean moved by this factor.
    Shift(f64),
}

/// What shared data holds for one model. Floats are `f32` so a record stays small; the
/// arithmetic is done in `f64`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelStats {
    /// Time of the last update of any series; the weights below are as of this time.
    pub updated_ms: u64,
    /// Samples recorded of any kind, never decayed.
    pub samples: u64,
    pub ttft: Level,
    /// Idle TTFT against the request's KiB: the prefill rate.
    pub prompt: LineFit,
    pub tokens_per_sec: Level,
    /// Share of failed attempts, 0..=1.
    pub error_rate: f32,
    pub error_weight: f32,
}

/// The stats as of a given time, for ranking.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatsView {
    /// `None` until measured; as an idle model would show them, TTFT for a request of
    /// `typical_prompt_kib`.
    pub ttft_ms: Option<f64>,
    pub tokens_per_sec: Option<f64>,
    /// 0 while nothing is known.
    pub error_rate: f64,
    /// Evidence behind the means, decayed to the time of the view.
    pub weight_ttft: f64,
    pub weight_tps: f64,
    /// How much each request in flight slows the model: TTFT grows by `1 + slope × n`,
    /// tokens/s falls by it.
    pub load_slope_ttft: f64,
    pub load_slope_tps: f64,
    /// How much longer the first token takes per KiB of request body (prefill).
    pub ttft_ms_per_kib: f64,
    pub typical_prompt_kib: f64,
    /// Time since the last update; `None` if never updated.
    pub age_ms: Option<u64>,
    pub samples: u64,
}

impl StatsView {
    /// The view as ranking should see it for a request of `prompt_kib`: TTFT moved from the
    /// typical size to that one along the fitted prefill rate.
    pub fn for_prompt(mut self, prompt_kib: f64) -> StatsView {
        if let Some(ttft) = self.ttft_ms {
            if prompt_kib.is_finite() && self.ttft_ms_per_kib > 0.0 {
                self.ttft_ms = Some(moved_along_prefill(
                    ttft,
                    self.ttft_ms_per_kib,
                    self.typical_prompt_kib,
                    prompt_kib,
                ));
            }
        }
        self
    }
}

pub const ENCODED_LEN: usize = 17 + 4 * (2 * LEVEL_FLOATS + LINE_FLOATS + 2);

const VERSION: u8 = 3;
/// Records written before level tracking and load fitting (version 1), and before the prompt
/// fit (version 2), are still read, so an upgrade in place keeps its numbers.
const LEGACY_LEN: usize = 41;
const LEGACY_VERSION: u8 = 1;
const NO_PROMPT_LEN: usize = 17 + 4 * (2 * LEVEL_FLOATS + 2);
const NO_PROMPT_VERSION: u8 = 2;

impl ModelStats {
    /// A first token `ttft_ms` after the attempt started, with `others` other requests then in
    /// flight on the model and a request body of `prompt_kib`.
    pub fn record_ttft(
        &mut self,
        ttft_ms: u64,
        others: u32,
        prompt_kib: f64,
        now_ms: u64,
        policy: StatsPolicy,
    ) {
        self.advance(now_ms, policy);
        let prompt_kib = if prompt_kib.is_finite() {
            prompt_kib.max(0.0)
        } else {
            0.0
        };
        let prompt = self.prompt;
        let typical = prompt.typical_kib();
        let (folded, idle) = self.ttft.record(
            Series::Cost,
            ttft_ms as f64,
            others,
            policy.load_prior,
            |idle| prompt.moved(idle, prompt_kib, typical),
        );
        // Unlike the load fit, surprises count here: before the prefill rate is known, a long
        // prompt's TTFT *is* a surprise, and leaving those out would keep it unknown.
        if let Folded::Shift(factor) = folded {
            self.prompt.rescale_y(factor);
        }
        self.prompt.add(prompt_kib, idle);
        self.count();
    }

    /// An attempt that failed or broke `at_least_ms` after it started, before any token.
    ///
    /// Without an earlier TTFT there is no mean to compare with, and a quick failure would
    /// become the model's only, flattering, TTFT; so it is then not recorded here (the
    /// failure still counts through [`Self::record_outcome`] and the cooldown). It is no
    /// measurement of the load slope either.
    pub fn record_censored_ttft(
        &mut self,
        at_least_ms: u64,
        others: u32,
        prompt_kib: f64,
        now_ms: u64,
        policy: StatsPolicy,
    ) {
        if self.ttft.weight <= 0.0 {
            return;
        }
        let idle = at_least_ms as f64 / self.ttft.load(others, policy.load_prior);
        let prompt_kib = if prompt_kib.is_finite() {
            prompt_kib.max(0.0)
        } else {
            0.0
        };
        let at_typical = self
            .prompt
            .moved(idle, prompt_kib, self.prompt.typical_kib());
        let value = at_typical.max(f64::from(self.ttft.mean)) * CENSORED_PENALTY;
        self.advance(now_ms, policy);
        if let Folded::Shift(factor) = self.ttft.record_censored(value) {
            self.prompt.rescale_y(factor);
        }
        self.count();
    }

    /// Negative or non-finite rates are ignored.
    pub fn record_tokens_per_sec(
        &mut self,
        tps: f64,
        others: u32,
        now_ms: u64,
        policy: StatsPolicy,
    ) {
        if !tps.is_finite() || tps < 0.0 {
            return;
        }
        self.advance(now_ms, policy);
        self.tokens_per_sec
            .record(Series::Rate, tps, others, policy.load_prior, |idle| idle);
        self.count();
    }

    pub fn record_outcome(&mut self, ok: bool, now_ms: u64, policy: StatsPolicy) {
        self.advance(now_ms, policy);
        let x = if ok { 0.0 } else { 1.0 };
        mix(&mut self.error_rate, &mut self.error_weight, x);
        self.error_rate = self.error_rate.clamp(0.0, 1.0);
        self.count();
    }

    pub fn view(&self, now_ms: u64, policy: StatsPolicy) -> StatsView {
        let factor = policy.factor(now_ms.saturating_sub(self.updated_ms));
        StatsView {
            ttft_ms: self.ttft.known(),
            tokens_per_sec: self.tokens_per_sec.known(),
            error_rate: if self.error_weight > 0.0 {
                f64::from(self.error_rate)
            } else {
                0.0
            },
            weight_ttft: f64::from(self.ttft.weight) * factor,
            weight_tps: f64::from(self.tokens_per_sec.weight) * factor,
            load_slope_ttft: self.ttft.fit.load_slope(policy.load_prior),
            load_slope_tps: self.tokens_per_sec.fit.load_slope(policy.load_prior),
            ttft_ms_per_kib: self.prompt.prefill_ms_per_kib(),
            typical_prompt_kib: self.prompt.typical_kib(),
            age_ms: (self.samples > 0).then(|| now_ms.saturating_sub(self.updated_ms)),
            samples: self.samples,
        }
    }

    /// Decays every weight to `now_ms`. A clock behind the record (another worker's slightly
    /// older `now`) decays nothing rather than growing the weights.
    fn advance(&mut self, now_ms: u64, policy: StatsPolicy) {
        let factor = policy.factor(now_ms.saturating_sub(self.updated_ms));
        self.ttft.decay(factor);
        self.prompt.decay(factor);
        self.tokens_per_sec.decay(factor);
        self.error_weight = (f64::from(self.error_weight) * factor) as f32;
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
        let floats = self
            .ttft
            .floats()
            .into_iter()
            .chain(self.tokens_per_sec.floats())
            .chain([self.error_rate, self.error_weight])
            .chain(self.prompt.floats());
        for (slot, value) in out[17..].chunks_exact_mut(4).zip(floats) {
            slot.copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// Short, damaged or unknown-version records read as "no data": a bad key must neither
    /// favour nor block a model.
    pub fn decode(bytes: &[u8]) -> Self {
        Self::try_decode(bytes).unwrap_or_default()
    }

    fn try_decode(bytes: &[u8]) -> Option<Self> {
        let len = match bytes.first() {
            Some(&VERSION) => ENCODED_LEN,
            Some(&NO_PROMPT_VERSION) => NO_PROMPT_LEN,
            Some(&LEGACY_VERSION) => LEGACY_LEN,
            _ => return None,
        };
        let bytes = bytes.get(..len)?;
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
        let level = |at: usize| -> Option<Level> {
            let mut v = [0f32; LEVEL_FLOATS];
            for (i, slot) in v.iter_mut().enumerate() {
                *slot = f32_at(at + i)?;
            }
            Some(Level::from_floats(v))
        };
        let legacy = |at: usize| -> Option<Level> {
            Some(Level {
                mean: f32_at(at)?,
                weight: f32_at(at + 1)?,
                ..Level::default()
            })
        };
        let (ttft, tokens_per_sec, error_at) = if len == LEGACY_LEN {
            (legacy(0)?, legacy(2)?, 4)
        } else {
            (level(0)?, level(LEVEL_FLOATS)?, 2 * LEVEL_FLOATS)
        };
        let prompt = if len == ENCODED_LEN {
            let mut v = [0f32; LINE_FLOATS];
            for (i, slot) in v.iter_mut().enumerate() {
                *slot = f32_at(error_at + 2 + i)?;
            }
            LineFit::from_floats(v)
        } else {
            LineFit::default()
        };
        let stats = ModelStats {
            updated_ms: u64_at(1)?,
            samples: u64_at(9)?,
            ttft,
            prompt,
            tokens_per_sec,
            error_rate: f32_at(error_at)?,
            error_weight: f32_at(error_at + 1)?,
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

    const P: StatsPolicy = StatsPolicy::DEFAULT;
    const T0: u64 = 1_700_000_000_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-3 * b.abs().max(1.0)
    }

    #[test]
    fn decay_halves_weight_after_each_half_life() {
        let mut s = ModelStats::default();
        s.record_ttft(200, 0, 0.0, T0, P);
        s.record_ttft(200, 0, 0.0, T0, P);
        s.record_tokens_per_sec(50.0, 0, T0, P);
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
            s.record_ttft(1000, 0, 0.0, T0 + i, P);
        }
        // Just after, one fast sample moves twenty slow ones by its capped share...
        let mut recent = s;
        recent.record_ttft(100, 0, 0.0, T0 + 20, P);
        let moved = 1000.0 - recent.view(T0 + 20, P).ttft_ms.unwrap();
        assert!(close(moved, 900.0 / (MAX_WEIGHT + 1.0)), "{moved}");
        // ...but ten minutes later the old evidence has faded away.
        let mut later = s;
        later.record_ttft(100, 0, 0.0, T0 + 600_000, P);
        let v = later.view(T0 + 600_000, P);
        assert!(v.ttft_ms.unwrap() < 101.0, "{v:?}");
        assert!(close(v.weight_ttft, 1.0), "{v:?}");
    }

    #[test]
    fn a_sustained_change_shows_within_a_few_samples_under_heavy_traffic() {
        let mut s = ModelStats::default();
        for i in 0..1000 {
            s.record_ttft(100, 0, 0.0, T0 + i, P);
        }
        for i in 0..10 {
            s.record_ttft(500, 0, 0.0, T0 + 1000 + i, P);
        }
        assert!(s.view(T0 + 1010, P).ttft_ms.unwrap() > 350.0);
    }

    /// A model measured at `mean` long enough to fill the weight cap, with a little jitter.
    fn steady(mean: u64) -> ModelStats {
        let mut s = ModelStats::default();
        for i in 0..40 {
            s.record_ttft(mean + i % 3 * mean / 20, 0, 0.0, T0 + i, P);
        }
        s
    }

    fn ttft_after(mut s: ModelStats, samples: &[u64]) -> f64 {
        for (i, &x) in samples.iter().enumerate() {
            s.record_ttft(x, 0, 0.0, T0 + 100 + i as u64, P);
        }
        s.view(T0 + 200, P).ttft_ms.unwrap_or(f64::NAN)
    }

    #[test]
    fn two_surprises_in_a_row_move_the_mean_to_the_new_level() {
        // (history, later samples, the mean must end between)
        let cases: [(u64, &[u64], (f64, f64)); 5] = [
            (100, &[300, 340], (300.0, 340.0)),
            (400, &[120, 130], (120.0, 130.0)),
            (100, &[300, 340, 320], (300.0, 340.0)),
            // Censored-looking samples work the same way: two slow ones make a slow model.
            (100, &[1000, 1000], (1000.0, 1000.0)),
            // The same step without the shift rule would leave the mean near 340 here.
            (100, &[500, 520, 510, 505], (495.0, 520.0)),
        ];
        for (history, samples, (low, high)) in cases {
            let got = ttft_after(steady(history), samples);
            assert!(
                (low..=high).contains(&got),
                "{history} then {samples:?}: {got}"
            );
        }
    }

    #[test]
    fn a_single_outlier_moves_the_mean_by_its_usual_share() {
        // (later samples, the mean must end between)
        let cases: [(&[u64], (f64, f64)); 4] = [
            (&[1000], (200.0, 300.0)),
            (&[1000, 100], (150.0, 280.0)),
            // Up then down: two surprises, but on opposite sides, so no shift.
            (&[1000, 20], (100.0, 250.0)),
            (&[10, 100, 100], (70.0, 100.0)),
        ];
        for (samples, (low, high)) in cases {
            let got = ttft_after(steady(100), samples);
            assert!((low..=high).contains(&got), "{samples:?}: {got}");
        }
    }

    #[test]
    fn a_naturally_spread_model_does_not_flip_between_its_modes() {
        // Short and long prompts: TTFT alternates between 100 and 800 ms in runs of two.
        let mut s = ModelStats::default();
        let mut means = Vec::new();
        for i in 0..200u64 {
            let x = if i / 2 % 2 == 0 { 100 } else { 800 };
            s.record_ttft(x, 0, 0.0, T0 + i, P);
            if i >= 100 {
                means.push(s.view(T0 + i, P).ttft_ms.unwrap_or(0.0));
            }
        }
        let (min, max) = means
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &m| (lo.min(m), hi.max(m)));
        assert!(min > 200.0 && max < 700.0, "mean ranged {min}..{max}");
    }

    #[test]
    fn a_shift_is_also_taken_for_tokens_per_sec() {
        let mut s = ModelStats::default();
        for i in 0..40 {
            s.record_tokens_per_sec(150.0, 0, T0 + i, P);
        }
        s.record_tokens_per_sec(40.0, 0, T0 + 50, P);
        s.record_tokens_per_sec(44.0, 0, T0 + 51, P);
        assert_eq!(s.view(T0 + 51, P).tokens_per_sec, Some(42.0));
    }

    /// `n` samples of a model with idle TTFT `base` ms and tokens/s `base`, slowing by
    /// `1 + slope × k` with `k` others in flight (cycling through 0..8), ±5 % jitter.
    fn under_load(s: &mut ModelStats, base: f64, slope: f64, n: u64, t0: u64) {
        for i in 0..n {
            let k = (i % 8) as u32;
            let jitter = 1.0 + 0.05 * [0.0, 1.0, -1.0][(i % 3) as usize];
            let load = 1.0 + slope * f64::from(k);
            let now = t0 + i * 10;
            s.record_ttft((base * load * jitter).round() as u64, k, 0.0, now, P);
            s.record_tokens_per_sec(base / load * jitter, k, now, P);
        }
    }

    fn near(got: f64, want: f64, tolerance: f64) -> bool {
        (got - want).abs() <= tolerance * want
    }

    #[test]
    fn each_model_s_load_slope_is_fitted_from_its_samples() {
        for slope in [0.1, 0.3, 0.5, 1.0, 2.0] {
            let mut s = ModelStats::default();
            under_load(&mut s, 100.0, slope, 80, T0);
            let v = s.view(T0 + 800, P);
            assert!(near(v.load_slope_ttft, slope, 0.2), "{slope}: {v:?}");
            assert!(near(v.load_slope_tps, slope, 0.2), "{slope}: {v:?}");
            // The means are what the model shows idle, not at the load it was measured under.
            assert!(near(v.ttft_ms.unwrap_or(0.0), 100.0, 0.1), "{slope}: {v:?}");
            assert!(
                near(v.tokens_per_sec.unwrap_or(0.0), 100.0, 0.1),
                "{slope}: {v:?}"
            );
        }
    }

    #[test]
    fn the_prior_stands_until_samples_come_from_different_loads() {
        let mut s = ModelStats::default();
        assert_eq!(s.view(T0, P).load_slope_ttft, P.load_prior);
        for i in 0..50 {
            s.record_ttft(300 + i % 7, 3, 0.0, T0 + i, P);
        }
        let v = s.view(T0 + 50, P);
        assert_eq!(v.load_slope_ttft, P.load_prior);
        // 300 ms under 3 others, with the prior 0.5: 120 ms idle.
        assert!(near(v.ttft_ms.unwrap_or(0.0), 120.0, 0.05), "{v:?}");
        // A few samples from other loads only nudge it.
        let mut few = s;
        few.record_ttft(100, 0, 0.0, T0 + 60, P);
        let nudged = few.view(T0 + 60, P).load_slope_ttft;
        assert!(
            nudged != P.load_prior && near(nudged, P.load_prior, 0.6),
            "{nudged}"
        );
    }

    #[test]
    fn a_zero_prior_turns_load_awareness_off() {
        let off = StatsPolicy {
            load_prior: 0.0,
            ..P
        };
        let mut s = ModelStats::default();
        for i in 0..40 {
            let k = (i % 8) as u32;
            s.record_ttft(100 * (1 + u64::from(k)), k, 0.0, T0 + i, off);
        }
        let v = s.view(T0 + 40, off);
        assert_eq!((v.load_slope_ttft, v.load_slope_tps), (0.0, 0.0));
    }

    #[test]
    fn a_level_shift_keeps_the_fitted_slope() {
        let mut s = ModelStats::default();
        under_load(&mut s, 100.0, 0.3, 80, T0);
        under_load(&mut s, 400.0, 0.3, 8, T0 + 1000);
        let v = s.view(T0 + 1100, P);
        assert!(near(v.ttft_ms.unwrap_or(0.0), 400.0, 0.15), "{v:?}");
        assert!(near(v.load_slope_ttft, 0.3, 0.25), "{v:?}");
    }

    fn ttft_at(s: &ModelStats, kib: f64) -> f64 {
        s.view(T0 + 10_000, P)
            .for_prompt(kib)
            .ttft_ms
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn prefill_rate_is_fitted_and_predicts_each_request_size() {
        // Idle TTFT = overhead + rate × KiB; sizes cycle, with load and ±5 % jitter.
        for (overhead, rate) in [(50.0, 5.0), (300.0, 0.5), (20.0, 20.0)] {
            let mut s = ModelStats::default();
            for i in 0..90u64 {
                let kib = [1.0, 20.0, 60.0][(i % 3) as usize];
                let k = (i / 3 % 4) as u32;
                let jitter = 1.0 + 0.05 * [0.0, 1.0, -1.0][(i / 9 % 3) as usize];
                let ttft = (overhead + rate * kib) * (1.0 + 0.3 * f64::from(k)) * jitter;
                s.record_ttft(ttft.round() as u64, k, kib, T0 + i * 10, P);
            }
            let v = s.view(T0 + 10_000, P);
            assert!(
                near(v.ttft_ms_per_kib, rate, 0.2),
                "{overhead}+{rate}/KiB: {v:?}"
            );
            // The short end is a small difference of large numbers: its error is counted
            // against the longest prompt's TTFT too.
            let longest = overhead + rate * 60.0;
            for kib in [1.0, 20.0, 60.0] {
                let want = overhead + rate * kib;
                let got = ttft_at(&s, kib);
                let off = (got - want).abs();
                assert!(
                    off <= 0.1 * want + 0.03 * longest,
                    "{overhead}+{rate}/KiB at {kib}: {got}"
                );
            }
        }
    }

    #[test]
    fn one_request_size_keeps_ttft_as_measured() {
        let mut s = ModelStats::default();
        for i in 0..30 {
            s.record_ttft(200 + i % 5, 0, 8.0, T0 + i, P);
        }
        let v = s.view(T0 + 30, P);
        assert_eq!(v.ttft_ms_per_kib, 0.0);
        assert!((v.typical_prompt_kib - 8.0).abs() < 1e-3, "{v:?}");
        assert_eq!(v.for_prompt(100.0), v);
        assert_eq!(v.for_prompt(0.5), v);
    }

    #[test]
    fn predictions_for_sizes_far_below_the_typical_stay_positive() {
        let mut s = ModelStats::default();
        for i in 0..40 {
            let kib = if i % 2 == 0 { 50.0 } else { 100.0 };
            s.record_ttft((10.0 * kib) as u64, 0, kib, T0 + i, P);
        }
        let tiny = ttft_at(&s, 0.0);
        assert!(tiny > 0.0 && tiny < 100.0, "{tiny}");
    }

    #[test]
    fn records_without_the_prompt_fit_are_still_read() {
        let mut s = ModelStats::default();
        s.record_ttft(321, 2, 0.0, T0, P);
        s.record_tokens_per_sec(87.5, 1, T0 + 10, P);
        let mut v2 = s.encode()[..NO_PROMPT_LEN].to_vec();
        v2[0] = NO_PROMPT_VERSION;
        let read = ModelStats::decode(&v2);
        assert_eq!(read.prompt, LineFit::default());
        assert_eq!((read.ttft, read.tokens_per_sec), (s.ttft, s.tokens_per_sec));
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
            s.record_ttft(mean, 0, 0.0, T0, P);
            let mut plain = s;
            s.record_censored_ttft(at_least, 0, 0.0, T0 + later, P);
            plain.record_ttft(at_least, 0, 0.0, T0 + later, P);
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
        s.record_censored_ttft(5, 0, 0.0, T0, P);
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
            s.record_tokens_per_sec(tps, 0, T0, P);
        }
        assert_eq!(s, ModelStats::default());
        assert_eq!(s.view(T0, P).tokens_per_sec, None);
    }

    #[test]
    fn a_clock_behind_the_record_neither_grows_weights_nor_rewinds_time() {
        let mut s = ModelStats::default();
        s.record_ttft(100, 0, 0.0, T0, P);
        s.record_ttft(300, 0, 0.0, T0 - 5_000, P);
        assert_eq!(s.updated_ms, T0);
        let v = s.view(T0 - 5_000, P);
        assert_eq!(
            (v.ttft_ms, v.weight_ttft, v.age_ms),
            (Some(200.0), 2.0, Some(0))
        );
    }

    #[test]
    fn zero_half_life_keeps_only_the_latest_sample() {
        let p = StatsPolicy {
            half_life_ms: 0,
            ..P
        };
        let mut s = ModelStats::default();
        s.record_ttft(100, 0, 0.0, T0, p);
        s.record_ttft(300, 0, 0.0, T0 + 1, p);
        assert_eq!(s.view(T0 + 1, p).ttft_ms, Some(300.0));
    }

    #[test]
    fn encoding_round_trips() {
        let mut s = ModelStats::default();
        s.record_ttft(321, 0, 0.0, T0, P);
        s.record_tokens_per_sec(87.5, 0, T0 + 10, P);
        s.record_outcome(false, T0 + 20, P);
        s.record_outcome(true, T0 + 30, P);
        assert_eq!(ModelStats::decode(&s.encode()), s);
        assert_eq!(
            ModelStats::decode(&ModelStats::default().encode()),
            ModelStats::default()
        );
    }

    #[test]
    fn legacy_records_keep_their_means() {
        let mut legacy = [0u8; LEGACY_LEN];
        legacy[0] = LEGACY_VERSION;
        legacy[1..9].copy_from_slice(&T0.to_le_bytes());
        legacy[9..17].copy_from_slice(&7u64.to_le_bytes());
        for (i, v) in [250.0f32, 3.0, 80.0, 2.0, 0.25, 1.5].iter().enumerate() {
            legacy[17 + 4 * i..21 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        let s = ModelStats::decode(&legacy);
        let v = s.view(T0, P);
        assert_eq!((v.ttft_ms, v.tokens_per_sec), (Some(250.0), Some(80.0)));
        assert_eq!(
            (v.weight_ttft, v.weight_tps, v.error_rate),
            (3.0, 2.0, 0.25)
        );
        assert_eq!((s.samples, s.ttft.spread, s.ttft.surprise), (7, 0.0, 0.0));
        assert_eq!(v.load_slope_ttft, P.load_prior);
    }

    #[test]
    fn damaged_bytes_decode_to_no_data() {
        let mut s = ModelStats::default();
        s.record_ttft(321, 0, 0.0, T0, P);
        let good = s.encode();
        let with = |at: usize, bytes: &[u8]| {
            let mut b = good;
            b[at..at + bytes.len()].copy_from_slice(bytes);
            b
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "empty"),
            (good[..ENCODED_LEN - 1].to_vec(), "short"),
            (with(0, &[4]).to_vec(), "unknown version"),
            (with(17, &f32::NAN.to_le_bytes()).to_vec(), "NaN mean"),
            (
                with(21, &f32::INFINITY.to_le_bytes()).to_vec(),
                "infinite weight",
            ),
            (with(17, &(-1.0f32).to_le_bytes()).to_vec(), "negative mean"),
            (
                with(17 + 4 * 2 * LEVEL_FLOATS, &2.0f32.to_le_bytes()).to_vec(),
                "error rate above 1",
            ),
            (
                with(25, &(-1.0f32).to_le_bytes()).to_vec(),
                "negative spread",
            ),
            (
                good[..LEGACY_LEN].to_vec(),
                "current version cut to legacy length",
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
