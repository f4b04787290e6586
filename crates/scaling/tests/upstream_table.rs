//! Named table rows reproducing the upstream HPA controller's choices on the same inputs,
//! checked against the Kubernetes v1.37.2 source, pkg/controller/podautoscaler:
//! horizontal.go (`reconcileAutoscaler`, `shouldComputeMetricsForZeroReplicas`,
//! `stabilizeRecommendation`, `convertDesiredReplicasWithRules`, `calculateScaleUpLimit`,
//! `stabilizeRecommendationWithBehaviors`, `convertDesiredReplicasWithBehaviorRate`,
//! `calculateScaleUpLimitWithScalingRules`, `calculateScaleDownLimitWithBehaviors`,
//! `getReplicasChangePerPeriod`) and replica_calculator.go (`GetObjectPerPodMetricReplicas`,
//! `Tolerances.isWithin`). Each row is a sequence of syncs; each step gives the time, what
//! the metric shows, the target's current count (spec and status alike) and the count
//! upstream sets. Each row's comment names the upstream functions that decide it.

use std::time::Duration;

use ebb_scaling::{
    Behavior, Input, Instant, Scaler, ScalerConfig, ScalingPolicy, ScalingRules, SelectPolicy,
};

struct Step {
    at_secs: u64,
    waiting: u64,
    current: u32,
    expected: u32,
}

const fn step(at_secs: u64, waiting: u64, current: u32, expected: u32) -> Step {
    Step {
        at_secs,
        waiting,
        current,
        expected,
    }
}

/// Whether the HPA took the target to 0 itself before the row starts: upstream's
/// `ScaledToZero` condition, without which a 1.37 HPA leaves a target at 0 alone.
#[derive(Clone, Copy, PartialEq)]
enum Start {
    Fresh,
    ScaledToZeroByHpa,
}

struct Row {
    name: &'static str,
    config: ScalerConfig,
    start: Start,
    steps: Vec<Step>,
}

/// The dojo's HPA: no `behavior`, 20 s downscale stabilization, min 0, max 20, target 20.
fn dojo() -> ScalerConfig {
    ScalerConfig {
        behavior: Behavior::dojo(),
        ..ScalerConfig::hpa_default()
    }
}

fn with_rules(scale_up: ScalingRules, scale_down: ScalingRules) -> ScalerConfig {
    ScalerConfig {
        behavior: Behavior::Rules {
            scale_up,
            scale_down,
        },
        ..ScalerConfig::hpa_default()
    }
}

fn rules(window_secs: u64, select: SelectPolicy, policies: &[ScalingPolicy]) -> ScalingRules {
    ScalingRules {
        stabilization_window: Duration::from_secs(window_secs),
        select_policy: select,
        policies: policies.to_vec(),
    }
}

fn rows() -> Vec<Row> {
    vec![
        // reconcileAutoscaler: at 0 replicas with ScaledToZero, computeReplicasForMetrics;
        // GetObjectPerPodMetricReplicas: 400000m / (20000m × 0) = +Inf is outside isWithin,
        // so ceil(400000 / 20000) = 20; stabilizeRecommendation keeps 20;
        // convertDesiredReplicasWithRules caps at calculateScaleUpLimit = max(2 × current, 4).
        Row {
            name: "dojo: 400 items at 0 replicas grow by max(2 x current, 4) per sync: 4, 8, 16, 20",
            config: dojo(),
            start: Start::ScaledToZeroByHpa,
            steps: vec![
                step(0, 400, 0, 4),
                step(5, 400, 4, 8),
                step(10, 400, 8, 16),
                step(15, 400, 16, 20),
            ],
        },
        // Same functions; at 8 replicas the ratio 200 / 160 = 1.25 is outside isWithin, the
        // recommendation ceil(200 / 20) = 10 is below calculateScaleUpLimit(8) = 16.
        Row {
            name: "dojo: 200 items settle at ceil(200 / 20) = 10 even when the limit allows 16",
            config: dojo(),
            start: Start::ScaledToZeroByHpa,
            steps: vec![step(0, 200, 0, 4), step(5, 200, 4, 8), step(10, 200, 8, 10)],
        },
        // recordInitialRecommendation stores 10 at t = 0; stabilizeRecommendation takes the
        // max of samples not Before(now - 20 s): the t = 0 samples still count at t = 20
        // and are out at t = 25; convertDesiredReplicasWithRules lets 0 through (min 0).
        Row {
            name: "dojo: highest recommendation of the last 20 s holds, edge included, then 0",
            config: dojo(),
            start: Start::Fresh,
            steps: vec![
                step(0, 200, 10, 10),
                step(5, 0, 10, 10),
                step(10, 0, 10, 10),
                step(20, 0, 10, 10),
                step(25, 0, 10, 0),
            ],
        },
        // reconcileAutoscaler sets ScaledToZero on the rescale 1 → 0 (min 0, Object metric);
        // at 0, shouldComputeMetricsForZeroReplicas then computes: +Inf ratio, ceil(100 / 20)
        // = 5, capped at calculateScaleUpLimit(0) = 4.
        Row {
            name: "dojo: after scaling to 0 itself, the HPA scales from 0 again when items wait",
            config: dojo(),
            start: Start::Fresh,
            steps: vec![step(0, 0, 1, 1), step(25, 0, 1, 0), step(30, 100, 0, 4)],
        },
        // shouldComputeMetricsForZeroReplicas(0, false, false) = (false, true): "ScalingDisabled",
        // desired 0, no rescale, whatever the metric says (1.37 with HPAScaleToZero).
        Row {
            name: "at 0 replicas without the ScaledToZero condition: scaling disabled, min 0 too",
            config: dojo(),
            start: Start::Fresh,
            steps: vec![step(0, 200, 0, 0), step(5, 200, 0, 0)],
        },
        // GetObjectPerPodMetricReplicas: 110000 / (20000 × 5) = 1.1 and isWithin is
        // `1 - 0.1 <= ratio && ratio <= 1 + 0.1`, edges included (both equal 1.1 in float64).
        Row {
            name: "tolerance: ratio exactly 1.1 keeps the count (isWithin includes its edges)",
            config: ScalerConfig::hpa_default(),
            start: Start::Fresh,
            steps: vec![step(0, 110, 5, 5)],
        },
        // GetObjectPerPodMetricReplicas: 1.11 is outside isWithin, ceil(111000 / 20000) = 6;
        // calculateScaleUpLimitWithScalingRules allows max(5 + 4, 2 × 5) = 10.
        Row {
            name: "tolerance: ratio 1.11 scales to ceil(111 / 20) = 6",
            config: ScalerConfig::hpa_default(),
            start: Start::Fresh,
            steps: vec![step(0, 111, 5, 6)],
        },
        // GetObjectPerPodMetricReplicas / isWithin: 90000 / 100000 = 0.9 = 1 - 0.1.
        Row {
            name: "tolerance: ratio exactly 0.9 keeps the count",
            config: ScalerConfig::hpa_default(),
            start: Start::Fresh,
            steps: vec![step(0, 90, 5, 5)],
        },
        // GetObjectPerPodMetricReplicas: 0.89 gives ceil(8.9) = 9;
        // stabilizeRecommendationWithBehaviors: samples After(now - 300 s) cap the count at
        // 10 (the initial recommendation and t = 0's 10): strictly after, so at t = 300 the
        // t = 0 samples are out; calculateScaleDownLimitWithBehaviors (100 % per 15 s) lets 9 through.
        Row {
            name: "default behavior: ratio 0.89 recommends 9, held at 10 for the 300 s window",
            config: ScalerConfig::hpa_default(),
            start: Start::Fresh,
            steps: vec![
                step(0, 178, 10, 10),
                step(150, 178, 10, 10),
                step(299, 178, 10, 10),
                step(300, 178, 10, 9),
            ],
        },
        // calculateScaleUpLimitWithScalingRules with getReplicasChangePerPeriod: the period
        // start count is current - added + removed in events After(now - 15 s); at t = 15
        // the t = 0 event is out, so the start is 5 again.
        Row {
            name: "default behavior: max(4 pods, 100 %) per 15 s from the period's start count",
            config: ScalerConfig {
                min_replicas: 1,
                ..ScalerConfig::hpa_default()
            },
            start: Start::Fresh,
            steps: vec![
                step(0, 400, 1, 5),
                step(5, 400, 5, 5),
                step(15, 400, 5, 10),
                step(30, 400, 10, 20),
            ],
        },
        // calculateScaleUpLimitWithScalingRules from 0: max(0 + 4, ceil(0 × 2)) = 4.
        Row {
            name: "default behavior: waking from 0 adds at most 4 pods",
            config: ScalerConfig::hpa_default(),
            start: Start::ScaledToZeroByHpa,
            steps: vec![step(0, 200, 0, 4)],
        },
        // calculateScaleUpLimitWithScalingRules, MinChangePolicySelect: min(10 + 4, 20) = 14.
        Row {
            name: "selectPolicy Min: the smaller of +4 pods and +100 % wins",
            config: with_rules(
                rules(
                    0,
                    SelectPolicy::Min,
                    &[ScalingPolicy::pods(4, 15), ScalingPolicy::percent(100, 15)],
                ),
                ScalingRules::hpa_scale_down(),
            ),
            start: Start::Fresh,
            steps: vec![step(0, 400, 10, 14)],
        },
        // calculateScaleUpLimitWithScalingRules, DisabledPolicySelect: returns currentReplicas.
        Row {
            name: "selectPolicy Disabled: no scale-up at all",
            config: with_rules(
                rules(0, SelectPolicy::Disabled, &[ScalingPolicy::pods(4, 15)]),
                ScalingRules::hpa_scale_down(),
            ),
            start: Start::Fresh,
            steps: vec![step(0, 400, 2, 2)],
        },
        // calculateScaleUpLimitWithScalingRules: int32(math.Ceil(3 × 1.5)) = 5.
        Row {
            name: "Percent scale-up rounds up: +50 % of 3 allows 5",
            config: with_rules(
                rules(0, SelectPolicy::Max, &[ScalingPolicy::percent(50, 60)]),
                ScalingRules::hpa_scale_down(),
            ),
            start: Start::Fresh,
            steps: vec![step(0, 400, 3, 5)],
        },
        // calculateScaleDownLimitWithBehaviors: int32(5 × 0.5) = 2 (truncation); the -3 event
        // keeps the period start at 5 until it is no longer After(now - 60 s).
        Row {
            name: "Percent scale-down truncates: -50 % of 5 leaves 2, then nothing until the period ends",
            config: with_rules(
                ScalingRules::hpa_scale_up(),
                rules(0, SelectPolicy::Max, &[ScalingPolicy::percent(50, 60)]),
            ),
            start: Start::Fresh,
            steps: vec![
                step(0, 0, 5, 2),
                step(10, 0, 2, 2),
                step(60, 0, 2, 1),
                step(120, 0, 1, 0),
            ],
        },
        // stabilizeRecommendationWithBehaviors: the lowest sample After(now - 60 s), here the
        // initial recommendation 2, holds until t = 60 has passed; then 5 (t = 30's sample).
        Row {
            name: "scale-up window: the lowest recommendation of the last 60 s holds",
            config: with_rules(
                rules(60, SelectPolicy::Max, &[ScalingPolicy::percent(1000, 15)]),
                ScalingRules::hpa_scale_down(),
            ),
            start: Start::Fresh,
            steps: vec![step(0, 100, 2, 2), step(30, 100, 2, 2), step(61, 100, 2, 5)],
        },
        // reconcileAutoscaler: currentReplicas > MaxReplicas sets desired = max, no metrics.
        Row {
            name: "above max: brought to max without looking at the metric",
            config: ScalerConfig::hpa_default(),
            start: Start::Fresh,
            steps: vec![step(0, 1000, 25, 20)],
        },
        // reconcileAutoscaler: currentReplicas < minReplicas sets desired = min, no metrics.
        Row {
            name: "below min: brought to min without looking at the metric",
            config: ScalerConfig {
                min_replicas: 3,
                ..ScalerConfig::hpa_default()
            },
            start: Start::Fresh,
            steps: vec![step(0, 0, 1, 3)],
        },
        // shouldComputeMetricsForZeroReplicas(1, false, false) = (false, true): disabled.
        Row {
            name: "target at 0 with min 1: scaling disabled, stays at 0 whatever waits",
            config: ScalerConfig {
                min_replicas: 1,
                ..ScalerConfig::hpa_default()
            },
            start: Start::Fresh,
            steps: vec![step(0, 500, 0, 0)],
        },
        // shouldComputeMetricsForZeroReplicas(1, true, true) = (true, false): computed, then
        // reconcileAutoscaler's "scale to at least minReplicas when scaling from zero" (the
        // condition stays from when min was 0); an empty queue still gives min.
        Row {
            name: "target at 0 with min 2 after the HPA scaled it to 0: brought to min from 0",
            config: ScalerConfig {
                min_replicas: 2,
                ..ScalerConfig::hpa_default()
            },
            start: Start::ScaledToZeroByHpa,
            steps: vec![step(0, 0, 0, 2)],
        },
        // GetObjectPerPodMetricReplicas at 0 replicas: 0 / (20000 × 0) is NaN, outside
        // isWithin, so ceil(0 / 20000) = 0.
        Row {
            name: "min 0, empty queue at 0 replicas: upstream's NaN ratio keeps 0",
            config: ScalerConfig::hpa_default(),
            start: Start::ScaledToZeroByHpa,
            steps: vec![step(0, 0, 0, 0), step(15, 0, 0, 0)],
        },
    ]
}

#[test]
fn upstream_hpa_table() {
    let mut failures = Vec::new();
    for row in rows() {
        let mut scaler = Scaler::new(row.config).unwrap();
        if row.start == Start::ScaledToZeroByHpa {
            scaler = scaler.with_scaled_to_zero();
        }
        for step in &row.steps {
            let input = Input::new(step.waiting, 0, step.current);
            let decision = scaler.decide(&input, Instant::from_secs(step.at_secs));
            if decision.desired_replicas != step.expected {
                failures.push(format!(
                    "{}: at {} s expected {}, got {} ({})",
                    row.name,
                    step.at_secs,
                    step.expected,
                    decision.desired_replicas,
                    decision.reason
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
