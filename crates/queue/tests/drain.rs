//! Draining, against a real `redis-server`: the marker a scaler sets stops a consumer's takes
//! (the ack-and-take script and the pop alike) while it finishes what it holds; clearing it, or
//! its time to live running out, puts the consumer back to work. Only the named consumers
//! stop.

use std::time::Duration;

use ebb_queue::{Item, Next, Queue, RedisAddress};
use ebb_testkit::redis::RedisServer;

async fn padok(server: &RedisServer, items: usize) -> Queue {
    let address: RedisAddress = server.address().parse().unwrap();
    let queue = Queue::new(&address, "padok").unwrap();
    let items: Vec<String> = (0..items)
        .map(|n| Item::new(format!("item {n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();
    queue
}

#[tokio::test]
async fn a_drained_consumer_finishes_its_item_and_takes_nothing_until_undrained() {
    let server = RedisServer::start();
    let queue = padok(&server, 4).await;
    let drained = queue
        .consumer_lease("drained", Duration::from_secs(30))
        .unwrap();
    let other = queue
        .consumer_lease("other", Duration::from_secs(30))
        .unwrap();
    let held = drained.pop(Duration::ZERO).await.unwrap().unwrap();

    queue
        .drain(&["drained".to_owned()], Duration::from_secs(60))
        .await
        .unwrap();
    let pttl: i64 = server
        .cli(&["PTTL", "{padok}:draining:drained"])
        .parse()
        .unwrap();
    assert!((59_000..=60_000).contains(&pttl), "{pttl}");
    // Its item is acknowledged; nothing new comes with it, and a pop takes nothing either.
    let answer = drained
        .ack_and_take(std::slice::from_ref(&held), 1)
        .await
        .unwrap();
    assert_eq!(answer.acked, [true]);
    assert!(matches!(answer.next, Next::Draining), "{:?}", answer.next);
    assert!(drained.pop(Duration::ZERO).await.unwrap().is_none());
    assert!(drained.is_draining());
    // Another consumer is not concerned.
    assert!(other.pop(Duration::ZERO).await.unwrap().is_some());

    queue.undrain(&["drained".to_owned()]).await.unwrap();
    assert_eq!(server.cli(&["EXISTS", "{padok}:draining:drained"]), "0");
    drained.heartbeat().await.unwrap();
    assert!(!drained.is_draining());
    assert!(drained.pop(Duration::ZERO).await.unwrap().is_some());
}

#[tokio::test]
async fn a_drain_marker_expires_by_itself() {
    let server = RedisServer::start();
    let queue = padok(&server, 1).await;
    let consumer = queue.consumer_lease("c1", Duration::from_secs(30)).unwrap();
    queue
        .drain(&["c1".to_owned()], Duration::from_millis(200))
        .await
        .unwrap();
    consumer.heartbeat().await.unwrap();
    assert!(consumer.pop(Duration::ZERO).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    consumer.heartbeat().await.unwrap();
    assert!(
        consumer.pop(Duration::ZERO).await.unwrap().is_some(),
        "a scaler that died mid-drain leaves no consumer idle for good"
    );
}
