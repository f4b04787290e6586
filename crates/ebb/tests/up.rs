//! `ebb up` as a user runs it: the real binary, real child processes, a real Redis.
//!
//! Phases as in KEDA's e2e tests: activation and scale-out on a burst, every item processed,
//! scale-in to zero after the cooldown, and nothing left running however `ebb up` ends.

use std::collections::{BTreeSet, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use ebb_testkit::poll;
use ebb_testkit::process::Process;
use ebb_testkit::redis::RedisServer;
use ebb_testkit::redis_cluster::RedisCluster;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// A running `ebb up --view plain` (the test kit's [`Process`]: its output kept line by line,
/// killed on drop).
struct Up {
    process: Process,
    http: u16,
    admin: u16,
}

use ebb_testkit::free_port;

impl Up {
    fn start(redis: Option<&RedisServer>, extra: &[&str]) -> Up {
        let (http, admin) = (free_port(), free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_ebb"));
        command
            .args(["up", "--view", "plain"])
            .args(["--http", &format!("127.0.0.1:{http}")])
            .args(["--admin", &format!("127.0.0.1:{admin}")])
            .args(extra)
            .env_remove("EBB_LOG");
        if let Some(redis) = redis {
            command.args(["--redis-server", &redis.address()]);
        }
        let process =
            Process::spawn_quiet("ebb up", &mut command).unwrap_or_else(|error| panic!("{error}"));
        let up = Up {
            process,
            http,
            admin,
        };
        up.wait_for(
            "the admin endpoint to answer",
            Duration::from_secs(20),
            |up| up.try_status().is_some(),
        );
        up.wait_for("the producer to answer", Duration::from_secs(20), |up| {
            reqwest_blocking_get(up.http, "/healthz").is_some()
        });
        up
    }

    fn try_status(&self) -> Option<Value> {
        reqwest_blocking_get(self.admin, "/status")
            .and_then(|body| serde_json::from_str(&body).ok())
    }

    fn status(&self) -> Value {
        self.try_status().expect("/status answers")
    }

    fn publish(&self, count: u32) {
        let output = Command::new("curl")
            .args(["-sf", "-X", "POST"])
            .arg(format!("http://127.0.0.1:{}/publish/{count}", self.http))
            .output()
            .expect("curl runs");
        assert!(output.status.success(), "publish failed: {output:?}");
    }

    /// Ids of the items the consumers logged as processed.
    fn processed_ids(&self) -> Vec<String> {
        self.process
            .logs()
            .iter()
            .filter(|line| line.contains("Message processed."))
            .filter_map(|line| line.split("id=\"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    }

    /// Waits for `done`; a timeout names the last status and the end of the output.
    fn wait_for(&self, what: &str, within: Duration, mut done: impl FnMut(&Up) -> bool) {
        poll::until_blocking(what, within, || {
            if done(self) {
                return Ok(Some(()));
            }
            Err(format!(
                "status {:?}\nlast output:\n{}",
                self.try_status(),
                self.tail(40)
            ))
        })
        .unwrap_or_else(|error| panic!("{error}"));
    }

    fn tail(&self, count: usize) -> String {
        self.process.tail(count)
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.process.pid() as i32)
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        self.process
            .wait_for_exit(within)
            .unwrap_or_else(|error| panic!("ebb up: {error}\n{}", self.tail(40)))
    }
}

/// A plain HTTP GET on loopback, body as text; `None` when nothing answers 2xx.
fn reqwest_blocking_get(port: u16, path: &str) -> Option<String> {
    let output = Command::new("curl")
        .args(["-sf", "--max-time", "2"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Every live (not zombie) descendant of `root`, read from /proc.
fn descendants(root: u32) -> BTreeSet<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((ppid, state)) = parent_and_state(pid)
            && state != 'Z'
        {
            parents.push((pid, ppid));
        }
    }
    let mut found = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && found.insert(pid) {
                frontier.push(pid);
            }
        }
    }
    found
}

fn parent_and_state(pid: u32) -> Option<(u32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

fn alive(pid: u32) -> bool {
    parent_and_state(pid).is_some_and(|(_, state)| state != 'Z')
}

fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}

/// A variable of a process's environment (`ebb up` names each replica there).
fn environment_variable(pid: u32, name: &str) -> String {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("readable environ");
    let prefix = format!("{name}=");
    String::from_utf8_lossy(&environ)
        .split('\0')
        .find_map(|entry| entry.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("{name} is not set for {pid}"))
        .to_owned()
}

fn number(status: &Value, field: &str) -> u64 {
    status[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {status}"))
}

#[test]
fn up_scales_a_burst_out_to_ten_processes_it_all_and_back_to_zero() {
    let redis = RedisServer::start();
    let mut up = Up::start(
        Some(&redis),
        &[
            "--per-msg",
            "200ms",
            "--cooldown",
            "3s",
            "--scale-down-stabilization",
            "3s",
        ],
    );
    assert_eq!(number(&up.status(), "replicas"), 0, "idle at start");

    // Activation and scale-out: 200 items / 20 per replica = 10.
    up.publish(200);
    let mut highest = 0;
    up.wait_for("10 running consumers", Duration::from_secs(10), |up| {
        let status = up.status();
        highest = highest.max(number(&status, "running_replicas"));
        highest == 10
    });

    // Every item processed, once each (nobody was killed).
    up.wait_for("200 items processed", Duration::from_secs(30), |up| {
        let status = up.status();
        highest = highest.max(number(&status, "running_replicas"));
        up.processed_ids().len() >= 200
    });
    let processed = up.processed_ids();
    let distinct: HashSet<_> = processed.iter().collect();
    assert_eq!((processed.len(), distinct.len()), (200, 200));
    assert_eq!(highest, 10, "never above 200 / 20");

    // Scale-in: empty for the 3 s cooldown, then 0, and the processes are gone.
    up.wait_for("scale to zero", Duration::from_secs(20), |up| {
        let status = up.status();
        number(&status, "replicas") == 0
            && number(&status, "running_replicas") == 0
            && number(&status, "stopping_replicas") == 0
    });
    let children = descendants(up.process.pid());
    let consumers: Vec<_> = children
        .iter()
        .filter(|pid| command_line(**pid).contains(" consumer"))
        .collect();
    assert!(
        consumers.is_empty(),
        "consumers still running: {consumers:?}"
    );

    // SIGTERM: everything stops, exit 0.
    let tree = descendants(up.process.pid());
    kill(up.pid(), Signal::SIGTERM).unwrap();
    let status = up.wait_exit(Duration::from_secs(15));
    assert!(
        status.success(),
        "ebb up exited with {status}\n{}",
        up.tail(20)
    );
    let left: Vec<_> = tree.into_iter().filter(|pid| alive(*pid)).collect();
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn up_replaces_a_killed_consumer_and_its_item_is_redelivered() {
    let redis = RedisServer::start();
    let up = Up::start(
        Some(&redis),
        &["--per-msg", "1s", "--lease", "2s", "--cooldown", "30s"],
    );
    up.publish(40);
    up.wait_for("2 consumers at work", Duration::from_secs(10), |up| {
        let status = up.status();
        number(&status, "running_replicas") == 2 && number(&status, "in_flight") == 2
    });
    let victim = descendants(up.process.pid())
        .into_iter()
        .find(|pid| command_line(*pid).contains(" consumer"))
        .expect("a consumer process");
    // Frozen first, so that what it holds in Redis stays put while we read it.
    kill(Pid::from_raw(victim as i32), Signal::SIGSTOP).unwrap();
    let consumer_id = environment_variable(victim, "EBB_CONSUMER_ID");
    let held_raw = redis.cli(&[
        "LRANGE",
        &format!("{{padok}}:processing:{consumer_id}"),
        "0",
        "-1",
    ]);
    let held: Value = serde_json::from_str(held_raw.trim()).unwrap_or_else(|error| {
        panic!("the victim should hold exactly one item, got {held_raw:?}: {error}")
    });
    let held = held["id"].as_str().expect("an item id").to_owned();
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();

    up.wait_for(
        "the killed consumer replaced",
        Duration::from_secs(10),
        |up| {
            let status = up.status();
            number(&status, "replica_restarts") == 1 && number(&status, "running_replicas") == 2
        },
    );
    assert!(!alive(victim));
    up.wait_for("all 40 items processed", Duration::from_secs(60), |up| {
        let ids: HashSet<_> = up.processed_ids().into_iter().collect();
        ids.len() == 40
    });
    assert!(
        up.processed_ids().contains(&held),
        "the killed consumer's item {held} was not redelivered"
    );
    assert_eq!(redis.cli(&["LLEN", "padok"]), "0");
    up.wait_for("nothing in flight", Duration::from_secs(10), |up| {
        number(&up.status(), "in_flight") == 0
    });
}

#[test]
fn up_killed_with_sigkill_leaves_no_process_behind() {
    // No --redis-server: ebb up starts its own redis-server, which must die too.
    let mut up = Up::start(None, &["--per-msg", "5s"]);
    up.publish(60);
    up.wait_for("3 consumers running", Duration::from_secs(10), |up| {
        number(&up.status(), "running_replicas") == 3
    });
    let tree = descendants(up.process.pid());
    let names: Vec<String> = tree.iter().map(|pid| command_line(*pid)).collect();
    assert!(
        names.iter().any(|name| name.contains("redis-server")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|name| name.contains(" producer")),
        "{names:?}"
    );
    assert_eq!(
        names
            .iter()
            .filter(|name| name.contains(" consumer"))
            .count(),
        3
    );

    kill(up.pid(), Signal::SIGKILL).unwrap();
    up.wait_exit(Duration::from_secs(5));
    poll::until_blocking(
        "everything ebb up started to be gone after it was killed",
        Duration::from_secs(15),
        || {
            let left: Vec<_> = tree.iter().copied().filter(|pid| alive(*pid)).collect();
            if left.is_empty() {
                return Ok(Some(()));
            }
            Err(format!(
                "still running: {:?}",
                left.iter()
                    .map(|pid| command_line(*pid))
                    .collect::<Vec<_>>()
            ))
        },
    )
    .unwrap_or_else(|error| panic!("{error}"));
}

/// Runs `ebb up` expecting it to refuse at once; returns its stderr.
fn refused(args: &[&str], path: Option<&std::path::Path>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ebb"));
    command
        .args(["up", "--view", "plain"])
        .args(["--http", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin", &format!("127.0.0.1:{}", free_port())])
        .args(args)
        .stdin(Stdio::null());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.output().expect("ebb up runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn up_without_redis_installed_says_how_to_get_it() {
    let empty = tempfile::tempdir().unwrap();
    let stderr = refused(&[], Some(empty.path()));
    assert!(
        stderr.contains("redis-server is not installed")
            && stderr.contains("apt-get install redis-server")
            && stderr.contains("--redis-server"),
        "{stderr}"
    );
}

#[test]
fn up_refuses_inconsistent_bounds_and_taken_ports_with_one_line() {
    let stderr = refused(&["--min-replicas", "5", "--max-replicas", "2"], None);
    assert_eq!(
        stderr.trim(),
        "ebb: --min-replicas: min replicas (5) is above max replicas (2)"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    // A negative count is refused by the flag's own parser, naming the flag.
    let output = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["up", "--max-replicas", "-3"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr.lines().next(),
        Some(
            "error: invalid value '-3' for '--max-replicas <MAX_REPLICAS>': must be a positive integer (digits only)"
        )
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["up", "--view", "plain", "--http"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--admin", &format!("127.0.0.1:{}", free_port())])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("--http") && stderr.contains(&format!("127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn up_returns_the_item_of_a_consumer_that_died_while_nothing_ran() {
    let redis = RedisServer::start();
    // A consumer from an earlier run takes an item and dies holding it.
    let mut orphan = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(["consumer", "--redis-server", &redis.address()])
        .args(["--http", "127.0.0.1:0", "--lease", "1s", "--per-msg", "1h"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    redis.cli(&["RPUSH", "padok", "left behind"]);
    poll::until_blocking(
        "the consumer to take the item",
        Duration::from_secs(10),
        || redis.cli(&["LLEN", "padok"]) == "0",
    )
    .unwrap();
    orphan.kill().unwrap();
    orphan.wait().unwrap();

    // Nobody is left to reap it but ebb up itself: it must come back and be processed.
    let up = Up::start(Some(&redis), &["--per-msg", "100ms"]);
    up.wait_for(
        "the orphaned item processed",
        Duration::from_secs(20),
        |up| {
            up.process
                .logs()
                .iter()
                .any(|line| line.contains("Message processed."))
        },
    );
    up.wait_for("nothing in flight", Duration::from_secs(10), |up| {
        number(&up.status(), "in_flight") == 0
    });
}

#[test]
fn up_scales_consumers_of_a_tls_redis_trusting_a_private_ca() {
    let redis = RedisServer::start_tls(&[]);
    let ca = redis.ca_file();
    let up = Up::start(
        None,
        &[
            "--redis-server",
            &redis.tls_url(),
            "--redis-ca",
            ca.to_str().unwrap(),
            "--per-msg",
            "50ms",
        ],
    );
    up.publish(40);
    up.wait_for(
        "40 items processed over TLS",
        Duration::from_secs(20),
        |up| up.processed_ids().len() >= 40,
    );
    assert!(number(&up.status(), "scale_events") >= 1);
}

#[test]
fn up_drains_a_queue_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let ports = cluster.ports();
    // A queue whose slot the only seed does not serve: producer, scaler and consumers all
    // have to find its node.
    let queue = (0..)
        .map(|n| format!("padok-{n}"))
        .find(|name| cluster.port_serving(cluster.slot_of(name)) != ports[0])
        .unwrap();
    let up = Up::start(
        None,
        &[
            "--redis-server",
            &cluster.url_with_seeds(&ports[..1]),
            "--redis-queue",
            &queue,
            "--per-msg",
            "50ms",
        ],
    );
    up.publish(40);
    up.wait_for(
        "40 items processed on the cluster",
        Duration::from_secs(20),
        |up| up.processed_ids().len() >= 40,
    );
    let processed: HashSet<_> = up.processed_ids().into_iter().collect();
    assert_eq!(processed.len(), 40);
    assert!(number(&up.status(), "scale_events") >= 1);
    assert_eq!(cluster.cli(&["LLEN", &queue]), "0");
    assert_eq!(
        cluster.cli(&["GET", &format!("{{{queue}}}:completed")]),
        "40"
    );
}
