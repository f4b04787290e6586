//! Keyspace notifications from a real `redis-server`: detected where the server sends them,
//! turned on only when asked, and a change of a watched key arrives as a signal.

use std::time::Duration;

use ebb_queue::RedisAddress;
use ebb_testkit::redis::RedisServer;

fn address(server: &RedisServer) -> RedisAddress {
    server.address().parse().unwrap()
}

#[tokio::test]
async fn a_change_of_a_watched_key_is_signalled_where_the_server_sends_them() {
    let server = RedisServer::start_with(&["--notify-keyspace-events", "Kl"]);
    let mut changes = address(&server)
        .watch_keys(&["padok".to_owned()])
        .await
        .unwrap()
        .expect("the server sends keyspace notifications");
    server.cli(&["RPUSH", "other", "x"]);
    server.cli(&["RPUSH", "padok", "x"]);
    tokio::time::timeout(Duration::from_secs(2), changes.changed())
        .await
        .expect("signalled within 2 s")
        .expect("still subscribed");
}

#[tokio::test]
async fn a_server_without_them_is_polled_until_the_opt_in_turns_them_on() {
    let server = RedisServer::start();
    let address = address(&server);
    assert!(
        address
            .watch_keys(&["padok".to_owned()])
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        server.cli(&["CONFIG", "GET", "notify-keyspace-events"]),
        "notify-keyspace-events"
    );

    address.enable_keyspace_events().await.unwrap();
    let flags = server.cli(&["CONFIG", "GET", "notify-keyspace-events"]);
    assert!(flags.contains('K') && flags.contains('l'), "{flags}");
    let mut changes = address
        .watch_keys(&["padok".to_owned()])
        .await
        .unwrap()
        .unwrap();
    server.cli(&["LPUSH", "padok", "x"]);
    tokio::time::timeout(Duration::from_secs(2), changes.changed())
        .await
        .unwrap()
        .unwrap();
}
