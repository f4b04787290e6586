//! `CelerySource` on a real redis-server, with tasks sent by Celery's own client
//! (`apply_async`) and run by a real Celery 5.7 worker (kombu 5.7), both from the pinned venv
//! of `tests/peers/celery` (built by `scripts/install-deps.sh`). The worker keeps Celery's
//! defaults but for `--concurrency 2`, pinned so that its prefetch (4 × concurrency = 8) does
//! not depend on the machine's cores. Every figure is asserted exactly at each moment: before
//! the worker starts, while it works, after acks, and after it is SIGKILLed.
//!
//! Each test starts its own Redis (65 ms): a server shared through a static would outlive the
//! test binary, since nothing drops a static.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ebb_queue::{RedisAddress, RedisReader};
use ebb_sources::celery::{BrokerCounts, CelerySource, CelerySpec};
use ebb_sources::redis_list::RedisListSource;
use ebb_sources::{Kind, MetricSource, Reading, Redis};
use ebb_testkit::peers::venv_bin_or_skip;
use ebb_testkit::poll;
use ebb_testkit::process::Process;
use ebb_testkit::redis::RedisServer;

/// Long enough for a worker started on a loaded machine to take its first tasks.
const WORKER_WITHIN: Duration = Duration::from_secs(60);

/// The peer's programs, and the folder of its `tasks.py` and `send.py`.
struct Peer {
    python: PathBuf,
    celery: PathBuf,
}

fn peer_or_skip(test: &str) -> Option<Peer> {
    Some(Peer {
        python: venv_bin_or_skip(test, "celery", "python")?,
        celery: venv_bin_or_skip(test, "celery", "celery")?,
    })
}

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/celery")
}

/// One configuration of the peer's app (`tasks.py` reads it from the environment).
struct App<'p> {
    peer: &'p Peer,
    env: Vec<(&'static str, String)>,
}

impl<'p> App<'p> {
    fn new(peer: &'p Peer, server: &RedisServer) -> App<'p> {
        App {
            peer,
            env: vec![("EBB_BROKER", format!("{}/0", server.url()))],
        }
    }

    fn with(mut self, name: &'static str, value: &str) -> App<'p> {
        self.env.push((name, value.to_owned()));
        self
    }

    fn command(&self, program: &PathBuf) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(peer_dir())
            .envs(self.env.iter().cloned());
        command
    }

    /// Sends `count` tasks sleeping `seconds` to `queue`, with `priority` if given.
    fn send(&self, count: u32, seconds: f64, queue: &str, priority: Option<u32>) {
        let mut command = self.command(&self.peer.python);
        command.args(["send.py", &count.to_string(), &seconds.to_string(), queue]);
        command.args(priority.map(|priority| priority.to_string()));
        let output = command.output().expect("the peer's python runs");
        assert!(
            output.status.success(),
            "send.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs kombu's restore of lost tasks once (`restore.py`), as a polling worker would.
    fn restore(&self) {
        let output = self
            .command(&self.peer.python)
            .arg("restore.py")
            .output()
            .expect("the peer's python runs");
        assert!(
            output.status.success(),
            "restore.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A worker of the default queue with Celery's defaults (but `--concurrency 2`), in a
    /// process group of its own so that a SIGKILL reaches its pool's processes too.
    fn worker(&self) -> Worker {
        let mut command = self.command(&self.peer.celery);
        command
            .args([
                "-A",
                "tasks",
                "worker",
                "--loglevel=info",
                "--concurrency",
                "2",
            ])
            .process_group(0);
        Worker(Process::spawn("celery", &mut command).expect("the celery worker starts"))
    }
}

/// A Celery worker and its pool, killed together (SIGKILL, no warm shutdown) when dropped.
struct Worker(Process);

impl Worker {
    fn kill(&self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.pid())])
            // Quiet: on drop after a kill, the group is already gone.
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn source(server: &RedisServer, spec: &CelerySpec) -> CelerySource {
    let address: RedisAddress = server.address().parse().unwrap();
    let reader = RedisReader::new(&address).unwrap();
    spec.build(Some(&Redis { address, reader })).unwrap()
}

fn counts(listed: u64, held: u64, stale: u64) -> BrokerCounts {
    BrokerCounts {
        listed,
        held,
        stale,
    }
}

/// Waits until the broker holds `expected`, failing with what it held last.
async fn until_broker(source: &CelerySource, expected: BrokerCounts, worker: &Worker) {
    poll::until(
        &format!("the broker to hold {expected:?}"),
        WORKER_WITHIN,
        || async {
            match source.broker().await {
                Ok(seen) if seen == expected => Ok(Some(())),
                Ok(seen) => Err(format!("{seen:?}; worker: {}", worker.0.tail(5))),
                Err(error) => Err(error.to_string()),
            }
        },
    )
    .await
    .unwrap();
}

fn acks_late() -> CelerySpec {
    CelerySpec {
        acks_late: true,
        ..CelerySpec::new(["celery"])
    }
}

#[tokio::test]
async fn source_celery_counts_running_and_prefetched_tasks_with_acks_late_and_ages_out_a_killed_workers()
 {
    let Some(peer) =
        peer_or_skip("source_celery_counts_running_and_prefetched_tasks_with_acks_late")
    else {
        return;
    };
    let server = RedisServer::start();
    let app = App::new(&peer, &server).with("EBB_ACKS_LATE", "1");
    app.send(10, 4.0, "celery", None);
    app.send(2, 4.0, "celery", Some(5));
    // kombu's default steps put priority 5 in step 3's list, even with no priority configured.
    assert_eq!(server.cli(&["LLEN", "celery"]), "10");
    assert_eq!(server.cli(&["LLEN", "celery\x06\x163"]), "2");
    let celery = source(&server, &acks_late());
    assert_eq!(celery.read().await.unwrap(), Reading::counts(12, 0));

    let worker = app.worker();
    // 2 running and 6 prefetched (prefetch 8 = 4 × concurrency 2), all in `unacked`.
    until_broker(&celery, counts(4, 8, 0), &worker).await;
    assert_eq!(celery.read().await.unwrap(), Reading::counts(4, 8));
    // The first two acked: two more taken to refill the prefetch.
    until_broker(&celery, counts(2, 8, 0), &worker).await;
    assert_eq!(celery.read().await.unwrap(), Reading::counts(2, 8));

    worker.kill();
    worker.0.wait_for_exit(Duration::from_secs(10)).unwrap();
    // On a loaded machine the next pair may have been acked and refilled before the kill
    // landed: the list then holds 0, not 2. The held 8 are certain.
    let killed = celery.broker().await.unwrap();
    assert!(
        killed == counts(2, 8, 0) || killed == counts(0, 8, 0),
        "{killed:?}"
    );
    let listed = killed.listed;
    // The dead worker's 8 entries stay in `unacked`: within the visibility timeout (an hour by
    // default) they still read as in flight, as kombu itself holds them.
    assert_eq!(celery.read().await.unwrap(), Reading::counts(listed, 8));
    assert_eq!(server.cli(&["HLEN", "unacked"]), "8");
    // Past a 2 s bound, they are waiting again: a worker must take them up.
    let bounded = source(
        &server,
        &CelerySpec {
            visibility_timeout_seconds: 2,
            ..acks_late()
        },
    );
    poll::until(
        "the killed worker's tasks to age out",
        Duration::from_secs(10),
        || async {
            match bounded.read().await {
                Ok(reading) if reading == Reading::counts(listed + 8, 0) => Ok(Some(())),
                seen => Err(format!("{seen:?}")),
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(bounded.broker().await.unwrap(), counts(listed, 0, 8));
    assert_eq!(celery.read().await.unwrap(), Reading::counts(listed, 8));
    // kombu agrees: with the same bound, its own restore (what the next worker does when it
    // polls) puts exactly those 8 back on the list, and every reading then agrees too.
    app.with("EBB_VISIBILITY_TIMEOUT", "2").restore();
    assert_eq!(celery.broker().await.unwrap(), counts(listed + 8, 0, 0));
    assert_eq!(celery.read().await.unwrap(), Reading::counts(listed + 8, 0));
}

#[tokio::test]
async fn source_celery_counts_prefetched_tasks_as_waiting_and_running_ones_as_unknown_with_early_acks()
 {
    let Some(peer) = peer_or_skip("source_celery_counts_prefetched_tasks_with_early_acks") else {
        return;
    };
    let server = RedisServer::start();
    let app = App::new(&peer, &server);
    app.send(12, 2.0, "celery", None);
    let celery = source(&server, &CelerySpec::new(["celery"]));
    assert_eq!(celery.read().await.unwrap(), Reading::waiting(12));

    let worker = app.worker();
    // Early acks: the 2 running tasks were acked as they started and are in no key; the 8
    // prefetched ones wait in `unacked`, 2 more in the list. A plain LLEN reads 2.
    until_broker(&celery, counts(2, 8, 0), &worker).await;
    assert_eq!(server.cli(&["LLEN", "celery"]), "2");
    let reading = celery.read().await.unwrap();
    assert_eq!(reading, Reading::waiting(10));
    assert_eq!(
        reading.in_flight, None,
        "running tasks are unknown, never 0"
    );
    // The last two running: nothing in any key, and in flight still unknown.
    until_broker(&celery, counts(0, 0, 0), &worker).await;
    assert_eq!(celery.read().await.unwrap(), Reading::waiting(0));
}

#[tokio::test]
async fn source_celery_adds_up_every_priority_list_of_every_queue_behind_a_key_prefix() {
    let Some(peer) = peer_or_skip("source_celery_adds_up_every_priority_list") else {
        return;
    };
    let server = RedisServer::start();
    let app = App::new(&peer, &server);
    app.send(3, 1.0, "celery", None);
    app.send(2, 1.0, "celery", Some(9));
    app.send(2, 1.0, "reports", Some(3));
    let read = |queues: &[&str]| {
        let source = source(&server, &CelerySpec::new(queues.iter().copied()));
        async move { source.read().await.unwrap() }
    };
    assert_eq!(read(&["celery"]).await, Reading::waiting(5));
    assert_eq!(read(&["reports"]).await, Reading::waiting(2));
    assert_eq!(read(&["celery", "reports"]).await, Reading::waiting(7));

    // Another app on the same database, with kombu's key prefix, ten steps and its own
    // separator (`broker_transport_options`).
    let steps = "0,1,2,3,4,5,6,7,8,9";
    let prefixed = App::new(&peer, &server)
        .with("EBB_KEYPREFIX", "app1:")
        .with("EBB_PRIORITY_STEPS", steps)
        .with("EBB_SEP", ":");
    prefixed.send(1, 1.0, "jobs", None);
    prefixed.send(1, 1.0, "jobs", Some(1));
    prefixed.send(1, 1.0, "jobs", Some(5));
    assert_eq!(server.cli(&["LLEN", "app1:jobs:5"]), "1");
    let spec = CelerySpec {
        priority_steps: (0..10).collect(),
        separator: ":".to_owned(),
        key_prefix: "app1:".to_owned(),
        ..CelerySpec::new(["jobs"])
    };
    assert_eq!(
        source(&server, &spec).read().await.unwrap(),
        Reading::waiting(3)
    );
    // With kombu's default steps, two of its lists go unread: why the steps are a field.
    let default_steps = CelerySpec {
        key_prefix: "app1:".to_owned(),
        ..CelerySpec::new(["jobs"])
    };
    assert_eq!(
        source(&server, &default_steps).read().await.unwrap(),
        Reading::waiting(1)
    );

    // Every source of a server reads in one round trip, one script each.
    let address: RedisAddress = server.address().parse().unwrap();
    let reader = RedisReader::new(&address).unwrap();
    let redis = Redis {
        address,
        reader: reader.clone(),
    };
    let celery = CelerySpec::new(["celery"]).build(Some(&redis)).unwrap();
    let reports = CelerySpec::new(["reports"]).build(Some(&redis)).unwrap();
    let list = RedisListSource::new(reader.clone(), "celery");
    celery.read().await.unwrap();
    server.reset_stats();
    let before = reader.round_trips();
    let (a, b, c) = tokio::join!(celery.read(), reports.read(), list.read());
    assert_eq!(
        (a.unwrap().waiting, b.unwrap().waiting, c.unwrap().waiting),
        (5, 2, 3)
    );
    assert_eq!(reader.round_trips() - before, 1);
    assert_eq!(server.calls("evalsha"), 2);
}

#[tokio::test]
async fn source_celery_errors_name_the_queue_or_the_key_and_never_read_as_zero() {
    let Some(peer) = peer_or_skip("source_celery_errors_name_the_queue_or_the_key") else {
        return;
    };
    let mut server = RedisServer::start();
    App::new(&peer, &server).send(1, 1.0, "celery", None);
    let typo = source(&server, &CelerySpec::new(["celeyr"]));
    assert_eq!(
        typo.read().await.unwrap_err().to_string(),
        format!(
            "reading celery queue \"celeyr\" at {}: no such queue (\"_kombu.binding.celeyr\" is missing, and no task is listed or held for it; check the queue's name, its keyPrefix and the database, or declare it by starting a worker or sending a task)",
            server.address()
        )
    );
    // The queue is declared, its lists empty: an idle queue reads 0, not an error.
    server.cli(&["DEL", "celery"]);
    let celery = source(&server, &CelerySpec::new(["celery"]));
    assert_eq!(celery.read().await.unwrap(), Reading::waiting(0));

    server.cli(&["SET", "celery\x06\x166", "not a list"]);
    let message = celery.read().await.unwrap_err().to_string();
    assert!(
        message.starts_with("reading celery queues celery: ")
            && message.contains("WRONGTYPE")
            && message.contains("celery\\u{6}\\u{16}6"),
        "{message}"
    );
    server.cli(&["DEL", "celery\x06\x166"]);
    server.cli(&["HSET", "unacked", "tag", "not kombu's"]);
    server.cli(&["ZADD", "unacked_index", "1", "tag"]);
    let message = celery.read().await.unwrap_err().to_string();
    assert_eq!(
        message,
        "reading celery queues celery: 1 value(s) of \"unacked\" are not kombu's [message, exchange, routing_key] JSON array"
    );

    server.stop();
    let message = celery.read().await.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "reading celery queues celery: Redis at {} is unreachable: ",
            server.address()
        )),
        "{message}"
    );
}

#[test]
fn source_celery_spec_checks_name_the_field() {
    let field = "spec.source.celery";
    let error = |spec: CelerySpec| spec.check(field).unwrap_err().to_string();
    assert_eq!(
        error(CelerySpec::new(Vec::<String>::new())),
        "spec.source.celery.queues: no queue is named"
    );
    assert_eq!(
        error(CelerySpec::new(["celery", ""])),
        "spec.source.celery.queues[1]: the queue's name is empty"
    );
    assert_eq!(
        error(CelerySpec {
            priority_steps: vec![0, 6, 3],
            ..CelerySpec::new(["celery"])
        }),
        "spec.source.celery.prioritySteps: the steps must be ascending and distinct, as kombu bisects them"
    );
    assert_eq!(
        error(CelerySpec {
            visibility_timeout_seconds: 0,
            ..CelerySpec::new(["celery"])
        }),
        "spec.source.celery.visibilityTimeoutSeconds: must be at least 1 (kombu's default is 3600)"
    );
    CelerySpec::new(["celery"]).check(field).unwrap();
}
