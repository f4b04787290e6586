//! The consumer at the dojo's speed: while items wait, the ack takes the next one in the same
//! script (`ConsumerLease::ack_and_take`), so each item costs one round trip and `BLMOVE` waits
//! only on an empty queue; and the script takes nothing for a consumer that is not registered
//! or is draining. Against a real `redis-server`, counting the commands it ran.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ebb_queue::{
    AckAndTake, ConsumerLease, Delivery, Item, Lengths, MAX_BATCH, Next, Queue, RedisAddress,
};
use ebb_testkit::redis::RedisServer;
use tokio::task::JoinHandle;

fn items(count: usize) -> Vec<String> {
    (0..count)
        .map(|n| Item::new(format!("item {n}")).encode())
        .collect()
}

/// A fresh server with `count` items in the queue `padok`, and the lease of consumer `c1`.
async fn padok_with(count: usize) -> (RedisServer, Queue, ConsumerLease, Vec<String>) {
    let server = RedisServer::start();
    let address: RedisAddress = server.address().parse().unwrap();
    let queue = Queue::new(&address, "padok").unwrap();
    let lease = queue.consumer_lease("c1", Duration::from_secs(30)).unwrap();
    let published = items(count);
    queue.push(&published).await.unwrap();
    (server, queue, lease, published)
}

/// Reconciles `times` over while takes run, each time comparing the whole list: releasing an
/// item it never had makes the lease do so, as it does after any release, lost answer or
/// re-registration. Returns how many items the reconciliations found stray.
fn reconcile_all_the_while(lease: Arc<ConsumerLease>, times: usize) -> JoinHandle<u64> {
    let never_had = Delivery {
        raw: "never had".into(),
        item: Item::decode("never had"),
    };
    tokio::spawn(async move {
        let mut returned = 0;
        for _ in 0..times {
            lease.release(&never_had);
            returned += lease.reconcile().await.unwrap();
        }
        returned
    })
}

fn assert_each_delivered_once(delivered: &[String], published: &[String]) {
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "an item was delivered twice");
    assert_eq!(delivered.len(), published.len());
}

/// The next item, by a (blocking) pop that must find one.
async fn pop(lease: &ConsumerLease) -> Delivery {
    lease
        .pop(Duration::from_millis(100))
        .await
        .unwrap()
        .expect("an item waits")
}

#[tokio::test]
async fn one_round_trip_per_item_while_items_wait() {
    let (server, queue, lease, published) = padok_with(50).await;
    server.reset_stats();

    let mut delivery = pop(&lease).await;
    let mut delivered = vec![delivery.raw.clone()];
    loop {
        let AckAndTake { acked, next } = lease
            .ack_and_take(std::slice::from_ref(&delivery), 1)
            .await
            .unwrap();
        assert_eq!(acked, [true]);
        match next {
            Next::Items(mut taken) if taken.len() == 1 => {
                let taken = taken.remove(0);
                delivered.push(taken.raw.clone());
                delivery = taken;
            }
            Next::Empty => break,
            other => panic!("a registered consumer got {other:?}"),
        }
    }
    assert_eq!(delivered, published, "in queue order, each once");
    assert_eq!(queue.completed().await.unwrap(), 50);
    // One blocking pop for the first item; then one script per item, which moved the other 49.
    assert_eq!(server.calls("blmove"), 1);
    assert_eq!(server.calls("evalsha"), 50);
    assert_eq!(
        server.calls("lmove"),
        50,
        "49 taken, one finding the queue empty"
    );
    assert_eq!(queue.lengths().await.unwrap(), Lengths::default());
    lease.leave().await.unwrap();
}

#[tokio::test]
async fn takes_nothing_into_a_consumer_that_is_not_registered() {
    let (server, queue, lease, published) = padok_with(3).await;
    let delivery = pop(&lease).await;

    // Its heartbeat is gone (as if expired) and a reaper requeued its item and dropped it.
    server.cli(&["DEL", "{padok}:heartbeat:c1"]);
    assert_eq!(queue.reap().await.unwrap().items, 1);
    let answer = lease
        .ack_and_take(std::slice::from_ref(&delivery), 1)
        .await
        .unwrap();
    assert_eq!(
        answer,
        AckAndTake {
            acked: vec![false],
            next: Next::NotRegistered
        }
    );
    assert_eq!(server.cli(&["EXISTS", "{padok}:processing:c1"]), "0");
    assert_eq!(queue.lengths().await.unwrap().waiting, 3);

    // Expired but not reaped yet: not taken either.
    lease.heartbeat().await.unwrap();
    let again = pop(&lease).await;
    assert_eq!(again.raw, published[0]);
    server.cli(&["DEL", "{padok}:heartbeat:c1"]);
    let answer = lease
        .ack_and_take(std::slice::from_ref(&again), 1)
        .await
        .unwrap();
    assert_eq!(
        answer,
        AckAndTake {
            acked: vec![true],
            next: Next::NotRegistered
        }
    );
    assert_eq!(server.cli(&["LLEN", "{padok}:processing:c1"]), "0");

    // The next pop registers again first, and takes.
    let third = pop(&lease).await;
    assert_eq!(third.raw, published[1]);
    assert_eq!(server.cli(&["SISMEMBER", "{padok}:consumers", "c1"]), "1");
    lease.leave().await.unwrap();
}

#[tokio::test]
async fn takes_nothing_while_draining() {
    let (server, queue, lease, published) = padok_with(3).await;
    let delivery = pop(&lease).await;

    server.cli(&["SET", "{padok}:draining:c1", "1", "PX", "60000"]);
    let answer = lease
        .ack_and_take(std::slice::from_ref(&delivery), 1)
        .await
        .unwrap();
    assert_eq!(
        answer,
        AckAndTake {
            acked: vec![true],
            next: Next::Draining
        }
    );
    assert!(lease.is_draining());
    assert_eq!(queue.completed().await.unwrap(), 1);
    // Pops wait and take nothing while the marker is there.
    assert_eq!(lease.pop(Duration::from_millis(50)).await.unwrap(), None);
    assert_eq!(
        queue.lengths().await.unwrap(),
        Lengths {
            waiting: 2,
            in_flight: 0
        }
    );

    // The heartbeat reads the marker: once it is gone, pops take again.
    server.cli(&["DEL", "{padok}:draining:c1"]);
    lease.heartbeat().await.unwrap();
    assert!(!lease.is_draining());
    let next = pop(&lease).await;
    assert_eq!(next.raw, published[1]);
    lease.leave().await.unwrap();
}

/// Takes move items into the processing list from several tasks while reconciliations read
/// it: no reconciliation may take a take's item for a stray (it would be requeued and
/// delivered twice).
#[tokio::test]
async fn takes_and_reconciliations_together_deliver_each_item_once() {
    let (_server, queue, lease, published) = padok_with(2_000).await;
    let lease = Arc::new(lease);

    let mut slots = Vec::new();
    for _ in 0..4 {
        let first = pop(&lease).await;
        let lease = Arc::clone(&lease);
        slots.push(tokio::spawn(async move {
            let mut delivered = vec![first.raw.clone()];
            let mut delivery = first;
            while let Next::Items(mut next) = lease
                .ack_and_take(std::slice::from_ref(&delivery), 1)
                .await
                .unwrap()
                .next
            {
                let next = next.remove(0);
                delivered.push(next.raw.clone());
                delivery = next;
            }
            delivered
        }));
    }
    let reconciler = reconcile_all_the_while(Arc::clone(&lease), 500);
    let mut delivered = Vec::new();
    for slot in slots {
        delivered.extend(slot.await.unwrap());
    }
    assert_eq!(reconciler.await.unwrap(), 0, "nothing is a stray");
    assert_each_delivered_once(&delivered, &published);
    assert_eq!(queue.completed().await.unwrap(), 2_000);
    assert_eq!(queue.lengths().await.unwrap(), Lengths::default());
    lease.leave().await.unwrap();
}

/// Short items go in batches: one script acknowledges a batch and takes the next, in queue
/// order, each item once, and the counts come out exact.
#[tokio::test]
async fn a_batch_of_short_items_is_acknowledged_and_taken_in_one_round_trip() {
    let (server, queue, lease, published) = padok_with(200).await;
    server.reset_stats();

    let mut batch = vec![pop(&lease).await];
    let mut delivered = vec![batch[0].raw.clone()];
    let mut scripts = 0;
    loop {
        let AckAndTake { acked, next } = lease.ack_and_take(&batch, MAX_BATCH).await.unwrap();
        scripts += 1;
        assert_eq!(acked, vec![true; batch.len()]);
        match next {
            Next::Items(taken) => {
                assert!(taken.len() <= MAX_BATCH);
                delivered.extend(taken.iter().map(|delivery| delivery.raw.clone()));
                batch = taken;
            }
            Next::Empty => break,
            other => panic!("a registered consumer got {other:?}"),
        }
    }
    assert_eq!(delivered, published, "in queue order, each once");
    // 199 items after the first: 64 + 64 + 64 + 7, then one script finding the queue empty.
    assert_eq!(scripts, 5);
    assert_eq!(server.calls("evalsha"), 5);
    assert_eq!(server.calls("blmove"), 1);
    assert_eq!(queue.completed().await.unwrap(), 200);
    assert_eq!(queue.lengths().await.unwrap(), Lengths::default());
    lease.leave().await.unwrap();
}

/// A draining or unregistered consumer's batch is acknowledged and nothing is taken, however
/// many it asks for.
#[tokio::test]
async fn a_batch_takes_nothing_while_draining_or_unregistered() {
    let (server, queue, lease, _published) = padok_with(10).await;
    let first = pop(&lease).await;
    let Next::Items(batch) = lease.ack_and_take(&[first], 4).await.unwrap().next else {
        panic!("took nothing")
    };
    assert_eq!(batch.len(), 4);

    server.cli(&["SET", "{padok}:draining:c1", "1", "PX", "60000"]);
    let answer = lease.ack_and_take(&batch[..2], MAX_BATCH).await.unwrap();
    assert_eq!(
        answer,
        AckAndTake {
            acked: vec![true, true],
            next: Next::Draining
        }
    );
    assert_eq!(
        queue.lengths().await.unwrap(),
        Lengths {
            waiting: 5,
            in_flight: 2
        }
    );

    server.cli(&["DEL", "{padok}:draining:c1", "{padok}:heartbeat:c1"]);
    let answer = lease.ack_and_take(&batch[2..], MAX_BATCH).await.unwrap();
    assert_eq!(
        answer,
        AckAndTake {
            acked: vec![true, true],
            next: Next::NotRegistered
        }
    );
    assert_eq!(
        queue.lengths().await.unwrap(),
        Lengths {
            waiting: 5,
            in_flight: 0
        }
    );
    assert_eq!(queue.completed().await.unwrap(), 5);
    lease.leave().await.unwrap();
}

/// Batches of every size from several slots, with reconciliations reading the list all the
/// while: no item of a batch is taken for a stray, none is delivered twice.
#[tokio::test]
async fn batches_and_reconciliations_together_deliver_each_item_once() {
    let (_server, queue, lease, published) = padok_with(3_000).await;
    let lease = Arc::new(lease);

    let mut slots = Vec::new();
    for slot in 0..4 {
        let first = pop(&lease).await;
        let lease = Arc::clone(&lease);
        slots.push(tokio::spawn(async move {
            let mut delivered = vec![first.raw.clone()];
            let mut batch = vec![first];
            let mut size = slot + 1;
            while let Next::Items(next) = lease.ack_and_take(&batch, size).await.unwrap().next {
                delivered.extend(next.iter().map(|delivery| delivery.raw.clone()));
                batch = next;
                size = size % MAX_BATCH + 7;
            }
            delivered
        }));
    }
    let reconciler = reconcile_all_the_while(Arc::clone(&lease), 300);
    let mut delivered = Vec::new();
    for slot in slots {
        delivered.extend(slot.await.unwrap());
    }
    assert_eq!(reconciler.await.unwrap(), 0, "nothing is a stray");
    assert_each_delivered_once(&delivered, &published);
    assert_eq!(queue.completed().await.unwrap(), 3_000);
    assert_eq!(queue.lengths().await.unwrap(), Lengths::default());
    lease.leave().await.unwrap();
}
