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
    lint_with(bin, home, chart, &[])
}

/// `helm lint --strict <chart>` with `--set` assignments.
pub fn lint_with(bin: &Path, home: &Path, chart: &str, set: &[&str]) -> Result<String> {
    let path = chart_path(chart).display().to_string();
    let mut args = vec!["lint", "--strict", path.as_str()];
    for assignment in set {
        args.extend(["--set", assignment]);
    }
    helm(bin, home, &args)
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
    template_with(bin, home, chart, namespace, api_versions, &[])
}

/// [`template`] with `--set` assignments.
pub fn template_with(
    bin: &Path,
    home: &Path,
    chart: &str,
    namespace: &str,
    api_versions: &[&str],
    set: &[&str],
) -> Result<String> {
    let path = chart_path(chart).display().to_string();
    let mut args = vec!["template", chart, path.as_str(), "--namespace", namespace];
    for api_version in api_versions {
        args.extend(["--api-versions", api_version]);
    }
    for assignment in set {
        args.extend(["--set", assignment]);
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
    install_as(control_plane, chart, chart, namespace, set).await
}

/// [`install`] under another release name (several releases of one chart in one cluster).
pub async fn install_as(
    control_plane: &ControlPlane,
    release: &str,
    chart: &str,
    namespace: &str,
    set: &[&str],
) -> Result<String> {
    let path = chart_path(chart).display().to_string();
    let mut args = vec![
        "upgrade",
        "--install",
        release,
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
