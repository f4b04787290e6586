//! What the `e2e_dojo_check…` tests share: `ebb dojo check` and the dojo's scripts run
//! against a control plane, with their exit code and output.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ebb_testkit::control_plane::ControlPlane;

pub const CHECK_WITHIN: Duration = Duration::from_secs(90);

/// What a run of `ebb dojo check …` or a script gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub output: String,
}

pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// `ebb dojo check <args…> --prometheus-url <prometheus>` against the control plane.
pub async fn check(cluster: &ControlPlane, prometheus: &str, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["dojo", "check"])
        .args(args)
        .args(["--prometheus-url", prometheus])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the ebb binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// Asserts that `ebb dojo check <args>` exits with `code` and says `expected`.
pub async fn assert_check(
    cluster: &ControlPlane,
    prometheus: &str,
    args: &[&str],
    code: i32,
    expected: &str,
) {
    let run = check(cluster, prometheus, args).await;
    eprintln!("$ ebb dojo check {}\n{}", args.join(" "), run.output);
    assert_eq!(run.code, code, "ebb dojo check {args:?}: {}", run.output);
    assert!(
        run.output.contains(expected),
        "`{expected}` missing from:\n{}",
        run.output
    );
}

/// Waits until `ebb dojo check <args>` exits with `code` and says `expected` (the cluster,
/// Prometheus or the HPA controller catching up).
pub async fn wait_check(
    cluster: &ControlPlane,
    prometheus: &str,
    args: &[&str],
    code: i32,
    expected: &str,
) {
    let what = format!(
        "ebb dojo check {} to exit {code} saying `{expected}`",
        args.join(" ")
    );
    cluster
        .wait_for(&what, CHECK_WITHIN, || async {
            let run = check(cluster, prometheus, args).await;
            if run.code == code && run.output.contains(expected) {
                eprintln!("$ ebb dojo check {}\n{}", args.join(" "), run.output);
                Ok(Some(()))
            } else {
                Err(format!("exit {}: {}", run.code, run.output))
            }
        })
        .await
        .unwrap();
}

/// Runs `scripts/<script> <args…>` with the control plane's kubectl and helm first on PATH.
pub async fn script(cluster: &ControlPlane, script: &str, args: &[&str]) -> Run {
    let path = format!(
        "{}:{}",
        cluster.bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = tokio::process::Command::new(repo().join("scripts").join(script))
        .args(args)
        .env("PATH", path)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("HELM_CACHE_HOME", cluster.dir().join("helm/cache"))
        .env("HELM_CONFIG_HOME", cluster.dir().join("helm/config"))
        .env("HELM_DATA_HOME", cluster.dir().join("helm/data"))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the script runs");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    };
    assert_eq!(run.code, 0, "scripts/{script} {args:?}: {}", run.output);
    run
}
