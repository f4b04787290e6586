//! `scripts/control-plane.sh up` when things go wrong: a taken port, a signal, missing
//! binaries. Whatever happens, nothing it started keeps running, its ports are free again, and
//! the next `up` in the same folder (a path with a space) works. Also the shell scripts' one
//! free-port picker, `scripts/lib/ports.sh`.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use ebb_testkit::control_plane::{self, ControlPlane, Options};
use ebb_testkit::process::Process;
use ebb_testkit::{free_port, poll};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script() -> PathBuf {
    repo().join("scripts/control-plane.sh")
}

/// A folder whose name has a space in it; on drop, whatever still runs from it is killed (a
/// failing test must not leave a mess either) and the folder removed.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("ebb cp test {}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for (pid, _) in running_in(&self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn control_plane_script(verb: &str, state_dir: &Path, envs: &[(&str, String)]) -> Command {
    let mut command = Command::new(script());
    command
        .arg(verb)
        .env("EBB_CONTROL_PLANE_DIR", state_dir)
        .envs(envs.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null());
    command
}

fn run(verb: &str, state_dir: &Path, envs: &[(&str, String)]) -> (ExitStatus, String) {
    let Output { status, stderr, .. } = control_plane_script(verb, state_dir, envs)
        .output()
        .unwrap();
    (status, String::from_utf8_lossy(&stderr).into_owned())
}

/// Live processes with `dir` in their command line (the script puts its state folder in every
/// command it starts), as PID and command line; zombies count as gone.
fn running_in(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        let proc_dir = entry.path();
        let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        if cmdline.contains(&needle) && !stat.is_empty() && !stat.contains(") Z") {
            found.push((pid, cmdline));
        }
    }
    found
}

fn assert_port_free(port: u16, what: &str) {
    if let Err(error) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        panic!("{what} port {port} still taken: {error}");
    }
}

/// What a failed `up` must leave: no process, free ports, no pid files or certificates; logs.
fn assert_cleaned_up(dir: &Path, ports: &[(u16, &str)]) {
    assert_eq!(running_in(dir), Vec::<(u32, String)>::new(), "left running");
    for (port, what) in ports {
        assert_port_free(*port, what);
    }
    let pids: Vec<_> = std::fs::read_dir(dir.join("pids")).unwrap().collect();
    assert!(pids.is_empty(), "pid files left: {pids:?}");
    for gone in ["pki", "etcd", "kubeconfig", "env"] {
        assert!(!dir.join(gone).exists(), "{gone} left in {}", dir.display());
    }
    assert!(dir.join("logs/etcd.log").exists(), "the logs are kept");
}

/// `up` stops what it started when a component fails (the API server's port is taken), the
/// next `up` in the same folder works, and `env` quotes paths with spaces for `eval`.
#[tokio::test(flavor = "multi_thread")]
async fn up_that_fails_on_a_taken_port_stops_what_it_started_and_the_next_up_works() {
    let test = "up_that_fails_on_a_taken_port_stops_what_it_started_and_the_next_up_works";
    let Some(_bin) = tokio::task::spawn_blocking(|| control_plane::require(test))
        .await
        .unwrap()
    else {
        return;
    };
    let scratch = Scratch::new();
    let dir = scratch.0.join("state dir");
    let (etcd_port, etcd_peer_port) = (free_port(), free_port());
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, free_port())).unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let envs = [
        ("EBB_ETCD_PORT", etcd_port.to_string()),
        ("EBB_ETCD_PEER_PORT", etcd_peer_port.to_string()),
        ("EBB_KUBE_APISERVER_PORT", taken_port.to_string()),
    ];

    let (status, stderr) = run("up", &dir, &[("EBB_KUBE_APISERVER_PORT", "70000".into())]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("EBB_KUBE_APISERVER_PORT=70000: must be a port number from 1 to 65535"),
        "{stderr}"
    );

    let (status, stderr) = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || run("up", &dir, &envs)
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    for expected in [
        "address already in use",
        "control-plane: kube-apiserver exited before kube-apiserver /readyz",
        "control-plane: up failed: stopped what it had started; logs kept in",
    ] {
        assert!(stderr.contains(expected), "no `{expected}` in:\n{stderr}");
    }
    assert_cleaned_up(&dir, &[(etcd_port, "etcd"), (etcd_peer_port, "etcd peer")]);
    drop(taken);

    // The same folder again, through the test harness: it reads the quoted env file.
    let control_plane = ControlPlane::start_with(Options {
        state_dir: Some(dir.clone()),
        ..Options::default()
    })
    .await
    .unwrap();
    assert_eq!(control_plane.kubeconfig, dir.join("kubeconfig"));
    let ready = control_plane
        .kubectl(&["get", "--raw", "/readyz"])
        .await
        .unwrap();
    assert_eq!(ready.trim(), "ok");

    // What the README tells humans to do, with a space in every path.
    let output = Command::new("bash")
        .args([
            "-c",
            r#"set -e; eval "$("$0" env)"; echo "$KUBECONFIG"; "$KUBE_BIN/kubectl" get --raw /readyz"#,
        ])
        .arg(script())
        .env("EBB_CONTROL_PLANE_DIR", &dir)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout,
        format!("{}\nok", dir.join("kubeconfig").display()),
        "eval of `env`"
    );

    drop(control_plane);
    assert!(!dir.exists(), "{} left behind by down", dir.display());
    assert_eq!(
        running_in(&dir),
        Vec::<(u32, String)>::new(),
        "left running"
    );
}

/// SIGTERM (or Ctrl-C) while `up` waits for the API server: what it started is stopped.
#[test]
fn an_interrupted_up_stops_what_it_started() {
    let Some(_bin) = control_plane::require("an_interrupted_up_stops_what_it_started") else {
        return;
    };
    let scratch = Scratch::new();
    let dir = scratch.0.join("state dir");
    let (etcd_port, etcd_peer_port) = (free_port(), free_port());
    // The test kit's one child-process wrapper: output kept, killed on drop.
    let up = Process::spawn_quiet(
        "control-plane.sh up",
        &mut control_plane_script(
            "up",
            &dir,
            &[
                ("EBB_ETCD_PORT", etcd_port.to_string()),
                ("EBB_ETCD_PEER_PORT", etcd_peer_port.to_string()),
            ],
        ),
    )
    .unwrap();
    let log = || up.tail(usize::MAX);

    // etcd is healthy and the API server started once its PID file is written.
    poll::until_blocking(
        "the kube-apiserver's PID file",
        Duration::from_secs(60),
        || {
            if dir.join("pids/kube-apiserver").exists() {
                return Ok(Some(Ok(())));
            }
            if let Err(exited) = up.check_running() {
                return Ok(Some(Err(exited)));
            }
            Err(log())
        },
    )
    .unwrap()
    .unwrap_or_else(|error| panic!("up ended early: {error}"));
    assert!(
        !running_in(&dir).is_empty(),
        "nothing running before the signal"
    );
    up.signal("TERM").unwrap();

    let status = up
        .wait_for_exit(Duration::from_secs(60))
        .unwrap_or_else(|error| panic!("up still running after SIGTERM: {error}\n{}", log()));
    assert_eq!(status.code(), Some(143), "{}", log());
    assert!(
        log().contains("control-plane: up interrupted: stopped what it had started"),
        "{}",
        log()
    );
    assert_cleaned_up(&dir, &[(etcd_port, "etcd"), (etcd_peer_port, "etcd peer")]);

    let (status, stderr) = run("down", &dir, &[]);
    assert!(status.success(), "{stderr}");
    assert!(!dir.exists(), "down left {}", dir.display());
}

/// Missing binaries are each named on one line, with how to get them, before anything starts.
#[test]
fn up_names_every_missing_binary_before_starting_anything() {
    let scratch = Scratch::new();
    let empty_cache = scratch.0.join("empty cache");
    let dir = scratch.0.join("state dir");
    let (status, stderr) = run(
        "up",
        &dir,
        &[("EBB_CACHE_DIR", empty_cache.display().to_string())],
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    let bin = empty_cache.join("kube-v1.37.2/bin");
    for binary in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
    ] {
        let line = format!(
            "control-plane: {}/{binary} is missing: run '{} build' first",
            bin.display(),
            script().display()
        );
        assert!(
            stderr.lines().any(|seen| seen == line),
            "no line `{line}` in:\n{stderr}"
        );
    }
    assert!(!dir.exists(), "{} created", dir.display());
}

/// `up --node` where no node can run says why in one line, with its own exit status (tests
/// skip on it, or fail under CI), before starting anything.
#[test]
fn up_node_without_kubelet_says_why_in_one_line_before_starting_anything() {
    let Some(real_bin) = control_plane::require("up_node_without_kubelet_says_why") else {
        return;
    };
    let scratch = Scratch::new();
    let cache = scratch.0.join("cache");
    let bin = cache.join("kube-v1.37.2/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for binary in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
    ] {
        std::os::unix::fs::symlink(real_bin.join(binary), bin.join(binary)).unwrap();
    }
    let dir = scratch.0.join("state dir");
    let (status, stderr) = run(
        "up",
        &dir,
        &[
            ("EBB_CACHE_DIR", cache.display().to_string()),
            ("EBB_NODE", "1".into()),
        ],
    );
    assert_eq!(status.code(), Some(4), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "control-plane: this machine cannot run a node: {}/kubelet is missing: run '{} build' first",
            bin.display(),
            script().display()
        )
    );
    assert!(!dir.exists(), "{} created", dir.display());
}

/// `ebb_free_port` hands out distinct ports nobody uses, below the ephemeral range, the way
/// `ebb_runtime::free_loopback_port` does.
#[test]
fn the_shell_port_picker_hands_out_distinct_free_ports_below_the_ephemeral_range() {
    let output = Command::new("bash")
        .args([
            "-c",
            r#"set -e; source "$0"; for _ in $(seq 200); do ebb_free_port port; echo "$port"; done"#,
        ])
        .arg(repo().join("scripts/lib/ports.sh"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ephemeral_start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ports: Vec<u16> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 200);
    assert_eq!(
        ports.iter().collect::<HashSet<_>>().len(),
        200,
        "a port handed out twice: {ports:?}"
    );
    for port in ports {
        assert!((10_000..ephemeral_start).contains(&port), "{port}");
        assert_port_free(port, "picked");
    }
}
