//! The queue on a real three-master Redis Cluster: the queue's keys share the list's slot, the
//! client finds that slot's node from one seed, and follows `MOVED` and `ASK` when the slot
//! moves under it.

use std::time::Duration;

use ebb_queue::{Item, Lengths, Queue, Reaped, RedisAddress};
use ebb_testkit::redis_cluster::RedisCluster;

/// `Lengths` in one line, for the assertions on what the queue holds.
fn lengths(waiting: u64, in_flight: u64) -> Lengths {
    Lengths { waiting, in_flight }
}

fn items(count: usize) -> Vec<String> {
    (0..count)
        .map(|n| Item::new(format!("item {n}")).encode())
        .collect()
}

/// A queue name whose slot is not served by the node at `port`.
fn name_away_from(cluster: &RedisCluster, port: u16) -> String {
    (0..)
        .map(|n| format!("padok-{n}"))
        .find(|name| cluster.port_serving(cluster.slot_of(name)) != port)
        .expect("some name hashes elsewhere")
}

#[tokio::test]
async fn publish_lease_ack_reap_and_counts_follow_the_slot_wherever_it_moves() {
    let cluster = RedisCluster::start();
    let ports = cluster.ports();
    let name = name_away_from(&cluster, ports[0]);
    let slot = cluster.slot_of(&name);
    let owner = cluster.port_serving(slot);
    // Only the first node as seed: every command has to reach another node.
    let address: RedisAddress = cluster.url_with_seeds(&ports[..1]).parse().unwrap();
    assert!(address.is_cluster());
    assert_eq!(
        address.to_string(),
        format!("redis+cluster://127.0.0.1:{}", ports[0])
    );
    let queue = Queue::new(&address, &name).unwrap();
    queue.ping().await.unwrap();

    let batch = items(25_001);
    queue.push(&batch).await.unwrap();
    assert_eq!(cluster.cli_at(owner, &["LLEN", &name]), "25001");
    assert_eq!(cluster.cli_at(owner, &["LINDEX", &name, "0"]), batch[0]);

    let lease = queue
        .consumer_lease("c1", Duration::from_millis(300))
        .unwrap();
    let survivor = queue.consumer_lease("c2", Duration::from_secs(30)).unwrap();
    lease.heartbeat().await.unwrap();
    survivor.heartbeat().await.unwrap();
    let first = lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    let held = lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(
        (first.raw.as_str(), held.raw.as_str()),
        (batch[0].as_str(), batch[1].as_str())
    );
    assert!(lease.ack(&first).await.unwrap());
    assert_eq!(queue.lengths().await.unwrap(), lengths(24_999, 1));
    assert_eq!(queue.completed().await.unwrap(), 1);
    // Every key of the queue is on the list's node, under the list's hash tag.
    let tagged = format!("{{{name}}}");
    for key in [
        format!("{tagged}:consumers"),
        format!("{tagged}:processing:c1"),
        format!("{tagged}:heartbeat:c2"),
        format!("{tagged}:completed"),
    ] {
        assert_eq!(cluster.slot_of(&key), slot, "{key}");
        assert_eq!(cluster.cli_at(owner, &["EXISTS", &key]), "1", "{key}");
    }

    // The slot moves to another node: the client's slot map is stale, the old owner answers
    // MOVED, and every operation still lands.
    let elsewhere = *ports.iter().find(|&&port| port != owner).unwrap();
    cluster.move_slot(slot, elsewhere);
    queue.push(&items(1)).await.unwrap();
    assert_eq!(cluster.cli_at(elsewhere, &["LLEN", &name]), "25000");
    let moved = survivor.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(moved.raw, batch[2]);
    assert!(survivor.ack(&moved).await.unwrap());
    assert_eq!(queue.lengths().await.unwrap(), lengths(24_999, 1));
    assert_eq!(queue.completed().await.unwrap(), 2);

    // c1 stops heartbeating: the reaper returns its item to the head of the list.
    tokio::time::sleep(Duration::from_millis(400)).await;
    survivor.heartbeat().await.unwrap();
    assert_eq!(
        queue.reap().await.unwrap(),
        Reaped {
            consumers: 1,
            items: 1
        }
    );
    assert_eq!(cluster.cli_at(elsewhere, &["LINDEX", &name, "0"]), held.raw);
    assert_eq!(
        cluster.cli_at(elsewhere, &["SMEMBERS", &format!("{tagged}:consumers")]),
        "c2"
    );

    // Half-way through a move, the old owner answers ASK for the keys already gone.
    let third = *ports
        .iter()
        .find(|&&port| port != owner && port != elsewhere)
        .unwrap();
    cluster.begin_slot_move(slot, third);
    assert_eq!(queue.completed().await.unwrap(), 2);
    cluster.finish_slot_move(slot, third);
    assert_eq!(queue.lengths().await.unwrap(), lengths(25_000, 0));
    assert_eq!(
        survivor.leave().await.unwrap(),
        Reaped {
            consumers: 1,
            items: 0
        }
    );
    assert_eq!(cluster.cli_at(third, &["LLEN", &name]), "25000");
}

#[tokio::test]
async fn a_password_protected_cluster_authenticates_and_keeps_the_password_secret() {
    let cluster = RedisCluster::start_with_password(Some("s3cret"));
    let ports = cluster.ports();
    let good: RedisAddress = cluster.url().parse().unwrap();
    assert!(!good.to_string().contains("s3cret"), "{good}");
    let queue = Queue::new(&good, "padok").unwrap();
    queue.push(&items(3)).await.unwrap();
    assert_eq!(queue.lengths().await.unwrap().waiting, 3);
    assert_eq!(cluster.cli(&["LLEN", "padok"]), "3");

    let bad: RedisAddress = format!("redis+cluster://:n0t-1t@127.0.0.1:{}", ports[1])
        .parse()
        .unwrap();
    let error = Queue::new(&bad, "padok")
        .unwrap()
        .ping()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("Redis at redis+cluster://127.0.0.1:{}", ports[1])),
        "{error}"
    );
    assert!(
        !error.contains("n0t-1t"),
        "the password stays secret: {error}"
    );
    assert!(error.contains(": wrong password: "), "{error}");
}

#[tokio::test]
async fn names_with_their_own_hash_tag_or_a_brace_keep_every_key_in_one_slot() {
    let cluster = RedisCluster::start();
    let address: RedisAddress = cluster.url().parse().unwrap();
    // A key outside the list's slot would make these scripts and transactions fail (CROSSSLOT).
    for name in ["{orders}.high", "a{b", "{padok}"] {
        let queue = Queue::new(&address, name).unwrap();
        queue.push(&items(2)).await.unwrap();
        let lease = queue
            .consumer_lease("c1", Duration::from_millis(200))
            .unwrap();
        lease.heartbeat().await.unwrap();
        let taken = lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
        assert!(lease.ack(&taken).await.unwrap(), "{name}");
        lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!(queue.lengths().await.unwrap(), lengths(0, 1), "{name}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(queue.reap().await.unwrap().items, 1, "{name}");
        assert_eq!(queue.completed().await.unwrap(), 1, "{name}");
        assert_eq!(cluster.cli(&["LLEN", name]), "1", "{name}");
    }
}

#[tokio::test]
async fn a_queue_starts_while_the_cluster_is_unreachable_and_each_call_says_so_quickly() {
    let port = ebb_testkit::free_port();
    let address: RedisAddress = format!("redis+cluster://127.0.0.1:{port}").parse().unwrap();
    let queue = Queue::new(&address, "padok").unwrap();
    let started = std::time::Instant::now();
    let error = queue.push(&items(1)).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "Redis at redis+cluster://127.0.0.1:{port} is unreachable"
        )),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed in {:?}",
        started.elapsed()
    );
    let error = queue.lengths().await.unwrap_err().to_string();
    assert!(error.contains("is unreachable"), "{error}");
}

#[tokio::test]
async fn a_tls_cluster_is_reached_trusting_a_private_ca() {
    let cluster = RedisCluster::start_tls();
    let ports = cluster.ports();
    let name = name_away_from(&cluster, ports[0]);
    let url = cluster.url_with_seeds(&ports[..1]);
    let address: RedisAddress = url.parse().unwrap();
    // Without the CA, the nodes' certificate is refused.
    let error = Queue::new(&address, &name)
        .unwrap()
        .ping()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("TLS handshake failed"), "{error}");

    let trusted = address.trusting(&cluster.ca_file()).unwrap();
    let queue = Queue::new(&trusted, &name).unwrap();
    queue.ping().await.unwrap();
    queue.push(&items(3)).await.unwrap();
    let lease = queue.consumer_lease("c1", Duration::from_secs(10)).unwrap();
    lease.heartbeat().await.unwrap();
    let taken = lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert!(lease.ack(&taken).await.unwrap());
    assert_eq!(queue.lengths().await.unwrap(), lengths(2, 0));
    assert_eq!(cluster.cli(&["LLEN", &name]), "2");
}
