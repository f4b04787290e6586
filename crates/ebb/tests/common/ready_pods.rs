//! Ready pods without a kubelet, for the control-plane tier: a Node object that reports Ready
//! (its heartbeat renewed while the test runs), onto which the real kube-scheduler binds the
//! pods, and a status patch that makes a bound pod Running and Ready. A ReplicaSet then ranks
//! these pods as it ranks real ones: the tier where the order it deletes in can be asserted
//! quickly, without containers.
//!
//! What a kubelet would do and nothing does here: deleted pods stay Terminating (no kubelet
//! confirms their end), which is what the tests look at.

use std::time::Duration;

use ebb_testkit::control_plane::ControlPlane;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// How often the node's Ready heartbeat is renewed: well inside the node lifecycle
/// controller's grace period (50 s), so the node never turns Unknown mid-test.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// The Node `name`, Ready while this lives.
pub struct ReadyNode {
    pub name: String,
    heartbeat: JoinHandle<()>,
}

impl Drop for ReadyNode {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl ReadyNode {
    /// Creates the node (room for 110 pods) and keeps it Ready.
    pub async fn start(control_plane: &'static ControlPlane, name: &str) -> ReadyNode {
        control_plane
            .apply(&format!(
                "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}}}}}\n"
            ))
            .await
            .unwrap();
        report_ready(control_plane, name).await;
        let node = name.to_owned();
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT_EVERY).await;
                report_ready(control_plane, &node).await;
            }
        });
        ReadyNode {
            name: name.to_owned(),
            heartbeat,
        }
    }
}

async fn report_ready(control_plane: &ControlPlane, node: &str) {
    let now = Timestamp::now().to_string();
    let resources = json!({"cpu": "64", "memory": "256Gi", "pods": "110"});
    let status = json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "a test's node object", "lastHeartbeatTime": now, "lastTransitionTime": now,
        }],
    }});
    control_plane
        .kubectl(&[
            "patch",
            "node",
            node,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ])
        .await
        .unwrap();
}

/// The pods of `namespace` matching `selector`, oldest first: `(name, bound node, status)`.
pub async fn pods(control_plane: &ControlPlane, namespace: &str, selector: &str) -> Vec<Value> {
    let list = control_plane
        .kubectl_json(&["get", "pods", "-n", namespace, "-l", selector])
        .await
        .unwrap();
    let mut pods = list["items"].as_array().cloned().unwrap_or_default();
    pods.sort_by_key(|pod| {
        pod["metadata"]["creationTimestamp"]
            .as_str()
            .map(str::to_owned)
    });
    pods
}

/// Marks the bound pod `name` Running and Ready since `ready_since` (the ReplicaSet deletes
/// pods Ready for the shortest time first, among equal costs).
pub async fn make_ready(
    control_plane: &ControlPlane,
    namespace: &str,
    name: &str,
    ready_since: Timestamp,
) {
    let since = ready_since.to_string();
    let status = json!({"status": {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": since},
            {"type": "Ready", "status": "True", "lastTransitionTime": since},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": since},
        ],
    }});
    control_plane
        .kubectl(&[
            "patch",
            "pod",
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ])
        .await
        .unwrap();
}

/// Whether the pod is going (a deletion timestamp, or gone).
pub fn is_going(pods: &[Value], name: &str) -> bool {
    pods.iter()
        .find(|pod| pod["metadata"]["name"] == name)
        .is_none_or(|pod| !pod["metadata"]["deletionTimestamp"].is_null())
}
