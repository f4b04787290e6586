//! `ebb probe`, the hostNetwork mode's exec probes, against the real producer and consumer
//! whose Redis refuses their password: liveness (`ebb probe`) passes, since a restart would
//! fix nothing, and readiness (`ebb probe --ready`) fails with the reason, which the kubelet
//! shows in the pod's events.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Ebb;
use ebb_testkit::poll;
use ebb_testkit::redis::RedisServer;

/// `ebb probe --pid <pid> [extra]`: its success and its stderr.
fn probe(pid: u32, extra: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["probe", "--pid", &pid.to_string()])
        .args(extra)
        .output()
        .expect("the ebb binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn ebb_probe_keeps_a_wrong_password_alive_and_unready_with_the_reason() {
    let redis = RedisServer::start_with(&["--requirepass", "right"]);
    let server = format!("redis://:not-it@{}", redis.address());
    let producer = Ebb::start("producer", &["producer", "--redis-server", &server]);
    let consumer = Ebb::start(
        "consumer",
        &["consumer", "--redis-server", &server, "--lease", "1s"],
    );
    for ebb in [&producer, &consumer] {
        let (ready, reason) = poll::until_blocking(
            &format!("{} to be unready", ebb.name),
            Duration::from_secs(20),
            || Some(probe(ebb.pid(), &["--ready"])).filter(|answer| !answer.0),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert!(!ready, "{}: ready with a wrong password", ebb.name);
        assert!(reason.contains("GET /readyz"), "{}: {reason}", ebb.name);
        assert!(reason.contains("503"), "{}: {reason}", ebb.name);
        assert!(reason.contains("wrong password"), "{}: {reason}", ebb.name);
        assert!(!reason.contains("not-it"), "{}: {reason}", ebb.name);
        let (alive, output) = probe(ebb.pid(), &[]);
        assert!(alive, "{}: liveness failed: {output}", ebb.name);
    }
}
