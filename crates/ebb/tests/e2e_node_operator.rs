//! `ebb operator` as pods on one real node (`scripts/control-plane.sh up --node`): the operator
//! chart and the consumer chart (`autoscaler: queueScaler`) in their hostNetwork mode, from the
//! ebb image. The operator's pods reach the API server through the `kubernetes` Service's
//! ClusterIP (in-cluster config), elect a leader, and scale the consumer Deployment up when
//! items arrive; its pods drain the queue (every item processed once, counted in Redis) and
//! are scaled back to 0. One test: one control plane and node for this binary.

use std::time::Duration;

use ebb_e2e::charts;
use ebb_testkit::control_plane::{self, ControlPlane, Options};
use ebb_testkit::redis::RedisServer;

const COMPLETED: &str = "{padok}:completed";

async fn running_pods(cluster: &ControlPlane, selector: &str) -> Result<usize, String> {
    let pods = cluster
        .kubectl_json(&["get", "pods", "-l", selector])
        .await
        .map_err(|error| error.to_string())?;
    Ok(pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|pod| {
            pod["status"]["phase"] == "Running" && pod["metadata"]["deletionTimestamp"].is_null()
        })
        .count())
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_node_operator_pods_scale_consumer_pods_that_drain_the_queue() {
    let test = "e2e_node_operator";
    let Some(cluster) = control_plane::start_with_node_or_skip(test, Options::default()).await
    else {
        return;
    };
    let image = control_plane::ebb_image().unwrap_or_else(|error| panic!("{test}: {error}"));
    cluster.load_image(&image).await.unwrap();
    let redis = RedisServer::start();
    let redis_server = format!("redis.server=localhost:{}", redis.port());
    let common = ["image.pullPolicy=Never", "hostNetwork.enabled=true"];

    charts::install(&cluster, "operator", "default", &common)
        .await
        .unwrap();
    cluster
        .wait_established("queuescalers.ebb.dev")
        .await
        .unwrap();
    let mut consumer = common.to_vec();
    consumer.extend([
        redis_server.as_str(),
        "autoscaler=queueScaler",
        "autoscaling.queueScaler.cooldownSeconds=2",
    ]);
    charts::install(&cluster, "consumer", "default", &consumer)
        .await
        .unwrap();
    cluster
        .kubectl(&["rollout", "status", "deployment/operator", "--timeout=120s"])
        .await
        .unwrap();

    // The operator takes the idle consumer Deployment to 0, then up for 60 items (20 each).
    cluster
        .wait_for("the consumer at 0", Duration::from_secs(60), || async {
            let deployment = cluster
                .get("deployment", "default", "consumer")
                .await
                .map_err(|error| error.to_string())?;
            match deployment["spec"]["replicas"].as_i64() {
                Some(0) => Ok(Some(())),
                other => Err(format!("spec.replicas {other:?}")),
            }
        })
        .await
        .unwrap();
    let mut push = vec!["RPUSH", "padok"];
    push.extend(std::iter::repeat_n("From Padok, with love 💜", 60));
    redis.cli(&push);
    cluster
        .wait_for(
            "3 consumer pods running",
            Duration::from_secs(60),
            || async {
                match running_pods(&cluster, "app.kubernetes.io/name=consumer").await? {
                    3 => Ok(Some(())),
                    other => Err(format!("{other} running")),
                }
            },
        )
        .await
        .unwrap();
    cluster
        .wait_for("60 items processed", Duration::from_secs(120), || async {
            match redis.cli(&["GET", COMPLETED]).trim() {
                "60" => Ok(Some(())),
                other => Err(format!("{other} processed")),
            }
        })
        .await
        .unwrap();
    cluster
        .wait_for("no consumer pod left", Duration::from_secs(90), || async {
            match running_pods(&cluster, "app.kubernetes.io/name=consumer").await? {
                0 => Ok(Some(())),
                other => Err(format!("{other} running")),
            }
        })
        .await
        .unwrap();
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
