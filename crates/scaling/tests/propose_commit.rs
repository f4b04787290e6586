//! Deciding apart from recording: a caller whose apply can fail proposes, applies, and only
//! then commits, so the history never holds a change the target refused.

use ebb_scaling::{Input, Instant, Scaler, ScalerConfig};

fn at(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// The HPA's default scale-up policy (4 pods or 100 % per 15 s): a change it recorded caps
/// the next one inside the period.
fn rate_limited() -> Scaler {
    Scaler::new(ScalerConfig::hpa_default()).unwrap()
}

#[test]
fn a_proposal_that_is_not_committed_leaves_the_state_as_it_was() {
    let mut scaler = rate_limited();
    scaler.decide(&Input::new(20, 0, 1), at(0));
    let before = scaler.state().clone();

    let proposal = scaler.propose(&Input::new(400, 0, 1), at(1));
    assert_eq!(
        proposal.decision().desired_replicas,
        5,
        "1 + 4 pods per 15 s"
    );
    drop(proposal);
    assert_eq!(scaler.state(), &before);

    // The target is still at 1: the whole 4-pod allowance of the period is left.
    let retried = scaler.decide(&Input::new(400, 0, 1), at(2));
    assert_eq!(retried.desired_replicas, 5, "{}", retried.reason);
}

#[test]
fn a_committed_proposal_counts_against_the_rate_limit() {
    let mut scaler = rate_limited();
    scaler.decide(&Input::new(20, 0, 1), at(0));
    let proposal = scaler.propose(&Input::new(400, 0, 1), at(1));
    let committed = scaler.commit(proposal);
    assert_eq!(committed.desired_replicas, 5);

    // The 4 pods of the period are spent: a target still at 1 (the apply failed but was
    // committed anyway) stays pinned there, which is why the control loop commits only after
    // applying.
    let after_failure = scaler.decide(&Input::new(400, 0, 1), at(2));
    assert_eq!(
        after_failure.desired_replicas, 1,
        "{}",
        after_failure.reason
    );
}

#[test]
fn propose_then_commit_is_decide() {
    let inputs = [
        (Input::new(0, 0, 0), 0),
        (Input::new(200, 0, 0), 5),
        (Input::new(400, 3, 4), 10),
        (Input::new(0, 2, 8), 40),
        (Input::new(0, 0, 8), 400),
        (Input::new(0, 0, 1), 700),
    ];
    let mut deciding = rate_limited();
    let mut committing = rate_limited();
    for (input, secs) in inputs {
        let decided = deciding.decide(&input, at(secs));
        let proposal = committing.propose(&input, at(secs));
        assert_eq!(proposal.decision(), &decided);
        assert_eq!(committing.commit(proposal), decided);
        assert_eq!(committing.state(), deciding.state());
    }
}
