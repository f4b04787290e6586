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
//! by hand, tests run it through this module.
//!
//! Every test that needs the control plane, a running one or only its binaries (helm, …),
//! goes through [`require`] (or [`start_or_skip`], which calls it): the one place that decides
//! between failing (under CI) and skipping loudly (elsewhere) when it cannot be built here.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// What can go wrong starting or talking to the control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The binaries cannot be built here (no Go toolchain): tests skip, loudly.
    #[error("Kubernetes control plane unavailable: {0}")]
    Unavailable(String),
    #[error("building the control plane failed: {0}")]
    Build(String),
    #[error("scripts/control-plane.sh {verb} failed ({status}):\n{output}")]
    Script {
        verb: &'static str,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` did not print JSON: {source}")]
    Json {
        command: String,
        source: serde_json::Error,
    },
    /// This machine cannot run a node (not root, no overlayfs, no runc, …): tests that need
    /// one skip, loudly, or fail under CI.
    #[error("this machine cannot run a Kubernetes node: {0}")]
    NoNode(String),
    #[error("building the ebb image failed: {0}")]
    Image(String),
    #[error("cannot create a temporary folder: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("scripts/control-plane.sh env did not print {0}")]
    MissingEnv(&'static str),
    #[error("timed out after {timeout:?} waiting for {what}; last seen: {last}")]
    Timeout {
        what: String,
        timeout: Duration,
        last: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to start the control plane.
#[derive(Debug, Clone)]
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

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script() -> PathBuf {
    repo_root().join("scripts/control-plane.sh")
}

fn run_script(verb: &'static str, envs: &[(&str, String)]) -> Result<String> {
    run_script_with(verb, &[], envs)
}

fn run_script_with(verb: &'static str, args: &[&str], envs: &[(&str, String)]) -> Result<String> {
    let output = Command::new(script())
        .arg(verb)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: script().display().to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Script {
            verb,
            status: output.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The exit status of `control-plane.sh build` when Go is missing: the only case tests skip.
const EXIT_NO_GO: i32 = 3;
/// The exit status of `control-plane.sh up --node` when this machine cannot run a node.
const EXIT_NO_NODE: i32 = 4;

/// Builds the binaries once per test process (seconds when Go's caches are warm).
pub fn ensure_built() -> Result<()> {
    static BUILT: OnceLock<Result<(), (bool, String)>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            run_script("build", &[]).map(drop).map_err(|error| {
                let no_go = matches!(&error, Error::Script { status, .. } if status.code() == Some(EXIT_NO_GO));
                (no_go, error.to_string())
            })
        })
        .clone()
        .map_err(|(no_go, message)| {
            if no_go {
                Error::Unavailable(message)
            } else {
                Error::Build(message)
            }
        })
}

/// The folder of the built binaries (kubectl, helm, prometheus-adapter, …), building them
/// first if needed: for tests that need a binary but no cluster.
pub fn binaries() -> Result<PathBuf> {
    ensure_built()?;
    Ok(PathBuf::from(run_script("bin-dir", &[])?.trim()))
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

    /// Waits (up to 60 s) until the CustomResourceDefinition `name` is served.
    pub async fn wait_established(&self, name: &str) -> Result<()> {
        let crd = format!("crd/{name}");
        self.kubectl(&["wait", "--for=condition=Established", "--timeout=60s", &crd])
            .await
            .map(drop)
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
        wait_for(what, timeout, check).await
    }
}

/// Polls `check` every 250 ms until it returns `Ok(Some(value))`, or fails after `timeout`
/// with what `check` last reported.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("nothing yet");
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(seen) => last = seen,
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.into(),
                timeout,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
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

/// `export KEY=value` lines → map; values are shell words (`'…'` quoted by the script).
fn parse_env(text: &str) -> HashMap<&'static str, String> {
    const KEYS: [&str; 7] = [
        "KUBECONFIG",
        "KUBE_BIN",
        "KUBE_PKI",
        "KUBE_APISERVER",
        "KUBE_SERVICE_CIDR",
        "KUBE_CRDS",
        "KUBE_NODE",
    ];
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export ")?.split_once('='))
        .filter_map(|(key, value)| {
            let key = KEYS.into_iter().find(|known| *known == key)?;
            Some((key, shell_word(value)?))
        })
        .collect()
}

/// The value of one POSIX shell word made of `'…'` runs, `\x` escapes and plain characters
/// (what `scripts/control-plane.sh`'s `shell_quote` writes); `None` when a quote is left open.
fn shell_word(word: &str) -> Option<String> {
    let mut value = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(char) = chars.next() {
        match char {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    quoted => value.push(quoted),
                }
            },
            '\\' => value.push(chars.next()?),
            plain => value.push(plain),
        }
    }
    Some(value)
}

/// The one gate of every test that needs the control plane, a running one or only its
/// binaries: the folder of the built binaries (kubectl, helm, prometheus-adapter, …), or `None`
/// after a loud `SKIPPED` message when they cannot be built here (no Go toolchain). Under CI
/// ([`under_ci`](crate::under_ci)) that case fails the test instead: `.ci/run` installs Go and
/// builds the binaries, so a skip there would hide a broken install step. A build that fails
/// for any other reason fails the test everywhere. Blocking: builds on first use.
pub fn require(test: &str) -> Option<PathBuf> {
    gate(test, binaries(), crate::under_ci())
}

/// [`require`]'s decision, given what building gave and whether this is CI.
fn gate(test: &str, binaries: Result<PathBuf>, under_ci: bool) -> Option<PathBuf> {
    match binaries {
        Ok(bin) => Some(bin),
        Err(Error::Unavailable(reason)) if under_ci => {
            panic!(
                "{test}: the Kubernetes control plane is required under CI but unavailable: {reason}"
            )
        }
        Err(Error::Unavailable(reason)) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED {test}: {reason}\n!!!!!!!! .ci/run builds it; run `scripts/control-plane.sh build` locally.\n"
            );
            None
        }
        Err(error) => panic!("{test}: {error}"),
    }
}

/// For tests: a running control plane, or `None` when [`require`] skips; panics when it is
/// available but does not start.
pub async fn start_or_skip(test: &str, options: Options) -> Option<ControlPlane> {
    let name = test.to_owned();
    tokio::task::spawn_blocking(move || require(&name))
        .await
        .expect("building the control plane panicked")?;
    match ControlPlane::start_with(options).await {
        Ok(control_plane) => Some(control_plane),
        Err(Error::NoNode(reason)) => skip_or_fail(test, &reason),
        Err(error) => panic!("{test}: cannot start the control plane: {error}"),
    }
}

/// A test that needs something this machine lacks: `None` after a loud `SKIPPED` line, or a
/// panic under CI, where `.ci/run` provides everything.
fn skip_or_fail<T>(test: &str, reason: &str) -> Option<T> {
    if crate::under_ci() {
        panic!("{test}: required under CI but unavailable: {reason}");
    }
    eprintln!("\n!!!!!!!! SKIPPED {test}: {reason}\n");
    None
}

/// For tests that need pods to run: a control plane with a node, or `None` when this machine
/// cannot run one (skipped loudly outside CI, a failure under CI).
pub async fn start_with_node_or_skip(test: &str, options: Options) -> Option<ControlPlane> {
    start_or_skip(
        test,
        Options {
            node: true,
            ..options
        },
    )
    .await
}

/// The ebb image archive (`target/image/ebb.oci.tar`), built once per test process by
/// `scripts/image.sh build` from the release binary (minutes the first time: a release build).
pub fn ebb_image() -> Result<PathBuf> {
    static IMAGE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let output = Command::new(repo_root().join("scripts/image.sh"))
                .arg("build")
                .stdin(Stdio::null())
                .output()
                .map_err(|error| format!("cannot run scripts/image.sh: {error}"))?;
            if !output.status.success() {
                return Err(format!(
                    "scripts/image.sh build ({}):\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(repo_root().join("target/image/ebb.oci.tar"))
        })
        .clone()
        .map_err(Error::Image)
}

/// The reference pods use for the ebb image (`scripts/image.sh name`).
pub fn ebb_image_name() -> Result<String> {
    let output = Command::new(repo_root().join("scripts/image.sh"))
        .arg("name")
        .output()
        .map_err(|source| Error::Spawn {
            program: "scripts/image.sh".into(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_are_parsed_and_unknown_keys_ignored() {
        let env = parse_env(
            "export KUBECONFIG=/a/kubeconfig\nexport KUBE_BIN=/b\nexport OTHER=x\nnoise\n",
        );
        assert_eq!(
            env.get("KUBECONFIG").map(String::as_str),
            Some("/a/kubeconfig")
        );
        assert_eq!(env.get("KUBE_BIN").map(String::as_str), Some("/b"));
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn without_go_the_gate_skips_outside_ci() {
        let unavailable = || Err(Error::Unavailable("go >= 1.26 is not installed".into()));
        assert_eq!(gate("a test", unavailable(), false), None);
        let bin = PathBuf::from("/bin dir");
        assert_eq!(gate("a test", Ok(bin.clone()), true), Some(bin));
    }

    #[test]
    #[should_panic(
        expected = "a test: the Kubernetes control plane is required under CI but unavailable: go >= 1.26 is not installed"
    )]
    fn without_go_the_gate_fails_under_ci() {
        gate(
            "a test",
            Err(Error::Unavailable("go >= 1.26 is not installed".into())),
            true,
        );
    }

    #[test]
    #[should_panic(expected = "a test: building the control plane failed: exit 1")]
    fn a_failed_build_fails_everywhere() {
        gate("a test", Err(Error::Build("exit 1".into())), false);
    }

    #[test]
    fn quoted_env_values_come_back_as_written() {
        let env = parse_env(
            "export KUBECONFIG='/tmp/a b/kubeconfig'\nexport KUBE_PKI='it'\\''s'\nexport KUBE_BIN='/open\n",
        );
        assert_eq!(
            env.get("KUBECONFIG").map(String::as_str),
            Some("/tmp/a b/kubeconfig")
        );
        assert_eq!(env.get("KUBE_PKI").map(String::as_str), Some("it's"));
        assert_eq!(env.get("KUBE_BIN"), None, "an open quote is no value");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn wait_for_reports_the_last_observation_on_timeout() {
        let error = wait_for("the answer", Duration::from_millis(300), || async {
            Err::<Option<()>, _>("41".to_string())
        })
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "timed out after 300ms waiting for the answer; last seen: 41"
        );
    }

    /// The harness itself: up, the facts the e2e tests rely on, and nothing left after Drop.
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
