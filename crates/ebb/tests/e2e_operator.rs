//! `ebb operator run` against a real kube-apiserver and kube-controller-manager, with
//! `HPAScaleToZero` turned off to show it is not needed, in phases as KEDA's e2e tests:
//! activation, scale out, scale in.

mod common;

use std::time::Duration;

use ebb_testkit::control_plane::{ControlPlane, Options, start_or_skip};
use ebb_testkit::redis::RedisServer;

use common::Ebb;
use common::operator::{
    install_scaled_deployment, pod_less_deployment as deployment, push, start_operator,
};

const DEPLOYMENT_NAMESPACE: &str = "default";

/// The test's Redis servers listen on loopback ports of their own: the phase with a
/// `passwordFrom` needs them on the operator's allow-list (`--allowed-addresses`).
const ALLOW_LOOPBACK: &[(&str, &str)] = &[("EBB_ALLOWED_ADDRESSES", "127.0.0.1")];

fn queue_scaler(redis: &str) -> String {
    format!(
        r#"
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: consumer, namespace: default}}
spec:
  scaleTargetRef: {{name: consumer}}
  source: {{redisList: {{redis: {{address: "{redis}"}}, key: padok}}}}
  activationThreshold: 5
  cooldownSeconds: 2
  behavior:
    scaleDown: {{stabilizationWindowSeconds: 2}}
"#
    )
}

async fn replicas_of(
    control_plane: &ControlPlane,
    namespace: &str,
    name: &str,
) -> Result<Option<i64>, String> {
    let deployment = control_plane
        .get("deployments.apps", namespace, name)
        .await
        .map_err(|error| error.to_string())?;
    Ok(deployment["spec"]["replicas"].as_i64())
}

async fn spec_replicas(control_plane: &ControlPlane) -> Result<Option<i64>, String> {
    replicas_of(control_plane, DEPLOYMENT_NAMESPACE, "consumer").await
}

async fn wait_for_replicas_of(
    control_plane: &ControlPlane,
    namespace: &str,
    name: &str,
    expected: i64,
    within: Duration,
) {
    control_plane
        .wait_for(
            &format!("deployment {namespace}/{name} at {expected} replicas"),
            within,
            || async {
                let replicas = replicas_of(control_plane, namespace, name).await?;
                Ok((replicas == Some(expected)).then_some(()))
            },
        )
        .await
        .unwrap();
}

async fn wait_for_replicas(control_plane: &ControlPlane, expected: i64, within: Duration) {
    wait_for_replicas_of(
        control_plane,
        DEPLOYMENT_NAMESPACE,
        "consumer",
        expected,
        within,
    )
    .await;
}

async fn status_of(control_plane: &ControlPlane, namespace: &str, name: &str) -> serde_json::Value {
    control_plane
        .get("queuescalers.ebb.dev", namespace, name)
        .await
        .unwrap()["status"]
        .clone()
}

async fn queue_scaler_status(control_plane: &ControlPlane) -> serde_json::Value {
    status_of(control_plane, DEPLOYMENT_NAMESPACE, "consumer").await
}

/// Waits until the condition `kind` of QueueScaler `namespace/name` has `status`; returns
/// the whole status.
async fn wait_for_condition(
    control_plane: &ControlPlane,
    namespace: &str,
    name: &str,
    kind: &str,
    status: &str,
) -> serde_json::Value {
    control_plane
        .wait_for(
            &format!("queuescaler {namespace}/{name} {kind}={status}"),
            Duration::from_secs(30),
            || async {
                let seen = status_of(control_plane, namespace, name).await;
                Ok((condition(&seen, kind).as_deref() == Some(status)).then_some(seen))
            },
        )
        .await
        .unwrap()
}

/// [`wait_for_condition`] of the QueueScaler `consumer`, the one the main phases drive.
async fn wait_for_consumer_condition(
    control_plane: &ControlPlane,
    kind: &str,
    status: &str,
) -> serde_json::Value {
    wait_for_condition(
        control_plane,
        DEPLOYMENT_NAMESPACE,
        "consumer",
        kind,
        status,
    )
    .await
}

/// `kubectl annotate` of the QueueScaler `consumer` (`key=value` sets, `key-` removes).
async fn annotate_consumer(control_plane: &ControlPlane, annotation: &str) {
    control_plane
        .kubectl(&[
            "annotate",
            "qs",
            "consumer",
            "-n",
            DEPLOYMENT_NAMESPACE,
            annotation,
        ])
        .await
        .unwrap();
}

/// The notes of the Events `reason` about QueueScaler `namespace/name`.
async fn events(control_plane: &ControlPlane, namespace: &str, name: &str, reason: &str) -> String {
    control_plane
        .kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            namespace,
            "--field-selector",
            &format!("regarding.kind=QueueScaler,regarding.name={name},reason={reason}"),
            "-o",
            "jsonpath={range .items[*]}{.note}{\"\\n\"}{end}",
        ])
        .await
        .unwrap()
}

fn condition(status: &serde_json::Value, kind: &str) -> Option<String> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|condition| condition["type"] == kind)
        .and_then(|condition| condition["status"].as_str())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_operator_activation_scale_out_scale_in_without_hpa_scale_to_zero() {
    let Some(control_plane) = start_or_skip(
        "e2e_operator_activation_scale_out_scale_in_without_hpa_scale_to_zero",
        Options {
            feature_gates: "HPAScaleToZero=false".into(),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let redis = RedisServer::start();
    install_scaled_deployment(
        &control_plane,
        DEPLOYMENT_NAMESPACE,
        "consumer",
        &queue_scaler(&redis.address()),
    )
    .await;

    let kubeconfig = control_plane.kubeconfig.display().to_string();
    let mut operator = start_operator("operator", &kubeconfig, ALLOW_LOOPBACK);

    // Activation: at or under the threshold nothing starts. Time has to pass to show that
    // nothing happens; the status proves the operator read the queue meanwhile.
    redis.cli(&["RPUSH", "padok", "1", "2", "3", "4", "5"]);
    control_plane
        .wait_for(
            "the status to show 5 waiting",
            Duration::from_secs(30),
            || async {
                let status = queue_scaler_status(&control_plane).await;
                Ok((status["waiting"] == 5).then_some(()))
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(spec_replicas(&control_plane).await.unwrap(), Some(0));
    let status = queue_scaler_status(&control_plane).await;
    assert_eq!(
        condition(&status, "Active").as_deref(),
        Some("False"),
        "{status}"
    );
    assert_eq!(
        condition(&status, "Ready").as_deref(),
        Some("True"),
        "{status}"
    );
    assert!(status.get("averagePerReplica").is_none(), "{status}");

    // Scale out: 200 items at 20 per replica.
    push(&redis, "padok", 195);
    wait_for_replicas(&control_plane, 10, Duration::from_secs(10)).await;
    control_plane
        .wait_for(
            "the status of 10 replicas",
            Duration::from_secs(15),
            || async {
                let status = queue_scaler_status(&control_plane).await;
                Ok((status["replicas"] == 10
                    && status["averagePerReplica"] == "20"
                    && condition(&status, "Active").as_deref() == Some("True"))
                .then_some(status))
            },
        )
        .await
        .unwrap();

    // Scale in: the queue emptied, back to 0 after the cooldown and window.
    redis.cli(&["DEL", "padok"]);
    wait_for_replicas(&control_plane, 0, Duration::from_secs(20)).await;
    let status = control_plane
        .wait_for(
            "the status at 0 replicas",
            Duration::from_secs(15),
            || async {
                let status = queue_scaler_status(&control_plane).await;
                Ok((status["replicas"] == 0 && status["desiredReplicas"] == 0).then_some(status))
            },
        )
        .await
        .unwrap();
    assert!(status.get("averagePerReplica").is_none(), "{status}");
    assert!(status["lastScaleTime"].is_string(), "{status}");
    let table = control_plane
        .kubectl(&["get", "qs", "-n", "default"])
        .await
        .unwrap();
    assert!(!table.contains("-9223372036854775808"), "{table}");

    // Every scale is an Event with its reason.
    let scaled = events(&control_plane, DEPLOYMENT_NAMESPACE, "consumer", "Scaled").await;
    assert!(scaled.contains("scale 0 → 10"), "{scaled}");
    assert!(scaled.contains("→ 0"), "{scaled}");

    pause_and_resume(&control_plane, &redis).await;
    manual_scale_is_overridden(&control_plane).await;
    restart_continues_without_a_spurious_scale(&control_plane, &mut operator, &kubeconfig, &redis)
        .await;
    conflicts_are_reported(&control_plane, &redis).await;
    secret_referenced_redis_with_a_password(&control_plane, &operator).await;
    fallback_when_redis_is_down(&control_plane).await;
    keyspace_notifications_wake_the_scaler(&control_plane).await;
    scalers_of_one_redis_share_its_connections(&control_plane).await;
}

/// Paused at a count: applied once, held whatever the queue says, and resumed when the
/// annotation goes.
async fn pause_and_resume(control_plane: &ControlPlane, redis: &RedisServer) {
    eprintln!("== pause and resume");
    annotate_consumer(control_plane, "ebb.dev/paused-replicas=3").await;
    wait_for_replicas(control_plane, 3, Duration::from_secs(15)).await;
    let status = wait_for_consumer_condition(control_plane, "Paused", "True").await;
    assert!(
        status["lastDecision"]
            .as_str()
            .unwrap()
            .contains("paused at 3"),
        "{status}"
    );
    push(redis, "padok", 200);
    // Time has to pass to show that nothing happens.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        spec_replicas(control_plane).await.unwrap(),
        Some(3),
        "paused: the queue is ignored"
    );
    annotate_consumer(control_plane, "ebb.dev/paused-replicas-").await;
    wait_for_replicas(control_plane, 10, Duration::from_secs(15)).await;
    wait_for_consumer_condition(control_plane, "Paused", "False").await;
}

/// `kubectl scale` of a managed workload is undone at the next decision, and said so.
async fn manual_scale_is_overridden(control_plane: &ControlPlane) {
    eprintln!("== manual scale overridden");
    control_plane
        .kubectl(&[
            "scale",
            "deployment/consumer",
            "-n",
            DEPLOYMENT_NAMESPACE,
            "--replicas=7",
        ])
        .await
        .unwrap();
    control_plane
        .wait_for("an Overridden event", Duration::from_secs(15), || async {
            let notes = events(
                control_plane,
                DEPLOYMENT_NAMESPACE,
                "consumer",
                "Overridden",
            )
            .await;
            Ok(notes.contains("set to 7 replicas outside").then_some(()))
        })
        .await
        .unwrap();
    wait_for_replicas(control_plane, 10, Duration::from_secs(15)).await;
}

/// A restarted operator decides from the same queue and makes no spurious scale, and
/// continues a scale-down window from the status: the window runs from when the queue
/// shrank, not from the restart.
async fn restart_continues_without_a_spurious_scale(
    control_plane: &ControlPlane,
    operator: &mut Ebb,
    kubeconfig: &str,
    redis: &RedisServer,
) {
    eprintln!("== restart");
    const WINDOW: u64 = 12;
    control_plane
        .kubectl(&[
            "patch",
            "qs",
            "consumer",
            "-n",
            DEPLOYMENT_NAMESPACE,
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"behavior":{{"scaleDown":{{"stabilizationWindowSeconds":{WINDOW}}}}}}}}}"#),
        ])
        .await
        .unwrap();
    control_plane
        .wait_for("the new spec observed", Duration::from_secs(15), || async {
            let status = queue_scaler_status(control_plane).await;
            Ok((status["observedGeneration"] == 2).then_some(()))
        })
        .await
        .unwrap();
    let before = events(control_plane, DEPLOYMENT_NAMESPACE, "consumer", "Scaled").await;

    // Half the queue gone: the recommendation drops to 5, the window holds 10.
    redis.cli(&["LTRIM", "padok", "0", "99"]);
    let shrank = std::time::Instant::now();
    control_plane
        .wait_for(
            "the held recommendation in the status",
            Duration::from_secs(15),
            || async {
                let status = queue_scaler_status(control_plane).await;
                let held = status["recentRecommendations"]
                    .as_array()
                    .is_some_and(|all| all.iter().any(|r| r["replicas"] == 10));
                Ok(held.then_some(()))
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(WINDOW / 2).saturating_sub(shrank.elapsed())).await;
    operator.signal("TERM");
    assert!(operator.wait_for_exit().success());
    *operator = start_operator("operator", kubeconfig, ALLOW_LOOPBACK);
    operator.wait_for_log("scaling QueueScalers");
    assert_eq!(
        spec_replicas(control_plane).await.unwrap(),
        Some(10),
        "held across the restart"
    );
    let after = events(control_plane, DEPLOYMENT_NAMESPACE, "consumer", "Scaled").await;
    assert_eq!(before, after, "the restart scaled something");

    wait_for_replicas(control_plane, 5, Duration::from_secs(WINDOW + 10)).await;
    let took = shrank.elapsed();
    eprintln!(
        "scale-down {took:?} after the queue shrank, window {WINDOW} s, restart at {} s",
        WINDOW / 2
    );
    // A scaler that forgot would wait a whole window from the restart: 1.5 windows.
    assert!(
        took < Duration::from_secs(WINDOW + WINDOW / 4),
        "the window restarted with the operator: scale-down after {took:?}"
    );
    redis.cli(&["DEL", "padok"]);
    push(redis, "padok", 200);
    wait_for_replicas(control_plane, 10, Duration::from_secs(15)).await;
}

/// An HPA on the same workload is reported by the older QueueScaler, which keeps scaling;
/// a newer QueueScaler on it stays hands-off and says why.
async fn conflicts_are_reported(control_plane: &ControlPlane, redis: &RedisServer) {
    eprintln!("== conflicts");
    control_plane
        .apply(&format!(
            r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: rival, namespace: {DEPLOYMENT_NAMESPACE}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: consumer}}
  minReplicas: 1
  maxReplicas: 20
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}
"#
        ))
        .await
        .unwrap();
    let status = wait_for_consumer_condition(control_plane, "Conflict", "True").await;
    assert!(
        status
            .to_string()
            .contains("HorizontalPodAutoscaler default/rival also scales"),
        "{status}"
    );
    control_plane
        .kubectl(&["delete", "hpa", "rival", "-n", DEPLOYMENT_NAMESPACE])
        .await
        .unwrap();
    wait_for_consumer_condition(control_plane, "Conflict", "False").await;

    control_plane
        .apply(&format!(
            r#"
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: newer, namespace: {DEPLOYMENT_NAMESPACE}}}
spec:
  scaleTargetRef: {{name: consumer}}
  source: {{redisList: {{redis: {{address: "{}"}}, key: other}}}}
"#,
            redis.address()
        ))
        .await
        .unwrap();
    let status = wait_for_condition(
        control_plane,
        DEPLOYMENT_NAMESPACE,
        "newer",
        "Conflict",
        "True",
    )
    .await;
    assert_eq!(
        condition(&status, "Ready").as_deref(),
        Some("False"),
        "{status}"
    );
    assert!(
        status
            .to_string()
            .contains("QueueScaler default/consumer scales Deployment/consumer and is older"),
        "{status}"
    );
    // The newer one's empty list would scale to 0; hands-off, it does not.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(spec_replicas(control_plane).await.unwrap(), Some(10));
    control_plane
        .kubectl(&["delete", "qs", "newer", "-n", DEPLOYMENT_NAMESPACE])
        .await
        .unwrap();
}

/// Redis behind a password held in a Secret; the password appears nowhere.
async fn secret_referenced_redis_with_a_password(control_plane: &ControlPlane, operator: &Ebb) {
    eprintln!("== Secret-referenced Redis with a password");
    const PASSWORD: &str = "s3cret-p@ss";
    let redis = RedisServer::start_with(&["--requirepass", PASSWORD]);
    control_plane
        .apply(&deployment("secured", "worker"))
        .await
        .unwrap();
    control_plane
        .apply(&format!(
            r#"
apiVersion: v1
kind: Secret
metadata: {{name: redis-auth, namespace: secured}}
stringData: {{password: "{PASSWORD}"}}
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: worker, namespace: secured}}
spec:
  scaleTargetRef: {{name: worker}}
  source:
    ebbQueue:
      queue: jobs
      redis:
        address: "{}"
        passwordFrom: {{name: redis-auth, key: password}}
"#,
            redis.address()
        ))
        .await
        .unwrap();
    push(&redis, "jobs", 40);
    wait_for_replicas_of(
        control_plane,
        "secured",
        "worker",
        2,
        Duration::from_secs(20),
    )
    .await;
    let everything = format!(
        "{}\n{}\n{}",
        control_plane
            .kubectl(&["get", "qs", "-A", "-o", "yaml"])
            .await
            .unwrap(),
        control_plane
            .kubectl(&["get", "events", "-A", "-o", "yaml"])
            .await
            .unwrap(),
        operator.logs().join("\n"),
    );
    assert!(!everything.contains(PASSWORD), "the password leaked");
}

/// A Deployment `worker` in `namespace` and its QueueScaler, reading the list `key` of
/// `redis` with `spec_line` added to its spec (the setting the phase is about); returns once
/// the QueueScaler is Ready, so that the phase starts from a scaler that has read the queue.
async fn ready_worker_scaler(
    control_plane: &ControlPlane,
    namespace: &str,
    redis: &RedisServer,
    key: &str,
    spec_line: &str,
) {
    control_plane
        .apply(&deployment(namespace, "worker"))
        .await
        .unwrap();
    control_plane
        .apply(&format!(
            r#"
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: worker, namespace: {namespace}}}
spec:
  scaleTargetRef: {{name: worker}}
  source: {{redisList: {{redis: {{address: "{}"}}, key: {key}}}}}
  {spec_line}
"#,
            redis.address()
        ))
        .await
        .unwrap();
    wait_for_condition(control_plane, namespace, "worker", "Ready", "True").await;
}

/// Redis stopped: never to zero; the fallback count after the failures, from 0 too,
/// cleared when Redis is back.
async fn fallback_when_redis_is_down(control_plane: &ControlPlane) {
    eprintln!("== fallback");
    let mut redis = RedisServer::start();
    ready_worker_scaler(
        control_plane,
        "fallback",
        &redis,
        "padok",
        "fallback: {replicas: 2, failureThreshold: 2}",
    )
    .await;
    assert_eq!(
        replicas_of(control_plane, "fallback", "worker")
            .await
            .unwrap(),
        Some(0)
    );
    redis.stop();
    wait_for_replicas_of(
        control_plane,
        "fallback",
        "worker",
        2,
        Duration::from_secs(30),
    )
    .await;
    let status = wait_for_condition(control_plane, "fallback", "worker", "Fallback", "True").await;
    assert_eq!(
        condition(&status, "Ready").as_deref(),
        Some("False"),
        "{status}"
    );
    redis.resume();
    push(&redis, "padok", 100);
    wait_for_replicas_of(
        control_plane,
        "fallback",
        "worker",
        5,
        Duration::from_secs(30),
    )
    .await;
    wait_for_condition(control_plane, "fallback", "worker", "Fallback", "False").await;
}

/// Where Redis sends keyspace notifications, a change wakes the scaler at once: with a
/// 300 s polling interval, the scale follows the push within seconds.
async fn keyspace_notifications_wake_the_scaler(control_plane: &ControlPlane) {
    eprintln!("== keyspace notifications");
    let redis = RedisServer::start_with(&["--notify-keyspace-events", "Kl"]);
    ready_worker_scaler(
        control_plane,
        "events",
        &redis,
        "jobs",
        "pollingIntervalSeconds: 300",
    )
    .await;
    // The subscription is made right after the first read; give it a moment to be in place.
    control_plane
        .wait_for("the subscription", Duration::from_secs(10), || async {
            let channels = redis.cli(&["PUBSUB", "NUMPAT"]);
            Ok((channels != "0").then_some(()))
        })
        .await
        .unwrap();
    let pushed = std::time::Instant::now();
    push(&redis, "jobs", 40);
    wait_for_replicas_of(
        control_plane,
        "events",
        "worker",
        2,
        Duration::from_secs(10),
    )
    .await;
    eprintln!(
        "scaled {:?} after the push, polling every 300 s",
        pushed.elapsed()
    );
}

/// Twenty QueueScalers on one Redis: one connection for their reads (one pipeline per tick)
/// and one keyspace subscription fanning out to them, not forty connections; a push wakes
/// its own scaler only.
async fn scalers_of_one_redis_share_its_connections(control_plane: &ControlPlane) {
    eprintln!("== twenty scalers, one Redis");
    const SCALERS: usize = 20;
    let redis = RedisServer::start_with(&["--notify-keyspace-events", "Kl"]);
    let mut manifests = String::new();
    for n in 0..SCALERS {
        manifests.push_str(&deployment("shared", &format!("worker-{n}")));
        manifests.push_str(&format!(
            r#"
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: worker-{n}, namespace: shared}}
spec:
  scaleTargetRef: {{name: worker-{n}}}
  source: {{redisList: {{redis: {{address: "{}"}}, key: jobs-{n}}}}}
  pollingIntervalSeconds: 300
---
"#,
            redis.address()
        ));
    }
    control_plane.apply(&manifests).await.unwrap();
    for n in 0..SCALERS {
        wait_for_condition(
            control_plane,
            "shared",
            &format!("worker-{n}"),
            "Ready",
            "True",
        )
        .await;
    }
    control_plane
        .wait_for(
            "one subscription to every scaler's key",
            Duration::from_secs(10),
            || async {
                Ok((redis.cli(&["PUBSUB", "NUMPAT"]) == SCALERS.to_string()).then_some(()))
            },
        )
        .await
        .unwrap();
    // The operator's connections: everything but this redis-cli's own.
    let clients = control_plane
        .wait_for(
            "the operator's connections to settle at two",
            Duration::from_secs(10),
            || async {
                let clients = redis.cli(&["CLIENT", "LIST"]);
                let operator = clients
                    .lines()
                    .filter(|line| !line.contains("cmd=client"))
                    .count();
                Ok((operator <= 2).then_some(clients))
            },
        )
        .await
        .unwrap();
    assert_eq!(
        redis
            .cli(&["CLIENT", "LIST", "TYPE", "pubsub"])
            .lines()
            .count(),
        1,
        "{clients}"
    );

    push(&redis, "jobs-7", 40);
    wait_for_replicas_of(
        control_plane,
        "shared",
        "worker-7",
        2,
        Duration::from_secs(10),
    )
    .await;
    for n in [0, 6, 8, 19] {
        assert_eq!(
            replicas_of(control_plane, "shared", &format!("worker-{n}"))
                .await
                .unwrap(),
            Some(0),
            "worker-{n} scaled by a push to jobs-7"
        );
    }
}
