//! The completed counter that service rates are measured from, against a real `redis-server`.

use std::time::Duration;

use ebb_queue::{Item, Queue, RedisAddress};
use ebb_testkit::redis::RedisServer;

#[tokio::test]
async fn acks_are_counted_once_and_requeued_items_are_not() {
    let server = RedisServer::start();
    let address: RedisAddress = server.address().parse().unwrap();
    let queue = Queue::new(&address, "padok").unwrap();
    assert_eq!(
        queue.completed().await.unwrap(),
        0,
        "no counter before the first ack"
    );

    let batch: Vec<String> = (0..3).map(|n| Item::new(format!("{n}")).encode()).collect();
    queue.push(&batch).await.unwrap();
    let lease = queue
        .consumer_lease("c1", Duration::from_millis(200))
        .unwrap();
    lease.heartbeat().await.unwrap();
    let first = lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    let second = lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert!(lease.ack(&first).await.unwrap());
    assert!(!lease.ack(&first).await.unwrap());
    assert_eq!(
        queue.completed().await.unwrap(),
        1,
        "a repeated ack counts once"
    );

    // The lease runs out: the reaper requeues `second`; its late ack is not a completion.
    server.wait_until_gone("{padok}:heartbeat:c1");
    assert_eq!(queue.reap().await.unwrap().items, 1);
    assert!(!lease.ack(&second).await.unwrap());
    assert_eq!(queue.completed().await.unwrap(), 1);
    assert_eq!(server.cli(&["GET", "{padok}:completed"]), "1");
}
