//! The `rq` source against a real Redis, a real `rq worker` (RQ 2.12.0, its defaults: one
//! job at a time, a forked work-horse per job) and jobs enqueued with RQ's own client, from
//! the `rq` peer's venv (`tests/peers/rq`). Each test reads its own queue; the tests of this
//! binary that run at the same time share one Redis.
//!
//! Every expected figure comes from RQ's own keys, read with `redis-cli` beside the source:
//! the enqueue time of the head job, the start of the execution a worker runs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ebb_queue::{RedisAddress, RedisReader};
use ebb_sources::rq::{RqSource, RqSpec};
use ebb_sources::{Kind, Lease, MetricSource, Reading, Redis, Text};
use ebb_testkit::peers::venv_bin_or_skip;
use ebb_testkit::poll;
use ebb_testkit::process::Process;
use ebb_testkit::redis::RedisServer;

/// The Redis of the tests running now: started by the first, stopped with the last.
fn shared_redis() -> Arc<RedisServer> {
    static SHARED: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(server) = shared.upgrade() {
        return server;
    }
    let server = Arc::new(RedisServer::start());
    *shared = Arc::downgrade(&server);
    server
}

fn source_on(server: &RedisServer, queue: &str) -> RqSource {
    let address: RedisAddress = server.address().parse().unwrap();
    RqSource::new(RedisReader::new(&address).unwrap(), queue)
}

/// The peer's folder: its jobs module and its enqueue script.
fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/rq")
}

/// The `rq` peer's programs, or `None` after a loud skip (a failure under CI).
struct Peer {
    python: PathBuf,
    rq: PathBuf,
}

impl Peer {
    fn find(test: &str) -> Option<Peer> {
        Some(Peer {
            python: venv_bin_or_skip(test, "rq", "python")?,
            rq: venv_bin_or_skip(test, "rq", "rq")?,
        })
    }

    /// Enqueues one job per duration with RQ's client; their ids.
    fn enqueue(&self, server: &RedisServer, queue: &str, seconds: &[u64]) -> Vec<String> {
        let mut command = Command::new(&self.python);
        command
            .arg(peer_dir().join("rq_enqueue.py"))
            .arg(server.url())
            .arg(queue)
            .args(seconds.iter().map(u64::to_string));
        let output = command.output().expect("the peer's python runs");
        assert!(
            output.status.success(),
            "rq_enqueue.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let ids: Vec<String> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(ids.len(), seconds.len(), "{ids:?}");
        ids
    }

    /// `rq worker <queue> --name <name>` with RQ's defaults, plus `extra` flags.
    fn worker(&self, server: &RedisServer, queue: &str, name: &str, extra: &[&str]) -> Worker {
        let mut command = Command::new(&self.rq);
        command
            .args(["worker", "--url", &server.url(), "--name", name, "--path"])
            .arg(peer_dir())
            .args(extra)
            .arg(queue);
        // Its own process group, for `Worker::kill`.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        Worker(Process::spawn(name, &mut command).expect("rq worker starts"))
    }
}

/// An `rq worker` and its work-horse, killed together (SIGKILL) when dropped.
struct Worker(Process);

impl Worker {
    /// SIGKILLs the worker and its work-horse, as a pod's end does. The horse is a child in
    /// a process group of its own (RQ calls `os.setpgrp()` in it): it goes by
    /// its parent's pid, first.
    fn kill(&self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &self.0.pid().to_string()])
            .status();
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.pid())])
            .stderr(std::process::Stdio::null())
            .status();
        self.0.kill();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An epoch time in seconds as RQ writes it (`1796686214.242617`).
fn epoch(text: &str) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(text.parse().unwrap())
}

/// When job `id` was enqueued, from its hash.
fn enqueued_at(server: &RedisServer, id: &str) -> SystemTime {
    let stamp = server.cli(&["HGET", &format!("rq:job:{id}"), "enqueued_at"]);
    humantime::parse_rfc3339(&stamp).unwrap()
}

/// When the execution of job `id` that `queue`'s started registry holds began, once it does.
fn execution_start(server: &RedisServer, queue: &str, id: &str) -> Option<SystemTime> {
    let entries = server.cli(&["ZRANGE", &format!("rq:wip:{queue}"), "0", "-1"]);
    let entry = entries
        .lines()
        .find(|entry| entry.starts_with(&format!("{id}:")))?;
    let started = server.cli(&["HGET", &format!("rq:execution:{entry}"), "created_at"]);
    Some(epoch(&started))
}

/// A reading of `waiting` and `in_flight` jobs, nothing scheduled, these leases, and no age.
fn counts(waiting: u64, in_flight: u64, leases: Vec<Lease>) -> Reading {
    Reading {
        scheduled: Some(0),
        leases,
        ..Reading::counts(waiting, in_flight)
    }
}

fn busy(worker: &str, since: SystemTime) -> Lease {
    Lease {
        consumer: worker.to_owned(),
        leased: 1,
        since: Some(since),
    }
}

/// Reads until the reading is `expected` (its age aside), then checks that its age is the
/// time since `oldest` was enqueued (none when `oldest` is none), as of the read.
async fn reads(
    source: &RqSource,
    what: &str,
    timeout: Duration,
    oldest: Option<SystemTime>,
    expected: impl Fn() -> Option<Reading>,
) {
    let (reading, before, after) = poll::until(what, timeout, || async {
        let before = SystemTime::now();
        let reading = source.read().await.map_err(|error| error.to_string())?;
        let after = SystemTime::now();
        let aged_apart = Reading {
            oldest_waiting_age: None,
            ..reading.clone()
        };
        match expected() {
            Some(expected) if expected == aged_apart => Ok(Some((reading, before, after))),
            expected => Err(format!("read {reading:?}, expected {expected:?}")),
        }
    })
    .await
    .unwrap();
    match oldest {
        None => assert_eq!(reading.oldest_waiting_age, None, "{what}"),
        Some(enqueued) => {
            let age = reading
                .oldest_waiting_age
                .unwrap_or_else(|| panic!("{what}: no age in {reading:?}"));
            let (least, most) = (
                before.duration_since(enqueued).unwrap(),
                after.duration_since(enqueued).unwrap(),
            );
            assert!(
                least <= age && age <= most,
                "{what}: age {age:?} outside [{least:?}, {most:?}]"
            );
        }
    }
}

#[tokio::test]
async fn source_rq_counts_a_real_workers_jobs_before_while_and_after_it_works() {
    let test = "source_rq_counts_a_real_workers_jobs_before_while_and_after_it_works";
    let Some(peer) = Peer::find(test) else { return };
    let server = shared_redis();
    let source = source_on(&server, "reports");
    let within = Duration::from_secs(30);
    let ids = peer.enqueue(&server, "reports", &[2, 2]);
    let first = enqueued_at(&server, &ids[0]);
    reads(&source, "two jobs, no worker", within, Some(first), || {
        Some(counts(2, 0, vec![]))
    })
    .await;

    let _worker = peer.worker(&server, "reports", "reports-0", &[]);
    let second = enqueued_at(&server, &ids[1]);
    reads(
        &source,
        "the first job running",
        within,
        Some(second),
        || {
            let since = execution_start(&server, "reports", &ids[0])?;
            Some(counts(1, 1, vec![busy("reports-0", since)]))
        },
    )
    .await;
    reads(&source, "the second job running", within, None, || {
        let since = execution_start(&server, "reports", &ids[1])?;
        Some(counts(0, 1, vec![busy("reports-0", since)]))
    })
    .await;
    reads(&source, "both jobs done", within, None, || {
        Some(counts(0, 0, vec![Lease::idle("reports-0")]))
    })
    .await;
    assert_eq!(
        server.cli(&["ZCARD", "rq:finished:reports"]),
        "2",
        "RQ finished both"
    );
}

/// A SIGKILLed worker's job stays in the started registry until RQ's cleanup: counted in
/// flight until the entry's expiry (at least a minute: RQ adds 60 s to the monitoring
/// interval), then not. RQ does not run it again: its cleanup, at the next worker's start,
/// moves it to the failed registry.
#[tokio::test]
async fn source_rq_counts_a_sigkilled_workers_job_until_its_entry_expires() {
    let test = "source_rq_counts_a_sigkilled_workers_job_until_its_entry_expires";
    let Some(peer) = Peer::find(test) else { return };
    let server = shared_redis();
    let source = source_on(&server, "crashes");
    let within = Duration::from_secs(30);
    let ids = peer.enqueue(&server, "crashes", &[600]);
    // The shortest heartbeat RQ allows, for the shortest expiry (1 s + 60 s).
    let worker = peer.worker(
        &server,
        "crashes",
        "crashes-0",
        &["--job-monitoring-interval", "1"],
    );
    reads(&source, "the job running", within, None, || {
        let since = execution_start(&server, "crashes", &ids[0])?;
        Some(counts(0, 1, vec![busy("crashes-0", since)]))
    })
    .await;

    worker.kill();
    let killed = SystemTime::now();
    let since = execution_start(&server, "crashes", &ids[0]).unwrap();
    let reading = source.read().await.unwrap();
    assert_eq!(
        reading,
        counts(0, 1, vec![busy("crashes-0", since)]),
        "right after the SIGKILL: RQ cannot tell a dead worker yet"
    );
    let expiry = server.cli(&["ZRANGE", "rq:wip:crashes", "0", "0", "WITHSCORES"]);
    let expiry = epoch(expiry.lines().nth(1).unwrap());
    let left = expiry.duration_since(killed).unwrap();
    assert!(
        left > Duration::from_secs(50) && left <= Duration::from_secs(62),
        "the entry expires {left:?} after the kill"
    );

    reads(
        &source,
        "the dead worker's entry expired",
        left + within,
        None,
        || Some(counts(0, 0, vec![])),
    )
    .await;
    assert!(
        SystemTime::now() >= expiry,
        "counted until its expiry, not before"
    );
    assert_eq!(
        server.cli(&["ZCARD", "rq:wip:crashes"]),
        "1",
        "the entry stays until RQ's cleanup"
    );

    let _next = peer.worker(&server, "crashes", "crashes-1", &[]);
    reads(
        &source,
        "a new worker cleaned the registry, idle",
        within,
        None,
        || {
            (server.cli(&["ZCARD", "rq:wip:crashes"]) == "0")
                .then(|| counts(0, 0, vec![Lease::idle("crashes-1")]))
        },
    )
    .await;
    assert_eq!(
        server.cli(&["ZRANGE", "rq:failed:crashes", "0", "-1"]),
        ids[0],
        "RQ moved the abandoned job to the failed registry, not back to the queue"
    );
}

#[tokio::test]
async fn source_rq_reads_an_unknown_queue_and_a_wrong_key_as_errors_naming_them() {
    let server = shared_redis();
    let message = source_on(&server, "nobody")
        .read()
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "reading rq queue \"nobody\" at {}: no such queue (\"rq:queue:nobody\" is not in rq:queues, no worker serves it and no job of it is held; check the queue's name and the database, or enqueue to it or start a worker on it)",
            server.address()
        )
    );
    server.cli(&["SET", "rq:wip:typo", "x"]);
    let message = source_on(&server, "typo")
        .read()
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "reading rq queue typo: Redis at {}: WRONGTYPE: key \"rq:wip:typo\" holds a string, not a zset (delete or rename it, or choose another queue name)",
            server.address()
        )
    );
}

/// A queue RQ knows and nobody uses now reads as empty: nothing waits, nothing is held.
#[tokio::test]
async fn source_rq_reads_an_emptied_queue_as_nothing_to_do() {
    let test = "source_rq_reads_an_emptied_queue_as_nothing_to_do";
    let Some(peer) = Peer::find(test) else { return };
    let server = shared_redis();
    let ids = peer.enqueue(&server, "emptied", &[1]);
    server.cli(&["LREM", "rq:queue:emptied", "0", &ids[0]]);
    assert_eq!(
        source_on(&server, "emptied").read().await.unwrap(),
        counts(0, 0, vec![])
    );
}

#[tokio::test]
async fn source_rq_reads_each_queue_with_one_command_in_one_round_trip() {
    let test = "source_rq_reads_each_queue_with_one_command_in_one_round_trip";
    let Some(peer) = Peer::find(test) else { return };
    // Its own server: the command counts are its alone.
    let server = RedisServer::start();
    let address: RedisAddress = server.address().parse().unwrap();
    let reader = RedisReader::new(&address).unwrap();
    peer.enqueue(&server, "mail", &[1, 1, 1]);
    peer.enqueue(&server, "sms", &[1]);
    let (mail, sms) = (
        RqSource::new(reader.clone(), "mail"),
        RqSource::new(reader.clone(), "sms"),
    );
    // The first read sends the script in full: count the next.
    let _ = tokio::join!(mail.read(), sms.read());
    server.reset_stats();
    let before = reader.round_trips();
    let (mail, sms) = tokio::join!(mail.read(), sms.read());
    assert_eq!(reader.round_trips() - before, 1, "one pipeline for both");
    assert_eq!(server.calls("evalsha"), 2, "one script per queue");
    assert_eq!(server.calls("eval"), 0);
    assert_eq!(
        (mail.unwrap().waiting, sms.unwrap().waiting),
        (3, 1),
        "each its own queue"
    );
}

#[tokio::test]
async fn source_rq_refuses_a_redis_cluster() {
    let address: RedisAddress = "redis+cluster://127.0.0.1:7000".parse().unwrap();
    let redis = Redis {
        reader: RedisReader::new(&address).unwrap(),
        address,
    };
    let spec = RqSpec {
        queue: Text::Fixed("default".to_owned()),
    };
    let Err(error) = spec.build(Some(&redis)) else {
        panic!("built on a cluster")
    };
    assert!(
        error.to_string().starts_with("rq.redis: ")
            && error.to_string().contains("different hash slots"),
        "{error}"
    );
}
