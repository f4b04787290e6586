//! The `sidekiq` source against a real Redis, a real Sidekiq 6.4.1 process from Debian
//! (`sidekiq -r worker.rb`, its default concurrency of 10) and jobs pushed with Sidekiq's own
//! client (`Sidekiq::Client.push`, `at` for scheduled jobs), from `tests/peers/sidekiq`.
//! Each test reads its own queue; the tests of this binary that run at the same time share
//! one Redis.
//!
//! Every expected figure comes from Sidekiq's own keys, read with `redis-cli` beside the
//! source: the `enqueued_at` of the oldest job, the `run_at` of the work a process runs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ebb_queue::{RedisAddress, RedisReader};
use ebb_sources::sidekiq::{DEFAULT_HEARTBEAT_TIMEOUT_SECONDS, SidekiqSource, SidekiqSpec};
use ebb_sources::{Kind, Lease, MetricSource, Reading, Redis};
use ebb_testkit::peers::system_program_or_skip;
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

fn source_on(server: &RedisServer, queue: &str, heartbeat_timeout: u64) -> SidekiqSource {
    let address: RedisAddress = server.address().parse().unwrap();
    SidekiqSource::new(
        RedisReader::new(&address).unwrap(),
        "",
        [queue],
        heartbeat_timeout,
    )
}

/// The peer's folder: its job class and its push script.
fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/sidekiq")
}

/// Debian's `sidekiq`, or `None` after a loud skip (a failure under CI).
struct Peer {
    sidekiq: PathBuf,
}

impl Peer {
    fn find(test: &str) -> Option<Peer> {
        Some(Peer {
            sidekiq: system_program_or_skip(test, "/usr/bin/sidekiq", "ruby-sidekiq")?,
        })
    }

    /// Pushes one `SlowJob` per duration with Sidekiq's client (`at` `delay` seconds ahead
    /// when given); their jids.
    fn push(&self, server: &RedisServer, queue: &str, delay: Option<u64>, seconds: &[u64]) {
        let mut command = Command::new("ruby");
        command
            .env("REDIS_URL", server.url())
            .arg(peer_dir().join("push.rb"))
            .arg(queue)
            .args(delay.map(|delay| format!("in:{delay}")))
            .args(seconds.iter().map(u64::to_string));
        let output = command.output().expect("ruby runs");
        assert!(
            output.status.success(),
            "push.rb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let jids = String::from_utf8(output.stdout).unwrap();
        assert_eq!(jids.lines().count(), seconds.len(), "{jids}");
    }

    /// `sidekiq -r worker.rb -q <queue>` with Sidekiq's defaults, its hostname (and so its
    /// identity's first field) `name`, as `DYNO` sets it from a pod's name.
    fn process(&self, server: &RedisServer, queue: &str, name: &str) -> Process {
        let mut command = Command::new(&self.sidekiq);
        command
            .env("REDIS_URL", server.url())
            .env("DYNO", name)
            .arg("-r")
            .arg(peer_dir().join("worker.rb"))
            .args(["-q", queue]);
        Process::spawn(name, &mut command).expect("sidekiq starts")
    }
}

/// The identity of the one process in `processes` whose hostname is `name`, once it beat.
fn identity(server: &RedisServer, name: &str) -> Option<String> {
    server
        .cli(&["SMEMBERS", "processes"])
        .lines()
        .find(|identity| identity.starts_with(&format!("{name}:")))
        .map(str::to_owned)
}

/// The `enqueued_at` of the oldest job of `queue` (the list's tail), float epoch seconds.
fn oldest_enqueued(server: &RedisServer, queue: &str) -> Option<SystemTime> {
    let job = server.cli(&["LINDEX", &format!("queue:{queue}"), "-1"]);
    let job: serde_json::Value = serde_json::from_str(&job).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs_f64(job["enqueued_at"].as_f64()?))
}

/// What `identity`'s work hash (6.4's `:workers`) holds: its entries and their oldest
/// `run_at`.
fn work(server: &RedisServer, identity: &str) -> (u64, Option<SystemTime>) {
    let fields = server.cli(&["HVALS", &format!("{identity}:workers")]);
    let run_at: Vec<u64> = fields
        .lines()
        .filter_map(|entry| serde_json::from_str::<serde_json::Value>(entry).ok())
        .filter_map(|entry| entry["run_at"].as_u64())
        .collect();
    let oldest = run_at
        .iter()
        .min()
        .map(|s| UNIX_EPOCH + Duration::from_secs(*s));
    (run_at.len() as u64, oldest)
}

fn reading(waiting: u64, in_flight: u64, scheduled: u64, leases: Vec<Lease>) -> Reading {
    Reading {
        scheduled: Some(scheduled),
        leases,
        ..Reading::counts(waiting, in_flight)
    }
}

/// Reads until the reading is `expected` (its age aside), then checks that its age is the
/// time since `oldest` was enqueued (none when `oldest` is none), as of the read.
async fn reads(
    source: &SidekiqSource,
    what: &str,
    timeout: Duration,
    expected: impl Fn() -> Option<(Reading, Option<SystemTime>)>,
) {
    let (reading, oldest, before, after) = poll::until(what, timeout, || async {
        let before = SystemTime::now();
        let reading = source.read().await.map_err(|error| error.to_string())?;
        let after = SystemTime::now();
        let aged_apart = Reading {
            oldest_waiting_age: None,
            ..reading.clone()
        };
        match expected() {
            Some((expected, oldest)) if expected == aged_apart => {
                Ok(Some((reading, oldest, before, after)))
            }
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
            // The script's clock is Redis's, the same machine's: a microsecond apart at most.
            let least = before.duration_since(enqueued).unwrap() - Duration::from_millis(1);
            let most = after.duration_since(enqueued).unwrap();
            assert!(
                least <= age && age <= most,
                "{what}: age {age:?} outside [{least:?}, {most:?}]"
            );
        }
    }
}

#[tokio::test]
async fn source_sidekiq_counts_a_real_processes_jobs_before_while_and_after_it_works() {
    let test = "source_sidekiq_counts_a_real_processes_jobs_before_while_and_after_it_works";
    let Some(peer) = Peer::find(test) else { return };
    let server = shared_redis();
    let source = source_on(&server, "reports", DEFAULT_HEARTBEAT_TIMEOUT_SECONDS);
    let within = Duration::from_secs(40);
    // Two more than the default concurrency of 10, and one for later.
    peer.push(&server, "reports", None, &[10; 12]);
    peer.push(&server, "reports", Some(600), &[1]);
    reads(&source, "12 jobs waiting, no process", within, || {
        Some((
            reading(12, 0, 1, vec![]),
            oldest_enqueued(&server, "reports"),
        ))
    })
    .await;

    let _process = peer.process(&server, "reports", "reports-0");
    let busy = |count: u64, waiting: u64| {
        let identity = identity(&server, "reports-0")?;
        let (held, since) = work(&server, &identity);
        let oldest = oldest_enqueued(&server, "reports");
        (held == count && oldest.is_some() == (waiting > 0)).then(|| {
            let lease = Lease {
                consumer: "reports-0".to_owned(),
                leased: count,
                since,
            };
            (reading(waiting, count, 1, vec![lease]), oldest)
        })
    };
    reads(&source, "ten jobs running, two waiting", within, || {
        busy(10, 2)
    })
    .await;
    reads(&source, "the last two running", within, || busy(2, 0)).await;
    reads(&source, "all done, the process idle", within, || {
        identity(&server, "reports-0")?;
        Some((reading(0, 0, 1, vec![Lease::idle("reports-0")]), None))
    })
    .await;
    assert_eq!(
        server.cli(&["GET", "stat:processed"]),
        "12",
        "Sidekiq ran all"
    );
    assert!(
        identity(&server, "reports-0")
            .unwrap()
            .starts_with("reports-0:"),
        "the identity's first field is DYNO's name"
    );
}

/// A SIGKILLed process leaves its heartbeat and its work entry for 60 s, and its member of
/// `processes` longer: its job counts in flight until its heartbeat is older than the
/// timeout, then nowhere, as Sidekiq 6.4's basic fetch lost it (the job is in no key).
#[tokio::test]
async fn source_sidekiq_drops_a_sigkilled_process_once_its_heartbeat_is_stale() {
    let test = "source_sidekiq_drops_a_sigkilled_process_once_its_heartbeat_is_stale";
    let Some(peer) = Peer::find(test) else { return };
    let server = shared_redis();
    let strict = source_on(&server, "crashes", 10);
    let lenient = source_on(&server, "crashes", DEFAULT_HEARTBEAT_TIMEOUT_SECONDS);
    let within = Duration::from_secs(40);
    peer.push(&server, "crashes", None, &[600]);
    let process = peer.process(&server, "crashes", "crashes-0");
    let running = || {
        let identity = identity(&server, "crashes-0")?;
        let (held, since) = work(&server, &identity);
        (held == 1).then(|| {
            let lease = Lease {
                consumer: "crashes-0".to_owned(),
                leased: 1,
                since,
            };
            (reading(0, 1, 0, vec![lease]), None)
        })
    };
    reads(&strict, "the job running", within, running).await;

    process.kill();
    let identity = identity(&server, "crashes-0").unwrap();
    let (expected, _) = running().unwrap();
    assert_eq!(
        strict.read().await.unwrap(),
        expected,
        "right after the SIGKILL its heartbeat is fresh"
    );
    let beat: f64 = server.cli(&["HGET", &identity, "beat"]).parse().unwrap();
    let stale_at = UNIX_EPOCH + Duration::from_secs_f64(beat + 10.0);
    reads(&strict, "its heartbeat 10 s old", within, || {
        Some((reading(0, 0, 0, vec![]), None))
    })
    .await;
    assert!(
        SystemTime::now() >= stale_at,
        "counted until then, not before"
    );
    assert_eq!(
        lenient.read().await.unwrap(),
        expected,
        "with Sidekiq's 60 s the same process still counts"
    );
    assert_eq!(server.cli(&["HLEN", &format!("{identity}:workers")]), "1");
    assert_eq!(
        server.cli(&["EXISTS", &identity]),
        "1",
        "its heartbeat hash"
    );
    assert_eq!(
        server.cli(&["SISMEMBER", "processes", &identity]),
        "1",
        "still a member until Sidekiq's cleanup"
    );
    assert_eq!(server.cli(&["EXISTS", "queue:crashes"]), "0");
    for set in ["retry", "schedule"] {
        assert!(
            !server
                .cli(&["ZRANGE", set, "0", "-1"])
                .contains(r#""queue":"crashes""#),
            "Sidekiq 6.4's basic fetch lost the job: it is not in {set}"
        );
    }
}

/// Sidekiq 8's layout, written as its source (8.1.7) writes it, since no Sidekiq 8 installs
/// here: `enqueued_at` in integer epoch milliseconds, the work hash `<identity>:work`.
#[tokio::test]
async fn source_sidekiq_reads_sidekiq_8s_work_hash_and_millisecond_enqueue_times() {
    let server = shared_redis();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let enqueued_ms = now.as_millis() as u64 - 90_000;
    let job = format!(
        r#"{{"retry":true,"queue":"eight","class":"SlowJob","args":[1],"jid":"a1","created_at":{enqueued_ms},"enqueued_at":{enqueued_ms}}}"#
    );
    server.cli(&["LPUSH", "queue:eight", &job]);
    let identity = "eight-0:12:abcdef";
    server.cli(&["SADD", "processes", identity]);
    let beat = format!("{:.4}", now.as_secs_f64());
    let info = r#"{"hostname":"eight-0","queues":["eight"],"concurrency":5}"#;
    server.cli(&["HSET", identity, "beat", &beat, "info", info, "busy", "1"]);
    // A second, idle process of the same pod (sidekiqswarm): one lease for the pod.
    server.cli(&["SADD", "processes", "eight-0:13:fedcba"]);
    server.cli(&["HSET", "eight-0:13:fedcba", "beat", &beat, "info", info]);
    let run_at = now.as_secs() - 30;
    let entry = serde_json::json!({"queue": "eight", "payload": job, "run_at": run_at});
    server.cli(&[
        "HSET",
        &format!("{identity}:work"),
        "t1",
        &entry.to_string(),
    ]);
    let source = source_on(&server, "eight", DEFAULT_HEARTBEAT_TIMEOUT_SECONDS);
    let read = source.read().await.unwrap();
    let age = read.oldest_waiting_age.unwrap();
    assert!(
        age >= Duration::from_secs(90) && age < Duration::from_secs(95),
        "{age:?}: milliseconds read as milliseconds"
    );
    // The lease names the host, DYNO's pod name, as scale-in matches pods.
    let lease = Lease {
        consumer: "eight-0".to_owned(),
        leased: 1,
        since: Some(UNIX_EPOCH + Duration::from_secs(run_at)),
    };
    assert_eq!(
        Reading {
            oldest_waiting_age: None,
            ..read
        },
        reading(1, 1, 0, vec![lease])
    );
}

#[tokio::test]
async fn source_sidekiq_reads_an_unknown_queue_and_a_wrong_key_as_errors_naming_them() {
    let server = shared_redis();
    let message = source_on(&server, "nobody", 60)
        .read()
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "reading sidekiq queue \"nobody\" at {}: no such queue (\"queue:nobody\" is empty, \"nobody\" is not in \"queues\" and no live process serves it; check the queue's name, the namespace and the database, or push a job to it or start a process on it)",
            server.address()
        )
    );
    server.cli(&["SET", "queue:typo", "x"]);
    let message = source_on(&server, "typo", 60)
        .read()
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "reading sidekiq queues typo: Redis at {}: WRONGTYPE: key \"queue:typo\" holds a string, not a list (delete or rename it, or choose another queue name)",
            server.address()
        )
    );
}

#[tokio::test]
async fn source_sidekiq_reads_each_source_with_one_command_in_one_round_trip() {
    // Its own server: the command counts are its alone.
    let server = RedisServer::start();
    let address: RedisAddress = server.address().parse().unwrap();
    let reader = RedisReader::new(&address).unwrap();
    for (queue, count) in [("mail", 3), ("sms", 1)] {
        for _ in 0..count {
            server.cli(&["LPUSH", &format!("queue:{queue}"), r#"{"queue":"x"}"#]);
        }
    }
    let (mail, sms) = (
        SidekiqSource::new(reader.clone(), "", ["mail"], 60),
        SidekiqSource::new(reader.clone(), "", ["sms"], 60),
    );
    // The first read sends the script in full: count the next.
    let _ = tokio::join!(mail.read(), sms.read());
    server.reset_stats();
    let before = reader.round_trips();
    let (mail, sms) = tokio::join!(mail.read(), sms.read());
    assert_eq!(reader.round_trips() - before, 1, "one pipeline for both");
    assert_eq!(server.calls("evalsha"), 2, "one script per source");
    assert_eq!(server.calls("eval"), 0);
    assert_eq!(
        (mail.unwrap().waiting, sms.unwrap().waiting),
        (3, 1),
        "each its own queue"
    );
}

#[tokio::test]
async fn source_sidekiq_reads_a_namespace_and_refuses_a_redis_cluster() {
    let server = shared_redis();
    server.cli(&["LPUSH", "app1:queue:spaced", r#"{"queue":"spaced"}"#]);
    let address: RedisAddress = server.address().parse().unwrap();
    let spaced = SidekiqSource::new(RedisReader::new(&address).unwrap(), "app1", ["spaced"], 60);
    assert_eq!(spaced.read().await.unwrap(), reading(1, 0, 0, vec![]));

    let address: RedisAddress = "redis+cluster://127.0.0.1:7000".parse().unwrap();
    let redis = Redis {
        reader: RedisReader::new(&address).unwrap(),
        address,
    };
    let Err(error) = SidekiqSpec::new(["default"]).build(Some(&redis)) else {
        panic!("built on a cluster")
    };
    assert!(
        error.to_string().starts_with("sidekiq.redis: ")
            && error.to_string().contains("different hash slots"),
        "{error}"
    );
}
