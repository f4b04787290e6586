//! A scaler restarted from its memory decides as the one that kept running, on another
//! clock; a scaler restarted without it does not.

use std::time::Duration;

use ebb_scaling::{Input, Instant, Memory, Scaler, ScalerConfig};

/// The queue over time: 200 items for 10 s, then a trickle, then empty.
fn waiting_at(second: u64) -> u64 {
    match second {
        0..10 => 200,
        10..14 => 30,
        _ => 0,
    }
}

/// Runs `scaler` from `from` to `to` (seconds of the first clock), its own clock shifted by
/// `offset`; returns the counts decided.
fn run(scaler: &mut Scaler, replicas: &mut u32, from: u64, to: u64, offset: u64) -> Vec<u32> {
    (from..to)
        .map(|second| {
            let decision = scaler.decide(
                &Input::new(waiting_at(second), 0, *replicas),
                Instant::from_secs(second + offset),
            );
            *replicas = decision.desired_replicas;
            *replicas
        })
        .collect()
}

#[test]
fn a_recalled_scaler_continues_the_same_decisions() {
    let config = ScalerConfig::ebb_default();
    let mut kept = Scaler::new(config.clone()).unwrap();
    let mut replicas = 0;
    run(&mut kept, &mut replicas, 0, 16, 0);
    let restart_at = 16;
    let memory = kept.memory(Instant::from_secs(restart_at));
    // Empty since second 14; the window still holds the 10 of the burst (second 9) and
    // the 2 of the trickle (second 13), both above the count kept.
    assert_eq!(replicas, 10, "held by the scale-down window");
    assert_eq!(memory.queue_empty_for, Some(Duration::from_secs(2)));
    assert_eq!(
        memory.recommendations,
        vec![(Duration::from_secs(3), 2), (Duration::from_secs(7), 10)]
    );
    assert_eq!(memory.last_change, Some((Duration::from_secs(16), 10)));

    // The new process's clock starts an hour in, so ages before its start still fit.
    let offset = 3600;
    let mut recalled = Scaler::new(config.clone()).unwrap();
    recalled.recall(&memory, Instant::from_secs(restart_at + offset));
    let mut fresh = Scaler::new(config).unwrap();

    let (mut a, mut b, mut c) = (replicas, replicas, replicas);
    let kept_counts = run(&mut kept, &mut a, restart_at, 60, 0);
    let recalled_counts = run(&mut recalled, &mut b, restart_at, 60, offset);
    let fresh_counts = run(&mut fresh, &mut c, restart_at, 60, offset);
    assert_eq!(recalled_counts, kept_counts);
    assert_ne!(
        fresh_counts, kept_counts,
        "the test would pass without the memory"
    );
}

#[test]
fn a_steady_scaler_remembers_nothing_that_changes() {
    let mut scaler = Scaler::new(ScalerConfig::ebb_default()).unwrap();
    for second in 0..40 {
        scaler.decide(&Input::new(200, 0, 10), Instant::from_secs(second));
    }
    let memory = scaler.memory(Instant::from_secs(40));
    assert_eq!(memory.recommendations, vec![]);
    assert_eq!(memory.queue_empty_for, None);
}

#[test]
fn ages_before_the_new_clocks_epoch_start_at_the_epoch() {
    let memory = Memory {
        recommendations: vec![(Duration::from_secs(50), 7)],
        queue_empty_for: Some(Duration::from_secs(50)),
        last_change: None,
    };
    let mut scaler = Scaler::new(ScalerConfig::ebb_default()).unwrap();
    scaler.recall(&memory, Instant::from_secs(10));
    assert_eq!(scaler.state().queue_empty_since(), Some(Instant::EPOCH));
}
