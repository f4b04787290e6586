//! A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver (RBAC,
//! aggregation layer), kube-controller-manager (HPA sync 5 s, downscale stabilization 20 s)
//! and kube-scheduler. Without a node pods stay Pending, which is enough for Deployments,
//! scale subresources, APIServices and the HPA; with [`Options::node`] (or `EBB_NODE=1`) one
//! real node (containerd, kubelet, loopback-only network) runs hostNetwork pods from local
//! images ([`ControlPlane::load_image`], [`ebb_image`]). One node per machine: a second
//! control plane with a node waits for the first one's `down`.
//!
//! ```text
//!   ControlPlane::start ──▶ scripts/control-plane.sh build   (cached: seconds when built)
//!                      ──▶ scripts/control-plane.sh up      (own temp dir, free ports)
//!                      ◀── scripts/control-plane.sh env     (KUBECONFIG, KUBE_BIN, …)
//!   kubectl / apply / get / raw / wait_for ──▶ the API server
//!   Drop ──▶ scripts/control-plane.sh down                 (kills by PID, deletes the dir)
//! ```
//!
//! The script is the one implementation of certificates, flags and readiness: humans run it
//! by hand, tests run it through this module, in three parts:
//!
//! - `script`: runs `scripts/control-plane.sh` (and `scripts/image.sh`) and reads what it
//!   prints;
//! - `kubectl`: kubectl and the other built binaries against a running control plane;
//! - `gate`: every test that needs the control plane, a running one or only its binaries
//!   (helm, …), goes through [`require`] (or [`start_or_skip`] / [`shared_or_skip`], which
//!   call it): the one place that decides between failing (under CI) and skipping loudly
//!   (elsewhere) when it cannot be built here.

mod gate;
mod kubectl;
mod script;

use std::path::{Path, PathBuf};

pub use crate::{Error, Result};
pub use gate::{require, shared_or_skip, start_or_skip, start_with_node_or_skip};
use script::{EXIT_NO_NODE, parse_env, run_script, run_script_with};
pub use script::{binaries, ebb_image, ebb_image_name, ensure_built};

/// How to start the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--feature-gates` of both the API server and the controller manager.
    pub feature_gates: String,
    /// Extra kube-apiserver flags.
    pub apiserver_flags: Vec<String>,
    /// Extra kube-controller-manager flags.
    pub controller_manager_flags: Vec<String>,
    /// Where its state (certificates, etcd data, logs) goes, deleted when the control plane is
    /// dropped; `None`: a fresh folder in the temporary directory.
    pub state_dir: Option<PathBuf>,
    /// Add one node (`scripts/control-plane.sh up --node`): pods run. Default: the `EBB_NODE`
    /// environment variable (`1` or `true`), so that a whole test run can have pods running.
    pub node: bool,
}

/// `EBB_NODE` as `scripts/control-plane.sh` reads it.
pub fn node_requested() -> bool {
    std::env::var("EBB_NODE").is_ok_and(|value| matches!(value.as_str(), "1" | "true"))
}

impl Default for Options {
    fn default() -> Self {
        Self {
            feature_gates: "HPAScaleToZero=true".into(),
            apiserver_flags: Vec::new(),
            controller_manager_flags: Vec::new(),
            state_dir: None,
            node: node_requested(),
        }
    }
}

/// A running control plane; stopped (every process, every file) when dropped.
#[derive(Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Folder of kube-apiserver, kube-controller-manager, kubectl, etcd, helm, prometheus-adapter.
    pub bin: PathBuf,
    /// Folder of the certificates (`ca.crt`, `admin.crt`, `front-proxy-ca.crt`, …).
    pub pki: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub apiserver_url: String,
    /// The loopback service range: Services' ClusterIPs are addresses this process can bind.
    pub service_cidr: String,
    /// The prometheus-operator CRD manifests.
    pub crds: PathBuf,
    /// The node's name when it has one (`localhost`: the API server reaches the kubelet there).
    pub node: Option<String>,
}

/// A /16 in 127.64.0.0–127.127.255.255 per instance, so that two runs' ClusterIPs differ.
fn loopback_service_cidr() -> String {
    let second_octet = 64 + (uuid::Uuid::new_v4().as_u128() % 64) as u8;
    format!("127.{second_octet}.0.0/16")
}

impl ControlPlane {
    /// Starts a control plane with HPAScaleToZero on.
    pub async fn start() -> Result<Self> {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Result<Self> {
        tokio::task::spawn_blocking(move || Self::start_blocking(options))
            .await
            .expect("control-plane start panicked")
    }

    fn start_blocking(options: Options) -> Result<Self> {
        ensure_built()?;
        // The script fills the folder and `down` removes it: the TempDir only names it.
        let dir = match options.state_dir {
            Some(dir) => dir,
            None => tempfile::Builder::new()
                .prefix("ebb-control-plane-")
                .tempdir()
                .map_err(Error::TempDir)?
                .keep(),
        };
        let envs = [
            ("EBB_CONTROL_PLANE_DIR", dir.display().to_string()),
            (
                "EBB_CONTROL_PLANE_OWNER_PID",
                std::process::id().to_string(),
            ),
            ("EBB_SERVICE_CIDR", loopback_service_cidr()),
            ("EBB_FEATURE_GATES", options.feature_gates),
            (
                "EBB_KUBE_EXTRA_APISERVER_FLAGS",
                options.apiserver_flags.join(" "),
            ),
            (
                "EBB_KUBE_EXTRA_CONTROLLER_MANAGER_FLAGS",
                options.controller_manager_flags.join(" "),
            ),
        ];
        let mut envs = envs.to_vec();
        if options.node {
            envs.push(("EBB_NODE", "1".into()));
        }
        if let Err(error) = run_script("up", &envs) {
            let _ = run_script("down", &envs[..1]);
            return Err(match error {
                Error::Script { status, output, .. } if status.code() == Some(EXIT_NO_NODE) => {
                    Error::NoNode(output.trim().to_owned())
                }
                error => error,
            });
        }
        let env = parse_env(&run_script("env", &envs[..1])?);
        let get = |key: &'static str| env.get(key).cloned().ok_or(Error::MissingEnv(key));
        Ok(Self {
            kubeconfig: get("KUBECONFIG")?.into(),
            bin: get("KUBE_BIN")?.into(),
            pki: get("KUBE_PKI")?.into(),
            apiserver_url: get("KUBE_APISERVER")?,
            service_cidr: get("KUBE_SERVICE_CIDR")?,
            crds: get("KUBE_CRDS")?.into(),
            node: env.get("KUBE_NODE").cloned(),
            dir,
        })
    }

    /// The folder holding this instance's state and logs (`logs/<component>.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Imports a local OCI image archive into the node's containerd, where pods with
    /// `imagePullPolicy: Never` (or `IfNotPresent`) find it. Fails without a node.
    pub async fn load_image(&self, archive: &Path) -> Result<()> {
        let envs = [("EBB_CONTROL_PLANE_DIR", self.dir.display().to_string())];
        let archive = archive.display().to_string();
        tokio::task::spawn_blocking(move || run_script_with("load", &[&archive], &envs))
            .await
            .expect("loading an image panicked")
            .map(drop)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Err(error) = run_script(
            "down",
            &[("EBB_CONTROL_PLANE_DIR", self.dir.display().to_string())],
        ) {
            eprintln!(
                "control plane in {} not stopped cleanly: {error}",
                self.dir.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn control_plane_starts_serves_and_leaves_nothing_behind() {
        let Some(control_plane) = start_or_skip(
            "control_plane_starts_serves_and_leaves_nothing_behind",
            Options::default(),
        )
        .await
        else {
            return;
        };
        let version = control_plane.raw("/version").await.unwrap();
        assert_eq!(version["gitVersion"], "v1.37.2");
        let ready = control_plane
            .kubectl(&["get", "--raw", "/readyz"])
            .await
            .unwrap();
        assert_eq!(ready.trim(), "ok");
        let dir = control_plane.dir().to_owned();
        let pids: Vec<String> = ["etcd", "kube-apiserver", "kube-controller-manager"]
            .iter()
            .map(|name| std::fs::read_to_string(dir.join("pids").join(name)).unwrap())
            .collect();
        drop(control_plane);
        assert!(!dir.exists(), "{} left behind", dir.display());
        for pid in pids {
            // Gone, or a zombie waiting for init to reap it.
            let stat =
                std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
            assert!(
                stat.is_empty() || stat.contains(") Z"),
                "process {pid} still running: {stat}"
            );
        }
    }
}
