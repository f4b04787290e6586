//! The `dramatiq` source against a real Redis, a real `dramatiq` worker (Dramatiq 2.2.1, its
//! defaults: one process per CPU, 8 threads each, 16 messages prefetched per process) and
//! messages sent with Dramatiq's own client, from the `rq` peer's venv (`tests/peers/rq`,
//! which holds both Python frameworks). Each test reads its own queue; the tests of this binary
//! that run at the same time share one Redis.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ebb_queue::{RedisAddress, RedisReader};
use ebb_sources::dramatiq::{DEFAULT_NAMESPACE, DramatiqSource, DramatiqSpec};
use ebb_sources::{Kind, MetricSource, Reading, Redis, Text};
use ebb_testkit::peers::venv_bin_or_skip;
use ebb_testkit::poll;
use ebb_testkit::process::Process;
use ebb_testkit::redis::RedisServer;

/// The app's heartbeat timeout (`RedisBroker(heartbeat_timeout=…)`), short for a short test.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

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

fn source_on(server: &RedisServer, queue: &str) -> DramatiqSource {
    let address: RedisAddress = server.address().parse().unwrap();
    DramatiqSource::new(
        RedisReader::new(&address).unwrap(),
        DEFAULT_NAMESPACE,
        queue,
        HEARTBEAT_TIMEOUT.as_millis() as u64,
    )
}

/// The peer's folder: the Dramatiq app and its send script.
fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/rq")
}

/// The Dramatiq programs of the `rq` peer, or `None` after a loud skip (a failure under CI).
struct Peer {
    python: PathBuf,
    dramatiq: PathBuf,
}

impl Peer {
    fn find(test: &str) -> Option<Peer> {
        Some(Peer {
            python: venv_bin_or_skip(test, "rq", "python")?,
            dramatiq: venv_bin_or_skip(test, "rq", "dramatiq")?,
        })
    }

    /// The app's environment: its Redis, its queue, its heartbeat timeout.
    fn app(command: &mut Command, server: &RedisServer, queue: &str) {
        command
            .env("EBB_TEST_REDIS_URL", server.url())
            .env("EBB_TEST_QUEUE", queue)
            .env(
                "EBB_TEST_HEARTBEAT_TIMEOUT_MS",
                HEARTBEAT_TIMEOUT.as_millis().to_string(),
            )
            .env("PYTHONPATH", peer_dir());
    }

    /// Sends `count` messages of `seconds` each (after `delay_ms`, if given).
    fn send(&self, server: &RedisServer, queue: &str, count: u32, seconds: u64, delay_ms: &[u64]) {
        let mut command = Command::new(&self.python);
        command
            .arg(peer_dir().join("dramatiq_send.py"))
            .arg(count.to_string())
            .arg(seconds.to_string())
            .args(delay_ms.iter().map(u64::to_string));
        Peer::app(&mut command, server, queue);
        let output = command.output().expect("the peer's python runs");
        assert!(
            output.status.success(),
            "dramatiq_send.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `dramatiq dramatiq_jobs` with Dramatiq's defaults, in its own process group (a SIGKILL
    /// of the group takes every worker process, as a pod's end does).
    fn worker(&self, server: &RedisServer, queue: &str, name: &str) -> Worker {
        let mut command = Command::new(&self.dramatiq);
        command.arg("dramatiq_jobs").arg("--path").arg(peer_dir());
        Peer::app(&mut command, server, queue);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        Worker(Process::spawn(name, &mut command).expect("dramatiq starts"))
    }
}

/// A `dramatiq` main process and its worker processes, killed together (SIGKILL) when dropped.
struct Worker(Process);

impl Worker {
    fn kill(&self) {
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

fn counts(waiting: u64, in_flight: u64, scheduled: u64) -> Reading {
    Reading {
        scheduled: Some(scheduled),
        ..Reading::counts(waiting, in_flight)
    }
}

/// When the message at the head of `queue` was sent (its `message_timestamp`), if any.
fn head_sent_at(server: &RedisServer, queue: &str) -> Option<SystemTime> {
    let id = server.cli(&["LINDEX", &format!("dramatiq:{queue}"), "0"]);
    if id.is_empty() {
        return None;
    }
    let message = server.cli(&["HGET", &format!("dramatiq:{queue}.msgs"), &id]);
    let message: serde_json::Value = serde_json::from_str(&message).unwrap();
    Some(UNIX_EPOCH + Duration::from_millis(message["message_timestamp"].as_u64().unwrap()))
}

/// Reads until the reading is `expected` (its age aside), then checks that its age is the
/// time since the head message was sent, as of the read (none when the list is empty).
async fn reads(
    source: &DramatiqSource,
    server: &RedisServer,
    queue: &str,
    what: &str,
    timeout: Duration,
    expected: Reading,
) {
    let (reading, oldest, before, after) = poll::until(what, timeout, || async {
        let oldest = head_sent_at(server, queue);
        let before = SystemTime::now();
        let reading = source.read().await.map_err(|error| error.to_string())?;
        let after = SystemTime::now();
        let aged_apart = Reading {
            oldest_waiting_age: None,
            ..reading.clone()
        };
        if aged_apart == expected && head_sent_at(server, queue) == oldest {
            return Ok(Some((reading, oldest, before, after)));
        }
        Err(format!("read {reading:?}, expected {expected:?}"))
    })
    .await
    .unwrap();
    match oldest {
        None => assert_eq!(reading.oldest_waiting_age, None, "{what}"),
        Some(sent) => {
            let age = reading
                .oldest_waiting_age
                .unwrap_or_else(|| panic!("{what}: no age in {reading:?}"));
            let (least, most) = (
                before.duration_since(sent).unwrap(),
                after.duration_since(sent).unwrap(),
            );
            // message_timestamp is in whole ms.
            assert!(
                least.saturating_sub(Duration::from_millis(1)) <= age && age <= most,
                "{what}: age {age:?} outside [{least:?}, {most:?}]"
            );
        }
    }
}

/// 40 messages, one worker with the defaults (2 processes × 8 threads on this 2-CPU machine,
/// 16 prefetched per process): 8 wait and 32 are held, running and prefetched alike. After a
/// SIGKILL the 32 stay held until the workers' heartbeats are older than the timeout, then
/// count as waiting; a new worker's maintenance puts them back and runs them all.
#[tokio::test]
async fn source_dramatiq_counts_prefetched_messages_in_flight_and_a_dead_workers_as_waiting() {
    let test = "source_dramatiq_counts_prefetched_messages_in_flight_and_a_dead_workers_as_waiting";
    let Some(peer) = Peer::find(test) else { return };
    let server = shared_redis();
    let queue = "renders";
    let source = source_on(&server, queue);
    let within = Duration::from_secs(30);
    let processes = std::thread::available_parallelism().unwrap().get() as u64;
    let held = processes * 16;
    let sent = held + 8;

    peer.send(&server, queue, sent as u32, 6, &[]);
    reads(
        &source,
        &server,
        queue,
        "no worker yet",
        within,
        counts(sent, 0, 0),
    )
    .await;

    let worker = peer.worker(&server, queue, "dramatiq-0");
    reads(
        &source,
        &server,
        queue,
        "the workers hold their prefetch",
        within,
        counts(8, held, 0),
    )
    .await;

    worker.kill();
    let killed = std::time::Instant::now();
    assert_eq!(
        source.read().await.unwrap().in_flight,
        Some(held),
        "right after the SIGKILL: the heartbeats are still fresh"
    );
    reads(
        &source,
        &server,
        queue,
        "the dead workers' messages count as waiting",
        HEARTBEAT_TIMEOUT + within,
        counts(sent, 0, 0),
    )
    .await;
    assert!(
        killed.elapsed() + Duration::from_secs(2) >= HEARTBEAT_TIMEOUT,
        "held until the heartbeat timeout: {:?}",
        killed.elapsed()
    );

    let _next = peer.worker(&server, queue, "dramatiq-1");
    reads(
        &source,
        &server,
        queue,
        "the new worker ran every message",
        Duration::from_secs(90),
        counts(0, 0, 0),
    )
    .await;
    assert_eq!(
        server.cli(&["HLEN", &format!("dramatiq:{queue}.msgs")]),
        "0",
        "every message acknowledged, none lost"
    );
}

#[tokio::test]
async fn source_dramatiq_keeps_delayed_messages_apart_as_scheduled() {
    let test = "source_dramatiq_keeps_delayed_messages_apart_as_scheduled";
    let Some(peer) = Peer::find(test) else { return };
    let server = shared_redis();
    peer.send(&server, "later", 3, 1, &[600_000]);
    peer.send(&server, "later", 2, 1, &[]);
    reads(
        &source_on(&server, "later"),
        &server,
        "later",
        "two now, three later",
        Duration::from_secs(5),
        counts(2, 0, 3),
    )
    .await;
}

#[tokio::test]
async fn source_dramatiq_reads_each_queue_with_one_command_in_one_round_trip() {
    // Its own server: the command counts are its alone.
    let server = RedisServer::start();
    let address: RedisAddress = server.address().parse().unwrap();
    let reader = RedisReader::new(&address).unwrap();
    server.cli(&["RPUSH", "dramatiq:mail", "a", "b"]);
    let (mail, sms) = (
        DramatiqSource::new(reader.clone(), DEFAULT_NAMESPACE, "mail", 60_000),
        DramatiqSource::new(reader.clone(), DEFAULT_NAMESPACE, "sms", 60_000),
    );
    // The first read sends the script in full: count the next.
    let _ = tokio::join!(mail.read(), sms.read());
    server.reset_stats();
    let before = reader.round_trips();
    let (mail, sms) = tokio::join!(mail.read(), sms.read());
    assert_eq!(reader.round_trips() - before, 1, "one pipeline for both");
    assert_eq!(server.calls("evalsha"), 2, "one script per queue");
    assert_eq!(server.calls("eval"), 0);
    assert_eq!((mail.unwrap().waiting, sms.unwrap().waiting), (2, 0));
}

#[tokio::test]
async fn source_dramatiq_reads_a_wrong_key_as_an_error_naming_it() {
    let server = shared_redis();
    server.cli(&["SET", "dramatiq:typo", "x"]);
    let message = source_on(&server, "typo")
        .read()
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "reading dramatiq queue dramatiq:typo: Redis at {}: WRONGTYPE: key \"dramatiq:typo\" holds a string, not a list (delete or rename it, or choose another queue name)",
            server.address()
        )
    );
}

#[tokio::test]
async fn source_dramatiq_spec_is_checked_and_refuses_a_redis_cluster() {
    let spec = |namespace: &str, heartbeat_timeout_ms| DramatiqSpec {
        queue: Text::Fixed("default".to_owned()),
        namespace: namespace.to_owned(),
        heartbeat_timeout_ms,
    };
    let field = "spec.source.dramatiq";
    assert_eq!(
        spec("", 60_000).check(field).unwrap_err().to_string(),
        "spec.source.dramatiq.namespace: the namespace is empty (Dramatiq's default is \"dramatiq\")"
    );
    assert!(
        spec("dramatiq", 0)
            .check(field)
            .unwrap_err()
            .to_string()
            .starts_with("spec.source.dramatiq.heartbeatTimeoutMs: ")
    );
    let address: RedisAddress = "redis+cluster://127.0.0.1:7000".parse().unwrap();
    let redis = Redis {
        reader: RedisReader::new(&address).unwrap(),
        address,
    };
    let Err(error) = spec("dramatiq", 60_000).build(Some(&redis)) else {
        panic!("built on a cluster")
    };
    assert!(
        error.to_string().starts_with("dramatiq.redis: ")
            && error.to_string().contains("different hash slots"),
        "{error}"
    );
}
