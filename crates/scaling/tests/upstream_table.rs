//! Named table rows reproducing the upstream HPA controller's choices (horizontal.go,
//! replica_calculator.go) on the same inputs. Each row is a sequence of syncs; each step
//! gives the time, what the metric shows, the target's current count and the count upstream
//! would set. Expected values were worked out by hand from the upstream functions named in
//! the row.

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

struct Row {
    name: &'static str,
    config: ScalerConfig,
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
        Row {
            name: "dojo: 400 items at 0 replicas grow by max(2 x current, 4) per sync: 4, 8, 16, 20",
            config: dojo(),
            steps: vec![
                step(0, 400, 0, 4),
                step(5, 400, 4, 8),
                step(10, 400, 8, 16),
                step(15, 400, 16, 20),
            ],
        },
        Row {
            name: "dojo: 200 items settle at ceil(200 / 20) = 10 even when the limit allows 16",
            config: dojo(),
            steps: vec![step(0, 200, 0, 4), step(5, 200, 4, 8), step(10, 200, 8, 10)],
        },
        Row {
            name: "dojo: highest recommendation of the last 20 s holds, edge included, then 0",
            config: dojo(),
            steps: vec![
                step(0, 200, 10, 10),
                step(5, 0, 10, 10),
                step(10, 0, 10, 10),
                step(20, 0, 10, 10),
                step(25, 0, 10, 0),
            ],
        },
        Row {
            name: "tolerance: ratio exactly 1.1 keeps the count (isWithin includes its edges)",
            config: ScalerConfig::hpa_default(),
            steps: vec![step(0, 110, 5, 5)],
        },
        Row {
            name: "tolerance: ratio 1.11 scales to ceil(111 / 20) = 6",
            config: ScalerConfig::hpa_default(),
            steps: vec![step(0, 111, 5, 6)],
        },
        Row {
            name: "tolerance: ratio exactly 0.9 keeps the count",
            config: ScalerConfig::hpa_default(),
            steps: vec![step(0, 90, 5, 5)],
        },
        Row {
            name: "default behavior: ratio 0.89 recommends 9, held at 10 for the 300 s window",
            config: ScalerConfig::hpa_default(),
            steps: vec![
                step(0, 178, 10, 10),
                step(150, 178, 10, 10),
                step(299, 178, 10, 10),
                step(301, 178, 10, 9),
            ],
        },
        Row {
            name: "default behavior: max(4 pods, 100 %) per 15 s from the period's start count",
            config: ScalerConfig {
                min_replicas: 1,
                ..ScalerConfig::hpa_default()
            },
            steps: vec![
                step(0, 400, 1, 5),
                step(5, 400, 5, 5),
                step(15, 400, 5, 10),
                step(30, 400, 10, 20),
            ],
        },
        Row {
            name: "default behavior: waking from 0 adds at most 4 pods",
            config: ScalerConfig::hpa_default(),
            steps: vec![step(0, 200, 0, 4)],
        },
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
            steps: vec![step(0, 400, 10, 14)],
        },
        Row {
            name: "selectPolicy Disabled: no scale-up at all",
            config: with_rules(
                rules(0, SelectPolicy::Disabled, &[ScalingPolicy::pods(4, 15)]),
                ScalingRules::hpa_scale_down(),
            ),
            steps: vec![step(0, 400, 2, 2)],
        },
        Row {
            name: "Percent scale-up rounds up: +50 % of 3 allows 5",
            config: with_rules(
                rules(0, SelectPolicy::Max, &[ScalingPolicy::percent(50, 60)]),
                ScalingRules::hpa_scale_down(),
            ),
            steps: vec![step(0, 400, 3, 5)],
        },
        Row {
            name: "Percent scale-down truncates: -50 % of 5 leaves 2, then nothing until the period ends",
            config: with_rules(
                ScalingRules::hpa_scale_up(),
                rules(0, SelectPolicy::Max, &[ScalingPolicy::percent(50, 60)]),
            ),
            steps: vec![
                step(0, 0, 5, 2),
                step(10, 0, 2, 2),
                step(60, 0, 2, 1),
                step(120, 0, 1, 0),
            ],
        },
        Row {
            name: "scale-up window: the lowest recommendation of the last 60 s holds",
            config: with_rules(
                rules(60, SelectPolicy::Max, &[ScalingPolicy::percent(1000, 15)]),
                ScalingRules::hpa_scale_down(),
            ),
            steps: vec![step(0, 100, 2, 2), step(30, 100, 2, 2), step(61, 100, 2, 5)],
        },
        Row {
            name: "above max: brought to max without looking at the metric",
            config: ScalerConfig::hpa_default(),
            steps: vec![step(0, 1000, 25, 20)],
        },
        Row {
            name: "below min: brought to min without looking at the metric",
            config: ScalerConfig {
                min_replicas: 3,
                ..ScalerConfig::hpa_default()
            },
            steps: vec![step(0, 0, 1, 3)],
        },
        Row {
            name: "target at 0 with min 1: scaling disabled, stays at 0 whatever waits",
            config: ScalerConfig {
                min_replicas: 1,
                ..ScalerConfig::hpa_default()
            },
            steps: vec![step(0, 500, 0, 0)],
        },
        Row {
            name: "min 0, empty queue at 0 replicas: upstream's NaN ratio keeps 0",
            config: ScalerConfig::hpa_default(),
            steps: vec![step(0, 0, 0, 0), step(15, 0, 0, 0)],
        },
    ]
}

#[test]
fn upstream_hpa_table() {
    let mut failures = Vec::new();
    for row in rows() {
        let mut scaler = Scaler::new(row.config).unwrap();
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
