//! `RedisListSource` on a real redis-server: a plain list's length, 0 when missing.

use ebb_queue::{RedisAddress, RedisReader};
use ebb_sources::redis_list::RedisListSource;
use ebb_sources::{MetricSource, Reading};
use ebb_testkit::redis::RedisServer;

fn reader_on(server: &RedisServer) -> RedisReader {
    let address: RedisAddress = server.address().parse().unwrap();
    RedisReader::new(&address).unwrap()
}

fn waiting(n: u64) -> Reading {
    // Neither a PromQL value nor a plain list can tell what is in flight: unknown, not 0.
    Reading::waiting(n)
}

#[tokio::test]
async fn a_list_reads_as_its_length_and_a_missing_one_as_zero() {
    let server = RedisServer::start();
    let source = RedisListSource::new(reader_on(&server), "padok");
    assert_eq!(
        source.describe(),
        format!("redis {} list padok", server.address())
    );
    assert_eq!(source.read().await.unwrap(), waiting(0));

    server.cli(&["RPUSH", "padok", "a", "b", "c"]);
    assert_eq!(source.read().await.unwrap(), waiting(3));

    server.cli(&["LPOP", "padok"]);
    assert_eq!(source.read().await.unwrap(), waiting(2));
}

#[tokio::test]
async fn a_list_behind_tls_and_a_password_is_read_with_the_private_ca() {
    let server = RedisServer::start_tls(&["--requirepass", "s3cret"]);
    server.cli(&["RPUSH", "padok", "a", "b"]);
    let url = server.tls_url().replace("rediss://", "rediss://:s3cret@");
    let address = url
        .parse::<RedisAddress>()
        .unwrap()
        .trusting(&server.ca_file())
        .unwrap();
    let source = RedisListSource::new(RedisReader::new(&address).unwrap(), "padok");
    assert_eq!(source.read().await.unwrap(), waiting(2));
}

#[tokio::test]
async fn a_key_of_another_type_is_an_error_naming_the_list() {
    let server = RedisServer::start();
    server.cli(&["SET", "padok", "not a list"]);
    let source = RedisListSource::new(reader_on(&server), "padok");
    let message = source.read().await.unwrap_err().to_string();
    assert!(message.starts_with("reading list padok: "), "{message}");
    assert!(message.contains("WRONGTYPE"), "{message}");
}

#[tokio::test]
async fn a_stopped_redis_is_an_error_naming_its_address_once() {
    let mut server = RedisServer::start();
    let source = RedisListSource::new(reader_on(&server), "padok");
    server.stop();
    let message = source.read().await.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "reading list padok: Redis at {} is unreachable: ",
            server.address()
        )),
        "{message}"
    );
    assert_eq!(message.matches(&server.address()).count(), 1, "{message}");
}
