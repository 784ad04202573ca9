//! From the body's `model` to where the request goes: an exact model name first, then a pool
//! alias (case-insensitive) with an optional `:strategy`.

use crate::config::{
    ModelId, PoolId, RouterConfig, MAX_POOL_MODELS, STRATEGY_LATENCY, STRATEGY_THROUGHPUT,
};
use crate::cooldown::{Availability, CooldownState};
use crate::errors::ClientError;
use crate::stats::StatsView;
use crate::strategy::{pick, Candidate, Objective, PickReason, RankPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Pool order; models cooling down are skipped for the first attempt.
    Failover,
    Latency,
    Throughput,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Failover => "failover",
            Strategy::Latency => STRATEGY_LATENCY,
            Strategy::Throughput => STRATEGY_THROUGHPUT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Model(ModelId),
    Pool { pool: PoolId, strategy: Strategy },
}

pub fn resolve(config: &RouterConfig, requested: &str) -> Result<Target, ClientError> {
    if let Some(model) = config.model_by_name(requested) {
        return Ok(Target::Model(model));
    }
    let (alias, strategy) = match requested.split_once(':') {
        None => (requested, None),
        Some((alias, strategy)) => (alias, Some(strategy)),
    };
    let Some(pool) = config.pool_by_alias(alias) else {
        return Err(ClientError::unknown_model(requested));
    };
    let strategy = match strategy {
        None => Strategy::Failover,
        Some(s) if s.eq_ignore_ascii_case(STRATEGY_LATENCY) => Strategy::Latency,
        Some(s) if s.eq_ignore_ascii_case(STRATEGY_THROUGHPUT) => Strategy::Throughput,
        Some(_) => return Err(ClientError::unknown_strategy(requested, alias)),
    };
    Ok(Target::Pool { pool, strategy })
}

/// Live data about models, read from wherever it is kept (shared data in the filter).
pub trait LiveData {
    fn cooldown(&mut self, model: ModelId) -> CooldownState;
    fn stats(&mut self, model: ModelId) -> StatsView;
    fn in_flight(&mut self, model: ModelId) -> u32;
    /// Takes `model`'s probe lease for this request if it is free (compare-and-swap in the
    /// filter, so one worker wins); true when this request is the probe.
    fn take_probe_lease(&mut self, model: ModelId, now_ms: u64, lease_ms: u64) -> bool;
}

/// Where the first attempt goes and how many more Envoy may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDecision {
    pub target: Target,
    pub first_model: ModelId,
    /// Position of `first_model` in the pool's list (0 for a model target).
    pub first_position: usize,
    /// Retries Envoy may make: up to the last model in failover order that is not cooling
    /// down, so a pool whose other models all cool down costs one attempt, not one per model.
    pub max_retries: usize,
    /// Why a ranked strategy picked `first_model` (`None` for failover and models).
    pub reason: Option<PickReason>,
}

/// `random` drives exploration; the same value gives the same decision.
/// `prompt_kib`: the request body's size, for TTFT predictions that include prefill.
pub fn decide(
    config: &RouterConfig,
    target: Target,
    now_ms: u64,
    live: &mut impl LiveData,
    random: u64,
    prompt_kib: f64,
    policy: &RankPolicy,
) -> Option<RouteDecision> {
    let Target::Pool { pool, strategy } = target else {
        let Target::Model(model) = target else {
            return None;
        };
        return Some(RouteDecision {
            target,
            first_model: model,
            first_position: 0,
            max_retries: 0,
            reason: None,
        });
    };
    let members = &config.pool(pool)?.members;
    // Read once: the decision and the retry count must see the same states.
    let mut availability = [Availability::Healthy; MAX_POOL_MODELS];
    for (slot, &m) in availability.iter_mut().zip(members) {
        *slot = live.cooldown(m).availability(now_ms);
    }
    let availability = availability.get(..members.len())?;
    // A probe that has not answered within one attempt deadline lets the next request probe.
    let lease_ms = config.settings.attempt_timeout_ms;
    let (first_position, reason) = match strategy {
        // Pool order: the first healthy model, or a recovering one this request may probe;
        // when none is open, the pool's first model (no request fails untried).
        Strategy::Failover => {
            let open = availability
                .iter()
                .enumerate()
                .find(|&(position, a)| match a {
                    Availability::Healthy => true,
                    Availability::Probe => members
                        .get(position)
                        .is_some_and(|&m| live.take_probe_lease(m, now_ms, lease_ms)),
                    Availability::Cooling | Availability::Probing => false,
                })
                .map_or(0, |(position, _)| position);
            (open, None)
        }
        Strategy::Latency | Strategy::Throughput => ranked_first(
            strategy,
            members,
            availability,
            live,
            (random, prompt_kib),
            policy,
            (now_ms, lease_ms),
        )?,
    };
    Some(RouteDecision {
        target,
        first_model: *members.get(first_position)?,
        first_position,
        max_retries: failover_retries(availability, first_position),
        reason,
    })
}

/// A recovering model competes on its numbers like the others (its failures already weigh
/// on them); only if it wins does the request try to take its probe lease, and if another
/// request holds it, the pick is made again without it.
fn ranked_first(
    strategy: Strategy,
    members: &[ModelId],
    availability: &[Availability],
    live: &mut impl LiveData,
    (random, prompt_kib): (u64, f64),
    policy: &RankPolicy,
    (now_ms, lease_ms): (u64, u64),
) -> Option<(usize, Option<PickReason>)> {
    let objective = if strategy == Strategy::Latency {
        Objective::Latency
    } else {
        Objective::Throughput
    };
    let mut candidates: Vec<Candidate> = members
        .iter()
        .zip(availability)
        .enumerate()
        .map(|(position, (&m, a))| Candidate {
            position,
            stats: live.stats(m).for_prompt(prompt_kib),
            in_flight: live.in_flight(m),
            cooling: !matches!(a, Availability::Healthy | Availability::Probe),
        })
        .collect();
    loop {
        // Cold start: a model never measured at all gets one probe at a time, so a new or
        // restarted router learns every model within its first requests instead of
        // waiting for the random exploration share to land on each.
        let cold = candidates
            .iter()
            .find(|c| c.stats.samples == 0 && c.in_flight == 0 && !c.cooling);
        let (position, reason) = match cold {
            Some(c) => (c.position, PickReason::ColdStart),
            None => {
                let p = pick(objective, &candidates, random, policy)?;
                (p.position, p.reason)
            }
        };
        let needs_lease = availability.get(position) == Some(&Availability::Probe);
        if !needs_lease
            || members
                .get(position)
                .is_some_and(|&m| live.take_probe_lease(m, now_ms, lease_ms))
        {
            return Some((position, Some(reason)));
        }
        // Someone else probes it: skip it like a cooling model. Terminates: each round
        // marks one more candidate cooling, and `pick` answers even when all are.
        match candidates.get_mut(position) {
            Some(c) if !c.cooling => c.cooling = true,
            _ => return Some((position, Some(reason))),
        }
    }
}

/// Storm control: failover continues in pool order (wrapping around) up to the last model
/// after the first that is not cooling down; models cooling down are not tried again by
/// failover. With every other model cooling, a request makes exactly one attempt, so a
/// fleet-wide outage does not multiply the load by the pool size. A model past its cooldown
/// stays a failover target whether or not a probe of it is out: the lease only keeps
/// requests from *starting* there together. Excluding such models sent requests whose first
/// model failed to the client with an error while the model after it was fine (found by the
/// soak: a model nobody chose first since an outage was never probed, and while a probe was
/// out the rest fell back to the failing first model with no failover).
pub fn failover_retries(availability: &[Availability], first_position: usize) -> usize {
    let n = availability.len();
    (1..n)
        .rev()
        .find(|k| {
            availability
                .get((first_position + k) % n)
                .is_some_and(|a| *a != Availability::Cooling)
        })
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn config() -> RouterConfig {
        RouterConfig::from_json(
            br#"{"models":[
                {"name":"big","endpoint":"http://127.0.0.1:1"},
                {"name":"fast","endpoint":"http://127.0.0.1:2"},
                {"name":"qwen:7b","endpoint":"http://127.0.0.1:3"},
                {"name":"default:latency","endpoint":"http://127.0.0.1:4"}],
              "pools":{"Default":["big","fast","qwen:7b"],"solo":["fast"]}}"#,
        )
        .unwrap()
    }

    #[test]
    fn model_names_win_then_aliases_match_case_insensitively() {
        let c = config();
        let pool = |alias| c.pool_by_alias(alias).unwrap();
        let cases: &[(&str, Target)] = &[
            ("big", Target::Model(0)),
            ("qwen:7b", Target::Model(2)),
            ("default:latency", Target::Model(3)),
            (
                "default",
                Target::Pool {
                    pool: pool("default"),
                    strategy: Strategy::Failover,
                },
            ),
            (
                "DEFAULT",
                Target::Pool {
                    pool: pool("default"),
                    strategy: Strategy::Failover,
                },
            ),
            (
                "Default:Throughput",
                Target::Pool {
                    pool: pool("default"),
                    strategy: Strategy::Throughput,
                },
            ),
            (
                "solo:latency",
                Target::Pool {
                    pool: pool("solo"),
                    strategy: Strategy::Latency,
                },
            ),
        ];
        for (requested, want) in cases {
            assert_eq!(resolve(&c, requested), Ok(*want), "{requested}");
        }
    }

    #[test]
    fn unknown_names_and_strategies_are_model_not_found() {
        let c = config();
        for requested in [
            "Big",
            "nope",
            "default:cheapest",
            "default:",
            ":latency",
            "",
        ] {
            let e = resolve(&c, requested).unwrap_err();
            assert_eq!((e.status, e.code), (404, "model_not_found"), "{requested}");
        }
        assert!(resolve(&c, "default:cheapest")
            .unwrap_err()
            .message
            .contains("default:latency"));
    }

    /// Live data for tests: per model (cooling until, ttft ms, tokens/s, in flight).
    /// `.1` holds sample counts per model; missing entries mean "measured" (10 samples).
    pub(crate) struct Table(pub Vec<(u64, Option<f64>, Option<f64>, u32)>, pub Vec<u64>);

    impl LiveData for Table {
        fn cooldown(&mut self, m: ModelId) -> CooldownState {
            let until_ms = self.0[m].0;
            CooldownState {
                until_ms,
                consecutive_failures: u32::from(until_ms > 0),
                probe_until_ms: 0,
            }
        }
        fn stats(&mut self, m: ModelId) -> StatsView {
            let (_, ttft, tps, _) = self.0[m];
            StatsView {
                ttft_ms: ttft,
                tokens_per_sec: tps,
                weight_ttft: if ttft.is_some() { 5.0 } else { 0.0 },
                weight_tps: if tps.is_some() { 5.0 } else { 0.0 },
                age_ms: Some(100),
                samples: self.1.get(m).copied().unwrap_or(10),
                ..StatsView::default()
            }
        }
        fn in_flight(&mut self, m: ModelId) -> u32 {
            self.0[m].3
        }
        fn take_probe_lease(&mut self, m: ModelId, now_ms: u64, lease_ms: u64) -> bool {
            self.cooldown(m)
                .with_probe_lease(now_ms, lease_ms)
                .is_some()
        }
    }

    type Row = (u64, Option<f64>, Option<f64>, u32);
    const NO_EXPLORE: RankPolicy = RankPolicy {
        explore_share: 0.0,
        ..RankPolicy::DEFAULT
    };
    const IDLE: Row = (0, None, None, 0);

    fn first(c: &RouterConfig, requested: &str, table: &[Row]) -> (ModelId, usize) {
        let target = resolve(c, requested).unwrap();
        let d = decide(
            c,
            target,
            0,
            &mut Table(table.to_vec(), Vec::new()),
            0,
            0.0,
            &NO_EXPLORE,
        )
        .unwrap();
        (d.first_model, d.max_retries)
    }

    #[test]
    fn latency_ranking_predicts_ttft_for_the_request_size() {
        /// Per model: TTFT at a typical 10 KiB and prefill ms per KiB.
        struct Prefill(Vec<(f64, f64)>);
        impl LiveData for Prefill {
            fn cooldown(&mut self, _: ModelId) -> CooldownState {
                CooldownState::default()
            }
            fn stats(&mut self, m: ModelId) -> StatsView {
                let (ttft, per_kib) = self.0[m];
                StatsView {
                    ttft_ms: Some(ttft),
                    weight_ttft: 4.0,
                    ttft_ms_per_kib: per_kib,
                    typical_prompt_kib: 10.0,
                    age_ms: Some(100),
                    samples: 10,
                    ..StatsView::default()
                }
            }
            fn in_flight(&mut self, _: ModelId) -> u32 {
                0
            }
            fn take_probe_lease(&mut self, _: ModelId, _: u64, _: u64) -> bool {
                true
            }
        }
        let c = config();
        let target = resolve(&c, "Default:latency").unwrap();
        // big: slow to start, fast prefill; fast: quick to start, slow prefill.
        let mut live = Prefill(vec![(300.0, 0.5), (100.0, 8.0), (900.0, 0.0)]);
        // (request KiB, first model): fast at 1 KiB (28 vs 295 ms), big at 60 (325 vs 500).
        for (kib, want) in [(0.5, 1), (1.0, 1), (10.0, 1), (60.0, 0), (200.0, 0)] {
            let d = decide(&c, target, 0, &mut live, 0, kib, &NO_EXPLORE).unwrap();
            assert_eq!(d.first_model, want, "{kib} KiB");
        }
    }

    #[test]
    fn never_measured_models_are_probed_one_at_a_time() {
        let c = config();
        let measured = |ttft| (0, Some(ttft), Some(50.0), 0);
        // Model 1 has never been seen and is idle: it gets the probe over the measured best.
        let mut t = Table(
            vec![measured(100.0), IDLE, measured(300.0), IDLE],
            vec![10, 0, 10, 0],
        );
        let target = resolve(&c, "Default:latency").unwrap();
        let d = decide(&c, target, 0, &mut t, 0, 0.0, &NO_EXPLORE).unwrap();
        assert_eq!((d.first_model, d.reason), (1, Some(PickReason::ColdStart)));
        // While its probe is in flight, ranking goes on among the measured.
        t.0[1].3 = 1;
        let d = decide(&c, target, 0, &mut t, 0, 0.0, &NO_EXPLORE).unwrap();
        assert_eq!((d.first_model, d.reason), (0, Some(PickReason::Best)));
    }

    #[test]
    fn pool_decisions_by_strategy() {
        let c = config();
        let ttfts = [
            (0, Some(400.0), None, 0),
            (0, Some(100.0), None, 0),
            (0, Some(200.0), None, 0),
            IDLE,
        ];
        let rates = [
            (0, None, Some(50.0), 0),
            (0, None, Some(90.0), 0),
            (0, None, Some(150.0), 0),
            IDLE,
        ];
        let mut rates_best_cooling = rates;
        rates_best_cooling[2].0 = 10;
        let cases: &[(&str, [Row; 4], (ModelId, usize))] = &[
            ("default", [IDLE; 4], (0, 2)),
            // big cools down: start at fast, and failover stops before big (storm control).
            ("default", [(10, None, None, 0), IDLE, IDLE, IDLE], (1, 1)),
            // Latency: lowest TTFT wins (`default:latency` is a model here, hence the case);
            // the failover strategy ignores the numbers.
            ("Default:latency", ttfts, (1, 2)),
            ("default", ttfts, (0, 2)),
            // Throughput: highest tokens/s wins, unless it is cooling down.
            ("default:throughput", rates, (2, 2)),
            ("default:throughput", rates_best_cooling, (1, 2)),
            // No data at all: pool order.
            ("Default:latency", [IDLE; 4], (0, 2)),
            ("fast", [IDLE; 4], (1, 0)),
        ];
        for (requested, table, want) in cases {
            assert_eq!(first(&c, requested, table), *want, "{requested} {table:?}");
        }
    }

    /// Cooldown states that remember probe leases, as shared data does.
    struct Fleet {
        states: Vec<CooldownState>,
        probes: Vec<ModelId>,
    }

    impl LiveData for Fleet {
        fn cooldown(&mut self, m: ModelId) -> CooldownState {
            self.states[m]
        }
        fn stats(&mut self, _: ModelId) -> StatsView {
            StatsView {
                samples: 10,
                ..StatsView::default()
            }
        }
        fn in_flight(&mut self, _: ModelId) -> u32 {
            0
        }
        fn take_probe_lease(&mut self, m: ModelId, now_ms: u64, lease_ms: u64) -> bool {
            let Some(leased) = self.states[m].with_probe_lease(now_ms, lease_ms) else {
                return false;
            };
            self.states[m] = leased;
            self.probes.push(m);
            true
        }
    }

    const NOW: u64 = 10_000;
    const H: CooldownState = CooldownState {
        until_ms: 0,
        consecutive_failures: 0,
        probe_until_ms: 0,
    };
    /// Cooling down at NOW.
    const C: CooldownState = CooldownState {
        until_ms: NOW + 1,
        consecutive_failures: 1,
        probe_until_ms: 0,
    };
    /// Cooldown over, waiting for a probe.
    const P: CooldownState = CooldownState {
        until_ms: NOW,
        consecutive_failures: 2,
        probe_until_ms: 0,
    };
    /// Cooldown over, another request's probe outstanding.
    const L: CooldownState = CooldownState {
        until_ms: NOW - 5,
        consecutive_failures: 2,
        probe_until_ms: NOW + 1,
    };

    fn decide_at(c: &RouterConfig, requested: &str, fleet: &mut Fleet) -> RouteDecision {
        let target = resolve(c, requested).unwrap();
        decide(c, target, NOW, fleet, 0, 0.0, &NO_EXPLORE).unwrap()
    }

    #[test]
    fn first_model_and_retries_follow_health_probes_and_storm_control() {
        let c = config();
        // Pool "default" = [big, fast, qwen:7b]; (first position, retries, probed models).
        type Expected = (usize, usize, &'static [ModelId]);
        let cases: &[(&str, [CooldownState; 3], Expected)] = &[
            ("all healthy", [H, H, H], (0, 2, &[])),
            (
                "first cooling: skipped, and not retried",
                [C, H, H],
                (1, 1, &[]),
            ),
            (
                "first recovering: this request probes it",
                [P, H, H],
                (0, 2, &[0]),
            ),
            (
                "first being probed by another request: last in failover",
                [L, H, H],
                (1, 2, &[]),
            ),
            (
                "second cooling: passed on the way to the third",
                [H, C, H],
                (0, 2, &[]),
            ),
            ("last cooling: not retried", [H, H, C], (0, 1, &[])),
            ("only a probe open: one attempt", [C, P, C], (1, 0, &[1])),
            (
                "fleet-wide outage: one attempt on the first",
                [C, C, C],
                (0, 0, &[]),
            ),
            (
                "none open: the first, then what is past its cooldown",
                [L, L, C],
                (0, 1, &[]),
            ),
            (
                "recovered, never probed: still failover targets",
                [H, P, P],
                (0, 2, &[]),
            ),
            (
                "first cooling, the rest recovering",
                [C, P, P],
                (1, 1, &[1]),
            ),
        ];
        for (what, states, (position, retries, probes)) in cases {
            let mut fleet = Fleet {
                states: states.to_vec(),
                probes: Vec::new(),
            };
            let d = decide_at(&c, "default", &mut fleet);
            assert_eq!(
                (d.first_position, d.max_retries, fleet.probes.as_slice()),
                (*position, *retries, *probes),
                "{what}"
            );
        }
    }

    #[test]
    fn failover_retries_reach_the_last_model_not_cooling_in_wrapped_order() {
        use Availability::{Cooling as C, Healthy as H, Probe as P, Probing as L};
        let cases: &[(&[Availability], usize, usize)] = &[
            (&[H], 0, 0),
            (&[H, H, H], 0, 2),
            (&[H, H, H], 2, 2),
            (&[C, H, H], 1, 1),
            (&[H, C, H], 1, 2), // from the second: third, then wrap to the first
            (&[H, C, C], 1, 2),
            (&[P, L, C], 0, 1),
            (&[C, C, L], 1, 1),
            (&[H, P, C], 0, 1),
            (&[C, L, P], 1, 1),
            (&[C, C, C], 0, 0),
        ];
        for (availability, first, want) in cases {
            assert_eq!(
                failover_retries(availability, *first),
                *want,
                "{availability:?} from {first}"
            );
        }
    }

    #[test]
    fn a_recovering_model_gets_one_probe_not_a_herd() {
        let c = config();
        let lease_ms = c.settings.attempt_timeout_ms;
        let mut fleet = Fleet {
            states: vec![P, H, H, H],
            probes: Vec::new(),
        };
        // Every worker's next request arrives as big's cooldown ends: one probes big, the
        // others go on to fast while the probe is out.
        let firsts: Vec<ModelId> = (0..8)
            .map(|_| decide_at(&c, "default", &mut fleet).first_model)
            .collect();
        assert_eq!(firsts, [0, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(fleet.probes, [0]);
        // The probe failed: big cools down again, longer, and nobody goes there.
        let policy = crate::cooldown::CooldownPolicy {
            base_ms: 1000,
            max_ms: 8000,
        };
        fleet.states[0] = fleet.states[0].after_failure(NOW, None, policy);
        assert_eq!(decide_at(&c, "default", &mut fleet).first_model, 1);
        // A probe that never reports (its client left) frees the lease when it runs out.
        let mut lost = Fleet {
            states: vec![P, H, H, H],
            probes: Vec::new(),
        };
        assert_eq!(decide_at(&c, "default", &mut lost).first_model, 0);
        let target = resolve(&c, "default").unwrap();
        let later = |at, fleet: &mut Fleet| decide(&c, target, at, fleet, 0, 0.0, &NO_EXPLORE);
        assert_eq!(later(NOW + lease_ms - 1, &mut lost).unwrap().first_model, 1);
        assert_eq!(later(NOW + lease_ms, &mut lost).unwrap().first_model, 0);
        assert_eq!(lost.probes, [0, 0]);
        // The probe succeeded: healthy again, every request goes back to big.
        lost.states[0] = lost.states[0].after_success().unwrap();
        assert_eq!(decide_at(&c, "default", &mut lost).first_model, 0);
        assert_eq!(decide_at(&c, "default", &mut lost).max_retries, 2);
    }

    #[test]
    fn ranked_strategies_let_one_request_probe_a_recovering_model_they_pick() {
        let c = config();
        for requested in ["Default:latency", "default:throughput"] {
            // No numbers anywhere: ranking falls back to pool order, whose first open model
            // is the recovering one.
            let mut fleet = Fleet {
                states: vec![C, P, H, H],
                probes: Vec::new(),
            };
            let d = decide_at(&c, requested, &mut fleet);
            assert_eq!(
                (d.first_model, fleet.probes.as_slice()),
                (1, &[1][..]),
                "{requested}"
            );
            // While its probe is out, the next requests rank without it.
            for _ in 0..3 {
                let d = decide_at(&c, requested, &mut fleet);
                assert_eq!((d.first_model, fleet.probes.len()), (2, 1), "{requested}");
            }
        }
    }
}
