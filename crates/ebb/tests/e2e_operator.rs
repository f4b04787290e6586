//! `ebb operator run` against a real kube-apiserver and kube-controller-manager, with
//! `HPAScaleToZero` turned off to show it is not needed, in phases as KEDA's e2e tests:
//! activation, scale out, scale in.

mod common;

use std::time::Duration;

use ebb_testkit::control_plane::{ControlPlane, Options, start_or_skip};
use ebb_testkit::redis::RedisServer;

use common::Ebb;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: consumer, namespace: default}
spec:
  replicas: 0
  selector: {matchLabels: {app: consumer}}
  template:
    metadata: {labels: {app: consumer}}
    spec:
      containers: [{name: consumer, image: ebb:test}]
"#;

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

async fn spec_replicas(control_plane: &ControlPlane) -> Result<Option<i64>, String> {
    let deployment = control_plane
        .get("deployments.apps", "default", "consumer")
        .await
        .map_err(|error| error.to_string())?;
    Ok(deployment["spec"]["replicas"].as_i64())
}

async fn wait_for_replicas(control_plane: &ControlPlane, expected: i64, within: Duration) {
    control_plane
        .wait_for(
            &format!("deployment/consumer at {expected} replicas"),
            within,
            || async {
                let replicas = spec_replicas(control_plane).await?;
                Ok((replicas == Some(expected)).then_some(()))
            },
        )
        .await
        .unwrap();
}

async fn queue_scaler_status(control_plane: &ControlPlane) -> serde_json::Value {
    control_plane
        .get("queuescalers.ebb.dev", "default", "consumer")
        .await
        .unwrap()["status"]
        .clone()
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
    control_plane
        .apply(&ebb_operator::crd_yaml())
        .await
        .unwrap();
    control_plane
        .kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/queuescalers.ebb.dev",
        ])
        .await
        .unwrap();
    control_plane.apply(DEPLOYMENT).await.unwrap();
    control_plane
        .apply(&queue_scaler(&redis.address()))
        .await
        .unwrap();

    let kubeconfig = control_plane.kubeconfig.display().to_string();
    let _operator = Ebb::start_with_env(
        "operator",
        &["operator", "run"],
        &[("KUBECONFIG", kubeconfig.as_str())],
    );

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
    let items: Vec<String> = (0..195).map(|i| i.to_string()).collect();
    let mut push = vec!["RPUSH", "padok"];
    push.extend(items.iter().map(String::as_str));
    redis.cli(&push);
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
    let events = control_plane
        .kubectl(&[
            "get",
            "events",
            "-n",
            "default",
            "--field-selector",
            "involvedObject.kind=QueueScaler,reason=Scaled",
            "-o",
            "jsonpath={range .items[*]}{.note}{.message}{\"\\n\"}{end}",
        ])
        .await
        .unwrap();
    assert!(
        events.contains("0 → 10") || events.contains("0 -> 10"),
        "{events}"
    );
}
