//! No item is ever stranded: each window in which an item used to sit in a processing list
//! that nobody would ever return is forced here against a real `redis-server` (and a real
//! Redis Cluster), and the items are counted: every one completed, `completed` = published.
//! The same with real processes and SIGKILL is `crates/ebb/tests/at_least_once.rs`.

use std::time::Duration;

use ebb_queue::{Error, Item, Lengths, Queue, RedisAddress, RedisErrorKind};
use ebb_testkit::poll;
use ebb_testkit::redis::RedisServer;
use ebb_testkit::redis_cluster::RedisCluster;

fn items(count: usize) -> Vec<String> {
    (0..count)
        .map(|n| Item::new(format!("item {n}")).encode())
        .collect()
}

/// Pops and acks with a fresh consumer until `published` items are completed; panics after
/// 30 s with what is left.
async fn drain(queue: &Queue, published: u64) {
    let survivor = queue
        .consumer_lease("survivor", Duration::from_secs(30))
        .unwrap();
    poll::until(
        &format!("all {published} items completed"),
        Duration::from_secs(30),
        || async {
            let completed = queue.completed().await.unwrap();
            if completed >= published {
                return Ok(Some(()));
            }
            queue.reap().await.unwrap();
            if let Some(delivery) = survivor.pop(Duration::from_millis(100)).await.unwrap() {
                assert!(survivor.ack(&delivery).await.unwrap());
            }
            let lengths = queue.lengths().await.unwrap();
            Err(format!(
                "stranded: {lengths:?}, completed {completed} of {published}"
            ))
        },
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(queue.completed().await.unwrap(), published);
    assert_eq!(
        queue.lengths().await.unwrap(),
        Lengths {
            waiting: 0,
            in_flight: 0
        }
    );
    survivor.leave().await.unwrap();
}

#[tokio::test]
async fn never_strands_an_item_moved_by_a_pop_that_timed_out_on_the_client() {
    let server = RedisServer::start();
    let address: RedisAddress = server.address().parse().unwrap();
    let queue = Queue::new(&address, "padok").unwrap();
    let lease = queue.consumer_lease("c1", Duration::from_secs(30)).unwrap();
    // The first pop registers and reconciles; the next one goes straight to BLMOVE.
    assert_eq!(lease.pop(Duration::from_millis(1)).await.unwrap(), None);
    let published = items(3);
    queue.push(&published).await.unwrap();

    // Writes wait while Redis is paused: the BLMOVE runs only after the client gave up on
    // it (100ms in Redis + 5 s for the answer), and moves an item all the same.
    server.cli(&["CLIENT", "PAUSE", "6500", "WRITE"]);
    let error = lease.pop(Duration::from_millis(100)).await.unwrap_err();
    assert!(
        matches!(error, Error::NoAnswer { .. })
            && matches!(error.kind(), Some(RedisErrorKind::Timeout { .. })),
        "{error}"
    );
    server.cli(&["CLIENT", "UNPAUSE"]);
    poll::until_blocking("the late BLMOVE to run", Duration::from_secs(10), || {
        server.cli(&["LLEN", "{padok}:processing:c1"]) == "1"
    })
    .unwrap_or_else(|error| panic!("{error}"));
    // The window: the item is in the live consumer's list, in flight, in nobody's hands.
    assert_eq!(
        queue.lengths().await.unwrap(),
        Lengths {
            waiting: 2,
            in_flight: 1
        }
    );

    // The next pop reconciles first: the stray goes back to the head, and is delivered.
    let delivery = lease
        .pop(Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.raw, published[0]);
    assert!(lease.ack(&delivery).await.unwrap());
    drain(&queue, published.len() as u64).await;
    lease.leave().await.unwrap();
}

/// The victim pops after a reaper dropped it while its own clock says its heartbeat is fresh
/// (a process frozen past its lease between heartbeat and pop), then dies without leaving.
async fn pop_into_an_unregistered_consumer_then_die(
    queue: &Queue,
    cli: impl Fn(&[&str]) -> String,
) -> u64 {
    let victim = queue
        .consumer_lease("victim", Duration::from_secs(3))
        .unwrap();
    assert_eq!(victim.pop(Duration::from_millis(1)).await.unwrap(), None);
    // Its lease runs out (forced: the key goes, as if expired) and a reaper drops it.
    cli(&["DEL", "{padok}:heartbeat:victim"]);
    let reaped = queue.reap().await.unwrap();
    assert_eq!(reaped.consumers, 1, "{reaped:?}");
    let published = items(5);
    queue.push(&published).await.unwrap();
    let delivery = victim
        .pop(Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.raw, published[0]);
    // The window: an item in the list of a consumer no registry names.
    assert_eq!(cli(&["SISMEMBER", "{padok}:consumers", "victim"]), "0");
    assert_eq!(cli(&["LLEN", "{padok}:processing:victim"]), "1");
    assert_eq!(queue.lengths().await.unwrap().in_flight, 0);
    // It dies: no ack, no leave, no heartbeat ever again.
    drop(victim);
    published.len() as u64
}

#[tokio::test]
async fn never_strands_an_item_popped_into_an_unregistered_consumer_that_dies() {
    let server = RedisServer::start();
    let address: RedisAddress = server.address().parse().unwrap();
    let queue = Queue::new(&address, "padok").unwrap();
    let published =
        pop_into_an_unregistered_consumer_then_die(&queue, |args| server.cli(args)).await;
    // The reaper's sweep finds the list by name and returns its item.
    let reaped = queue.reap_orphans().await.unwrap();
    assert_eq!((reaped.consumers, reaped.items), (1, 1));
    assert_eq!(server.cli(&["EXISTS", "{padok}:processing:victim"]), "0");
    drain(&queue, published).await;
}

#[tokio::test]
async fn never_strands_an_item_popped_into_an_unregistered_consumer_on_a_cluster() {
    let cluster = RedisCluster::start();
    let address: RedisAddress = cluster.url().parse().unwrap();
    let queue = Queue::new(&address, "padok").unwrap();
    let owner = cluster.port_serving(cluster.slot_of("padok"));
    let published =
        pop_into_an_unregistered_consumer_then_die(&queue, |args| cluster.cli_at(owner, args))
            .await;
    // Plain reaps, as every consumer runs them: the first sweeps the queue's node.
    drain(&queue, published).await;
}

#[tokio::test]
async fn pops_wait_a_sixth_of_the_lease_at_most_and_short_leases_are_refused() {
    let server = RedisServer::start();
    let queue = Queue::new(&server.address().parse().unwrap(), "padok").unwrap();
    let short = queue
        .consumer_lease("c1", Duration::from_millis(600))
        .unwrap();
    assert_eq!(short.max_pop_wait(), Duration::from_millis(100));
    let long = queue.consumer_lease("c2", Duration::from_secs(60)).unwrap();
    assert_eq!(long.max_pop_wait(), ebb_queue::MAX_POP_WAIT);
    let Err(error) = queue.consumer_lease("c3", Duration::from_millis(29)) else {
        panic!("a 29ms lease was accepted");
    };
    assert!(
        error
            .to_string()
            .starts_with("lease 29ms is too short: it must be at least 30ms"),
        "{error}"
    );
}
