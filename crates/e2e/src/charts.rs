//! `helm/charts/*` through the pinned helm: lint, render, and install on a real API server.
//! The chart tests of every crate read renders through [`render`], [`find`] and
//! [`assert_refused`] here, so that one reading of helm's output serves them all.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ebb_testkit::control_plane::ControlPlane;
use serde_json::Value;

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

/// [`template_with`], parsed: every object it renders, in order (the empty documents of
/// templates that render nothing left out).
pub fn render(
    bin: &Path,
    home: &Path,
    chart: &str,
    namespace: &str,
    api_versions: &[&str],
    set: &[&str],
) -> Result<Vec<Value>> {
    let rendered = template_with(bin, home, chart, namespace, api_versions, set)?;
    let objects =
        serde_saphyr::from_multiple::<Value>(&rendered).map_err(|source| Error::Yaml {
            path: chart_path(chart),
            source: Box::new(source),
        })?;
    Ok(objects
        .into_iter()
        .filter(|object| !object.is_null())
        .collect())
}

/// `(kind, namespace, name)` of every object, the namespace empty where the template sets none.
pub fn identities(objects: &[Value]) -> Vec<(String, String, String)> {
    objects
        .iter()
        .map(|object| {
            let text = |pointer: &str| {
                object
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            (
                text("/kind"),
                text("/metadata/namespace"),
                text("/metadata/name"),
            )
        })
        .collect()
}

/// For tests: the rendered object of `kind` named `name`; panics listing what was rendered.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", identities(objects)))
}

/// For tests: asserts that `helm template` refuses the values `set` (the values schema or a
/// template's `fail`) with a message containing `expected`.
pub fn assert_refused(
    bin: &Path,
    home: &Path,
    chart: &str,
    namespace: &str,
    set: &[&str],
    expected: &str,
) {
    match template_with(bin, home, chart, namespace, &[], set) {
        Ok(rendered) => panic!("{chart} {set:?} rendered:\n{rendered}"),
        Err(error) => assert!(
            error.to_string().contains(expected),
            "{chart} {set:?}: expected {expected:?} in: {error}"
        ),
    }
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
