//! The real kube-controller-manager's HPA driven by `ebb metrics-api` (built-in configuration:
//! the dojo's `redis_items_in_queue{key=padok}` on Service default/prometheus-redis-exporter):
//! the consumer chart's HPA (Object metric, AverageValue 20, 0..20), applied unchanged, and an
//! External-metric HPA go 0 → 5 → 0 as 100 items are pushed and removed; the requests the
//! kube-apiserver makes for the HPA carry the front proxy's certificate and the HPA's
//! identity (recorded on the wire); with Redis stopped the API answers 503 and both HPAs hold
//! their count instead of scaling to zero. Each step is also asserted on the HPAs' own
//! `SuccessfulRescale` events, written by the kube-controller-manager's HPA controller.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ebb_e2e::charts;
use ebb_e2e::daemon::temp_dir;
use ebb_e2e::metrics_api::MetricsApi;
use ebb_e2e::recorder::Recorded;
use ebb_testkit::control_plane::{ControlPlane, Options, start_or_skip};
use ebb_testkit::redis::RedisServer;
use serde_json::Value;

const HPA_USER: &str = "system:serviceaccount:kube-system:horizontal-pod-autoscaler";
const DOJO_PATH: &str = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue?metricLabelSelector=key%3Dpadok";
/// One HPA sync (5 s) after the 1 s poll, with slack for two shared cores; scaling down adds
/// the 20 s stabilization window.
const SCALE_UP_WITHIN: Duration = Duration::from_secs(60);
const SCALE_DOWN_WITHIN: Duration = Duration::from_secs(90);
/// How long both HPAs must hold their count while the metric fails (several syncs, beyond
/// the stabilization window).
const HOLD_FOR: Duration = Duration::from_secs(30);

/// The same queue through external.metrics.k8s.io, for a second pod-less Deployment.
const EXTERNAL: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: consumer-external, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: consumer-external}}
  template:
    metadata: {labels: {app: consumer-external}}
    spec:
      containers: [{name: consumer, image: "ebb:test"}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: consumer-external, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: consumer-external}
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

/// HPA `status.desiredReplicas` and Deployment `spec.replicas` of `name`.
async fn scale_of(control_plane: &ControlPlane, name: &str) -> Result<(i64, i64), String> {
    let hpa = control_plane
        .get("horizontalpodautoscalers.v2.autoscaling", "default", name)
        .await
        .map_err(|error| error.to_string())?;
    let deployment = control_plane
        .get("deployment", "default", name)
        .await
        .map_err(|error| error.to_string())?;
    Ok((
        hpa["status"]["desiredReplicas"].as_i64().unwrap_or(-1),
        deployment["spec"]["replicas"].as_i64().unwrap_or(-1),
    ))
}

/// Waits until both HPAs want `replicas` and both Deployments say so.
async fn wait_for_both(control_plane: &ControlPlane, replicas: i64, within: Duration) -> Duration {
    let started = Instant::now();
    control_plane
        .wait_for(
            &format!("both HPAs and Deployments at {replicas}"),
            within,
            || async {
                let object = scale_of(control_plane, "consumer").await?;
                let external = scale_of(control_plane, "consumer-external").await?;
                if object == (replicas, replicas) && external == (replicas, replicas) {
                    Ok(Some(()))
                } else {
                    Err(format!("object {object:?}, external {external:?}"))
                }
            },
        )
        .await
        .unwrap();
    started.elapsed()
}

/// The HPA's condition `kind`.
async fn condition(control_plane: &ControlPlane, name: &str, kind: &str) -> Value {
    let hpa = control_plane
        .get("horizontalpodautoscalers.v2.autoscaling", "default", name)
        .await
        .unwrap();
    hpa["status"]["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == kind))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The two HPAs: the consumer chart's (Object metric) and its External twin.
const HPAS: [&str; 2] = ["consumer", "consumer-external"];
/// The controller's reason for a scale down (`horizontal.go`, `computeReplicasForMetrics`).
const BELOW_TARGET: &str = "All metrics below target";
/// Events are written after the scale itself: how long to wait for them.
const EVENTS_WITHIN: Duration = Duration::from_secs(30);

/// One HPA's `SuccessfulRescale` events: (new size, reason) → how many times (the event's
/// `count`: the recorder folds identical events into one).
type Rescales = BTreeMap<(i64, String), i64>;

/// The `SuccessfulRescale` events of the HPA `name`, each checked to come from the
/// kube-controller-manager's HPA controller.
async fn rescales(control_plane: &ControlPlane, name: &str) -> Result<Rescales, String> {
    let selector = format!(
        "involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name},reason=SuccessfulRescale"
    );
    let list = control_plane
        .kubectl_json(&[
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            &selector,
        ])
        .await
        .map_err(|error| error.to_string())?;
    let mut rescales = Rescales::new();
    for event in list["items"].as_array().into_iter().flatten() {
        let component = [&event["source"]["component"], &event["reportingComponent"]]
            .into_iter()
            .find_map(Value::as_str)
            .unwrap_or_default();
        assert_eq!(component, "horizontal-pod-autoscaler", "{event}");
        let message = event["message"].as_str().unwrap_or_default();
        let (size, reason) = message
            .strip_prefix("New size: ")
            .and_then(|rest| rest.split_once("; reason: "))
            .and_then(|(size, reason)| Some((size.parse::<i64>().ok()?, reason.to_owned())))
            .unwrap_or_else(|| panic!("a rescale event's message: {event}"));
        *rescales.entry((size, reason)).or_default() += event["count"].as_i64().unwrap_or(1);
    }
    Ok(rescales)
}

/// The rescales in `after` that were not in `before`.
fn since(before: &Rescales, after: &Rescales) -> Rescales {
    after
        .iter()
        .filter_map(|(key, count)| {
            let added = count - before.get(key).copied().unwrap_or(0);
            (added > 0).then(|| (key.clone(), added))
        })
        .collect()
}

/// The rescales of both HPAs, once each shows a rescale to `size` since `before`.
async fn wait_for_rescales(
    control_plane: &ControlPlane,
    before: &[Rescales; 2],
    size: i64,
) -> [Rescales; 2] {
    control_plane
        .wait_for(
            &format!("both HPAs' SuccessfulRescale events to {size}"),
            EVENTS_WITHIN,
            || async {
                let mut now = [Rescales::new(), Rescales::new()];
                for (index, name) in HPAS.into_iter().enumerate() {
                    now[index] = rescales(control_plane, name).await?;
                    let added = since(&before[index], &now[index]);
                    if !added.keys().any(|(to, _)| *to == size) {
                        return Err(format!("{name}: {added:?} since {:?}", before[index]));
                    }
                }
                Ok(Some(now))
            },
        )
        .await
        .unwrap()
}

/// The reason the controller gives for scaling up on the queue's metric. Both HPAs get the
/// same words: for an Object metric with an AverageValue target the controller also writes
/// "external metric <name>(<selector>)" (`horizontal.go:625`, v1.37.2), not "Service metric".
fn above_target(reason: &str) -> bool {
    reason.starts_with("external metric redis_items_in_queue(&LabelSelector{MatchLabels:map[string]string{key: padok,}")
        && reason.ends_with(") above target")
}

/// The recorded requests the HPA made for a metric path.
fn hpa_requests<'a>(recorded: &'a [Recorded], path: &str) -> Vec<&'a Recorded> {
    recorded
        .iter()
        .filter(|r| r.target.starts_with(path) && r.header("x-remote-user") == [HPA_USER])
        .collect()
}

/// The identity and negotiation the kube-apiserver forwards for the HPA (DESIGN.md's facts).
fn assert_forwarded_for_the_hpa(request: &Recorded) {
    assert_eq!(
        request.client_cn.as_deref(),
        Some("front-proxy-client"),
        "{request:?}"
    );
    let mut groups = request.header("x-remote-group");
    groups.sort_unstable();
    assert_eq!(
        groups,
        [
            "system:authenticated",
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system"
        ],
        "{request:?}"
    );
    let uid = request.header("x-remote-uid");
    assert!(
        uid.len() == 1 && !uid[0].is_empty(),
        "X-Remote-Uid: {request:?}"
    );
    assert!(
        request
            .headers
            .iter()
            .any(|(name, value)| name.starts_with("x-remote-extra-") && !value.is_empty()),
        "no X-Remote-Extra-…: {request:?}"
    );
    let accept = request.header("accept").join(",");
    assert!(
        accept.contains("application/vnd.kubernetes.protobuf") && accept.contains("*/*"),
        "Accept: {accept}"
    );
    assert_eq!(request.method, "GET");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_metrics_api_hpa_object_and_external_scale_0_to_5_to_0_and_hold_when_redis_stops() {
    let test =
        "e2e_metrics_api_hpa_object_and_external_scale_0_to_5_to_0_and_hold_when_redis_stops";
    let Some(control_plane) = start_or_skip(test, Options::default()).await else {
        return;
    };
    let dir = temp_dir("ebb-metrics-api-hpa").unwrap();
    let mut redis = RedisServer::start();
    let server = MetricsApi::start(
        &control_plane,
        Path::new(env!("CARGO_BIN_EXE_ebb")),
        &redis.address(),
        &[],
        &[],
        true,
        dir.path(),
    )
    .await
    .unwrap();

    // The consumer chart as it is (its HPA reads the dojo's metric), and the External twin.
    charts::install(&control_plane, "consumer", "default", &[])
        .await
        .unwrap();
    control_plane.apply(EXTERNAL).await.unwrap();

    // Both start at 1 replica: the HPA takes them to 0 itself (it only scales up from 0 what
    // it scaled to 0), reading 0 for the missing list.
    wait_for_both(&control_plane, 0, SCALE_DOWN_WITHIN).await;
    let at_zero = wait_for_rescales(&control_plane, &Default::default(), 0).await;
    for (name, rescales) in HPAS.into_iter().zip(&at_zero) {
        assert_eq!(
            rescales,
            &Rescales::from([((0, BELOW_TARGET.to_owned()), 1)]),
            "{name}: 1 → 0 in one rescale"
        );
    }

    let items: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let mut rpush = vec!["RPUSH", "padok"];
    rpush.extend(items.iter().map(String::as_str));
    redis.cli(&rpush);
    let up = wait_for_both(&control_plane, 5, SCALE_UP_WITHIN).await;
    eprintln!("100 items → 5 replicas (Object and External) in {up:.1?}");
    // The controller's own account: scale-ups only, on the queue's metric, up to 5. Without
    // `behavior` a scale-up is limited to max(2 × current, 4) per sync, so it takes 0 → 4 → 5
    // (the sizes on the way are the controller's business: printed, not asserted).
    let at_five = wait_for_rescales(&control_plane, &at_zero, 5).await;
    for (index, name) in HPAS.into_iter().enumerate() {
        let added = since(&at_zero[index], &at_five[index]);
        for (size, reason) in added.keys() {
            assert!(
                (1..=5).contains(size) && above_target(reason),
                "{name}: a rescale to {size} ({reason}) on the way 0 → 5: {added:?}"
            );
        }
        eprintln!(
            "{name} rescaled to {:?}",
            added.keys().map(|(size, _)| size).collect::<Vec<_>>()
        );
    }

    // What the kube-apiserver sent on the HPA's behalf, as it arrived.
    let recorder = server.recorder.as_ref().expect("started with a recorder");
    let recorded = recorder.requests();
    let object = hpa_requests(
        &recorded,
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue",
    );
    let external = hpa_requests(
        &recorded,
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/redis_items_in_queue",
    );
    assert!(
        !object.is_empty() && !external.is_empty(),
        "no HPA request among {:?}",
        recorded.iter().map(|r| &r.target).collect::<Vec<_>>()
    );
    for request in object.iter().chain(&external) {
        assert_forwarded_for_the_hpa(request);
    }
    assert!(
        object[0]
            .target
            .ends_with("?metricLabelSelector=key%3Dpadok"),
        "{}",
        object[0].target
    );
    assert!(
        external[0].target.ends_with("?labelSelector=key%3Dpadok"),
        "{}",
        external[0].target
    );

    // Redis stops: the API says 503 (never a stale or zero value), and the HPAs hold at 5.
    redis.stop();
    control_plane
        .wait_for(
            "the metric to answer 503",
            Duration::from_secs(20),
            || async {
                match control_plane.kubectl(&["get", "--raw", DOJO_PATH]).await {
                    Err(error) if error.to_string().contains("ServiceUnavailable") => Ok(Some(())),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await
        .unwrap();
    let holding = Instant::now();
    while holding.elapsed() < HOLD_FOR {
        for name in HPAS {
            let (_, spec) = scale_of(&control_plane, name).await.unwrap();
            assert_eq!(spec, 5, "{name} moved while its metric failed");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for (index, name) in HPAS.into_iter().enumerate() {
        let now = rescales(&control_plane, name).await.unwrap();
        assert_eq!(
            since(&at_five[index], &now),
            Rescales::new(),
            "{name} rescaled while its metric failed"
        );
    }
    for (name, reason) in HPAS
        .into_iter()
        .zip(["FailedGetObjectMetric", "FailedGetExternalMetric"])
    {
        let active = condition(&control_plane, name, "ScalingActive").await;
        assert_eq!(active["status"], "False", "{name}: {active}");
        assert_eq!(active["reason"], reason, "{name}: {active}");
    }

    // Redis back, the queue emptied: both scale to 0.
    redis.resume();
    redis.cli(&["DEL", "padok"]);
    let down = wait_for_both(&control_plane, 0, SCALE_DOWN_WITHIN).await;
    eprintln!("emptied → 0 replicas (Object and External) in {down:.1?}");
    let back_at_zero = wait_for_rescales(&control_plane, &at_five, 0).await;
    for (index, name) in HPAS.into_iter().enumerate() {
        let added = since(&at_five[index], &back_at_zero[index]);
        for (size, reason) in added.keys() {
            assert!(
                (0..5).contains(size) && reason == BELOW_TARGET,
                "{name}: a rescale to {size} ({reason}) on the way 5 → 0: {added:?}"
            );
        }
    }
    drop(server);
}
