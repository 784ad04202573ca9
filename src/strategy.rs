//! Which pool member goes first for `alias:latency` and `alias:throughput`.
//!
//! Each usable model gets an expected value for the next request, not its raw metric:
//! - latency: `ttft * (1 + slope * in_flight) / (1 - min(err, 0.9))`
//! - throughput: `tps / (1 + slope * in_flight) * (1 - min(err, 0.9))`
//!
//! `ttft` and `tps` are as the model shows them idle (`ttft` for this request's size, see
//! `stats::LineFit::prefill_ms_per_kib`) and `slope` is how much each request in flight slows this model down,
//! fitted from its own samples (`stats::LineFit::load_slope`).
//!
//! The load term is what stops herding: with raw metrics every worker would send everything
//! to the current leader until it collapses, while here each request in flight makes the
//! leader look a little worse, so traffic spreads in proportion to how much better it is.
//! A linear term is the simplest model of a server sharing itself among concurrent requests.
//! The error term reads `1 - err` as the chance the attempt succeeds: a failing model costs a
//! retry elsewhere (longer wait) and delivers nothing (fewer tokens). It is capped at 0.9 so
//! a model with a brief burst of failures is penalised, not erased; cooldown handles models
//! that are down.
//!
//! Only measured models are ranked. With probability `explore_share` the pick instead goes to
//! a model at random among those without data, with stale data or with too little evidence;
//! when every model is fresh, among the runners-up. So measurements stay current at a bounded
//! cost, and a runner-up that got faster is found within a few seconds of traffic. When nobody is measured,
//! pool order decides, as for plain failover. (Cold-start probing of never-measured models
//! happens before ranking, in `resolve::decide`.)

use crate::stats::StatsView;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Position in the pool's list.
    pub position: usize,
    pub stats: StatsView,
    pub in_flight: u32,
    pub cooling: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankPolicy {
    /// Probability of exploring when some model needs it.
    pub explore_share: f64,
    /// Data older than this makes a model worth exploring (it is still ranked).
    pub stale_after_ms: u64,
    /// Evidence below which a metric counts as missing.
    pub min_weight: f64,
}

impl RankPolicy {
    pub const DEFAULT: RankPolicy = RankPolicy {
        explore_share: 0.05,
        stale_after_ms: 30_000,
        min_weight: 0.2,
    };
}

impl Default for RankPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    Latency,
    Throughput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub position: usize,
    pub reason: PickReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickReason {
    /// Best expected value among measured models.
    Best,
    /// A model never measured at all, probed before ranking (one request at a time).
    ColdStart,
    /// A model without usable or recent data, picked to measure it.
    Explore,
    /// Nothing measured: pool order.
    NoData,
    /// Every model is cooling down: pool order, still tried.
    AllCooling,
}

impl PickReason {
    /// As `x-model-router-pick` and the access log show it.
    pub fn as_str(self) -> &'static str {
        match self {
            PickReason::Best => "best",
            PickReason::ColdStart => "cold-start",
            PickReason::Explore => "explore",
            PickReason::NoData => "no-data",
            PickReason::AllCooling => "all-cooling",
        }
    }
}

/// Above this, more errors no longer lower the score.
const MAX_ERROR_RATE: f64 = 0.9;

/// `None` only for an empty pool. The same `random` always gives the same pick.
pub fn pick(
    objective: Objective,
    candidates: &[Candidate],
    random: u64,
    policy: &RankPolicy,
) -> Option<Pick> {
    let first = candidates.iter().map(|c| c.position).min()?;
    let live = || candidates.iter().filter(|c| !c.cooling);
    let Some(first_live) = live().map(|c| c.position).min() else {
        return Some(Pick {
            position: first,
            reason: PickReason::AllCooling,
        });
    };

    let mut best: Option<(f64, usize)> = None;
    for c in live() {
        let Some(cost) = cost(objective, c, policy) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((best_cost, best_position)) => {
                cost < best_cost || (cost == best_cost && c.position < best_position)
            }
        };
        if better {
            best = Some((cost, c.position));
        }
    }
    let best_position = best.map(|(_, position)| position);

    // Callers may pass a counter or a timestamp: mix before splitting into two draws.
    let r = splitmix64(random);
    let roll = (r & 0xffff_ffff) as f64 / 4_294_967_296.0;
    if roll < policy.explore_share {
        // Models lacking fresh data first; when every model is fresh, the runner-up measured
        // longest ago, so one that became faster is noticed without waiting for its data to
        // go stale (a rarely used model would otherwise be probed only by chance).
        let lacking = || live().filter(|c| needs_exploring(objective, c, policy));
        let runners_up = || live().filter(|c| Some(c.position) != best_position);
        // Multiply-shift maps the high 32 bits uniformly onto 0..n.
        let k = |n: usize| (((r >> 32) * n as u64) >> 32) as usize;
        let n_lacking = lacking().count();
        let chosen = if n_lacking > 0 {
            lacking().nth(k(n_lacking))
        } else {
            runners_up().fold(None, |oldest: Option<&Candidate>, c| match oldest {
                Some(o)
                    if o.stats.age_ms.unwrap_or(u64::MAX) >= c.stats.age_ms.unwrap_or(u64::MAX) =>
                {
                    Some(o)
                }
                _ => Some(c),
            })
        };
        if let Some(c) = chosen {
            return Some(Pick {
                position: c.position,
                reason: PickReason::Explore,
            });
        }
    }

    Some(match best_position {
        Some(position) => Pick {
            position,
            reason: PickReason::Best,
        },
        None => Pick {
            position: first_live,
            reason: PickReason::NoData,
        },
    })
}

/// The metric the objective ranks by, if there is enough evidence for it.
fn usable_metric(objective: Objective, stats: &StatsView, policy: &RankPolicy) -> Option<f64> {
    let (value, weight) = match objective {
        Objective::Latency => (stats.ttft_ms?, stats.weight_ttft),
        Objective::Throughput => (stats.tokens_per_sec?, stats.weight_tps),
    };
    (value.is_finite() && value >= 0.0 && weight >= policy.min_weight).then_some(value)
}

fn needs_exploring(objective: Objective, c: &Candidate, policy: &RankPolicy) -> bool {
    usable_metric(objective, &c.stats, policy).is_none()
        || c.stats.age_ms.is_none_or(|age| age > policy.stale_after_ms)
}

/// Expected cost of sending the next request to `c`; lower is better.
fn cost(objective: Objective, c: &Candidate, policy: &RankPolicy) -> Option<f64> {
    let metric = usable_metric(objective, &c.stats, policy)?;
    let err = c.stats.error_rate;
    let success = 1.0
        - if err.is_nan() {
            0.0
        } else {
            err.clamp(0.0, MAX_ERROR_RATE)
        };
    let slope = match objective {
        Objective::Latency => c.stats.load_slope_ttft,
        Objective::Throughput => c.stats.load_slope_tps,
    };
    // `max` also turns a NaN slope into 0.
    let load = 1.0 + slope.max(0.0) * f64::from(c.in_flight);
    Some(match objective {
        Objective::Latency => metric * load / success,
        Objective::Throughput => -(metric / load * success),
    })
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RankPolicy = RankPolicy::DEFAULT;

    /// A seed whose first draw does not explore, for tests of ranking alone.
    const NO_EXPLORE: u64 = 1;

    #[test]
    fn the_no_explore_seed_does_not_explore() {
        let roll = (splitmix64(NO_EXPLORE) & 0xffff_ffff) as f64 / 4_294_967_296.0;
        assert!(roll >= 0.2, "{roll}");
    }

    fn measured(ttft: f64, tps: f64) -> StatsView {
        StatsView {
            ttft_ms: Some(ttft),
            tokens_per_sec: Some(tps),
            error_rate: 0.0,
            weight_ttft: 5.0,
            weight_tps: 5.0,
            load_slope_ttft: 0.5,
            load_slope_tps: 0.5,
            ttft_ms_per_kib: 0.0,
            typical_prompt_kib: 0.0,
            age_ms: Some(1000),
            samples: 10,
        }
    }

    fn model(position: usize, stats: StatsView) -> Candidate {
        Candidate {
            position,
            stats,
            in_flight: 0,
            cooling: false,
        }
    }

    fn loaded(mut c: Candidate, in_flight: u32) -> Candidate {
        c.in_flight = in_flight;
        c
    }

    fn failing(mut c: Candidate, error_rate: f64) -> Candidate {
        c.stats.error_rate = error_rate;
        c
    }

    fn cooling(mut c: Candidate) -> Candidate {
        c.cooling = true;
        c
    }

    fn stale(mut c: Candidate) -> Candidate {
        c.stats.age_ms = Some(POLICY.stale_after_ms + 1);
        c
    }

    fn pick_at(objective: Objective, candidates: &[Candidate]) -> Option<Pick> {
        pick(objective, candidates, NO_EXPLORE, &POLICY)
    }

    fn best(position: usize) -> Option<Pick> {
        Some(Pick {
            position,
            reason: PickReason::Best,
        })
    }

    #[test]
    fn ranking_prefers_the_best_metric_under_equal_load() {
        use Objective::*;
        let a = model(0, measured(300.0, 40.0));
        let b = model(1, measured(120.0, 25.0));
        let c = model(2, measured(200.0, 90.0));
        let cases = [
            (Latency, vec![a, b, c], 1),
            (Throughput, vec![a, b, c], 2),
            (Latency, vec![loaded(a, 3), loaded(b, 3), loaded(c, 3)], 1),
            (
                Throughput,
                vec![loaded(a, 3), loaded(b, 3), loaded(c, 3)],
                2,
            ),
            (Latency, vec![c, a], 2),
            (Throughput, vec![a, b], 0),
        ];
        for (objective, candidates, want) in cases {
            assert_eq!(pick_at(objective, &candidates), best(want), "{objective:?}");
        }
    }

    #[test]
    fn loaded_leader_loses_to_idle_runner_up() {
        use Objective::*;
        // Leader 100 ms vs 150 ms idle: 100 * (1 + 0.5 n) > 150 once n >= 2.
        // Leader 100 tok/s vs 60 tok/s idle: 100 / (1 + 0.5 n) < 60 once n >= 2.
        let cases = [
            (Latency, 0, 0),
            (Latency, 1, 0),
            (Latency, 2, 1),
            (Latency, 10, 1),
            (Throughput, 0, 0),
            (Throughput, 1, 0),
            (Throughput, 2, 1),
        ];
        for (objective, leader_load, want) in cases {
            let leader = loaded(model(0, measured(100.0, 100.0)), leader_load);
            let runner_up = model(1, measured(150.0, 60.0));
            assert_eq!(
                pick_at(objective, &[leader, runner_up]),
                best(want),
                "{objective:?} leader in flight {leader_load}"
            );
        }
    }

    #[test]
    fn a_model_that_slows_less_under_load_keeps_more_of_it() {
        // Same idle speed; the first model's own samples say it barely slows down per request.
        let mut batching = measured(100.0, 100.0);
        batching.load_slope_ttft = 0.1;
        batching.load_slope_tps = 0.1;
        for objective in [Objective::Latency, Objective::Throughput] {
            let mut pool = [model(0, batching), model(1, measured(100.0, 100.0))];
            for _ in 0..12 {
                let p = pick_at(objective, &pool).unwrap();
                pool[p.position].in_flight += 1;
            }
            // Costs stay level: 1 + 0.1 a = 1 + 0.5 b with a + b = 12.
            assert_eq!(
                (pool[0].in_flight, pool[1].in_flight),
                (10, 2),
                "{objective:?}"
            );
        }
    }

    #[test]
    fn load_spreads_traffic_instead_of_herding() {
        // Requests that never finish: each pick adds load to the model picked.
        let mut pool = [
            model(0, measured(100.0, 100.0)),
            model(1, measured(150.0, 60.0)),
            model(2, measured(400.0, 20.0)),
        ];
        for _ in 0..12 {
            let p = pick_at(Objective::Latency, &pool).unwrap();
            pool[p.position].in_flight += 1;
        }
        let loads: Vec<u32> = pool.iter().map(|c| c.in_flight).collect();
        assert!(loads[0] > loads[1] && loads[1] > loads[2], "{loads:?}");
        assert!(loads[1] >= 3, "{loads:?}");
    }

    #[test]
    fn error_heavy_models_lose() {
        use Objective::*;
        let fast = model(0, measured(100.0, 100.0));
        let slow = model(1, measured(180.0, 60.0));
        let cases = [
            (Latency, 0.0, 0),
            (Latency, 0.3, 0), // 100 / 0.7 = 143 < 180
            (Latency, 0.5, 1), // 100 / 0.5 = 200 > 180
            (Latency, 1.0, 1),
            (Throughput, 0.3, 0), // 70 > 60
            (Throughput, 0.5, 1), // 50 < 60
            (Throughput, f64::NAN, 0),
        ];
        for (objective, err, want) in cases {
            assert_eq!(
                pick_at(objective, &[failing(fast, err), slow]),
                best(want),
                "{objective:?} error rate {err}"
            );
        }
        // Both failing all the time: capped, so the better metric still decides.
        assert_eq!(
            pick_at(Latency, &[failing(slow, 1.0), failing(fast, 1.0)]),
            best(0)
        );
    }

    #[test]
    fn cooling_models_are_skipped_and_all_cooling_keeps_pool_order() {
        use Objective::*;
        let a = model(0, measured(100.0, 100.0));
        let b = model(1, measured(200.0, 50.0));
        let none = model(2, StatsView::default());
        let cases = [
            (vec![cooling(a), b], best(1)),
            (vec![cooling(a), cooling(b), none], nodata(2)),
            (
                vec![cooling(a), cooling(b)],
                Some(Pick {
                    position: 0,
                    reason: PickReason::AllCooling,
                }),
            ),
            (
                vec![cooling(b), cooling(a)],
                Some(Pick {
                    position: 0,
                    reason: PickReason::AllCooling,
                }),
            ),
            (vec![], None),
        ];
        for (candidates, want) in cases {
            for objective in [Latency, Throughput] {
                assert_eq!(pick_at(objective, &candidates), want, "{candidates:?}");
            }
        }
    }

    fn nodata(position: usize) -> Option<Pick> {
        Some(Pick {
            position,
            reason: PickReason::NoData,
        })
    }

    #[test]
    fn ties_go_to_the_earlier_pool_position() {
        let same = measured(100.0, 50.0);
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let pool: Vec<Candidate> = order.iter().map(|&p| model(p, same)).collect();
            assert_eq!(pick_at(Objective::Latency, &pool), best(0), "{order:?}");
            assert_eq!(pick_at(Objective::Throughput, &pool), best(0), "{order:?}");
        }
    }

    #[test]
    fn models_without_data_neither_win_nor_lose_by_default_zero() {
        use Objective::*;
        let measured_slow = model(1, measured(900.0, 5.0));
        let unmeasured = model(0, StatsView::default());
        let thin = model(
            0,
            StatsView {
                weight_ttft: 0.1,
                weight_tps: 0.1,
                ..measured(1.0, 1e6)
            },
        );
        let zero_tps = model(0, measured(10.0, 0.0));
        let cases = [
            (Latency, vec![unmeasured, measured_slow], best(1)),
            (Throughput, vec![unmeasured, measured_slow], best(1)),
            (Latency, vec![thin, measured_slow], best(1)),
            (Throughput, vec![thin, measured_slow], best(1)),
            (Latency, vec![unmeasured, thin], nodata(0)),
            (Throughput, vec![measured_slow, unmeasured], best(1)),
            // A measured zero is real data, unlike a missing value.
            (Throughput, vec![zero_tps, measured_slow], best(1)),
            (Latency, vec![zero_tps, measured_slow], best(0)),
        ];
        for (objective, candidates, want) in cases {
            assert_eq!(pick_at(objective, &candidates), want, "{candidates:?}");
        }
    }

    #[test]
    fn stale_data_still_ranks() {
        let old_fast = stale(model(0, measured(100.0, 100.0)));
        let fresh_slow = model(1, measured(200.0, 50.0));
        assert_eq!(
            pick_at(Objective::Latency, &[old_fast, fresh_slow]),
            best(0)
        );
    }

    use crate::test_support::XorShift;

    /// Picks per position and how many explored, over `n` seeded draws.
    fn tally(objective: Objective, pool: &[Candidate], n: usize) -> (Vec<usize>, usize) {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let slots = pool.iter().map(|c| c.position + 1).max().unwrap_or(0);
        let mut per_position = vec![0; slots];
        let mut explored = 0;
        for _ in 0..n {
            let p = pick(objective, pool, rng.next(), &POLICY).unwrap();
            per_position[p.position] += 1;
            explored += usize::from(p.reason == PickReason::Explore);
        }
        (per_position, explored)
    }

    #[test]
    fn exploration_share_stays_within_bounds() {
        use Objective::*;
        let leader = model(0, measured(100.0, 100.0));
        let fresh = model(1, measured(200.0, 50.0));
        let unmeasured = model(2, StatsView::default());
        let old = stale(model(3, measured(300.0, 30.0)));
        let cases: [(Objective, Vec<Candidate>, f64); 7] = [
            // All fresh: the runner-up is probed, so a runner-up that got faster is noticed.
            (Latency, vec![leader, fresh], 0.05),
            (Throughput, vec![leader, fresh], 0.05),
            (Latency, vec![leader], 0.0),
            (Latency, vec![leader, fresh, unmeasured], 0.05),
            (Latency, vec![leader, fresh, unmeasured, old], 0.05),
            (Throughput, vec![leader, unmeasured, old], 0.05),
            // Cooling models are not explored either.
            (Latency, vec![leader, cooling(unmeasured)], 0.0),
        ];
        for (objective, pool, share) in cases {
            let (_, explored) = tally(objective, &pool, 10_000);
            let got = explored as f64 / 10_000.0;
            assert!((got - share).abs() <= 0.01, "{objective:?} {pool:?}: {got}");
        }
    }

    #[test]
    fn exploring_fresh_runners_up_probes_the_one_measured_longest_ago() {
        let mut recent = model(1, measured(200.0, 50.0));
        recent.stats.age_ms = Some(100);
        let mut older = model(2, measured(300.0, 30.0));
        older.stats.age_ms = Some(5_000);
        let pool = [model(0, measured(100.0, 100.0)), recent, older];
        let (per_position, explored) = tally(Objective::Latency, &pool, 10_000);
        assert!(explored > 300, "{explored}");
        assert_eq!(per_position[1], 0, "{per_position:?}");
        assert_eq!(per_position[2], explored, "{per_position:?}");
    }

    #[test]
    fn exploration_is_uniform_among_models_that_need_it() {
        let pool = [
            model(0, measured(100.0, 100.0)),
            model(1, StatsView::default()),
            stale(model(2, measured(300.0, 30.0))),
        ];
        let (per_position, explored) = tally(Objective::Latency, &pool, 40_000);
        assert!((1600..=2400).contains(&explored), "{explored}");
        let (a, b) = (per_position[1], per_position[2]);
        assert!(a.abs_diff(b) * 5 < explored, "{per_position:?}");
        assert_eq!(per_position[0] + a + b, 40_000);
    }

    #[test]
    fn the_same_random_gives_the_same_pick() {
        let pool = [
            model(0, measured(100.0, 100.0)),
            model(1, StatsView::default()),
            model(2, StatsView::default()),
        ];
        let mut rng = XorShift(7);
        for _ in 0..1000 {
            let r = rng.next();
            assert_eq!(
                pick(Objective::Latency, &pool, r, &POLICY),
                pick(Objective::Latency, &pool, r, &POLICY)
            );
        }
    }

    #[test]
    fn explore_share_extremes() {
        let pool = [
            model(0, measured(100.0, 100.0)),
            model(1, StatsView::default()),
        ];
        let policy = |explore_share| RankPolicy {
            explore_share,
            ..POLICY
        };
        let mut rng = XorShift(99);
        for _ in 0..1000 {
            let r = rng.next();
            let never = pick(Objective::Latency, &pool, r, &policy(0.0)).unwrap();
            let always = pick(Objective::Latency, &pool, r, &policy(1.0)).unwrap();
            let nan = pick(Objective::Latency, &pool, r, &policy(f64::NAN)).unwrap();
            assert_eq!(never.reason, PickReason::Best);
            assert_eq!((always.position, always.reason), (1, PickReason::Explore));
            assert_eq!(nan.reason, PickReason::Best);
        }
    }
}
