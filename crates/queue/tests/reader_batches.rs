//! `RedisReader` coalescing concurrent calls into pipelines, against a real `redis-server` and
//! a real three-master Redis Cluster: every answer goes to its own caller, errors stay per
//! call, and many calls cost a few round trips (one per node on a cluster).

use std::time::{Duration, Instant};

use ebb_queue::{Error, Item, Queue, QueueCounts, RedisAddress, RedisReader, StreamGroup};
use ebb_testkit::redis::RedisServer;
use ebb_testkit::redis_cluster::RedisCluster;
use futures::future::join_all;

fn reader(url: &str) -> RedisReader {
    RedisReader::new(&url.parse::<RedisAddress>().unwrap()).unwrap()
}

#[tokio::test]
async fn concurrent_calls_share_a_round_trip_and_each_gets_its_own_answer() {
    let server = RedisServer::start();
    for n in 0..300 {
        let key = format!("list-{n}");
        let items: Vec<String> = (0..n % 7).map(|i| i.to_string()).collect();
        if !items.is_empty() {
            let mut args = vec!["RPUSH", key.as_str()];
            args.extend(items.iter().map(String::as_str));
            server.cli(&args);
        }
    }
    server.cli(&["SET", "a-string", "x"]);
    let reader = reader(&server.url());
    // Warm up the connection so the count below is the calls' own.
    reader.list_length("list-1").await.unwrap();
    let before = reader.round_trips();

    let clones: Vec<RedisReader> = (0..300).map(|_| reader.clone()).collect();
    let answers = join_all(
        clones
            .iter()
            .enumerate()
            .map(|(n, reader)| async move { reader.list_length(&format!("list-{n}")).await }),
    );
    let wrong_type = reader.list_length("a-string");
    let (answers, wrong_type) = tokio::join!(answers, wrong_type);

    for (n, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.unwrap(), (n % 7) as u64, "list-{n}");
    }
    let error = wrong_type.expect_err("LLEN of a string is an error, for that call only");
    assert!(error.to_string().contains("WRONGTYPE"), "{error}");
    let round_trips = reader.round_trips() - before;
    assert!(
        round_trips <= 2,
        "301 concurrent calls took {round_trips} round trips"
    );
}

#[tokio::test]
async fn a_pipeline_holds_at_most_512_calls() {
    let server = RedisServer::start();
    server.cli(&["RPUSH", "padok", "a", "b"]);
    let reader = reader(&server.url());
    reader.list_length("padok").await.unwrap();
    let before = reader.round_trips();
    let answers = join_all((0..1_200).map(|_| reader.list_length("padok"))).await;
    assert!(answers.into_iter().all(|answer| answer.unwrap() == 2));
    let round_trips = reader.round_trips() - before;
    assert!(
        (3..=4).contains(&round_trips),
        "1,200 calls in {round_trips} pipelines, expected 3 (512 + 512 + 176) or 4"
    );
}

#[tokio::test]
async fn scripts_unknown_to_redis_are_sent_again_in_full() {
    let server = RedisServer::start();
    server.cli(&["XADD", "orders", "*", "n", "1"]);
    server.cli(&["XGROUP", "CREATE", "orders", "workers", "0"]);
    let reader = reader(&server.url());
    let expected = StreamGroup::Found(ebb_queue::GroupBacklog {
        undelivered: 1,
        pending: 0,
        counted: false,
    });
    for _ in 0..2 {
        // A fresh server knows no script; then a flush forgets them again.
        let answers = join_all((0..50).map(|_| reader.stream_group("orders", "workers"))).await;
        for answer in answers {
            assert_eq!(answer.unwrap(), expected);
        }
        server.cli(&["SCRIPT", "FLUSH"]);
    }
    assert_eq!(
        reader.stream_group("nothing", "workers").await.unwrap(),
        StreamGroup::MissingStream
    );
    assert_eq!(
        reader.stream_group("orders", "typo").await.unwrap(),
        StreamGroup::MissingGroup
    );
}

#[tokio::test]
async fn queue_counts_match_the_queue_s_own() {
    let server = RedisServer::start();
    let address: RedisAddress = server.url().parse().unwrap();
    let queue = Queue::new(&address, "padok").unwrap();
    let items: Vec<String> = (0..5).map(|n| Item::new(format!("{n}")).encode()).collect();
    queue.push(&items).await.unwrap();
    let lease = queue.consumer_lease("c1", Duration::from_secs(30)).unwrap();
    lease.heartbeat().await.unwrap();
    let first = lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    lease.pop(Duration::from_secs(1)).await.unwrap().unwrap();
    assert!(lease.ack(&first).await.unwrap());
    // A consumer of an earlier version (untagged keys) holding one item, and its acks.
    server.cli(&["SADD", "padok:consumers", "old"]);
    server.cli(&["RPUSH", "padok:processing:old", "x"]);
    server.cli(&["SET", "padok:completed", "4"]);

    let reader = RedisReader::new(&address).unwrap();
    let counts = reader.queue_counts("padok").await.unwrap();
    let lengths = queue.lengths().await.unwrap();
    assert_eq!(
        counts,
        QueueCounts {
            waiting: lengths.waiting,
            in_flight: lengths.in_flight,
            completed: queue.completed().await.unwrap(),
        }
    );
    assert_eq!(
        counts,
        QueueCounts {
            waiting: 3,
            in_flight: 2,
            completed: 5
        }
    );
    assert_eq!(
        reader.queue_counts("empty").await.unwrap(),
        QueueCounts::default()
    );
    assert!(matches!(
        reader.queue_counts("").await,
        Err(Error::InvalidName { .. })
    ));
}

#[tokio::test]
async fn a_frozen_server_fails_every_queued_call_within_the_timeout() {
    let server = RedisServer::start();
    let reader = reader(&server.url());
    reader.list_length("padok").await.unwrap();
    server.pause();
    let started = Instant::now();
    let answers = join_all((0..20).map(|_| reader.list_length("padok"))).await;
    let waited = started.elapsed();
    server.unpause();
    for answer in answers {
        assert!(matches!(answer, Err(Error::NoAnswer { .. })), "{answer:?}");
    }
    assert!(waited < Duration::from_secs(11), "waited {waited:?}");
    // The reader recovers with the server.
    assert_eq!(reader.list_length("padok").await.unwrap(), 0);
}

#[tokio::test]
async fn on_a_cluster_calls_are_grouped_per_node_and_follow_a_moved_slot() {
    let cluster = RedisCluster::start();
    let ports = cluster.ports();
    let keys: Vec<String> = (0..300).map(|n| format!("list-{n}")).collect();
    for (n, key) in keys.iter().enumerate() {
        let port = cluster.port_serving(cluster.slot_of(key));
        for _ in 0..n % 5 {
            cluster.cli_at(port, &["RPUSH", key, "x"]);
        }
    }
    let stream = "orders";
    let stream_port = cluster.port_serving(cluster.slot_of(stream));
    cluster.cli_at(stream_port, &["XADD", stream, "*", "n", "1"]);
    cluster.cli_at(stream_port, &["XGROUP", "CREATE", stream, "workers", "0"]);
    let reader = reader(&cluster.url_with_seeds(&ports[..1]));
    reader.list_length(&keys[0]).await.unwrap();
    let before = reader.round_trips();

    let lengths = join_all(keys.iter().map(|key| reader.list_length(key))).await;
    for (n, length) in lengths.into_iter().enumerate() {
        assert_eq!(length.unwrap(), (n % 5) as u64, "{}", keys[n]);
    }
    let round_trips = reader.round_trips() - before;
    assert!(
        round_trips <= ports.len() as u64,
        "300 calls over {} masters took {round_trips} round trips",
        ports.len()
    );

    // A script, and a slot that moves under the reader's slot map: answers stay right.
    let found = reader.stream_group(stream, "workers").await.unwrap();
    assert!(matches!(found, StreamGroup::Found(backlog) if backlog.undelivered == 1));
    let moved = &keys[4];
    let slot = cluster.slot_of(moved);
    let to = *ports
        .iter()
        .find(|port| **port != cluster.port_serving(slot))
        .unwrap();
    cluster.move_slot(slot, to);
    let lengths = join_all(keys.iter().map(|key| reader.list_length(key))).await;
    for (n, length) in lengths.into_iter().enumerate() {
        assert_eq!(
            length.unwrap(),
            (n % 5) as u64,
            "{} after the move",
            keys[n]
        );
    }
}
