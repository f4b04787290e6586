//! `RedisStreamSource` on a real redis-server (7 or later): a consumer group's lag as waiting,
//! its pending entries as in flight, through reads, acks, deletions and typos.

use ebb_queue::{RedisAddress, RedisReader};
use ebb_sources::redis_stream::RedisStreamSource;
use std::time::{Duration, SystemTime};

use ebb_sources::{Lease, MetricSource, Reading};
use ebb_testkit::redis::RedisServer;

fn source_on(server: &RedisServer, group: &str) -> RedisStreamSource {
    let address: RedisAddress = server.address().parse().unwrap();
    RedisStreamSource::new(RedisReader::new(&address).unwrap(), "jobs", group)
}

fn reading(waiting: u64, in_flight: u64) -> Reading {
    Reading {
        waiting,
        in_flight: Some(in_flight),
        completed_total: None,
        ..Reading::default()
    }
}

/// `reading` without its leases (their own tests are below).
fn counts(reading: Reading) -> Reading {
    Reading {
        leases: Vec::new(),
        ..reading
    }
}

/// Adds `n` entries to `jobs`, returning their ids.
fn add(server: &RedisServer, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| server.cli(&["XADD", "jobs", "*", "job", &i.to_string()]))
        .collect()
}

/// Delivers `count` entries to consumer `worker`, returning their ids.
fn deliver(server: &RedisServer, count: usize) -> Vec<String> {
    deliver_to(server, "worker", count)
}

/// Delivers `count` entries to `consumer`, returning their ids.
fn deliver_to(server: &RedisServer, consumer: &str, count: usize) -> Vec<String> {
    let output = server.cli(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        consumer,
        "COUNT",
        &count.to_string(),
        "STREAMS",
        "jobs",
        ">",
    ]);
    // --raw prints the stream's name, then per entry its id and its field/value lines.
    let ids: Vec<String> = output
        .lines()
        .filter(|line| {
            line.contains('-') && line.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), count, "{output}");
    ids
}

#[tokio::test]
async fn lag_is_waiting_and_pending_is_in_flight() {
    let server = RedisServer::start();
    let source = source_on(&server, "workers");
    assert_eq!(
        source.describe(),
        format!("redis {} stream jobs group workers", server.address())
    );
    add(&server, 10);
    server.cli(&["XGROUP", "CREATE", "jobs", "workers", "0"]);
    assert_eq!(counts(source.read().await.unwrap()), reading(10, 0));

    let delivered = deliver(&server, 4);
    assert_eq!(counts(source.read().await.unwrap()), reading(6, 4));

    server.cli(&["XACK", "jobs", "workers", &delivered[0], &delivered[1]]);
    assert_eq!(counts(source.read().await.unwrap()), reading(6, 2));

    add(&server, 3);
    assert_eq!(counts(source.read().await.unwrap()), reading(9, 2));
}

#[tokio::test]
async fn a_missing_stream_holds_no_work() {
    let server = RedisServer::start();
    assert_eq!(
        source_on(&server, "workers").read().await.unwrap(),
        reading(0, 0)
    );
}

#[tokio::test]
async fn a_missing_group_is_an_error_naming_it_and_the_stream() {
    let server = RedisServer::start();
    add(&server, 3);
    server.cli(&["XGROUP", "CREATE", "jobs", "workers", "0"]);
    let message = source_on(&server, "wokers")
        .read()
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "reading stream \"jobs\" at {}: it has no consumer group \"wokers\" (check the group's name, or create it with XGROUP CREATE)",
            server.address()
        )
    );
}

#[tokio::test]
async fn undelivered_entries_are_counted_when_deletions_leave_redis_without_a_lag() {
    let server = RedisServer::start();
    let source = source_on(&server, "workers");
    // More than one XRANGE page (1,000 entries), so the paging is exercised.
    let mut script = String::new();
    for i in 0..2_500 {
        script.push_str(&format!("redis.call('XADD', 'jobs', '*', 'job', '{i}')\n"));
    }
    server.cli(&["EVAL", &script, "0"]);
    server.cli(&["XGROUP", "CREATE", "jobs", "workers", "0"]);
    deliver(&server, 2);
    let undelivered = server.cli(&["XRANGE", "jobs", "-", "+", "COUNT", "5"]);
    let fifth_id = undelivered
        .lines()
        .filter(|line| {
            line.chars().next().is_some_and(|c| c.is_ascii_digit()) && line.contains('-')
        })
        .nth(4)
        .unwrap()
        .to_owned();
    server.cli(&["XDEL", "jobs", &fifth_id]);
    let groups = server.cli(&["XINFO", "GROUPS", "jobs"]);
    assert!(
        groups.ends_with("\nlag"),
        "this test needs Redis to give no lag after the XDEL: {groups}"
    );
    assert_eq!(counts(source.read().await.unwrap()), reading(2_497, 2));
}

#[tokio::test]
async fn a_stream_source_read_error_names_the_group() {
    let mut server = RedisServer::start();
    let source = source_on(&server, "workers");
    server.stop();
    let message = source.read().await.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "reading stream jobs group workers: Redis at {} is unreachable: ",
            server.address()
        )),
        "{message}"
    );
}

/// Every consumer of the group, with what it holds and when its oldest delivery was; a
/// consumer holding three entries (`--concurrency 3`, or `COUNT 3`) counts all three.
#[tokio::test]
async fn pending_entries_are_leased_per_consumer_from_their_oldest_delivery() {
    let server = RedisServer::start();
    let source = source_on(&server, "workers");
    add(&server, 6);
    server.cli(&["XGROUP", "CREATE", "jobs", "workers", "0"]);
    let before = SystemTime::now();
    deliver_to(&server, "three", 3);
    server.cli(&["XGROUP", "CREATECONSUMER", "jobs", "workers", "idle"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = SystemTime::now();
    deliver_to(&server, "one", 1);

    let read = source.read().await.unwrap();
    assert_eq!((read.waiting, read.in_flight), (2, Some(4)));
    let mut leases = read.leases.clone();
    leases.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    let names: Vec<(&str, u64)> = leases
        .iter()
        .map(|lease| (lease.consumer.as_str(), lease.leased))
        .collect();
    assert_eq!(names, [("idle", 0), ("one", 1), ("three", 3)]);
    assert_eq!(leases[0], Lease::idle("idle"));
    // Dated by Redis' idle times, read against this machine's clock: a few ms either way.
    let slack = Duration::from_millis(50);
    let three = leases[2].since.unwrap();
    assert!(three + slack >= before && three < later, "{leases:?}");
    let one = leases[1].since.unwrap();
    assert!(one + slack >= later, "{leases:?}");
}

/// The per-consumer part rides the counts' script: one command per stream read, however
/// many consumers.
#[tokio::test]
async fn reading_every_consumer_of_a_group_costs_one_command() {
    let server = RedisServer::start();
    let source = source_on(&server, "workers");
    add(&server, 30);
    server.cli(&["XGROUP", "CREATE", "jobs", "workers", "0"]);
    for n in 0..10 {
        deliver_to(&server, &format!("worker-{n}"), 2);
    }
    source.read().await.unwrap();
    server.reset_stats();
    let read = source.read().await.unwrap();
    assert_eq!(read.leases.len(), 10);
    assert!(read.leases.iter().all(|lease| lease.leased == 2));
    assert_eq!(server.calls("evalsha"), 1);
    assert_eq!(server.calls("eval"), 0);
}
