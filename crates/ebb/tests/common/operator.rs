//! What the operator's e2e tests share: a workload that makes no pods, and items to push.

use ebb_testkit::redis::RedisServer;

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
