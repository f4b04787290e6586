//! `scripts/control-plane.sh up --node`: one real node (containerd, kubelet, loopback-only
//! network) that runs hostNetwork pods from local images, and a `down` that gives the host back
//! as it was — processes, mounts, /kubepods cgroups, iptables, files, kernel settings — even
//! when the run that started the node was killed. One test: one node per machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ebb_testkit::control_plane::{self, Options};
use ebb_testkit::poll;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/control-plane.sh")
}

/// What a node may change on the host (`control-plane.sh host-state`).
fn host_state() -> String {
    let output = Command::new(script()).arg("host-state").output().unwrap();
    assert!(output.status.success(), "host-state failed");
    String::from_utf8(output.stdout).unwrap()
}

fn section<'a>(state: &'a str, name: &str) -> Vec<&'a str> {
    state
        .split("# ")
        .find(|part| part.starts_with(name))
        .map(|part| part.lines().skip(1).collect())
        .unwrap_or_default()
}

/// Waits until no node is recorded on this machine, the host is back to `before` and the
/// state folders are deleted.
fn wait_restored(before: &str, what: &str, dirs: &[&Path]) {
    poll::until_blocking(
        &format!("{what}: the host to be restored"),
        Duration::from_secs(60),
        || {
            let now = host_state();
            if now == before
                && !Path::new("/run/ebb-node").exists()
                && dirs.iter().all(|dir| !dir.exists())
            {
                return Ok(Some(()));
            }
            Err(format!("before:\n{before}\nnow:\n{now}"))
        },
    )
    .unwrap_or_else(|error| panic!("{error}"));
}

fn up_node(dir: &Path, owner: Option<u32>) -> std::process::Output {
    let mut command = Command::new(script());
    command
        .args(["up", "--node"])
        .env("EBB_CONTROL_PLANE_DIR", dir)
        .stdin(Stdio::null());
    if let Some(pid) = owner {
        command.env("EBB_CONTROL_PLANE_OWNER_PID", pid.to_string());
    }
    command.output().unwrap()
}

fn scratch(name: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(name)
        .tempdir()
        .unwrap()
        .keep()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_runs_hostnetwork_pods_and_down_gives_the_host_back_even_after_a_killed_run() {
    let test = "a_node_runs_hostnetwork_pods_and_down_gives_the_host_back";
    let before = host_state();
    let Some(cluster) = control_plane::start_with_node_or_skip(test, Options::default()).await
    else {
        return;
    };
    assert_eq!(cluster.node.as_deref(), Some("localhost"));

    // A pod of the pause image (imported by `up --node`) runs, and `kubectl logs` reaches it.
    let pause = String::from_utf8(
        Command::new(script().with_file_name("image.sh"))
            .args(["name", "pause"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pause"},
        "spec": {"hostNetwork": true, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "pause", "image": pause.trim(), "imagePullPolicy": "Never"}]}
    });
    cluster.apply(&pod.to_string()).await.unwrap();
    cluster
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            "--timeout=60s",
            "pod/pause",
        ])
        .await
        .unwrap();
    cluster.kubectl(&["logs", "pause"]).await.unwrap();

    // While the node runs the host is changed (so the comparison below can fail): kubelet's
    // kernel settings, the pods' cgroups and processes.
    let during = host_state();
    assert_ne!(section(&during, "cgroups"), section(&before, "cgroups"));
    assert!(section(&during, "processes").contains(&"pause"), "{during}");
    assert!(
        section(&during, "kernel settings").contains(&"kernel/panic_on_oops 1"),
        "{during}"
    );
    drop(cluster);
    wait_restored(&before, "down", &[]);

    // A run whose owner dies: its watcher stops the node by itself.
    let mut owner = Command::new("sleep").arg("600").spawn().unwrap();
    let dir = scratch("ebb-node-owner-");
    let output = up_node(&dir, Some(owner.id()));
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("node localhost Ready in"), "{stderr}");
    owner.kill().unwrap();
    owner.wait().unwrap();
    wait_restored(&before, "the owner died", &[&dir]);

    // A killed run (its watcher, which held the lock, killed too): the next `up --node` cleans
    // up what it left, then `down` restores everything.
    let killed = scratch("ebb-node-killed-");
    assert!(up_node(&killed, None).status.success());
    let watchers = Command::new("pgrep")
        .args(["-f", "control-plane.sh up --node"])
        .output()
        .unwrap();
    // Only this run's watcher: the one whose environment names its state folder.
    let marker = format!("EBB_CONTROL_PLANE_DIR={}\0", killed.display());
    for pid in String::from_utf8_lossy(&watchers.stdout).split_whitespace() {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if environ
            .windows(marker.len())
            .any(|window| window == marker.as_bytes())
        {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let next = scratch("ebb-node-next-");
    let output = up_node(&next, None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("cleaning up the node a killed run left"),
        "{stderr}"
    );
    for dir in [&next, &killed] {
        let status = Command::new(script())
            .arg("down")
            .env("EBB_CONTROL_PLANE_DIR", dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    wait_restored(&before, "down after a killed run", &[&killed, &next]);
}
