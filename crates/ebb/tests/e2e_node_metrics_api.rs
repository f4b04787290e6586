//! `ebb metrics-api` as a pod on one real node (`scripts/control-plane.sh up --node`), the
//! HPA's metrics source: the metrics-api chart in its hostNetwork mode (the pod listens on its
//! Service's fixed ClusterIP, where the kube-apiserver dials it), from the ebb image, with
//! Redis on the host. Its APIServices become Available through the real kube-apiserver; the
//! producer and consumer charts are installed with helm; items published through the
//! producer pod make the consumer chart's HPA (unchanged), driven by the real
//! kube-controller-manager, scale the consumer Deployment up; its pods drain the queue (every
//! item processed once, counted in Redis) and are scaled back to 0. One test: one control
//! plane and node for this binary.

mod common;

use std::time::Duration;

use common::node::{self, CONSUMER_PODS, QUEUE, publish};
use ebb_e2e::charts;
use ebb_e2e::node::{METRICS_API_METRICS_PORT, METRICS_API_PODS, install_metrics_api};
use ebb_testkit::control_plane::ControlPlane;
use ebb_testkit::redis::RedisServer;

/// The consumer Deployment's `spec.replicas` and the HPA's `status.desiredReplicas`.
async fn consumer_scale(cluster: &ControlPlane) -> Result<(i64, i64), String> {
    let hpa = cluster
        .get(
            "horizontalpodautoscalers.v2.autoscaling",
            "default",
            "consumer",
        )
        .await
        .map_err(|error| error.to_string())?;
    let spec = node::spec_replicas(cluster, "default", "consumer").await?;
    Ok((
        spec,
        hpa["status"]["desiredReplicas"].as_i64().unwrap_or(-1),
    ))
}

async fn wait_consumer_at_0(cluster: &ControlPlane, timeout: Duration) {
    cluster
        .wait_for("the HPA to take the consumer to 0", timeout, || async {
            match consumer_scale(cluster).await? {
                (0, 0) => Ok(Some(())),
                (spec, desired) => Err(format!("spec.replicas {spec}, HPA desired {desired}")),
            }
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_node_metrics_api_pod_feeds_the_hpa_that_scales_consumer_pods_draining_the_queue() {
    let Some(cluster) = node::start("e2e_node_metrics_api").await else {
        return;
    };
    let redis = RedisServer::start();

    // The metrics API, a pod on the node: its APIServices Available through it.
    let cluster_ip = install_metrics_api(
        &cluster,
        &format!("localhost:{}", redis.port()),
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    assert_eq!(
        node::running_pods(&cluster, METRICS_API_PODS)
            .await
            .unwrap(),
        1,
        "the APIServices are served by the one metrics-api pod"
    );

    // The dojo's producer and consumer, the consumer's HPA as the chart has it.
    let producer_port = ebb_testkit::free_port();
    let producer_http = format!("hostNetwork.http=127.0.0.1:{producer_port}");
    let producer = node::chart_values(redis.port(), &[&producer_http]);
    charts::install(&cluster, "producer", "default", &node::as_strs(&producer))
        .await
        .unwrap();
    let consumer = node::chart_values(redis.port(), &[]);
    charts::install(&cluster, "consumer", "default", &node::as_strs(&consumer))
        .await
        .unwrap();
    cluster
        .rollout("default", "producer", Duration::from_secs(120))
        .await
        .unwrap_or_else(|report| panic!("{report}"));
    // The Deployment starts with one pod; the HPA takes it to 0 (empty queue).
    wait_consumer_at_0(&cluster, Duration::from_secs(120)).await;

    assert_eq!(
        publish(
            &cluster,
            &format!("http://127.0.0.1:{producer_port}"),
            "/publish/100"
        )
        .await,
        "100 messages published 👌"
    );
    let scaled_up = cluster
        .wait_for(
            "the HPA to scale the consumers up",
            Duration::from_secs(90),
            || async {
                match consumer_scale(&cluster).await? {
                    (spec, _) if spec >= 1 => Ok(Some(spec)),
                    (spec, desired) => Err(format!("spec.replicas {spec}, HPA desired {desired}")),
                }
            },
        )
        .await
        .unwrap();
    cluster
        .wait_for("consumer pods ready", Duration::from_secs(60), || async {
            match node::ready_pods(&cluster, CONSUMER_PODS).await? {
                0 => Err("none ready".into()),
                ready => Ok(Some(ready)),
            }
        })
        .await
        .unwrap();
    node::wait_completed(&cluster, &redis, 100, Duration::from_secs(180)).await;
    wait_consumer_at_0(&cluster, Duration::from_secs(120)).await;
    node::wait_running(&cluster, CONSUMER_PODS, 0, Duration::from_secs(60)).await;
    // Every item processed exactly once, none waiting or in flight.
    assert_eq!(node::completed(&redis), 100);
    assert_eq!(redis.cli(&["LLEN", QUEUE]).trim(), "0");

    // The HPA's reads reached the pod: its own request counter, on the ClusterIP it binds.
    let metrics = reqwest::get(format!(
        "http://{cluster_ip}:{METRICS_API_METRICS_PORT}/metrics"
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let served: u64 = metrics
        .lines()
        .filter(|line| {
            line.starts_with("ebb_metrics_api_requests_total{")
                && line.contains("route=\"custom_value\"")
                && line.contains("code=\"200\"")
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum();
    assert!(
        served > 0,
        "no custom-metric request answered 200 by the pod:\n{metrics}"
    );
    eprintln!(
        "e2e_node_metrics_api: the HPA, fed by the metrics-api pod ({served} answers), scaled the consumers to {scaled_up} and back to 0; 100 items processed"
    );
}
