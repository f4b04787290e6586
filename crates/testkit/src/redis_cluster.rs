//! A throwaway Redis Cluster of three masters (no replicas) on free loopback ports, each node
//! in its own folder of one temporary directory; every node is killed and the directory removed
//! on drop.
//!
//! Made the way an operator makes one: `redis-server --cluster-enabled yes` three times, then
//! `redis-cli --cluster create … --cluster-replicas 0`, then wait until every node reports
//! `cluster_state:ok`. Each node's cluster bus gets a port picked like its client port (Redis
//! would otherwise take client port + 10000, which may be in use or in the ephemeral range).
//!
//! [`RedisCluster::start_tls`] makes a cluster that speaks only TLS, clients and cluster bus
//! alike, with a certificate from a throwaway CA ([`RedisCluster::ca_file`]).
//!
//! [`RedisCluster::move_slot`] moves a hash slot with its keys to another master, the way
//! `redis-cli --cluster reshard` does, so tests can make a client meet `MOVED` and `ASK`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::free_port;
use crate::redis::make_certificates;

const READY_WITHIN: Duration = Duration::from_secs(20);
const MASTERS: usize = 3;

/// A running three-master Redis Cluster owned by a test.
pub struct RedisCluster {
    nodes: Vec<Node>,
    password: Option<String>,
    tls: bool,
    // Declared last: dropped after the nodes are killed.
    dir: tempfile::TempDir,
}

struct Node {
    port: u16,
    /// Killed when the cluster is dropped.
    _process: crate::process::Process,
}

impl RedisCluster {
    /// Starts three masters, joins them into a cluster and waits until it serves every slot.
    /// Panics (the test fails) with the reason when `redis-server`/`redis-cli` are missing or
    /// the cluster does not form.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with_password(None)
    }

    /// Like [`start`](Self::start), every node requiring `password` (`--requirepass`, and
    /// `--masterauth` for the nodes among themselves).
    pub fn start_with_password(password: Option<&str>) -> RedisCluster {
        RedisCluster::start_with(password, false)
    }

    /// Like [`start`](Self::start), every node speaking TLS only (no plain port), with a
    /// certificate for `127.0.0.1` signed by a fresh CA ([`ca_file`](Self::ca_file)).
    pub fn start_tls() -> RedisCluster {
        RedisCluster::start_with(None, true)
    }

    fn start_with(password: Option<&str>, tls: bool) -> RedisCluster {
        let dir = tempfile::Builder::new()
            .prefix("ebb-redis-cluster-")
            .tempdir()
            .unwrap_or_else(|error| panic!("cannot create a temporary directory: {error}"));
        let mut ports = BTreeSet::new();
        while ports.len() < 2 * MASTERS {
            ports.insert(free_port());
        }
        let ports: Vec<u16> = ports.into_iter().collect();
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            password: password.map(str::to_owned),
            tls,
            dir,
        };
        if tls {
            make_certificates(cluster.dir.path());
        }
        for pair in ports.chunks(2) {
            let node = cluster.start_node(pair[0], pair[1]);
            cluster.nodes.push(node);
        }
        for node in &cluster.nodes {
            cluster.wait_for(node.port, "PING", |reply| reply == "PONG");
        }
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(
            cluster
                .nodes
                .iter()
                .map(|node| format!("127.0.0.1:{}", node.port)),
        );
        create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(str::to_owned));
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        cluster.cli_at(cluster.nodes[0].port, &create);
        for node in &cluster.nodes {
            cluster.wait_for(node.port, "CLUSTER INFO", |reply| {
                reply.contains("cluster_state:ok") && reply.contains("cluster_slots_ok:16384")
            });
        }
        cluster
    }

    fn start_node(&self, port: u16, bus_port: u16) -> Node {
        let folder = self.dir.path().join(port.to_string());
        std::fs::create_dir(&folder)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", folder.display()));
        let mut command = Command::new("redis-server");
        if self.tls {
            let file = |name: &str| self.dir.path().join(name);
            command
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--tls-cluster", "yes", "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(file("server.crt"))
                .arg("--tls-key-file")
                .arg(file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(file("ca.crt"));
        } else {
            command.args(["--port", &port.to_string()]);
        }
        command
            .args(["--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus_port.to_string(),
            ])
            .arg("--cluster-config-file")
            .arg(folder.join("nodes.conf"))
            .arg("--dir")
            .arg(&folder)
            .args(["--save", "", "--appendonly", "no"]);
        if let Some(password) = &self.password {
            command.args(["--requirepass", password, "--masterauth", password]);
        }
        let process = crate::process::Process::spawn(
            &format!("redis-cluster-{port}"),
            &mut command,
        )
        .unwrap_or_else(|error| {
            panic!("cannot start redis-server (is the redis-server package installed?): {error}")
        });
        Node {
            port,
            _process: process,
        }
    }

    /// Runs `command` (words split on spaces) on the node at `port` until `ready` accepts its
    /// output; panics after [`READY_WITHIN`] or when a node exits.
    fn wait_for(&self, port: u16, command: &str, ready: impl Fn(&str) -> bool) {
        let words: Vec<&str> = command.split(' ').collect();
        crate::poll::until_blocking(
            &format!("redis cluster node {port}: `{command}` to be ready"),
            READY_WITHIN,
            || {
                let (ok, reply) = self.try_cli(port, &words);
                if ok && ready(&reply) {
                    Ok(Some(()))
                } else {
                    Err(reply)
                }
            },
        )
        .unwrap_or_else(|error| panic!("{error}"));
    }

    /// The client ports of the masters, in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// The PEM file of the CA that signed the nodes' certificate (TLS clusters only).
    pub fn ca_file(&self) -> PathBuf {
        assert!(self.tls, "started without TLS: use start_tls");
        self.dir.path().join("ca.crt")
    }

    /// `redis+cluster://[:password@]127.0.0.1:<port>,…` (`rediss+cluster://…` for TLS) naming
    /// the nodes at `ports` as seeds.
    pub fn url_with_seeds(&self, ports: &[u16]) -> String {
        let credentials = self
            .password
            .as_ref()
            .map(|password| format!(":{password}@"))
            .unwrap_or_default();
        let seeds: Vec<String> = ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}+cluster://{credentials}{}", seeds.join(","))
    }

    /// [`url_with_seeds`](Self::url_with_seeds) with every node.
    pub fn url(&self) -> String {
        self.url_with_seeds(&self.ports())
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        let reply = self.cli_at(self.nodes[0].port, &["CLUSTER", "KEYSLOT", key]);
        reply
            .parse()
            .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT {key}: {reply}"))
    }

    /// The client port of the master serving `slot`, as the first node sees it.
    pub fn port_serving(&self, slot: u16) -> u16 {
        let nodes = self.cli_at(self.nodes[0].port, &["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let serves = fields
                .iter()
                .skip(8)
                .any(|range| match range.split_once('-') {
                    Some((first, last)) => {
                        first.parse().is_ok_and(|first: u16| first <= slot)
                            && last.parse().is_ok_and(|last: u16| slot <= last)
                    }
                    None => range.parse() == Ok(slot),
                });
            if serves {
                let address = fields[1].split('@').next().unwrap_or_default();
                return address
                    .rsplit_once(':')
                    .and_then(|(_, port)| port.parse().ok())
                    .unwrap_or_else(|| panic!("no port in CLUSTER NODES line {line:?}"));
            }
        }
        panic!("no master serves slot {slot}: {nodes}")
    }

    /// The node id of the master at `port`.
    fn node_id(&self, port: u16) -> String {
        self.cli_at(port, &["CLUSTER", "MYID"])
    }

    /// Starts moving `slot` to the master at `to`: the owner marks it MIGRATING, `to` marks it
    /// IMPORTING, and every key of the slot is migrated. Until
    /// [`finish_slot_move`](Self::finish_slot_move), the owner answers `ASK` for them.
    pub fn begin_slot_move(&self, slot: u16, to: u16) {
        let from = self.port_serving(slot);
        assert_ne!(from, to, "slot {slot} is already served by {to}");
        let slot_arg = slot.to_string();
        self.cli_at(
            to,
            &[
                "CLUSTER",
                "SETSLOT",
                &slot_arg,
                "IMPORTING",
                &self.node_id(from),
            ],
        );
        self.cli_at(
            from,
            &[
                "CLUSTER",
                "SETSLOT",
                &slot_arg,
                "MIGRATING",
                &self.node_id(to),
            ],
        );
        loop {
            let keys = self.cli_at(from, &["CLUSTER", "GETKEYSINSLOT", &slot_arg, "1000"]);
            if keys.is_empty() {
                break;
            }
            let to_port = to.to_string();
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000"];
            if let Some(password) = &self.password {
                migrate.extend(["AUTH", password]);
            }
            migrate.push("KEYS");
            migrate.extend(keys.lines());
            self.cli_at(from, &migrate);
        }
    }

    /// Ends a move begun with [`begin_slot_move`](Self::begin_slot_move): every master now
    /// says `slot` is served by `to`, and the former owner answers `MOVED` for it.
    pub fn finish_slot_move(&self, slot: u16, to: u16) {
        let id = self.node_id(to);
        for node in &self.nodes {
            self.cli_at(
                node.port,
                &["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &id],
            );
        }
    }

    /// Moves `slot` and its keys to the master at `to` in one go.
    pub fn move_slot(&self, slot: u16, to: u16) {
        self.begin_slot_move(slot, to);
        self.finish_slot_move(slot, to);
    }

    /// Runs one command with `redis-cli -c` (following redirections) and returns its raw
    /// output, trimmed. Panics when the command fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut following = vec!["-c"];
        following.extend(args);
        self.cli_at(self.nodes[0].port, &following)
    }

    /// Runs one command with `redis-cli` on the node at `port` alone (no redirection), e.g. to
    /// see which node holds a key. Panics when the command fails.
    pub fn cli_at(&self, port: u16, args: &[&str]) -> String {
        let (ok, reply) = self.try_cli(port, args);
        assert!(ok, "redis-cli -p {port} {args:?} failed: {reply}");
        reply
    }

    /// Runs `redis-cli`, killed after [`READY_WITHIN`] (a `--cluster create` whose nodes
    /// cannot talk waits for them forever). Returns whether it succeeded, and its output.
    fn try_cli(&self, port: u16, args: &[&str]) -> (bool, String) {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--raw"]);
        if self.tls {
            command
                .args(["--tls", "--cacert"])
                .arg(self.dir.path().join("ca.crt"));
        }
        if let Some(password) = &self.password {
            command.args(["--no-auth-warning", "-a", password]);
        }
        let child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot run redis-cli (is redis-tools installed?): {error}")
            });
        let pid = child.id().to_string();
        // Read on another thread, so a long answer never fills the pipe while this one waits.
        let (done, output) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(child.wait_with_output()));
        let output = match output.recv_timeout(READY_WITHIN) {
            Ok(output) => output.unwrap_or_else(|error| panic!("redis-cli {args:?}: {error}")),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                return (
                    false,
                    format!("redis-cli {args:?} still running after {READY_WITHIN:?}"),
                );
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned();
        let failed = !output.status.success()
            || stdout.starts_with("ERR")
            || stdout.starts_with("[ERR]")
            || stdout.starts_with("Could not connect");
        let stderr = String::from_utf8_lossy(&output.stderr);
        (!failed, format!("{stdout}{}", stderr.trim_end()))
    }
}
