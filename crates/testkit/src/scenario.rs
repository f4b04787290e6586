//! One scenario of an operator test: a namespace of its own on the test binary's shared
//! control plane, with the QueueScaler CRD installed, pod-less Deployments to scale, and the
//! looks every scenario takes (replicas, status, conditions, Events). The operator itself is
//! the caller's: `ebb operator run` for ebb's e2e tests, the controller in-process for the
//! operator crate's own.
//!
//! Scenarios of one binary run in parallel threads; each owns its namespace (and starts its
//! own Redis servers), so none sees another's objects or keys. The namespace is deleted when
//! the scenario is dropped (the control plane itself goes when the test binary exits).

use std::time::Duration;

use crate::control_plane::{ControlPlane, Options, shared_or_skip};
use crate::poll;

/// The QueueScaler CustomResourceDefinition's name.
pub const QUEUE_SCALER_CRD: &str = "queuescalers.ebb.dev";
/// How long a QueueScaler's condition is waited for.
const CONDITION_WITHIN: Duration = Duration::from_secs(30);

/// A namespace of one test on the shared control plane.
#[derive(Debug)]
pub struct Scenario {
    pub control_plane: &'static ControlPlane,
    pub namespace: String,
}

impl Scenario {
    /// The test binary's shared control plane (started with `options` by the first test that
    /// asks), with the CRD `crd` (the operator's `crd_yaml()`) installed once, and a fresh
    /// namespace `namespace`; `None` when the gate skips (never under CI: there it fails).
    pub async fn start(
        test: &str,
        options: Options,
        crd: &str,
        namespace: &str,
    ) -> Option<Scenario> {
        let control_plane = shared_or_skip(test, options).await?;
        install_crd_once(control_plane, crd).await;
        let scenario = Scenario {
            control_plane,
            namespace: namespace.to_owned(),
        };
        scenario
            .apply(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n"
            ))
            .await;
        Some(scenario)
    }

    /// Applies `manifests` (objects of this namespace say so themselves); panics on failure.
    pub async fn apply(&self, manifests: &str) {
        self.control_plane
            .apply(manifests)
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", self.namespace));
    }

    /// `kubectl <args> -n <namespace>`; panics on failure.
    pub async fn kubectl(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["-n", &self.namespace]);
        self.control_plane
            .kubectl(&all)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// A pod-less Deployment `name` of this namespace (see [`pod_less_deployment`]).
    pub fn deployment(&self, name: &str) -> String {
        deployment(&self.namespace, name)
    }

    /// `spec.replicas` of the Deployment `name`.
    pub async fn replicas(&self, name: &str) -> Result<Option<i64>, String> {
        let deployment = self
            .control_plane
            .get("deployments.apps", &self.namespace, name)
            .await
            .map_err(|error| error.to_string())?;
        Ok(deployment["spec"]["replicas"].as_i64())
    }

    /// Waits until the Deployment `name` is at `expected` replicas; panics after `within`.
    pub async fn wait_for_replicas(&self, name: &str, expected: i64, within: Duration) {
        let what = format!(
            "deployment {}/{name} at {expected} replicas",
            self.namespace
        );
        poll::until(&what, within, || async {
            match self.replicas(name).await? {
                Some(replicas) if replicas == expected => Ok(Some(())),
                replicas => Err(format!("{replicas:?}")),
            }
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    }

    /// The status of the QueueScaler `name` (`null` while it has none).
    pub async fn status(&self, name: &str) -> serde_json::Value {
        self.control_plane
            .get(QUEUE_SCALER_CRD, &self.namespace, name)
            .await
            .unwrap_or_else(|error| panic!("{error}"))["status"]
            .clone()
    }

    /// Waits until `look` says yes about the status of the QueueScaler `name`; returns that
    /// status. Panics after `within`, with the last status seen.
    pub async fn wait_for_status(
        &self,
        name: &str,
        what: &str,
        within: Duration,
        look: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let what = format!("queuescaler {}/{name}: {what}", self.namespace);
        poll::until(&what, within, || async {
            let status = self.status(name).await;
            match look(&status) {
                true => Ok(Some(status)),
                false => Err(status.to_string()),
            }
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Waits (up to 30 s) until the condition `kind` of the QueueScaler `name` is `status`;
    /// returns the whole status.
    pub async fn wait_for_condition(
        &self,
        name: &str,
        kind: &str,
        status: &str,
    ) -> serde_json::Value {
        self.wait_for_status(
            name,
            &format!("{kind}={status}"),
            CONDITION_WITHIN,
            |seen| condition(seen, kind).as_deref() == Some(status),
        )
        .await
    }

    /// The notes of the Events `reason` about the QueueScaler `name`, one a line.
    pub async fn events(&self, name: &str, reason: &str) -> String {
        self.kubectl(&[
            "get",
            "events.events.k8s.io",
            "--field-selector",
            &format!("regarding.kind=QueueScaler,regarding.name={name},reason={reason}"),
            "-o",
            "jsonpath={range .items[*]}{.note}{\"\\n\"}{end}",
        ])
        .await
    }
}

impl Drop for Scenario {
    /// Deletes the namespace without waiting for it to go: what the scenario made stops
    /// mattering to the others at once, and the control plane finishes the deletion.
    fn drop(&mut self) {
        let deleted = std::process::Command::new(self.control_plane.bin.join("kubectl"))
            .env("KUBECONFIG", &self.control_plane.kubeconfig)
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .output();
        match deleted {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "namespace {} not deleted: {}",
                self.namespace,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) => eprintln!("namespace {} not deleted: {error}", self.namespace),
        }
    }
}

/// Installs the CRD on the shared control plane once per test binary: the scenarios asking
/// at the same time would otherwise race their server-side applies of the same object.
async fn install_crd_once(control_plane: &ControlPlane, crd: &str) {
    static INSTALLED: tokio::sync::OnceCell<(String, Result<(), String>)> =
        tokio::sync::OnceCell::const_new();
    let (installed, result) = INSTALLED
        .get_or_init(|| async {
            let result = control_plane
                .install_crd(crd, QUEUE_SCALER_CRD)
                .await
                .map_err(|error| error.to_string());
            (crd.to_owned(), result)
        })
        .await;
    assert_eq!(
        installed, crd,
        "every scenario of a binary installs one CRD"
    );
    if let Err(error) = result {
        panic!("installing {QUEUE_SCALER_CRD}: {error}");
    }
}

/// A namespace and, in it, a Deployment at 0 replicas: something with a scale subresource
/// for the operator to scale (its pods stay Pending without a node; only the count matters).
pub fn pod_less_deployment(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n---\n{}",
        deployment(namespace, name)
    )
}

/// The Deployment of [`pod_less_deployment`], without its namespace.
fn deployment(namespace: &str, name: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
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

/// The `status` of the condition `kind` in a QueueScaler's status.
pub fn condition(status: &serde_json::Value, kind: &str) -> Option<String> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|condition| condition["type"] == kind)
        .and_then(|condition| condition["status"].as_str())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_is_read_by_its_type() {
        let status = serde_json::json!({"conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Active", "status": "False"},
        ]});
        assert_eq!(condition(&status, "Active").as_deref(), Some("False"));
        assert_eq!(condition(&status, "Paused"), None);
        assert_eq!(condition(&serde_json::Value::Null, "Ready"), None);
    }
}
