//! What the operator's e2e tests share: the CRD and a workload that makes no pods, the
//! operator started against the control plane, and items to push.

use ebb_testkit::control_plane::ControlPlane;
use ebb_testkit::redis::RedisServer;

use super::Ebb;

/// Where each operator e2e test starts: the QueueScaler CRD installed, the pod-less
/// Deployment `namespace/name`, and `queue_scaler` (the test's QueueScaler of it) applied.
pub async fn install_scaled_deployment(
    control_plane: &ControlPlane,
    namespace: &str,
    name: &str,
    queue_scaler: &str,
) {
    control_plane
        .install_crd(&ebb_operator::crd_yaml(), "queuescalers.ebb.dev")
        .await
        .unwrap();
    control_plane
        .apply(&pod_less_deployment(namespace, name))
        .await
        .unwrap();
    control_plane.apply(queue_scaler).await.unwrap();
}

/// `ebb operator run`, logging as `name`, against the control plane of `kubeconfig`, with
/// `env` besides (`POD_NAME`: the identity a replica holds the Lease with).
pub fn start_operator(name: &str, kubeconfig: &str, env: &[(&str, &str)]) -> Ebb {
    let mut all = vec![("KUBECONFIG", kubeconfig)];
    all.extend_from_slice(env);
    Ebb::start_with_env(name, &["operator", "run"], &all)
}

/// A namespace and, in it, a Deployment at 0 replicas: something with a scale subresource
/// for the operator to scale (its pods stay Pending without a node; only the count matters).
pub fn pod_less_deployment(namespace: &str, name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: {namespace}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: consumer, image: "ebb:test"}}]
"#
    )
}

/// `RPUSH key 0 1 … count-1`.
pub fn push(redis: &RedisServer, key: &str, count: usize) {
    let items: Vec<String> = (0..count).map(|i| i.to_string()).collect();
    let mut command = vec!["RPUSH", key];
    command.extend(items.iter().map(String::as_str));
    redis.cli(&command);
}
