//! The QueueScaler CRD: the committed copy is the generated one, and a real kube-apiserver
//! fills in its defaults and refuses bad objects with a message naming the field.

use std::path::PathBuf;

use ebb_operator::crd_yaml;
use ebb_testkit::control_plane::{ControlPlane, Options, start_or_skip};

fn committed_crd_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../helm/charts/operator/crds/queuescalers.yaml")
}

#[test]
fn committed_crd_is_the_generated_one() {
    let path = committed_crd_path();
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert!(
        committed == crd_yaml(),
        "{} differs from the CRD the Rust types generate: run\n  cargo run -q -p ebb -- operator crd > helm/charts/operator/crds/queuescalers.yaml",
        path.display()
    );
}

async fn install_crd(control_plane: &ControlPlane) {
    control_plane
        .install_crd(&crd_yaml(), "queuescalers.ebb.dev")
        .await
        .unwrap();
}

const MINIMAL: &str = r#"{
  "apiVersion": "ebb.dev/v1alpha1",
  "kind": "QueueScaler",
  "metadata": {"name": "NAME", "namespace": "default"},
  "spec": {
    "scaleTargetRef": {"name": "consumer"},
    "source": {"redisList": {"redis": {"address": "127.0.0.1:6379"}, "key": "padok"}}
  }
}"#;

/// `MINIMAL` under `name`, with `edit` applied to its JSON.
fn object(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(&MINIMAL.replace("NAME", name)).unwrap();
    edit(&mut value);
    value.to_string()
}

/// Creates the object with `kubectl create` and returns the API server's refusal.
async fn refusal(control_plane: &ControlPlane, manifest: &str) -> String {
    match control_plane
        .run("kubectl", &["create", "-f", "-"], Some(manifest))
        .await
    {
        Ok(output) => panic!("accepted: {manifest}\n{output}"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_operator_crd_defaults_columns_and_refusals_naming_the_field() {
    let Some(control_plane) = start_or_skip(
        "e2e_operator_crd_defaults_columns_and_refusals_naming_the_field",
        Options::default(),
    )
    .await
    else {
        return;
    };
    install_crd(&control_plane).await;

    // Defaults come from the schema: the API server fills them in.
    control_plane
        .run(
            "kubectl",
            &["create", "-f", "-"],
            Some(&object("minimal", |_| {})),
        )
        .await
        .unwrap();
    let stored = control_plane
        .get("queuescalers.ebb.dev", "default", "minimal")
        .await
        .unwrap();
    let spec = &stored["spec"];
    assert_eq!(spec["targetPerReplica"], 20, "{spec}");
    assert_eq!(spec["minReplicas"], 0, "{spec}");
    assert_eq!(spec["maxReplicas"], 20, "{spec}");
    assert_eq!(spec["activationThreshold"], 0, "{spec}");
    assert_eq!(spec["cooldownSeconds"], 20, "{spec}");
    assert_eq!(spec["pollingIntervalSeconds"], 1, "{spec}");
    assert_eq!(spec["scaleTargetRef"]["apiVersion"], "apps/v1", "{spec}");
    assert_eq!(spec["scaleTargetRef"]["kind"], "Deployment", "{spec}");

    // `kubectl get qs`: the short name and the columns.
    let table = control_plane
        .kubectl(&["get", "qs", "-n", "default"])
        .await
        .unwrap();
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "NAME", "TARGET", "MIN", "MAX", "REPLICAS", "WAITING", "ACTIVE", "AGE",
    ] {
        assert!(header.contains(column), "no {column} column in:\n{table}");
    }
    assert!(
        table.contains("minimal") && table.contains("consumer"),
        "{table}"
    );

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "min above max",
            object("min-above-max", |o| {
                o["spec"]["minReplicas"] = 5.into();
                o["spec"]["maxReplicas"] = 2.into();
            }),
            "spec.minReplicas must not be above spec.maxReplicas",
        ),
        (
            "target 0",
            object("target-zero", |o| o["spec"]["targetPerReplica"] = 0.into()),
            "spec.targetPerReplica",
        ),
        (
            "max 0",
            object("max-zero", |o| {
                o["spec"]["maxReplicas"] = 0.into();
            }),
            "spec.maxReplicas",
        ),
        (
            "two sources",
            object("two-sources", |o| {
                o["spec"]["source"]["ebbQueue"] =
                    serde_json::json!({"redis": {"address": "r:6379"}, "queue": "padok"});
            }),
            "spec.source must set exactly one of redisList, ebbQueue, redisStream, prometheus",
        ),
        (
            "no source",
            object("no-source", |o| o["spec"]["source"] = serde_json::json!({})),
            "spec.source must set exactly one of",
        ),
        (
            "address and urlFrom",
            object("address-and-url", |o| {
                o["spec"]["source"]["redisList"]["redis"]["urlFrom"] =
                    serde_json::json!({"name": "redis", "key": "url"});
            }),
            "set exactly one of redis.address and redis.urlFrom",
        ),
        (
            "secret reference without a key",
            object("secret-without-key", |o| {
                o["spec"]["source"]["redisList"]["redis"]["passwordFrom"] =
                    serde_json::json!({"name": "redis"});
            }),
            "spec.source.redisList.redis.passwordFrom.key: Required value",
        ),
        (
            "secret reference with an empty name",
            object("secret-empty-name", |o| {
                o["spec"]["source"]["redisList"]["redis"]["passwordFrom"] =
                    serde_json::json!({"name": "", "key": "password"});
            }),
            "spec.source.redisList.redis.passwordFrom.name",
        ),
        (
            "fallback of 0 replicas",
            object("fallback-zero", |o| {
                o["spec"]["fallback"] = serde_json::json!({"replicas": 0});
            }),
            "spec.fallback.replicas",
        ),
        (
            "fallback above max",
            object("fallback-above-max", |o| {
                o["spec"]["fallback"] = serde_json::json!({"replicas": 30});
            }),
            "spec.fallback.replicas must not be above spec.maxReplicas",
        ),
        (
            "a drain bound of 0",
            object("drain-zero", |o| {
                o["spec"]["scaleIn"] = serde_json::json!({"drainTimeoutSeconds": 0});
            }),
            "spec.scaleIn.drainTimeoutSeconds",
        ),
        (
            "a negative drain bound",
            object("drain-negative", |o| {
                o["spec"]["scaleIn"] = serde_json::json!({"drainTimeoutSeconds": -30});
            }),
            "spec.scaleIn.drainTimeoutSeconds",
        ),
        (
            "an unknown scale-in policy",
            object("scale-in-unknown", |o| {
                o["spec"]["scaleIn"] = serde_json::json!({"policy": "Random"});
            }),
            "spec.scaleIn.policy: Unsupported value: \"Random\"",
        ),
        (
            "Choose on a kind without costs",
            object("choose-statefulset", |o| {
                o["spec"]["scaleTargetRef"]["kind"] = "StatefulSet".into();
                o["spec"]["scaleIn"] = serde_json::json!({"policy": "Choose"});
            }),
            "spec.scaleIn.policy: Choose needs a Deployment or a ReplicaSet",
        ),
        (
            "no target name",
            object("no-target-name", |o| {
                o["spec"]["scaleTargetRef"] = serde_json::json!({"kind": "Deployment"});
            }),
            "spec.scaleTargetRef.name: Required value",
        ),
    ];
    let mut failures = Vec::new();
    for (case, manifest, expected) in &cases {
        let message = refusal(&control_plane, manifest).await;
        if !message.contains(expected) {
            failures.push(format!("{case}: expected {expected:?} in:\n  {message}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing refused was stored.
    let names = control_plane
        .kubectl(&["get", "qs", "-n", "default", "-o", "name"])
        .await
        .unwrap();
    assert_eq!(names.trim(), "queuescaler.ebb.dev/minimal");
}
