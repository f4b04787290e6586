//! `helm/charts/*` through the pinned helm: lint, render, and install on a real API server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ebb_testkit::control_plane::ControlPlane;

use crate::values::repo_root;
use crate::{Error, Result};

/// The API version the consumer chart's PrometheusRule is conditional on.
pub const MONITORING_API: &str = "monitoring.coreos.com/v1/PrometheusRule";

pub fn chart_path(chart: &str) -> PathBuf {
    repo_root().join("helm/charts").join(chart)
}

/// Runs the helm in `bin` with its state kept under `home` (nothing in the user's HOME).
fn helm(bin: &Path, home: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new(bin.join("helm"))
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: bin.join("helm").display().to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Command {
            command: format!("helm {}", args.join(" ")),
            stderr: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `helm lint --strict <chart>`.
pub fn lint(bin: &Path, home: &Path, chart: &str) -> Result<String> {
    helm(
        bin,
        home,
        &["lint", "--strict", &chart_path(chart).display().to_string()],
    )
}

/// `helm template <chart> <chart>` (the dojo names each release after its chart) in
/// `namespace`, as if the cluster served `api_versions` too.
pub fn template(
    bin: &Path,
    home: &Path,
    chart: &str,
    namespace: &str,
    api_versions: &[&str],
) -> Result<String> {
    let path = chart_path(chart).display().to_string();
    let mut args = vec!["template", chart, path.as_str(), "--namespace", namespace];
    for api_version in api_versions {
        args.extend(["--api-versions", api_version]);
    }
    helm(bin, home, &args)
}

/// `helm upgrade --install <chart> <chart>` on the control plane: every rendered object goes
/// through the real API server's validation (the dojo's "update the release" step).
pub async fn install(
    control_plane: &ControlPlane,
    chart: &str,
    namespace: &str,
    set: &[&str],
) -> Result<String> {
    let path = chart_path(chart).display().to_string();
    let mut args = vec![
        "upgrade",
        "--install",
        chart,
        path.as_str(),
        "--namespace",
        namespace,
    ];
    for assignment in set {
        args.extend(["--set", assignment]);
    }
    Ok(control_plane.run("helm", &args, None).await?)
}

/// Applies the prometheus-operator CRDs the charts use (PrometheusRule, ServiceMonitor) and
/// waits until the API server serves them.
pub async fn install_monitoring_crds(control_plane: &ControlPlane) -> Result<()> {
    for crd in ["prometheusrules", "servicemonitors"] {
        let file = control_plane
            .crds
            .join(format!("monitoring.coreos.com_{crd}.yaml"));
        let manifest = std::fs::read_to_string(&file).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        control_plane.apply(&manifest).await?;
        control_plane
            .kubectl(&[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/{crd}.monitoring.coreos.com"),
            ])
            .await?;
    }
    Ok(())
}
