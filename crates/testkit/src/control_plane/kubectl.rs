//! kubectl and the other built binaries, pointed at one control plane: run, parse, apply.

use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::ControlPlane;
use crate::{Error, Result, poll};

impl ControlPlane {
    /// A command for one of the built binaries (`kubectl`, `helm`, …), pointed at this cluster.
    pub fn command(&self, binary: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(self.bin.join(binary));
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", self.dir.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("helm/config"))
            .env("HELM_DATA_HOME", self.dir.join("helm/data"))
            .kill_on_drop(true);
        command
    }

    /// Runs a built binary with `args` (and `stdin`), returning its stdout or a clear error.
    pub async fn run(&self, binary: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let describe = || format!("{binary} {}", args.join(" "));
        let mut child = self
            .command(binary)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: binary.into(),
                source,
            })?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())
                .await
                .map_err(|source| Error::Spawn {
                    program: binary.into(),
                    source,
                })?;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|source| Error::Spawn {
                program: binary.into(),
                source,
            })?;
        if !output.status.success() {
            return Err(Error::Command {
                command: describe(),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `kubectl <args>`.
    pub async fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.run("kubectl", args, None).await
    }

    /// `kubectl auth can-i <check> --as=<user>`: whether `user` may make the call `check`
    /// (`"get secrets -n kube-system"`). Anything but a plain yes or no is an error, a warning
    /// included: for a resource it does not know kubectl warns and answers no, and that no
    /// would prove nothing about RBAC.
    pub async fn can_i(&self, user: &str, check: &str) -> Result<bool> {
        let command = format!("kubectl auth can-i {check} --as={user}");
        let output = self
            .command("kubectl")
            .args(["auth", "can-i"])
            .args(check.split_whitespace())
            .arg(format!("--as={user}"))
            .output()
            .await
            .map_err(|source| Error::Spawn {
                program: "kubectl".into(),
                source,
            })?;
        let answer = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        match (output.status.code(), answer.trim(), stderr.trim()) {
            (Some(0), "yes", "") => Ok(true),
            (Some(1), no, "") if no.starts_with("no") => Ok(false),
            (_, answer, stderr) => Err(Error::Command {
                command,
                status: output.status,
                stderr: format!("answered {answer:?}; {stderr}"),
            }),
        }
    }

    /// `kubectl <args> -o json`, parsed.
    pub async fn kubectl_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.kubectl(&all).await?;
        serde_json::from_str(&text).map_err(|source| Error::Json {
            command: format!("kubectl {}", all.join(" ")),
            source,
        })
    }

    /// Applies YAML or JSON manifests (several documents allowed), server-side so that large
    /// objects such as CRDs fit.
    pub async fn apply(&self, manifests: &str) -> Result<()> {
        self.run(
            "kubectl",
            &[
                "apply",
                "--server-side",
                "--field-manager=ebb-tests",
                "-f",
                "-",
            ],
            Some(manifests),
        )
        .await
        .map(drop)
    }

    /// Waits (up to 60 s) until the CustomResourceDefinition `name` is served. Looked at here
    /// rather than with `kubectl wait`, which fails at once when the CRD has no conditions yet
    /// (just after it was applied).
    pub async fn wait_established(&self, name: &str) -> Result<()> {
        poll::until(
            &format!("CustomResourceDefinition {name} to be Established"),
            Duration::from_secs(60),
            || async {
                let crd = self
                    .kubectl_json(&["get", "customresourcedefinition", name])
                    .await
                    .map_err(|error| error.to_string())?;
                let established = crd["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|condition| {
                        condition["type"] == "Established" && condition["status"] == "True"
                    });
                if established {
                    Ok(Some(()))
                } else {
                    Err(format!("conditions: {}", crd["status"]["conditions"]))
                }
            },
        )
        .await
    }

    /// Applies a CustomResourceDefinition manifest and waits until `name` is served.
    pub async fn install_crd(&self, manifest: &str, name: &str) -> Result<()> {
        self.apply(manifest).await?;
        self.wait_established(name).await
    }

    /// An object as the API server stores it, at the given API version:
    /// `get("horizontalpodautoscalers.v2.autoscaling", "default", "consumer")`.
    pub async fn get(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<serde_json::Value> {
        self.kubectl_json(&["get", resource, name, "-n", namespace])
            .await
    }

    /// `kubectl get --raw <path>`, parsed.
    pub async fn raw(&self, path: &str) -> Result<serde_json::Value> {
        let text = self.kubectl(&["get", "--raw", path]).await?;
        serde_json::from_str(&text).map_err(|source| Error::Json {
            command: format!("kubectl get --raw {path}"),
            source,
        })
    }

    /// Polls `check` every 250 ms until it returns `Ok(Some(value))`; `Ok(None)` and `Err` mean
    /// "not yet" and are reported in the timeout error as what was last seen.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, timeout: Duration, check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, String>>,
    {
        poll::until(what, timeout, check).await
    }
}
