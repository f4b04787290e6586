//! `RedisSource` on a real redis-server: what one read reports after consumers took,
//! acknowledged and abandoned items.

use std::time::{Duration, SystemTime};

use ebb_queue::{Item, Queue, RedisAddress, RedisReader};
use ebb_sources::queue::RedisSource;
use ebb_sources::{Lease, MetricSource, Reading};
use ebb_testkit::poll;
use ebb_testkit::redis::RedisServer;

const LEASE: Duration = Duration::from_millis(200);

fn queue_on(server: &RedisServer) -> Queue {
    let address: RedisAddress = server.address().parse().unwrap();
    Queue::new(&address, "padok").unwrap()
}

#[tokio::test]
async fn a_read_reaps_dead_consumers_and_counts_acks() {
    let server = RedisServer::start();
    let queue = queue_on(&server);
    let source = RedisSource::new(queue.clone());
    let items: Vec<String> = (0..4)
        .map(|n| Item::new(format!("item {n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();

    let consumer = queue.consumer_lease("doomed", LEASE).unwrap();
    consumer.heartbeat().await.unwrap();
    let first = consumer.pop(Duration::ZERO).await.unwrap().unwrap();
    consumer.pop(Duration::ZERO).await.unwrap().unwrap();
    assert!(consumer.ack(&first).await.unwrap());
    let live = Reading {
        waiting: 2,
        in_flight: Some(1),
        completed_total: Some(1),
        ..Reading::default()
    };
    assert_eq!(source.read().await.unwrap(), live);

    // The consumer dies holding one item: no more heartbeats, and its lease runs out. Reads
    // until then see it in flight; the first read after it returns the item to the queue.
    drop(consumer);
    let after_reap = Reading {
        waiting: 3,
        in_flight: Some(0),
        completed_total: Some(1),
        ..Reading::default()
    };
    poll::until("the reap after the lease ran out", LEASE * 25, || async {
        let reading = source.read().await.unwrap();
        if reading == after_reap {
            return Ok(Some(()));
        }
        assert_eq!(reading, live, "before the lease runs out");
        Err(format!("{reading:?}"))
    })
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(server.cli(&["LINDEX", "padok", "0"]), items[1]);

    // Another consumer finishes everything: the counter follows every ack.
    let survivor = queue.consumer_lease("survivor", LEASE * 10).unwrap();
    survivor.heartbeat().await.unwrap();
    while let Some(delivery) = survivor.pop(Duration::ZERO).await.unwrap() {
        assert!(survivor.ack(&delivery).await.unwrap());
    }
    let drained = Reading {
        waiting: 0,
        in_flight: Some(0),
        completed_total: Some(4),
        ..Reading::default()
    };
    assert_eq!(source.read().await.unwrap(), drained);
}

#[tokio::test]
async fn a_read_error_names_the_redis_address_once() {
    let mut server = RedisServer::start();
    let source = RedisSource::new(queue_on(&server));
    server.stop();
    let message = source.read().await.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "reading queue padok: Redis at {} is unreachable: ",
            server.address()
        )),
        "{message}"
    );
    assert_eq!(message.matches(&server.address()).count(), 1, "{message}");
}

/// What the operator's status, the metrics API and `ebb up` show of a failed read: the
/// queue crate's kind, not "unreachable".
#[tokio::test]
async fn a_read_error_says_what_happened() {
    let server = RedisServer::start_with(&["--requirepass", "right"]);
    let wrong: RedisAddress = format!("redis://:not-it@{}", server.address())
        .parse()
        .unwrap();
    let queue = Queue::new(&wrong, "padok").unwrap();
    for source in [
        RedisSource::new(queue.clone()),
        RedisSource::new(queue.clone()).with_reader(RedisReader::new(&wrong).unwrap()),
    ] {
        let message = source.read().await.unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "reading queue padok: Redis at {}: wrong password: ",
                server.address()
            )),
            "{message}"
        );
        assert!(!message.contains("not-it"), "{message}");
    }

    let typed = RedisServer::start();
    typed.cli(&["SADD", "padok", "not a list"]);
    let source = RedisSource::new(queue_on(&typed))
        .with_reader(RedisReader::new(&typed.address().parse().unwrap()).unwrap());
    let message = source.read().await.unwrap_err().to_string();
    assert!(
        message.contains(r#"WRONGTYPE: key "padok" holds a set, not a list"#),
        "{message}"
    );
}

#[tokio::test]
async fn an_old_consumers_items_keep_the_reading_busy_until_reaped() {
    let server = RedisServer::start();
    let source = RedisSource::new(queue_on(&server));
    // A consumer of a version before the hash-tagged keys, mid-upgrade, holding two items.
    server.cli(&["RPUSH", "padok:processing:old", "a", "b"]);
    server.cli(&["SADD", "padok:consumers", "old"]);
    server.cli(&["SET", "padok:heartbeat:old", "1", "PX", "300"]);
    let busy = Reading {
        waiting: 0,
        in_flight: Some(2),
        completed_total: Some(0),
        ..Reading::default()
    };
    assert_eq!(
        source.read().await.unwrap(),
        busy,
        "not idle: nothing may scale to zero"
    );

    // It dies: once its lease is over, a read reaps its items back into the queue.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let requeued = Reading {
        waiting: 2,
        in_flight: Some(0),
        completed_total: Some(0),
        ..Reading::default()
    };
    assert_eq!(source.read().await.unwrap(), requeued);
    assert_eq!(server.cli(&["LRANGE", "padok", "0", "-1"]), "a\nb");
}

#[tokio::test]
async fn through_a_shared_reader_the_counts_are_the_same_and_reaping_waits_for_items_in_flight() {
    let server = RedisServer::start();
    let queue = queue_on(&server);
    let reader = RedisReader::new(queue.address()).unwrap();
    let source = RedisSource::new(queue.clone())
        .with_reader(reader.clone())
        .reap_every(LEASE * 2);
    let items: Vec<String> = (0..3)
        .map(|n| Item::new(format!("item {n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();
    // Nothing in flight: no reaping, only the reader's pipeline (once Redis knows the
    // script: the first read sends it in full, a second round trip).
    source.read().await.unwrap();
    let before = reader.round_trips();
    assert_eq!(
        source.read().await.unwrap(),
        Reading {
            waiting: 3,
            in_flight: Some(0),
            completed_total: Some(0),
            ..Reading::default()
        }
    );
    assert_eq!(reader.round_trips() - before, 1);

    let consumer = queue.consumer_lease("doomed", LEASE).unwrap();
    consumer.heartbeat().await.unwrap();
    consumer.pop(Duration::ZERO).await.unwrap().unwrap();
    drop(consumer);
    let requeued = Reading {
        waiting: 3,
        in_flight: Some(0),
        completed_total: Some(0),
        ..Reading::default()
    };
    poll::until(
        "the unregistered consumer's item requeued",
        LEASE * 25,
        || async {
            let reading = source.read().await.unwrap();
            if reading == requeued {
                return Ok(Some(()));
            }
            Err(format!("{reading:?}"))
        },
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(server.cli(&["LINDEX", "padok", "0"]), items[0]);
}

#[tokio::test]
async fn never_strands_an_idle_queues_item_held_by_an_unregistered_consumer() {
    let server = RedisServer::start();
    let queue = queue_on(&server);
    let reader = RedisReader::new(queue.address()).unwrap();
    let source = RedisSource::new(queue.clone())
        .with_reader(reader)
        .reap_every(LEASE * 2);
    // A consumer popped after a reaper dropped it, then died: no registry names its list, so
    // nothing counts the item (0 waiting, 0 in flight: an idle queue at 0 replicas).
    let item = Item::new("orphan").encode();
    server.cli(&["RPUSH", "{padok}:processing:ghost", &item]);
    assert_eq!(
        source.read().await.unwrap(),
        Reading {
            waiting: 1,
            in_flight: Some(0),
            completed_total: Some(0),
            ..Reading::default()
        }
    );
    assert_eq!(server.cli(&["LINDEX", "padok", "0"]), item);
    assert_eq!(server.cli(&["EXISTS", "{padok}:processing:ghost"]), "0");
}

/// A source reading through a shared reader, as the operator and the metrics API build it.
fn shared_source(server: &RedisServer, name: &str) -> (RedisSource, RedisReader) {
    let address: RedisAddress = server.address().parse().unwrap();
    let reader = RedisReader::new(&address).unwrap();
    let source = RedisSource::new(Queue::new(&address, name).unwrap())
        .with_reader(reader.clone())
        .reap_every(Duration::from_secs(60));
    (source, reader)
}

/// The leases of `reading`, by consumer id.
fn leases_of(reading: &Reading) -> Vec<Lease> {
    let mut leases = reading.leases.clone();
    leases.sort_by(|a, b| a.consumer.cmp(&b.consumer));
    leases
}

async fn push(queue: &Queue, n: usize) {
    let items: Vec<String> = (0..n)
        .map(|n| Item::new(format!("item {n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();
}

/// `--concurrency 3` is one lease holding three items: each of them counts, and the lease
/// dates from the oldest still in hand.
#[tokio::test]
async fn leases_name_each_consumer_and_count_every_item_in_hand_with_concurrency_above_one() {
    let server = RedisServer::start();
    let queue = queue_on(&server);
    let (source, _) = shared_source(&server, "padok");
    push(&queue, 6).await;
    let three = queue.consumer_lease("busy-3", LEASE * 50).unwrap();
    let one = queue.consumer_lease("busy-1", LEASE * 50).unwrap();
    let idle = queue.consumer_lease("idle", LEASE * 50).unwrap();
    idle.heartbeat().await.unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(three.pop(Duration::ZERO).await.unwrap().unwrap());
    }
    let single = one.pop(Duration::ZERO).await.unwrap().unwrap();

    let before = SystemTime::now();
    let first = source.read().await.unwrap();
    assert_eq!((first.waiting, first.in_flight), (2, Some(4)));
    let leases = leases_of(&first);
    let started = leases[1].since.expect("busy-3 holds items");
    assert!(started >= before, "dated from this first reading");
    assert_eq!(
        leases,
        [
            Lease {
                consumer: "busy-1".to_owned(),
                leased: 1,
                since: leases[0].since,
            },
            Lease {
                consumer: "busy-3".to_owned(),
                leased: 3,
                since: Some(started),
            },
            Lease::idle("idle"),
        ]
    );
    assert_eq!(
        leases.iter().map(|lease| lease.leased).sum::<u64>(),
        4,
        "the leases add up to in_flight"
    );

    // busy-3 finishes its first item and takes another; busy-1 finishes and takes a new one.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(three.ack(&held[0]).await.unwrap());
    three.pop(Duration::ZERO).await.unwrap().unwrap();
    let next = one
        .ack_and_take(std::slice::from_ref(&single), 1)
        .await
        .unwrap();
    assert!(
        matches!(&next.next, ebb_queue::Next::Items(items) if items.len() == 1),
        "{next:?}"
    );
    let second = source.read().await.unwrap();
    let leases = leases_of(&second);
    assert_eq!(leases[1].leased, 3);
    assert_eq!(
        leases[1].since,
        Some(started),
        "two of the items first seen are still in hand: the lease is as old as they are"
    );
    assert!(
        leases[0].since.unwrap() > started,
        "busy-1 holds a new item, dated from this reading: {leases:?}"
    );
    assert_eq!(leases[2], Lease::idle("idle"));
    assert_eq!(second.in_flight, Some(4));
}

#[tokio::test]
async fn an_unknown_or_gone_consumer_does_not_skew_the_leases() {
    let server = RedisServer::start();
    let queue = queue_on(&server);
    let (source, _) = shared_source(&server, "padok");
    push(&queue, 3).await;
    let stays = queue.consumer_lease("stays", LEASE * 50).unwrap();
    let leaves = queue.consumer_lease("leaves", LEASE * 50).unwrap();
    stays.pop(Duration::ZERO).await.unwrap().unwrap();
    leaves.pop(Duration::ZERO).await.unwrap().unwrap();
    // A list nobody registered (a consumer id that never was, or one dropped by a reaper):
    // no consumer the source knows, and no item in flight.
    // The sweep for such lists runs at the first read (it returns the first stray to the
    // queue), then once a minute: the second stray stays in the ghost's list meanwhile.
    server.cli(&["RPUSH", "{padok}:processing:ghost", "stray"]);
    source.read().await.unwrap();
    server.cli(&["RPUSH", "{padok}:processing:ghost", "stray"]);

    let reading = source.read().await.unwrap();
    assert_eq!((reading.waiting, reading.in_flight), (2, Some(2)));
    let names: Vec<String> = leases_of(&reading)
        .into_iter()
        .map(|lease| lease.consumer)
        .collect();
    assert_eq!(names, ["leaves", "stays"]);

    leaves.leave().await.unwrap();
    let reading = source.read().await.unwrap();
    assert_eq!((reading.waiting, reading.in_flight), (3, Some(1)));
    let leases = leases_of(&reading);
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(
        (leases[0].consumer.as_str(), leases[0].leased),
        ("stays", 1)
    );
    assert!(leases[0].since.is_some());
}

/// Every consumer of every queue of one server, in one round trip: the operator's and the
/// metrics API's reading costs the same with 1 pod or 40.
#[tokio::test]
async fn reading_every_consumer_costs_one_command_per_queue_and_one_round_trip() {
    let server = RedisServer::start();
    let address: RedisAddress = server.address().parse().unwrap();
    let reader = RedisReader::new(&address).unwrap();
    let mut sources = Vec::new();
    let mut leases = Vec::new();
    for name in ["orders", "invoices"] {
        let queue = Queue::new(&address, name).unwrap();
        push(&queue, 20).await;
        for n in 0..20 {
            let lease = queue
                .consumer_lease(&format!("{name}-{n}"), LEASE * 50)
                .unwrap();
            lease.pop(Duration::ZERO).await.unwrap().unwrap();
            leases.push(lease);
        }
        sources.push(
            RedisSource::new(queue)
                .with_reader(reader.clone())
                .reap_every(Duration::from_secs(60)),
        );
    }
    // The first reading sends the script in full (and sweeps once): count the next.
    futures_join(&sources).await;
    server.reset_stats();
    let before = reader.round_trips();
    let readings = futures_join(&sources).await;
    assert_eq!(
        reader.round_trips() - before,
        1,
        "one pipeline for both queues"
    );
    assert_eq!(server.calls("evalsha"), 2, "one script per queue");
    assert_eq!(server.calls("eval"), 0);
    for reading in readings {
        assert_eq!(reading.leases.len(), 20);
        assert!(reading.leases.iter().all(|lease| lease.leased == 1));
    }
}

async fn futures_join(sources: &[RedisSource]) -> Vec<Reading> {
    let (a, b) = tokio::join!(sources[0].read(), sources[1].read());
    vec![a.unwrap(), b.unwrap()]
}
