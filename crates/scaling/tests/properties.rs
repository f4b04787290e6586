//! Properties that hold for every configuration and every sequence of observations.

use std::time::Duration;

use ebb_scaling::{
    Behavior, Input, Instant, PolicyKind, Rates, Scaler, ScalerConfig, ScalingPolicy, ScalingRules,
    SelectPolicy, Tolerance,
};
use proptest::prelude::*;

fn rules() -> impl Strategy<Value = ScalingRules> {
    let policy =
        (any::<bool>(), 1u32..300, 1u64..120).prop_map(|(pods, value, period)| ScalingPolicy {
            kind: if pods {
                PolicyKind::Pods
            } else {
                PolicyKind::Percent
            },
            value,
            period: Duration::from_secs(period),
        });
    let select = prop_oneof![
        Just(SelectPolicy::Max),
        Just(SelectPolicy::Min),
        Just(SelectPolicy::Disabled)
    ];
    (0u64..600, select, prop::collection::vec(policy, 0..3)).prop_map(
        |(window, select_policy, policies)| ScalingRules {
            stabilization_window: Duration::from_secs(window),
            select_policy,
            policies,
        },
    )
}

fn behavior() -> impl Strategy<Value = Behavior> {
    prop_oneof![
        (0u64..120).prop_map(|secs| Behavior::Unset {
            downscale_stabilization: Duration::from_secs(secs)
        }),
        (rules(), rules()).prop_map(|(scale_up, scale_down)| Behavior::Rules {
            scale_up,
            scale_down
        }),
    ]
}

fn config() -> impl Strategy<Value = ScalerConfig> {
    (
        (0u32..5, 1u32..30, 0.5f64..50.0, 0.0f64..0.5),
        (
            0u64..10,
            0u64..60,
            prop::option::of(1u64..120),
            any::<bool>(),
        ),
        behavior(),
    )
        .prop_map(
            |((min, span, target, tolerance), (activation, cooldown, drain, paused), behavior)| {
                ScalerConfig {
                    min_replicas: min,
                    max_replicas: min.max(1) + span,
                    target_per_replica: target,
                    drain_time: drain.map(Duration::from_secs),
                    tolerance: Tolerance::symmetric(tolerance),
                    activation_threshold: activation,
                    cooldown: Duration::from_secs(cooldown),
                    behavior,
                    paused_at_zero: paused,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct Tick {
    after_ms: u64,
    waiting: u64,
    in_flight: u64,
    rates: Option<(f64, f64)>,
    /// Something else changed the count (a crash, a human): otherwise the last decision.
    replicas_override: Option<u32>,
}

fn ticks() -> impl Strategy<Value = Vec<Tick>> {
    let tick = (
        0u64..20_000,
        prop_oneof![Just(0u64), 0u64..50, 0u64..5_000],
        prop_oneof![Just(0u64), 0u64..40],
        prop::option::of((0.0f64..50.0, 0.01f64..10.0)),
        prop::option::of(0u32..40),
    )
        .prop_map(
            |(after_ms, waiting, in_flight, rates, replicas_override)| Tick {
                after_ms,
                waiting,
                in_flight,
                rates,
                replicas_override,
            },
        );
    prop::collection::vec(tick, 1..60)
}

fn input(tick: &Tick, current: u32) -> Input {
    let input = Input::new(tick.waiting, tick.in_flight, current);
    match tick.rates {
        Some((arrival, service)) => input.with_rates(Rates::new(arrival, service).unwrap()),
        None => input,
    }
}

/// Runs the ticks, feeding each decision back as the next current count.
fn replay(scaler: &mut Scaler, ticks: &[Tick], mut check: impl FnMut(&Input, u32, &str)) {
    let mut now = Instant::EPOCH;
    let mut current = 0;
    for tick in ticks {
        now = now + Duration::from_millis(tick.after_ms);
        current = tick.replicas_override.unwrap_or(current);
        let observed = input(tick, current);
        let decision = scaler.decide(&observed, now);
        check(&observed, decision.desired_replicas, &decision.reason);
        if let Some(average) = decision.average_per_replica {
            assert!(average.is_finite() && average >= 0.0, "average {average}");
        }
        current = decision.desired_replicas;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_above_max_nor_below_min_unless_paused(config in config(), ticks in ticks()) {
        let (min, max, paused) = (config.min_replicas, config.max_replicas, config.paused_at_zero);
        let mut scaler = Scaler::new(config).unwrap();
        replay(&mut scaler, &ticks, |input, desired, reason| {
            assert!(desired <= max, "{desired} > max {max}: {reason}");
            let paused_here = paused && input.current_replicas == 0 && min > 0;
            assert!(desired >= min || paused_here, "{desired} < min {min}: {reason}");
            assert!(!reason.is_empty());
        });
    }

    #[test]
    fn never_scales_to_zero_while_anything_waits_or_is_in_flight(
        config in config(),
        ticks in ticks(),
    ) {
        let mut scaler = Scaler::new(config).unwrap();
        replay(&mut scaler, &ticks, |input, desired, reason| {
            if input.current_replicas > 0 && input.waiting + input.in_flight.unwrap_or(0) > 0 {
                assert!(desired > 0, "to 0 with {input:?}: {reason}");
            }
        });
    }

    #[test]
    fn average_is_absent_exactly_at_zero_replicas(config in config(), ticks in ticks()) {
        let mut scaler = Scaler::new(config).unwrap();
        let mut now = Instant::EPOCH;
        for tick in &ticks {
            now = now + Duration::from_millis(tick.after_ms);
            let current = tick.replicas_override.unwrap_or(0);
            let decision = scaler.decide(&input(tick, current), now);
            prop_assert_eq!(decision.average_per_replica.is_none(), current == 0);
        }
    }

    #[test]
    fn raw_recommendation_is_monotone_in_the_backlog(
        config in config(),
        history in ticks(),
        probe in ticks(),
        extra_waiting in 0u64..5_000,
        extra_in_flight in 0u64..100,
    ) {
        let mut scaler = Scaler::new(config).unwrap();
        replay(&mut scaler, &history, |_, _, _| {});
        for tick in &probe {
            let current = tick.replicas_override.unwrap_or(1);
            let smaller = input(tick, current);
            let larger = Input {
                waiting: smaller.waiting + extra_waiting,
                in_flight: smaller.in_flight.map(|in_flight| in_flight + extra_in_flight),
                ..smaller
            };
            let (low, high) = (scaler.recommend(&smaller), scaler.recommend(&larger));
            prop_assert!(
                low.replicas <= high.replicas,
                "{} for {:?} but {} for {:?}", low.replicas, smaller, high.replicas, larger
            );
        }
    }

    #[test]
    fn deciding_is_deterministic(config in config(), ticks in ticks()) {
        let mut first = Scaler::new(config.clone()).unwrap();
        let mut second = Scaler::new(config).unwrap();
        let mut decisions = Vec::new();
        replay(&mut first, &ticks, |_, desired, reason| decisions.push((desired, reason.to_owned())));
        let mut again = Vec::new();
        replay(&mut second, &ticks, |_, desired, reason| again.push((desired, reason.to_owned())));
        prop_assert_eq!(decisions, again);
    }
}
