//! The queue protocol against a real `redis-server` on a loopback port.

use std::time::Duration;

use ebb_queue::{Item, Lengths, Queue, Reaped, RedisAddress};
use ebb_testkit::redis::RedisServer;

/// `Lengths` in one line, for the assertions on what the queue holds.
fn lengths(waiting: u64, in_flight: u64) -> Lengths {
    Lengths { waiting, in_flight }
}

fn queue_on(server: &RedisServer, name: &str) -> Queue {
    let address: RedisAddress = server.address().parse().unwrap();
    Queue::new(&address, name).unwrap()
}

fn items(count: usize) -> Vec<String> {
    (0..count)
        .map(|n| Item::new(format!("item {n}")).encode())
        .collect()
}

#[tokio::test]
async fn a_batch_lands_in_order_in_one_list() {
    let server = RedisServer::start();
    let queue = queue_on(&server, "padok");
    let batch = items(25_001);
    queue.push(&batch).await.unwrap();
    assert_eq!(server.cli(&["LLEN", "padok"]), "25001");
    assert_eq!(server.cli(&["LINDEX", "padok", "0"]), batch[0]);
    assert_eq!(server.cli(&["LINDEX", "padok", "-1"]), batch[25_000]);
    queue.push(&[]).await.unwrap();
    assert_eq!(queue.lengths().await.unwrap(), lengths(25_001, 0));
}

#[tokio::test]
async fn a_batch_is_all_or_nothing() {
    let server = RedisServer::start();
    let queue = queue_on(&server, "padok");
    // A key of the wrong type makes RPUSH fail inside the transaction: nothing may be applied.
    server.cli(&["SET", "padok", "not a list"]);
    let error = queue.push(&items(20_001)).await.unwrap_err().to_string();
    assert!(error.contains("WRONGTYPE"), "{error}");
    assert_eq!(server.cli(&["GET", "padok"]), "not a list");
}

#[tokio::test]
async fn pop_leases_and_ack_removes() {
    let server = RedisServer::start();
    let queue = queue_on(&server, "padok");
    let batch = items(3);
    queue.push(&batch).await.unwrap();
    let lease = queue.consumer_lease("c1", Duration::from_secs(10)).unwrap();
    lease.heartbeat().await.unwrap();

    let first = lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(first.raw, batch[0]);
    assert_eq!(first.item.payload, "item 0");
    assert!(first.item.id.is_some() && first.item.enqueued_at_ms.is_some());
    assert_eq!(queue.lengths().await.unwrap(), lengths(2, 1));
    assert_eq!(
        server.cli(&["LRANGE", "{padok}:processing:c1", "0", "-1"]),
        batch[0]
    );

    assert!(lease.ack(&first).await.unwrap());
    assert!(
        !lease.ack(&first).await.unwrap(),
        "a second ack finds nothing"
    );
    assert_eq!(queue.lengths().await.unwrap(), lengths(2, 0));
}

#[tokio::test]
async fn pop_waits_then_gives_up_or_gets_a_late_item() {
    let server = RedisServer::start();
    let queue = queue_on(&server, "padok");
    let lease = queue.consumer_lease("c1", Duration::from_secs(10)).unwrap();
    lease.heartbeat().await.unwrap();
    assert_eq!(lease.pop(Duration::from_millis(100)).await.unwrap(), None);

    let pusher = queue.clone();
    let late = tokio::spawn(async move {
        // The item has to arrive while the pop blocks: a delay is the point here.
        tokio::time::sleep(Duration::from_millis(200)).await;
        pusher.push(&["late".to_owned()]).await.unwrap();
    });
    // The blocking pop holds its own connection: heartbeats and pushes go through meanwhile.
    let delivery = lease.pop(Duration::from_secs(3)).await.unwrap().unwrap();
    late.await.unwrap();
    assert_eq!(
        delivery.item,
        Item {
            id: None,
            enqueued_at_ms: None,
            payload: "late".into()
        }
    );
}

#[tokio::test]
async fn the_reaper_returns_a_dead_consumers_items_to_the_head_in_order() {
    let server = RedisServer::start();
    let queue = queue_on(&server, "padok");
    queue.push(&items(5)).await.unwrap();
    let dead = queue
        .consumer_lease("dead", Duration::from_millis(300))
        .unwrap();
    let alive = queue
        .consumer_lease("alive", Duration::from_secs(30))
        .unwrap();
    dead.heartbeat().await.unwrap();
    alive.heartbeat().await.unwrap();
    let taken_by_dead = [
        dead.pop(Duration::from_secs(1)).await.unwrap().unwrap(),
        dead.pop(Duration::from_secs(1)).await.unwrap().unwrap(),
    ];
    let taken_by_alive = alive.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(queue.lengths().await.unwrap(), lengths(2, 3));

    // Alive: nothing to reap.
    assert_eq!(queue.reap().await.unwrap(), Reaped::default());
    server.wait_until_gone("{padok}:heartbeat:dead");
    alive.heartbeat().await.unwrap();
    assert_eq!(
        queue.reap().await.unwrap(),
        Reaped {
            consumers: 1,
            items: 2
        }
    );
    assert_eq!(
        queue.reap().await.unwrap(),
        Reaped::default(),
        "a second reaper finds nothing"
    );
    assert_eq!(queue.lengths().await.unwrap(), lengths(4, 1));
    assert_eq!(server.cli(&["SMEMBERS", "{padok}:consumers"]), "alive");

    // Redelivered first, oldest first.
    let next = alive.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(next.raw, taken_by_dead[0].raw);
    let next = alive.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(next.raw, taken_by_dead[1].raw);
    assert_ne!(next.raw, taken_by_alive.raw);
}

#[tokio::test]
async fn concurrent_reapers_return_each_item_once() {
    let server = RedisServer::start();
    let queue = queue_on(&server, "padok");
    queue.push(&items(200)).await.unwrap();
    for consumer in 0..10 {
        let lease = queue
            .consumer_lease(&format!("c{consumer}"), Duration::from_millis(100))
            .unwrap();
        lease.heartbeat().await.unwrap();
        for _ in 0..10 {
            lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
        }
    }
    assert_eq!(queue.lengths().await.unwrap(), lengths(100, 100));
    for consumer in 0..10 {
        server.wait_until_gone(&format!("{{padok}}:heartbeat:c{consumer}"));
    }
    let reapers: Vec<_> = (0..8)
        .map(|_| {
            let queue = queue_on(&server, "padok");
            tokio::spawn(async move { queue.reap().await.unwrap() })
        })
        .collect();
    let mut total = Reaped::default();
    for reaper in reapers {
        let reaped = reaper.await.unwrap();
        total.consumers += reaped.consumers;
        total.items += reaped.items;
    }
    assert_eq!(
        total,
        Reaped {
            consumers: 10,
            items: 100
        }
    );
    assert_eq!(queue.lengths().await.unwrap(), lengths(200, 0));
    let mut all = server
        .cli(&["LRANGE", "padok", "0", "-1"])
        .lines()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200, "no duplicates");
}

#[tokio::test]
async fn leaving_returns_held_items_and_unregisters_at_once() {
    let server = RedisServer::start();
    let queue = queue_on(&server, "padok");
    queue.push(&items(2)).await.unwrap();
    let lease = queue.consumer_lease("c1", Duration::from_secs(30)).unwrap();
    lease.heartbeat().await.unwrap();
    lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(
        lease.leave().await.unwrap(),
        Reaped {
            consumers: 1,
            items: 1
        }
    );
    assert_eq!(queue.lengths().await.unwrap(), lengths(2, 0));
    assert_eq!(
        server.cli(&["EXISTS", "{padok}:heartbeat:c1", "{padok}:consumers"]),
        "0"
    );
}

#[tokio::test]
async fn a_password_url_authenticates_and_a_wrong_one_is_reported() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let good: RedisAddress = format!("redis://:s3cret@127.0.0.1:{}/2", server.port())
        .parse()
        .unwrap();
    let queue = Queue::new(&good, "padok").unwrap();
    queue.push(&items(1)).await.unwrap();
    assert_eq!(queue.lengths().await.unwrap().waiting, 1);

    let bad: RedisAddress = format!("redis://:n0t-1t@127.0.0.1:{}", server.port())
        .parse()
        .unwrap();
    let error = Queue::new(&bad, "padok")
        .unwrap()
        .ping()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("127.0.0.1:{}", server.port())),
        "{error}"
    );
    assert!(
        !error.contains("n0t-1t"),
        "the password stays secret: {error}"
    );
    assert!(error.contains(": wrong password: "), "{error}");
}

#[tokio::test]
async fn calls_fail_fast_while_redis_is_down_and_work_again_after() {
    let mut server = RedisServer::start();
    let queue = queue_on(&server, "padok");
    let lease = queue.consumer_lease("c1", Duration::from_secs(30)).unwrap();
    queue.push(&items(1)).await.unwrap();
    lease.heartbeat().await.unwrap();

    server.stop();
    let started = std::time::Instant::now();
    let error = queue.push(&items(1)).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("Redis at {} is unreachable", server.address())),
        "{error}"
    );
    assert!(lease.pop(Duration::from_millis(10)).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed in {:?}",
        started.elapsed()
    );

    server.resume();
    let mut recovered = false;
    for _ in 0..50 {
        if queue.push(&items(1)).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the queue reconnects by itself");
    let mut popped = None;
    for _ in 0..50 {
        if let Ok(delivery) = lease.pop(Duration::from_millis(100)).await {
            popped = delivery;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(popped.is_some(), "the blocking connection reconnects too");
    assert_eq!(queue.lengths().await.unwrap(), lengths(1, 1));
}

#[tokio::test]
async fn a_frozen_redis_gives_a_bounded_no_answer_and_recovers() {
    let server = RedisServer::start();
    let queue = queue_on(&server, "padok");
    // Both connections (the probe's and the commands') are up when Redis freezes.
    queue.ping().await.unwrap();
    queue.push(&items(1)).await.unwrap();
    server.pause();
    let error = queue.ping().await.unwrap_err().to_string();
    assert_eq!(
        error,
        format!("Redis at {} did not answer within 1s", server.address())
    );
    let error = queue.push(&items(1)).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "Redis at {} did not answer within 5",
            server.address()
        )),
        "{error}"
    );
    server.unpause();
    queue.ping().await.unwrap();
    // The timed-out push was sent: Redis applies it once it runs again (at least once).
    assert_eq!(queue.lengths().await.unwrap().waiting, 2);
}

#[test]
fn push_timeouts_grow_with_the_batch() {
    assert_eq!(Queue::push_timeout(0), Duration::from_secs(5));
    assert_eq!(Queue::push_timeout(8 << 20), Duration::from_secs(6));
    assert_eq!(Queue::push_timeout(80 << 20), Duration::from_secs(15));
}

#[tokio::test]
async fn blank_queue_and_consumer_names_are_refused() {
    let address: RedisAddress = "127.0.0.1:6379".parse().unwrap();
    for name in ["", "  "] {
        let error = Queue::new(&address, name).err().unwrap().to_string();
        assert_eq!(
            error,
            format!("invalid queue name {name:?}: must not be empty")
        );
    }
    let queue = Queue::new(&address, "padok").unwrap();
    let error = queue
        .consumer_lease("", Duration::from_secs(1))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(error, "invalid consumer id \"\": must not be empty");
}

#[tokio::test]
async fn consumers_of_earlier_versions_are_counted_and_reaped_during_a_rolling_upgrade() {
    let server = RedisServer::start();
    let queue = queue_on(&server, "padok");
    let batch = items(2);
    queue.push(&batch).await.unwrap();
    // A consumer of an earlier version (untagged keys) holds two items, its lease running out;
    // its acks went to the untagged counter.
    server.cli(&["RPUSH", "padok:processing:old", "held 1", "held 2"]);
    server.cli(&["SADD", "padok:consumers", "old"]);
    server.cli(&["SET", "padok:heartbeat:old", "1", "PX", "300"]);
    server.cli(&["SET", "padok:completed", "5"]);
    let new = queue
        .consumer_lease("new", Duration::from_secs(30))
        .unwrap();
    new.heartbeat().await.unwrap();
    let taken = new.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(
        queue.lengths().await.unwrap(),
        lengths(1, 3),
        "the old consumer's items are in flight"
    );
    assert!(new.ack(&taken).await.unwrap());
    assert_eq!(queue.completed().await.unwrap(), 6, "both counters add up");
    assert_eq!(
        queue.reap().await.unwrap(),
        Reaped::default(),
        "still alive"
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        queue.reap().await.unwrap(),
        Reaped {
            consumers: 1,
            items: 2
        }
    );
    assert_eq!(
        server.cli(&["LRANGE", "padok", "0", "-1"]),
        format!("held 1\nheld 2\n{}", batch[1])
    );
    assert_eq!(
        server.cli(&["EXISTS", "padok:consumers", "padok:processing:old"]),
        "0"
    );
    assert_eq!(server.cli(&["SMEMBERS", "{padok}:consumers"]), "new");
    assert_eq!(queue.lengths().await.unwrap(), lengths(3, 0));
}
