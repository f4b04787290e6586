//! `ebb dojo check app` on a node (`scripts/control-plane.sh up --node`), where pods really
//! run: the step's right case, which `e2e_dojo_check` (no node) cannot reach. The dojo's
//! scripts install our charts in their hostNetwork mode: Redis from the image
//! `scripts/image.sh build redis` (the official image cannot be pulled offline), the producer
//! and the consumer from the ebb image. Broken first: a Redis whose image the node cannot
//! pull, so that the Service redis-master has no ready endpoint; then right, Redis and both
//! Deployments ready.
//!
//! One test: one control plane and node for this binary (the node is machine-wide, held
//! briefly).

mod common;

use std::process::Command;
use std::time::Duration;

use ebb_testkit::control_plane::{self, ControlPlane, Options};

use common::dojo::{assert_check, repo, script, wait_check};

/// Nothing answers HTTP there (discard port): the app step does not ask Prometheus.
const NOWHERE: &str = "http://127.0.0.1:9";
/// Where the dojo's consumer counts the items it processed.
const COMPLETED: &str = "{padok}:completed";

/// Builds the Redis image (`scripts/image.sh build redis`), or `None` after a loud skip when
/// this machine lacks what it is built from (a failure under CI, which installs them).
fn redis_image(test: &str) -> Option<(std::path::PathBuf, String)> {
    let missing: Vec<&str> = ["redis-server", "redis-cli", "umoci", "jq"]
        .into_iter()
        .filter(|tool| which(tool).is_none())
        .collect();
    if !missing.is_empty() {
        let reason = format!(
            "{} not installed (scripts/install-deps.sh installs them)",
            missing.join(", ")
        );
        assert!(
            !ebb_testkit::under_ci(),
            "{test}: required under CI: {reason}"
        );
        eprintln!("\n!!!!!!!! SKIPPED {test}: {reason}\n");
        return None;
    }
    let image = |args: &[&str]| {
        let output = Command::new(repo().join("scripts/image.sh"))
            .args(args)
            .output()
            .expect("scripts/image.sh runs");
        assert!(
            output.status.success(),
            "scripts/image.sh {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    image(&["build", "redis"]);
    let name = image(&["name", "redis"]);
    Some((repo().join("target/image/redis.oci.tar"), name))
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    })
}

async fn rollout(cluster: &ControlPlane, deployment: &str) {
    cluster
        .rollout("default", deployment, Duration::from_secs(120))
        .await
        .unwrap_or_else(|report| panic!("{report}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_dojo_check_app_on_a_node_broken_then_right() {
    let test = "e2e_dojo_check_app_on_a_node_broken_then_right";
    // The images first: the node is held only while pods run.
    let Some((redis_archive, redis_name)) = redis_image(test) else {
        return;
    };
    let ebb_archive = control_plane::ebb_image().unwrap_or_else(|error| panic!("{test}: {error}"));
    let Some(cluster) = control_plane::start_with_node_or_skip(test, Options::default()).await
    else {
        return;
    };
    let cluster = &cluster;
    cluster.load_image(&ebb_archive).await.unwrap();
    cluster.load_image(&redis_archive).await.unwrap();

    // Each part on the node's network: Redis on a free loopback port, the producer on another.
    let redis_port = ebb_testkit::free_port();
    let producer_port = ebb_testkit::free_port();
    let on_node = |values: &[String]| -> Vec<String> {
        let mut args = vec!["--".to_owned()];
        for value in ["image.pullPolicy=Never", "hostNetwork.enabled=true"]
            .into_iter()
            .map(str::to_owned)
            .chain(values.iter().cloned())
        {
            args.extend(["--set".to_owned(), value]);
        }
        args
    };
    let redis_server = format!("redis.server=localhost:{redis_port}");
    let producer = on_node(&[
        redis_server.clone(),
        format!("hostNetwork.http=127.0.0.1:{producer_port}"),
    ]);
    script(cluster, "deploy-producer.sh", &strs(&producer)).await;
    let mut consumer = vec!["--exercise".to_owned()];
    consumer.extend(on_node(&[redis_server]));
    script(cluster, "deploy-consumer.sh", &strs(&consumer)).await;

    // Broken: the chart's default image, which a node without a registry cannot pull.
    let redis_on_node = format!("hostNetwork.port={redis_port}");
    let redis = on_node(std::slice::from_ref(&redis_on_node));
    script(cluster, "deploy-redis.sh", &strs(&redis)).await;
    // The check quotes the kubelet once it has tried; the producer and consumer are not ready
    // either, without their Redis.
    wait_check(
        cluster,
        NOWHERE,
        &["app"],
        1,
        r#"ErrImageNeverPull (Container image "redis:8.10.2-alpine" is not present with pull policy of Never)"#,
    )
    .await;
    assert_check(
        cluster,
        NOWHERE,
        &["app"],
        1,
        "✘ Service redis-master has no ready endpoint: is the Redis pod running?: pod redis-master-",
    )
    .await;

    // Right: the image built here.
    let (repository, tag) = redis_name
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("scripts/image.sh name redis: {redis_name}"));
    let redis = on_node(&[
        redis_on_node,
        format!("image.repository={repository}"),
        format!("image.tag={tag}"),
    ]);
    script(cluster, "deploy-redis.sh", &strs(&redis)).await;
    for deployment in ["redis-master", "producer", "consumer"] {
        rollout(cluster, deployment).await;
    }
    wait_check(
        cluster,
        NOWHERE,
        &["app"],
        0,
        "✔ Redis (Service redis-master) has a ready endpoint",
    )
    .await;
    for expected in [
        "✔ producer: 1 of 1 pods ready",
        "✔ consumer: 1 of 1 pods ready",
    ] {
        assert_check(cluster, NOWHERE, &["app"], 0, expected).await;
    }

    // The Redis pod is the app's: an item published through the producer pod is processed
    // by the consumer pod and counted in it.
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{producer_port}/publish"))
        .send()
        .await
        .expect("POST /publish to the producer pod");
    assert!(response.status().is_success(), "{response:?}");
    let port = redis_port.to_string();
    cluster
        .wait_for(
            "the item counted in the Redis pod",
            Duration::from_secs(60),
            || async {
                let completed = cluster
                    .kubectl(&[
                        "exec",
                        "deployment/redis-master",
                        "--",
                        "redis-cli",
                        "-p",
                        &port,
                        "GET",
                        COMPLETED,
                    ])
                    .await
                    .map_err(|error| error.to_string())?;
                match completed.trim() {
                    "1" => Ok(Some(())),
                    other => Err(format!("{COMPLETED} is {other:?}")),
                }
            },
        )
        .await
        .unwrap();
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
