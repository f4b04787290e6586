//! The `bullmq` source against a real Redis, a real BullMQ Worker (BullMQ 6.7.6, default
//! concurrency 1, jobs that sleep a few seconds) and jobs added with BullMQ's own Queue client,
//! from the pinned Node peer (`tests/peers/bullmq`). Each test reads its own queue; the tests
//! of this binary that run at the same time share one Redis.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ebb_queue::{RedisAddress, RedisReader};
use ebb_sources::bullmq::{BullmqSource, BullmqSpec, DEFAULT_PREFIX};
use ebb_sources::{Kind, Lease, MetricSource, Reading, Redis, Text};
use ebb_testkit::peers::node_modules_or_skip;
use ebb_testkit::poll;
use ebb_testkit::process::Process;
use ebb_testkit::redis::RedisServer;

/// The Worker's `lockDuration` and `stalledInterval` (30 s each by default), short for a short
/// test of a SIGKILL.
const LOCK: Duration = Duration::from_secs(5);

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

fn source_on(server: &RedisServer, prefix: &str, queue: &str) -> BullmqSource {
    let address: RedisAddress = server.address().parse().unwrap();
    BullmqSource::new(RedisReader::new(&address).unwrap(), prefix, queue)
}

/// The peer's folder: its Queue client and Worker scripts.
fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/bullmq")
}

/// The BullMQ peer on one queue, or `None` after a loud skip (a failure under CI).
struct Peer<'s> {
    node_modules: PathBuf,
    server: &'s RedisServer,
    prefix: &'static str,
    queue: &'static str,
}

impl<'s> Peer<'s> {
    fn find(
        test: &str,
        server: &'s RedisServer,
        prefix: &'static str,
        queue: &'static str,
    ) -> Option<Peer<'s>> {
        Some(Peer {
            node_modules: node_modules_or_skip(test, "bullmq")?,
            server,
            prefix,
            queue,
        })
    }

    fn node(&self, script: &str) -> Command {
        let mut command = Command::new("node");
        command
            .arg(peer_dir().join(script))
            .env("NODE_PATH", &self.node_modules)
            .env("EBB_TEST_REDIS_URL", self.server.url())
            .env("EBB_TEST_QUEUE", self.queue)
            .env("EBB_TEST_PREFIX", self.prefix);
        command
    }

    /// `node queue.js <args>` (add, pause, resume), which must succeed.
    fn queue(&self, args: &[&str]) {
        let output = self
            .node("queue.js")
            .args(args)
            .output()
            .expect("node runs");
        assert!(
            output.status.success(),
            "queue.js {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Adds `count` jobs of `seconds` each, with a priority and a delay (0: none).
    fn add(&self, count: u32, seconds: u32, priority: u32, delay_ms: u64) {
        self.queue(&[
            "add",
            &count.to_string(),
            &seconds.to_string(),
            &priority.to_string(),
            &delay_ms.to_string(),
        ]);
    }

    /// A Worker named `name`, once it is connected.
    fn worker(&self, name: &str) -> Process {
        let mut command = self.node("worker.js");
        command
            .env("EBB_TEST_WORKER_NAME", name)
            .env("EBB_TEST_LOCK_MS", LOCK.as_millis().to_string());
        let worker = Process::spawn(name, &mut command).expect("node starts");
        worker
            .wait_for_log("ready", Duration::from_secs(60))
            .expect("the Worker connects");
        worker
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{}:{suffix}", self.prefix, self.queue)
    }

    /// When the oldest waiting job was added (`timestamp` + `delay`, epoch ms), of the last
    /// of `wait` and the first of `prioritized`, as the source reads it.
    fn oldest_added(&self) -> Option<SystemTime> {
        let head = self.server.cli(&["LINDEX", &self.key("wait"), "-1"]);
        let next = self
            .server
            .cli(&["ZRANGE", &self.key("prioritized"), "0", "0"]);
        [head, next]
            .iter()
            .filter(|id| !id.is_empty())
            .map(|id| {
                let field = |name| {
                    let value = self.server.cli(&["HGET", &self.key(id), name]);
                    value.parse::<u64>().unwrap_or(0)
                };
                UNIX_EPOCH + Duration::from_millis(field("timestamp") + field("delay"))
            })
            .min()
    }

    /// When the job of `active` at `index` started (`processedOn`).
    fn processed_on(&self, index: &str) -> SystemTime {
        let id = self.server.cli(&["LINDEX", &self.key("active"), index]);
        let ms = self.server.cli(&["HGET", &self.key(&id), "processedOn"]);
        UNIX_EPOCH + Duration::from_millis(ms.parse().unwrap())
    }
}

fn counts(waiting: u64, in_flight: u64, scheduled: u64, paused: u64) -> Reading {
    Reading {
        scheduled: Some(scheduled),
        paused: Some(paused),
        ..Reading::counts(waiting, in_flight)
    }
}

/// `reading` without its age and its leases' dates (checked apart).
fn undated(reading: &Reading) -> Reading {
    Reading {
        oldest_waiting_age: None,
        leases: reading
            .leases
            .iter()
            .map(|lease| Lease {
                since: None,
                ..lease.clone()
            })
            .collect(),
        ..reading.clone()
    }
}

/// Reads until the reading is `expected` (dates aside), then checks that its age is the time
/// since the oldest waiting job was added, as of the read (none when nothing waits or the
/// queue is paused).
async fn reads(
    source: &BullmqSource,
    peer: &Peer<'_>,
    what: &str,
    timeout: Duration,
    expected: Reading,
) -> Reading {
    let (reading, oldest, before, after) = poll::until(what, timeout, || async {
        let oldest = peer.oldest_added();
        let before = SystemTime::now();
        let reading = source.read().await.map_err(|error| error.to_string())?;
        let after = SystemTime::now();
        if undated(&reading) == expected && peer.oldest_added() == oldest {
            return Ok(Some((reading, oldest, before, after)));
        }
        Err(format!("read {reading:?}, expected {expected:?}"))
    })
    .await
    .unwrap();
    match oldest.filter(|_| expected.waiting > 0) {
        None => assert_eq!(reading.oldest_waiting_age, None, "{what}"),
        Some(added) => {
            let age = reading
                .oldest_waiting_age
                .unwrap_or_else(|| panic!("{what}: no age in {reading:?}"));
            let (least, most) = (
                before.duration_since(added).unwrap(),
                after.duration_since(added).unwrap(),
            );
            // `timestamp` is in whole ms.
            assert!(
                least.saturating_sub(Duration::from_millis(1)) <= age && age <= most,
                "{what}: age {age:?} outside [{least:?}, {most:?}]"
            );
        }
    }
    reading
}

fn leased(consumer: &str, leased: u64) -> Vec<Lease> {
    vec![Lease {
        consumer: consumer.to_owned(),
        leased,
        since: None,
    }]
}

/// 3 plain jobs, 2 prioritized, 1 delayed; one Worker (concurrency 1) takes one job at a time
/// and names itself in it. After its SIGKILL its job stays in `active` with its lock until the
/// lock expires (`lockDuration`), then reads as waiting; the next Worker's stalled check moves
/// it back to `wait` and every job runs.
#[tokio::test]
async fn source_bullmq_counts_prioritized_as_waiting_active_in_flight_and_a_killed_workers_job_as_waiting()
 {
    let test = "source_bullmq_counts_prioritized_as_waiting_active_in_flight_and_a_killed_workers_job_as_waiting";
    let server = shared_redis();
    let Some(peer) = Peer::find(test, &server, DEFAULT_PREFIX, "renders") else {
        return;
    };
    let source = source_on(&server, DEFAULT_PREFIX, "renders");
    let within = Duration::from_secs(30);

    peer.add(3, 3, 0, 0);
    peer.add(2, 3, 1, 0);
    peer.add(1, 3, 0, 600_000);
    reads(&source, &peer, "no Worker yet", within, counts(5, 0, 1, 0)).await;

    let worker = peer.worker("bullmq-0");
    let reading = reads(
        &source,
        &peer,
        "the Worker holds one job",
        within,
        Reading {
            leases: leased("bullmq-0", 1),
            ..counts(4, 1, 1, 0)
        },
    )
    .await;
    assert_eq!(reading.leases[0].since, Some(peer.processed_on("0")));

    worker.kill();
    let killed = Instant::now();
    assert_eq!(
        source.read().await.unwrap().in_flight,
        Some(1),
        "right after the SIGKILL: the lock is still there"
    );
    reads(
        &source,
        &peer,
        "the dead Worker's job is stalled: waiting",
        LOCK + within,
        counts(5, 0, 1, 0),
    )
    .await;
    assert!(
        killed.elapsed() <= LOCK + Duration::from_secs(2),
        "held until the lock expired, at most lockDuration: {:?}",
        killed.elapsed()
    );

    let _next = peer.worker("bullmq-1");
    reads(
        &source,
        &peer,
        "the next Worker ran every job",
        Duration::from_secs(90),
        counts(0, 0, 1, 0),
    )
    .await;
    assert_eq!(
        server.cli(&["ZCARD", &peer.key("completed")]),
        "5",
        "every job completed, none lost"
    );
}

/// A pause is a flag of the meta hash; the jobs stay in `wait`: read as paused, not waiting.
/// Under another prefix.
#[tokio::test]
async fn source_bullmq_reads_a_paused_queue_as_paused_not_waiting() {
    let test = "source_bullmq_reads_a_paused_queue_as_paused_not_waiting";
    let server = shared_redis();
    let Some(peer) = Peer::find(test, &server, "shop", "mail") else {
        return;
    };
    let source = source_on(&server, "shop", "mail");
    let within = Duration::from_secs(10);
    peer.add(2, 1, 0, 0);
    peer.add(1, 1, 3, 0);
    reads(&source, &peer, "three waiting", within, counts(3, 0, 0, 0)).await;
    peer.queue(&["pause"]);
    reads(&source, &peer, "paused", within, counts(0, 0, 0, 3)).await;
    peer.queue(&["resume"]);
    reads(&source, &peer, "resumed", within, counts(3, 0, 0, 0)).await;
}

#[tokio::test]
async fn source_bullmq_reads_each_queue_with_one_command_in_one_round_trip() {
    // Its own server: the command counts are its alone.
    let server = RedisServer::start();
    let address: RedisAddress = server.address().parse().unwrap();
    let reader = RedisReader::new(&address).unwrap();
    server.cli(&["RPUSH", "bull:mail:wait", "2", "1"]);
    server.cli(&["HSET", "bull:sms:meta", "version", "bullmq:6.7.6"]);
    let (mail, sms) = (
        BullmqSource::new(reader.clone(), DEFAULT_PREFIX, "mail"),
        BullmqSource::new(reader.clone(), DEFAULT_PREFIX, "sms"),
    );
    // The first read sends the script in full: count the next.
    let _ = tokio::join!(mail.read(), sms.read());
    server.reset_stats();
    let before = reader.round_trips();
    let (mail, sms) = tokio::join!(mail.read(), sms.read());
    assert_eq!(reader.round_trips() - before, 1, "one pipeline for both");
    assert_eq!(server.calls("evalsha"), 2, "one script per queue");
    assert_eq!(server.calls("eval"), 0);
    let (mail, sms) = (mail.unwrap(), sms.unwrap());
    assert_eq!((mail.waiting, sms.waiting), (2, 0));
    // The jobs' hashes are gone: no age rather than a made-up one.
    assert_eq!(mail.oldest_waiting_age, None);
}

#[tokio::test]
async fn source_bullmq_reads_a_wrong_key_or_an_unknown_queue_as_an_error_naming_it() {
    let server = shared_redis();
    server.cli(&["SET", "bull:typo:active", "x"]);
    let message = source_on(&server, DEFAULT_PREFIX, "typo")
        .read()
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "reading bullmq queue bull:typo: Redis at {}: WRONGTYPE: key \"bull:typo:active\" holds a string, not a list (delete or rename it, or choose another queue name)",
            server.address()
        )
    );
    let message = source_on(&server, DEFAULT_PREFIX, "nothing")
        .read()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(&format!(
            "reading bullmq queue \"nothing\" at {}: no such queue (\"bull:nothing:meta\" is missing",
            server.address()
        )),
        "{message}"
    );
}

#[tokio::test]
async fn source_bullmq_spec_is_checked_and_refuses_a_redis_cluster() {
    let spec = |prefix: &str| BullmqSpec {
        queue: Text::Fixed("mail".to_owned()),
        prefix: prefix.to_owned(),
    };
    assert_eq!(
        spec("")
            .check("spec.source.bullmq")
            .unwrap_err()
            .to_string(),
        "spec.source.bullmq.prefix: the prefix is empty (BullMQ's default is \"bull\")"
    );
    let address: RedisAddress = "redis+cluster://127.0.0.1:7000".parse().unwrap();
    let redis = Redis {
        reader: RedisReader::new(&address).unwrap(),
        address,
    };
    let Err(error) = spec("bull").build(Some(&redis)) else {
        panic!("built on a cluster")
    };
    assert!(
        error.to_string().starts_with("bullmq.redis: ")
            && error.to_string().contains("different hash slots"),
        "{error}"
    );
}
