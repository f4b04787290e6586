//! Every Redis failure is classified ([`RedisErrorKind`]) and says what happened, against real
//! `redis-server`s set up to fail each way: a password, an ACL user, `maxmemory 1` with
//! `noeviction`, a replica, a TLS port. Only a refused connection and a timeout read
//! "unreachable".

use std::time::Duration;

use ebb_queue::{Error, Item, Queue, RedisAddress, RedisErrorKind, RedisReader};
use ebb_testkit::redis::RedisServer;

fn queue_at(url: &str) -> Queue {
    let address: RedisAddress = url.parse().unwrap();
    Queue::new(&address, "padok").unwrap()
}

fn item() -> Vec<String> {
    vec![Item::new("x").encode()]
}

/// The error's kind, after checking that its line names the address and hides secrets.
fn kind_of(error: &Error, secret: Option<&str>) -> RedisErrorKind {
    let line = error.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.starts_with("Redis at "), "{line}");
    if let Some(secret) = secret {
        assert!(!line.contains(secret), "{line}");
    }
    error.kind().unwrap_or_else(|| panic!("no kind: {line}"))
}

fn assert_not_unreachable(error: &Error, label: &str) {
    let line = error.to_string();
    eprintln!("{label}: {line}");
    let kind = error.kind().unwrap();
    assert_eq!(kind.label(), label, "{line}");
    assert!(!kind.is_unreachable(), "{line}");
    assert!(!line.contains("unreachable"), "{line}");
    assert!(line.contains(label), "{line}");
}

#[tokio::test]
async fn a_wrong_password_reads_wrong_password() {
    let server = RedisServer::start_with(&["--requirepass", "right"]);
    let wrong = queue_at(&format!("redis://:not-it@{}", server.address()));
    let error = wrong.ping().await.unwrap_err();
    kind_of(&error, Some("not-it"));
    assert_not_unreachable(&error, "wrong password");
    let error = wrong.push(&item()).await.unwrap_err();
    assert_not_unreachable(&error, "wrong password");

    let none = queue_at(&server.url());
    let error = none.ping().await.unwrap_err();
    assert_not_unreachable(&error, "wrong password");
}

#[tokio::test]
async fn an_acl_user_without_the_right_reads_permission_denied() {
    // `alice` may touch keys under `other:` only; the default user keeps no password for the
    // test kit's own checks.
    let server = RedisServer::start_with(&["--user", "alice", "on", ">pw", "~other:*", "+@all"]);
    let queue = queue_at(&format!("redis://alice:pw@{}", server.address()));
    queue.ping().await.unwrap();
    let error = queue.push(&item()).await.unwrap_err();
    kind_of(&error, Some(":pw@"));
    assert_not_unreachable(&error, "ACL permission denied");

    let wrong_user = queue_at(&format!("redis://alice:nope@{}", server.address()));
    let error = wrong_user.ping().await.unwrap_err();
    assert_not_unreachable(&error, "wrong password");
}

#[tokio::test]
async fn a_database_the_server_lacks_reads_unknown_db() {
    let server = RedisServer::start_with(&["--databases", "4"]);
    let queue = queue_at(&format!("{}/9", server.url()));
    let error = queue.ping().await.unwrap_err();
    assert_not_unreachable(&error, "unknown DB");
}

#[tokio::test]
async fn wrongtype_names_the_key_and_its_type() {
    let server = RedisServer::start();
    let queue = queue_at(&server.url());
    server.cli(&["HSET", "padok", "field", "value"]);
    let error = queue.push(&item()).await.unwrap_err();
    assert_not_unreachable(&error, "WRONGTYPE");
    assert!(
        error
            .to_string()
            .contains(r#"key "padok" holds a hash, not a list"#),
        "{error}"
    );
    // Inside a script the key is not in Redis' message: the TYPE lookup still finds it.
    let error = queue.lengths().await.unwrap_err().to_string();
    assert!(error.contains(r#"key "padok" holds a hash"#), "{error}");
    let reader = RedisReader::new(&server.url().parse().unwrap()).unwrap();
    let error = reader.list_length("padok").await.unwrap_err().to_string();
    assert!(error.contains(r#"key "padok" holds a hash"#), "{error}");

    server.cli(&["DEL", "padok"]);
    server.cli(&["SET", "{padok}:consumers", "oops"]);
    let lease = queue.consumer_lease("c1", Duration::from_secs(10)).unwrap();
    let error = lease.heartbeat().await.unwrap_err().to_string();
    assert!(
        error.contains(r#"key "{padok}:consumers" holds a string, not a set"#),
        "{error}"
    );
}

#[tokio::test]
async fn a_full_redis_reads_out_of_memory() {
    let server = RedisServer::start_with(&["--maxmemory", "1", "--maxmemory-policy", "noeviction"]);
    let queue = queue_at(&server.url());
    queue.ping().await.unwrap();
    let error = queue.push(&item()).await.unwrap_err();
    assert_not_unreachable(&error, "out of memory");
    assert_eq!(server.cli(&["LLEN", "padok"]), "0");
}

#[tokio::test]
async fn a_replica_reads_read_only() {
    let master = RedisServer::start();
    let port = master.port().to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    let queue = queue_at(&replica.url());
    queue.ping().await.unwrap();
    let error = queue.push(&item()).await.unwrap_err();
    assert_not_unreachable(&error, "read-only replica");
    assert!(error.to_string().contains("master"), "{error}");
}

#[tokio::test]
async fn tls_to_a_plain_port_and_plain_to_a_tls_port_read_tls_mismatch() {
    let server = RedisServer::start_tls(&[]);
    let tls_to_plain = queue_at(&format!("rediss://{}/#insecure", server.address()));
    let error = tls_to_plain.ping().await.unwrap_err();
    assert_not_unreachable(&error, "TLS mismatch");
    assert!(error.to_string().contains("redis://"), "{error}");

    let tls_port = server.tls_url().replace("rediss://", "redis://");
    let plain_to_tls = queue_at(&tls_port);
    let error = plain_to_tls.ping().await.unwrap_err();
    assert_not_unreachable(&error, "TLS mismatch");
    assert!(error.to_string().contains("rediss://"), "{error}");
}

#[tokio::test]
async fn only_a_refused_connection_and_a_timeout_read_unreachable() {
    let nowhere = queue_at(&format!("127.0.0.1:{}", ebb_testkit::free_port()));
    let error = nowhere.ping().await.unwrap_err();
    let kind = kind_of(&error, None);
    assert!(kind.is_unreachable(), "{error}");
    assert!(
        error
            .to_string()
            .ends_with("is unreachable: connection refused"),
        "{error}"
    );

    let server = RedisServer::start();
    let queue = queue_at(&server.url());
    queue.ping().await.unwrap();
    server.pause();
    let error = queue.ping().await.unwrap_err();
    server.unpause();
    let kind = kind_of(&error, None);
    assert!(kind.is_unreachable(), "{error}");
    assert!(matches!(kind, RedisErrorKind::Timeout { .. }), "{error}");
}

#[tokio::test]
async fn a_cluster_says_wrong_password_too() {
    let cluster = ebb_testkit::redis_cluster::RedisCluster::start_with_password(Some("right"));
    let url = cluster.url().replace(":right@", ":not-it@");
    let queue = queue_at(&url);
    let error = queue.ping().await.unwrap_err();
    kind_of(&error, Some("not-it"));
    assert_not_unreachable(&error, "wrong password");
}
