//! What the operator's e2e tests share: the operator started against the control plane, and
//! the scenario fixture (the test kit's [`Scenario`] plus an operator of its own).

use std::ops::Deref;

use ebb_testkit::control_plane::{ControlPlane, Options};
use ebb_testkit::scenario::{QUEUE_SCALER_CRD, Scenario, pod_less_deployment};

use super::Ebb;

/// Where each operator e2e test with a control plane of its own starts: the QueueScaler CRD
/// installed, the pod-less Deployment `namespace/name`, and `queue_scaler` (the test's
/// QueueScaler of it) applied.
pub async fn install_scaled_deployment(
    control_plane: &ControlPlane,
    namespace: &str,
    name: &str,
    queue_scaler: &str,
) {
    control_plane
        .install_crd(&ebb_operator::crd_yaml(), QUEUE_SCALER_CRD)
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

/// One scenario of an operator e2e test: a namespace of its own on the test binary's shared
/// control plane (the test kit's [`Scenario`], which it derefs to) and an `ebb operator run`
/// that watches only that namespace and holds its Lease there.
///
/// Why an operator per scenario rather than one per binary: an operator of every namespace
/// would act in all scenarios at once, and some scenarios need theirs alone (one restarts it,
/// one measures its memory, one greps its log for a password). Scoped, each scenario's
/// operator, log and Lease are its own, and a start costs well under a second.
pub struct OperatorScenario {
    /// First, so that it stops before the namespace goes.
    pub operator: Ebb,
    scenario: Scenario,
    env: Vec<(String, String)>,
}

impl OperatorScenario {
    /// The namespace `namespace` on the shared control plane (started with `options`), and its
    /// operator, with `env` besides (`EBB_ALLOWED_ADDRESSES`, …); `None` when the gate skips.
    pub async fn start(
        test: &str,
        options: Options,
        namespace: &str,
        env: &[(&str, &str)],
    ) -> Option<OperatorScenario> {
        let scenario = Scenario::start(test, options, &ebb_operator::crd_yaml(), namespace).await?;
        let kubeconfig = scenario.control_plane.kubeconfig.display().to_string();
        let all: Vec<(String, String)> = [
            ("KUBECONFIG", kubeconfig.as_str()),
            ("EBB_WATCH_NAMESPACE", namespace),
            ("POD_NAMESPACE", namespace),
            ("POD_NAME", namespace),
        ]
        .iter()
        .chain(env)
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
        let operator = spawn(namespace, &all);
        Some(OperatorScenario {
            operator,
            scenario,
            env: all,
        })
    }

    /// Stops the operator with SIGTERM (it must exit cleanly) and starts it again, with the
    /// same identity, once it says it scales.
    pub fn restart_operator(&mut self) {
        self.operator.signal("TERM");
        assert!(self.operator.wait_for_exit().success());
        self.operator = spawn(&self.scenario.namespace, &self.env);
        self.operator.wait_for_log("scaling QueueScalers");
    }
}

impl Deref for OperatorScenario {
    type Target = Scenario;

    fn deref(&self) -> &Scenario {
        &self.scenario
    }
}

fn spawn(namespace: &str, env: &[(String, String)]) -> Ebb {
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    Ebb::start_with_env(&format!("operator {namespace}"), &["operator", "run"], &env)
}
