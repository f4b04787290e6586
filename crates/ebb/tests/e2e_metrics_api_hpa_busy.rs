//! The HPA path never removes a busy pod's last replica: with the consumer chart's
//! `autoscaler: metricsApi`, the real kube-controller-manager's HPA scales on
//! `ebb_queue_items` (the built-in configuration's `ebbQueue: {count: total}`, waiting plus
//! in flight), so while a consumer holds items that no longer wait in the list the HPA stays
//! at 1. Its twin on the dojo's `redis_items_in_queue` (waiting only) reads 0 at that moment
//! and scales to 0 under the busy consumer: the wrong decision, shown beside the right one.
//! Once the consumer acknowledges its items, both are at 0.

use std::path::Path;
use std::time::{Duration, Instant};

use ebb_e2e::charts;
use ebb_e2e::daemon::temp_dir;
use ebb_e2e::metrics_api::MetricsApi;
use ebb_queue::{Item, Queue, RedisAddress};
use ebb_testkit::control_plane::{ControlPlane, Options, start_or_skip};
use ebb_testkit::redis::RedisServer;

/// One HPA sync after the 1 s poll, with slack for two shared cores; scaling down adds the
/// control plane's 20 s stabilization window.
const SCALE_UP_WITHIN: Duration = Duration::from_secs(60);
const SCALE_DOWN_WITHIN: Duration = Duration::from_secs(90);
/// How long the busy consumer's HPA must hold at 1 once the waiting-only twin is at 0: past
/// the stabilization window again, so a scale-down would have happened by then.
const HOLD_FOR: Duration = Duration::from_secs(30);
/// The consumer's lease outlives the test: nothing heartbeats it, and it must not be reaped.
const LEASE: Duration = Duration::from_secs(600);

/// The dojo's waiting-only metric on a pod-less twin Deployment: what the dojo's HPA sees.
const WAITING_ONLY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: waiting-only, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: waiting-only}}
  template:
    metadata: {labels: {app: waiting-only}}
    spec:
      containers: [{name: consumer, image: "ebb:test"}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: waiting-only, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: waiting-only}
  minReplicas: 0
  maxReplicas: 20
  metrics:
    - type: External
      external:
        metric:
          name: redis_items_in_queue
          selector: {matchLabels: {key: padok}}
        target: {type: AverageValue, averageValue: "20"}
"#;

/// The Deployment `name`'s `spec.replicas` (-1 while it has none).
async fn replicas(control_plane: &ControlPlane, name: &str) -> Result<i64, String> {
    let deployment = control_plane
        .get("deployment", "default", name)
        .await
        .map_err(|error| error.to_string())?;
    Ok(deployment["spec"]["replicas"].as_i64().unwrap_or(-1))
}

async fn wait_for_replicas(
    control_plane: &ControlPlane,
    name: &str,
    wanted: i64,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    control_plane
        .wait_for(&format!("{name} at {wanted}"), within, || async {
            match replicas(control_plane, name).await? {
                now if now == wanted => Ok(Some(())),
                now => Err(format!("{name} at {now}")),
            }
        })
        .await
        .unwrap();
    started.elapsed()
}

/// The metric's value for key padok, as the kube-apiserver serves it to the HPA.
async fn external_value(control_plane: &ControlPlane, metric: &str) -> String {
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/{metric}?labelSelector=key%3Dpadok"
    );
    let raw = control_plane
        .kubectl(&["get", "--raw", &path])
        .await
        .unwrap();
    let list: serde_json::Value = serde_json::from_str(&raw).unwrap();
    list["items"][0]["value"].as_str().unwrap_or("?").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_metrics_api_hpa_never_scales_to_zero_under_a_busy_pod() {
    let test = "e2e_metrics_api_hpa_never_scales_to_zero_under_a_busy_pod";
    let Some(control_plane) = start_or_skip(test, Options::default()).await else {
        return;
    };
    let dir = temp_dir("ebb-metrics-api-hpa-busy").unwrap();
    let redis = RedisServer::start();
    let server = MetricsApi::start(
        &control_plane,
        Path::new(env!("CARGO_BIN_EXE_ebb")),
        &redis.address(),
        &[],
        &[],
        false,
        dir.path(),
    )
    .await
    .unwrap();
    charts::install(
        &control_plane,
        "consumer",
        "default",
        &["autoscaler=metricsApi"],
    )
    .await
    .unwrap();
    control_plane.apply(WAITING_ONLY).await.unwrap();
    let hpa = control_plane
        .get(
            "horizontalpodautoscalers.v2.autoscaling",
            "default",
            "consumer",
        )
        .await
        .unwrap();
    assert_eq!(
        hpa["spec"]["metrics"][0]["object"]["metric"]["name"], "ebb_queue_items",
        "the chart's metricsApi mode scales on waiting plus in flight"
    );

    // The HPA scales only from 0 what it scaled to 0 itself: let both get there first.
    wait_for_replicas(&control_plane, "consumer", 0, SCALE_DOWN_WITHIN).await;
    wait_for_replicas(&control_plane, "waiting-only", 0, SCALE_DOWN_WITHIN).await;

    let address: RedisAddress = redis.address().parse().unwrap();
    let queue = Queue::new(&address, "padok").unwrap();
    let items: Vec<String> = (0..3)
        .map(|n| Item::new(format!("long item {n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();
    let up = wait_for_replicas(&control_plane, "consumer", 1, SCALE_UP_WITHIN).await;
    wait_for_replicas(&control_plane, "waiting-only", 1, SCALE_UP_WITHIN).await;
    eprintln!("3 items → 1 replica in {up:.1?}");

    // One consumer takes all three and works on them: the list is empty, nothing is done.
    let consumer = queue.consumer_lease("consumer-busy", LEASE).unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(consumer.pop(Duration::ZERO).await.unwrap().unwrap());
    }
    let wrong = wait_for_replicas(&control_plane, "waiting-only", 0, SCALE_DOWN_WITHIN).await;
    eprintln!("the waiting-only HPA scaled the busy consumer away in {wrong:.1?}");
    assert_eq!(
        external_value(&control_plane, "redis_items_in_queue").await,
        "0"
    );
    assert_eq!(external_value(&control_plane, "ebb_queue_items").await, "3");
    let holding = Instant::now();
    while holding.elapsed() < HOLD_FOR {
        assert_eq!(
            replicas(&control_plane, "consumer").await.unwrap(),
            1,
            "the HPA on waiting plus in flight scaled in under a busy consumer"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // The work is done: now, and only now, the last replica goes.
    for delivery in &held {
        assert!(consumer.ack(delivery).await.unwrap());
    }
    let down = wait_for_replicas(&control_plane, "consumer", 0, SCALE_DOWN_WITHIN).await;
    eprintln!("the last item acknowledged → 0 replicas in {down:.1?}");
    drop(server);
}
