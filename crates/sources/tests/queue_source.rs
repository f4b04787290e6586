//! `RedisSource` on a real redis-server: what one read reports after consumers took,
//! acknowledged and abandoned items.

use std::time::Duration;

use ebb_queue::{Item, Queue, RedisAddress, RedisReader};
use ebb_sources::queue::RedisSource;
use ebb_sources::{MetricSource, Reading};
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
