//! `ebb operator` as pods on one real node (`scripts/control-plane.sh up --node`): the operator
//! chart and the consumer chart (`autoscaler: queueScaler`) in their hostNetwork mode, from the
//! ebb image. The operator's pods reach the API server through the `kubernetes` Service's
//! ClusterIP (in-cluster config), elect a leader, and scale the consumer Deployment up when
//! items arrive; its pods drain the queue (every item processed once, counted in Redis) and
//! are scaled back to 0. One test: one control plane and node for this binary.

mod common;

use std::time::Duration;

use common::node::{self, COMPLETED, CONSUMER_PODS};
use ebb_e2e::charts;
use ebb_testkit::redis::RedisServer;

#[tokio::test(flavor = "multi_thread")]
async fn e2e_node_operator_pods_scale_consumer_pods_that_drain_the_queue() {
    let Some(cluster) = node::start("e2e_node_operator").await else {
        return;
    };
    let redis = RedisServer::start();
    charts::install(&cluster, "operator", "default", &node::NODE_VALUES)
        .await
        .unwrap();
    cluster
        .wait_established("queuescalers.ebb.dev")
        .await
        .unwrap();
    let consumer = node::chart_values(
        redis.port(),
        &[
            "autoscaler=queueScaler",
            "autoscaling.queueScaler.cooldownSeconds=2",
        ],
    );
    charts::install(&cluster, "consumer", "default", &node::as_strs(&consumer))
        .await
        .unwrap();
    cluster
        .rollout("default", "operator", Duration::from_secs(120))
        .await
        .unwrap_or_else(|report| panic!("{report}"));

    // The operator takes the idle consumer Deployment to 0, then up for 60 items (20 each).
    cluster
        .wait_for("the consumer at 0", Duration::from_secs(60), || async {
            match node::spec_replicas(&cluster, "default", "consumer").await? {
                0 => Ok(Some(())),
                other => Err(format!("spec.replicas {other}")),
            }
        })
        .await
        .unwrap();
    let mut push = vec!["RPUSH", node::QUEUE];
    push.extend(std::iter::repeat_n("From Padok, with love 💜", 60));
    redis.cli(&push);
    node::wait_running(&cluster, CONSUMER_PODS, 3, Duration::from_secs(60)).await;
    node::wait_completed(&cluster, &redis, 60, Duration::from_secs(120)).await;
    node::wait_running(&cluster, CONSUMER_PODS, 0, Duration::from_secs(90)).await;
    assert_eq!(redis.cli(&["LLEN", "padok"]).trim(), "0");
    assert_eq!(redis.cli(&["GET", COMPLETED]).trim(), "60");
    // And the operator reports it: the Deployment and the QueueScaler's status at 0.
    cluster
        .wait_for(
            "the QueueScaler's status at 0",
            Duration::from_secs(60),
            || async {
                let scaler = cluster
                    .get("queuescalers.ebb.dev", "default", "consumer")
                    .await
                    .map_err(|error| error.to_string())?;
                let deployment = cluster
                    .get("deployment", "default", "consumer")
                    .await
                    .map_err(|error| error.to_string())?;
                if scaler["status"]["replicas"] == 0 && deployment["spec"]["replicas"] == 0 {
                    Ok(Some(()))
                } else {
                    Err(format!(
                        "QueueScaler status {}, Deployment spec.replicas {}",
                        scaler["status"], deployment["spec"]["replicas"]
                    ))
                }
            },
        )
        .await
        .unwrap();
}
