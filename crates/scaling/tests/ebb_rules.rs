//! ebb's rules beyond the HPA: scale-to-zero (activation threshold, cooldown, in-flight
//! guard), drain-time mode, scale-up without rate limit, the absent average at 0 replicas,
//! and one-line configuration errors.

use std::time::Duration;

use ebb_scaling::{Error, Input, Instant, Rates, Scaler, ScalerConfig, upstream};

fn at(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

fn ebb(config: ScalerConfig) -> Scaler {
    Scaler::new(config).unwrap()
}

#[test]
fn average_per_replica_is_absent_at_zero_replicas_where_upstream_shows_minus_2_pow_63() {
    // The dojo's HPA at 0 replicas with 200 items waiting (200000m): upstream divides by the
    // status replica count, 0, and Go turns +Inf into −2⁶³; an empty queue gives NaN, same value.
    assert_eq!(
        upstream::hpa_status_average_milli(200_000, 0),
        -9223372036854775808
    );
    assert_eq!(upstream::hpa_status_average_milli(0, 0), i64::MIN);
    // Where the division is defined, upstream and ebb agree: 200 items over 10 replicas is 20.
    assert_eq!(upstream::hpa_status_average_milli(200_000, 10), 20_000);

    let mut scaler = ebb(ScalerConfig::hpa_default());
    let at_zero = scaler.decide(&Input::new(200, 0, 0), at(0));
    assert_eq!(at_zero.average_per_replica, None);
    let at_ten = scaler.decide(&Input::new(200, 0, 10), at(5));
    assert_eq!(at_ten.average_per_replica, Some(20.0));
}

#[test]
fn ebb_default_scales_up_without_rate_limit() {
    let mut scaler = ebb(ScalerConfig::ebb_default());
    let decision = scaler.decide(&Input::new(400, 0, 0), at(0));
    assert_eq!(decision.desired_replicas, 20, "{}", decision.reason);
}

#[test]
fn activation_threshold_delays_only_the_step_up_from_zero() {
    let mut scaler = ebb(ScalerConfig {
        activation_threshold: 5,
        ..ScalerConfig::ebb_default()
    });
    let decision = scaler.decide(&Input::new(5, 0, 0), at(0));
    assert_eq!(decision.desired_replicas, 0);
    assert!(
        decision.reason.contains("activation threshold 5"),
        "{}",
        decision.reason
    );
    assert_eq!(
        scaler.decide(&Input::new(6, 0, 0), at(1)).desired_replicas,
        1
    );
    // Above zero the threshold no longer matters: 3 waiting keeps a replica.
    assert_eq!(
        scaler.decide(&Input::new(3, 0, 1), at(2)).desired_replicas,
        1
    );
}

#[test]
fn never_scales_to_zero_while_items_are_in_flight() {
    let mut scaler = ebb(ScalerConfig {
        cooldown: Duration::ZERO,
        ..ScalerConfig::ebb_default()
    });
    scaler.decide(&Input::new(100, 0, 5), at(0));
    let decision = scaler.decide(&Input::new(0, 2, 5), at(60));
    assert_eq!(decision.desired_replicas, 1, "{}", decision.reason);
    assert!(
        decision.reason.contains("2 are in flight"),
        "{}",
        decision.reason
    );
    assert_eq!(
        scaler.decide(&Input::new(0, 0, 1), at(61)).desired_replicas,
        0
    );
}

#[test]
fn scales_to_zero_only_after_the_whole_cooldown_with_an_empty_queue() {
    let mut scaler = ebb(ScalerConfig::ebb_default()); // 20 s cooldown
    scaler.decide(&Input::new(20, 0, 1), at(0));
    assert_eq!(
        scaler
            .decide(&Input::new(0, 0, 1), at(100))
            .desired_replicas,
        1
    );
    assert_eq!(
        scaler
            .decide(&Input::new(0, 0, 1), at(119))
            .desired_replicas,
        1
    );
    // An item passing through restarts the cooldown.
    assert_eq!(
        scaler
            .decide(&Input::new(0, 1, 1), at(110))
            .desired_replicas,
        1
    );
    assert_eq!(
        scaler
            .decide(&Input::new(0, 0, 1), at(111))
            .desired_replicas,
        1
    );
    assert_eq!(
        scaler
            .decide(&Input::new(0, 0, 1), at(130))
            .desired_replicas,
        1
    );
    let decision = scaler.decide(&Input::new(0, 0, 1), at(131));
    assert_eq!(decision.desired_replicas, 0, "{}", decision.reason);
    assert!(
        decision
            .reason
            .ends_with("queue empty for 20.0 s, cooldown of 20 s over"),
        "{}",
        decision.reason
    );
}

#[test]
fn drain_time_mode_picks_the_smallest_count_that_drains_in_time() {
    let config = ScalerConfig {
        drain_time: Some(Duration::from_secs(25)),
        ..ScalerConfig::ebb_default()
    };
    let scaler = ebb(config);
    // 100 waiting + 2/s × 25 s = 150 items; one replica does 25 in 25 s → exactly 6.
    let rates = Rates::new(2.0, 1.0).unwrap();
    let input = Input::new(100, 0, 0).with_rates(rates);
    assert_eq!(scaler.recommend(&input).replicas, 6);
    // One more item needs a seventh replica; in-flight items count as work too.
    assert_eq!(
        scaler
            .recommend(&Input::new(101, 0, 0).with_rates(rates))
            .replicas,
        7
    );
    assert_eq!(
        scaler
            .recommend(&Input::new(100, 1, 1).with_rates(rates))
            .replicas,
        7
    );
    // Until rates are measured, the AverageValue rule: ceil(100 / 20) = 5.
    assert_eq!(scaler.recommend(&Input::new(100, 0, 0)).replicas, 5);
}

#[test]
fn bad_configuration_and_rates_get_one_line_errors() {
    let cases = [
        (
            ScalerConfig {
                min_replicas: 5,
                max_replicas: 2,
                ..ScalerConfig::ebb_default()
            },
            "min replicas (5) is above max replicas (2)",
        ),
        (
            ScalerConfig {
                target_per_replica: f64::NAN,
                ..ScalerConfig::ebb_default()
            },
            "target per replica must be a finite number above 0, got NaN",
        ),
        (
            ScalerConfig {
                max_replicas: 0,
                min_replicas: 0,
                ..ScalerConfig::ebb_default()
            },
            "max replicas must be at least 1, got 0",
        ),
    ];
    for (config, message) in cases {
        let error = Scaler::new(config).unwrap_err();
        assert_eq!(error.to_string(), message);
    }
    let error = Rates::new(1.0, 0.0).unwrap_err();
    assert!(matches!(error, Error::InvalidRates { .. }));
    assert!(!error.to_string().contains('\n'));
}
