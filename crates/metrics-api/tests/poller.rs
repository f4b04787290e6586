//! The poller reads every key of an interval in one pipelined round trip (through one shared
//! `RedisReader`), counted two ways: the reader's own counter, exported as
//! `ebb_metrics_api_redis_round_trips_total`, and Redis' `INFO commandstats`.

mod common;

use std::time::Duration;

use common::{RunningServer, TestCa};
use ebb_metrics_api::Config;
use ebb_testkit::redis::RedisServer;

const KEYS: usize = 200;

/// A kubeconfig that is never used: requests would need it for SubjectAccessReviews, and this
/// test makes none (it watches the poller through the metrics port only).
const UNUSED_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]
users: [{name: u, user: {token: unused}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
";

fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .parse::<f64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("{name} missing in:\n{text}")) as u64
}

fn llen_calls(redis: &RedisServer) -> u64 {
    let stats = redis.cli(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_llen:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_of_an_interval_is_read_in_one_round_trip() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("q{i}")).collect();
    let config = Config::parse(
        &format!(
            "interval: 250ms
metrics:
  - name: items
    source: {{redisList: {{}}}}
    label: key
    keys: [{}]
    objects: [{{resource: services, namespace: default, name: s}}]
",
            keys.join(", ")
        ),
        "test.yaml",
    )
    .unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, UNUSED_KUBECONFIG).unwrap();
    let server = RunningServer::start(
        &[
            "--requestheader-client-ca-file",
            ca.cert_file().to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--redis-server",
            &redis.address(),
        ],
        config,
    )
    .await;
    // Past the first rounds (connection set-up).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.metrics_text().await;
    let llen_before = llen_calls(&redis);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server.metrics_text().await;
    let llen_after = llen_calls(&redis);

    let polls = counter(&after, "ebb_metrics_api_polls_total")
        - counter(&before, "ebb_metrics_api_polls_total");
    let round_trips = counter(&after, "ebb_metrics_api_redis_round_trips_total")
        - counter(&before, "ebb_metrics_api_redis_round_trips_total");
    let llens = llen_after - llen_before;
    eprintln!("{polls} polls, {round_trips} round trips, {llens} LLEN for {KEYS} keys");
    assert!(polls >= 8, "about 12 polls in 3 s at 250 ms: {polls}");
    // A scrape may fall between a poll's count and its round trip's: ±1 at each end.
    assert!(
        round_trips.abs_diff(polls) <= 1,
        "one round trip per poll of {KEYS} keys: {round_trips} for {polls} polls"
    );
    // Every key read at every poll (a poll may straddle a sample: ±1 poll's worth).
    assert!(
        llens.abs_diff(polls * KEYS as u64) <= KEYS as u64,
        "{llens} LLEN for {polls} polls of {KEYS} keys"
    );
    server.stop().await.unwrap();
}
