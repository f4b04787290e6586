//! Keyspace notifications from a real `redis-server` and a real three-master Redis Cluster:
//! detected per node where they are sent, turned on only when asked, one subscription per
//! node for every watcher, and a change of a watched key arrives as a wake.

use std::sync::Arc;
use std::time::Duration;

use ebb_queue::{KeyspaceEvents, RedisAddress};
use ebb_testkit::redis::RedisServer;
use ebb_testkit::redis_cluster::RedisCluster;
use tokio::sync::Notify;

fn address(url: &str) -> RedisAddress {
    url.parse().unwrap()
}

async fn woken(wake: &Notify) -> bool {
    tokio::time::timeout(Duration::from_secs(2), wake.notified())
        .await
        .is_ok()
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn one_subscription_per_server_fans_changes_out_to_the_watchers_of_each_key() {
    let server = RedisServer::start_with(&["--notify-keyspace-events", "Kl"]);
    let events = KeyspaceEvents::new(&address(&server.url()), false);
    let (padok_a, padok_b, orders) = (
        Arc::new(Notify::new()),
        Arc::new(Notify::new()),
        Arc::new(Notify::new()),
    );
    let _a = events.watch(vec!["padok".to_owned()], padok_a.clone());
    let b = events.watch(vec!["padok".to_owned()], padok_b.clone());
    let _orders = events.watch(
        vec!["orders".to_owned(), "{orders}:*".to_owned()],
        orders.clone(),
    );
    tokio::time::timeout(Duration::from_secs(5), events.subscribed(1))
        .await
        .expect("subscribed within 5 s");
    settle().await;
    assert_eq!(
        server
            .cli(&["CLIENT", "LIST", "TYPE", "pubsub"])
            .lines()
            .count(),
        1,
        "one pub/sub connection for every watcher"
    );
    assert_eq!(server.cli(&["PUBSUB", "NUMPAT"]), "3");

    server.cli(&["RPUSH", "padok", "x"]);
    assert!(woken(&padok_a).await && woken(&padok_b).await);
    assert!(
        !woken(&orders).await,
        "a change of padok woke the orders watcher"
    );
    server.cli(&["RPUSH", "{orders}:processing:c1", "x"]);
    assert!(woken(&orders).await);

    drop(b);
    settle().await;
    server.cli(&["RPUSH", "padok", "x"]);
    assert!(woken(&padok_a).await);
    assert!(!woken(&padok_b).await, "a dropped watch still woken");
    assert_eq!(
        server.cli(&["PUBSUB", "NUMPAT"]),
        "3",
        "padok still watched by one"
    );
}

#[tokio::test]
async fn a_lost_subscription_is_made_again_and_wakes_every_watcher() {
    let server = RedisServer::start_with(&["--notify-keyspace-events", "Kl"]);
    let events = KeyspaceEvents::new(&address(&server.url()), false);
    let wake = Arc::new(Notify::new());
    let _watch = events.watch(vec!["padok".to_owned()], wake.clone());
    tokio::time::timeout(Duration::from_secs(5), events.subscribed(1))
        .await
        .unwrap();
    settle().await;
    server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    // Woken by the new subscription itself: a change may have gone unannounced.
    assert!(woken(&wake).await);
    settle().await;
    server.cli(&["RPUSH", "padok", "x"]);
    assert!(woken(&wake).await);
}

#[tokio::test]
async fn a_server_without_them_is_polled_unless_the_opt_in_turns_them_on() {
    let server = RedisServer::start();
    let address = address(&server.url());
    let wake = Arc::new(Notify::new());
    let events = KeyspaceEvents::new(&address, false);
    let _watch = events.watch(vec!["padok".to_owned()], wake.clone());
    settle().await;
    server.cli(&["RPUSH", "padok", "x"]);
    assert!(!woken(&wake).await);
    assert_eq!(
        server.cli(&["CONFIG", "GET", "notify-keyspace-events"]),
        "notify-keyspace-events",
        "turned on without the opt-in"
    );
    assert_eq!(server.cli(&["PUBSUB", "NUMPAT"]), "0");

    let opted_in = KeyspaceEvents::new(&address, true);
    let _watch = opted_in.watch(vec!["padok".to_owned()], wake.clone());
    tokio::time::timeout(Duration::from_secs(5), opted_in.subscribed(1))
        .await
        .unwrap();
    let flags = server.cli(&["CONFIG", "GET", "notify-keyspace-events"]);
    assert!(flags.contains('K') && flags.contains('l'), "{flags}");
    settle().await;
    server.cli(&["LPUSH", "padok", "x"]);
    assert!(woken(&wake).await);
}

#[tokio::test]
async fn on_a_cluster_every_master_is_detected_enabled_and_subscribed() {
    let cluster = RedisCluster::start();
    let ports = cluster.ports();
    // One key served by each master.
    let keys: Vec<String> = ports
        .iter()
        .map(|port| {
            (0..)
                .map(|n| format!("list-{n}"))
                .find(|key| cluster.port_serving(cluster.slot_of(key)) == *port)
                .unwrap()
        })
        .collect();
    let address = address(&cluster.url_with_seeds(&ports[..1]));

    let without = KeyspaceEvents::new(&address, false);
    let wake = Arc::new(Notify::new());
    let _watch = without.watch(keys.clone(), wake.clone());
    settle().await;
    cluster.cli_at(ports[1], &["RPUSH", &keys[1], "x"]);
    assert!(!woken(&wake).await, "woken by a cluster that sends nothing");

    let events = KeyspaceEvents::new(&address, true);
    let wakes: Vec<Arc<Notify>> = keys.iter().map(|_| Arc::new(Notify::new())).collect();
    let _watches: Vec<_> = keys
        .iter()
        .zip(&wakes)
        .map(|(key, wake)| events.watch(vec![key.clone()], wake.clone()))
        .collect();
    tokio::time::timeout(Duration::from_secs(10), events.subscribed(ports.len()))
        .await
        .expect("every master subscribed within 10 s");
    for port in &ports {
        let flags = cluster.cli_at(*port, &["CONFIG", "GET", "notify-keyspace-events"]);
        assert!(
            flags.contains('K') && flags.contains('l'),
            "node {port}: {flags}"
        );
    }
    settle().await;
    for (n, (key, port)) in keys.iter().zip(&ports).enumerate() {
        cluster.cli_at(*port, &["RPUSH", key, "x"]);
        assert!(woken(&wakes[n]).await, "{key} on node {port}");
        for (other, wake) in wakes.iter().enumerate() {
            if other != n {
                assert!(
                    tokio::time::timeout(Duration::from_millis(100), wake.notified())
                        .await
                        .is_err(),
                    "{} woken by a change of {key}",
                    keys[other]
                );
            }
        }
    }
}
