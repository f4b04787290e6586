//! The consumer in-process against a real Redis: items of every shape, concurrency, graceful
//! shutdown, the operations endpoints, and a Redis outage.

use std::time::Duration;

use ebb_consumer::Args;
use ebb_queue::{Item, Lengths, Queue};
use ebb_runtime::{Shutdown, ShutdownTrigger};
use ebb_testkit::redis::RedisServer;
use tokio::task::JoinHandle;

struct Consumer {
    base: String,
    stop: ShutdownTrigger,
    running: JoinHandle<ebb_consumer::Result<()>>,
}

async fn start(redis: &RedisServer, per_msg: Duration, concurrency: u32) -> Consumer {
    let args = Args {
        http: "127.0.0.1:0".into(),
        redis_server: redis.address().parse().unwrap(),
        redis_queue: "padok".into(),
        per_msg,
        cpu_burn: false,
        concurrency,
        lease: Duration::from_secs(2),
        consumer_id: Some("c1".into()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, shutdown) = Shutdown::new();
    let running = tokio::spawn(ebb_consumer::serve(args, listener, shutdown));
    Consumer {
        base,
        stop,
        running,
    }
}

async fn get(url: String) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(response) => (response.status().as_u16(), response.text().await.unwrap()),
        Err(error) => (0, error.to_string()),
    }
}

async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn works_through_envelopes_and_plain_items_and_reports_metrics() {
    let redis = RedisServer::start();
    let queue = Queue::new(&redis.address().parse().unwrap(), "padok").unwrap();
    let consumer = start(&redis, Duration::ZERO, 1).await;
    queue
        .push(&[
            Item::new("one").encode(),
            "plain text from redis-cli".into(),
            "{\"not\": \"ours\"}".into(),
        ])
        .await
        .unwrap();
    eventually("the queue to drain", || async {
        queue.lengths().await.unwrap() == Lengths::default()
    })
    .await;
    eventually("3 items counted", || async {
        get(format!("{}/metrics", consumer.base))
            .await
            .1
            .contains("consumer_messages_consumed_total 3\n")
    })
    .await;
    let (_, metrics) = get(format!("{}/metrics", consumer.base)).await;
    assert!(
        metrics.contains("consumer_processing_duration_seconds_count 3\n"),
        "{metrics}"
    );
    // Only the envelope carries an enqueue time.
    assert!(
        metrics.contains("consumer_queue_latency_seconds_count 1\n"),
        "{metrics}"
    );
    assert_eq!(
        get(format!("{}/healthz", consumer.base)).await,
        (200, "The server is healthy\n".into())
    );
    let wrong_method = reqwest::Client::new()
        .post(format!("{}/metrics", consumer.base))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);

    consumer.stop.trigger();
    consumer.running.await.unwrap().unwrap();
    assert_eq!(
        redis.cli(&["EXISTS", "padok:consumers", "padok:heartbeat:c1"]),
        "0"
    );
}

#[tokio::test]
async fn takes_concurrency_items_at_once_and_finishes_them_on_shutdown() {
    let redis = RedisServer::start();
    let queue = Queue::new(&redis.address().parse().unwrap(), "padok").unwrap();
    let items: Vec<String> = (0..10)
        .map(|n| Item::new(format!("{n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();
    let consumer = start(&redis, Duration::from_secs(2), 4).await;
    eventually("4 items in flight", || async {
        queue.lengths().await.unwrap()
            == Lengths {
                waiting: 6,
                in_flight: 4,
            }
    })
    .await;

    consumer.stop.trigger();
    consumer.running.await.unwrap().unwrap();
    // The 4 in hand were finished and acknowledged; no new one was taken.
    assert_eq!(
        queue.lengths().await.unwrap(),
        Lengths {
            waiting: 6,
            in_flight: 0
        }
    );
    assert_eq!(redis.cli(&["LINDEX", "padok", "0"]), items[4]);
}

#[tokio::test]
async fn reports_unhealthy_while_redis_is_down_and_resumes_alone() {
    let mut redis = RedisServer::start();
    let queue = Queue::new(&redis.address().parse().unwrap(), "padok").unwrap();
    let consumer = start(&redis, Duration::ZERO, 1).await;
    eventually("healthy", || async {
        get(format!("{}/healthz", consumer.base)).await.0 == 200
    })
    .await;

    redis.stop();
    eventually("unhealthy", || async {
        get(format!("{}/healthz", consumer.base)).await.0 == 503
    })
    .await;
    let (_, body) = get(format!("{}/healthz", consumer.base)).await;
    let expected = format!(
        "The server is unhealthy: Redis at {} is unreachable",
        redis.address()
    );
    assert!(body.starts_with(&expected), "{body}");

    redis.resume();
    queue
        .push(&[Item::new("after the outage").encode()])
        .await
        .ok();
    eventually("healthy again", || async {
        get(format!("{}/healthz", consumer.base)).await.0 == 200
    })
    .await;
    eventually("the new item consumed", || async {
        queue
            .lengths()
            .await
            .is_ok_and(|lengths| lengths == Lengths::default())
            && redis.cli(&["EXISTS", "padok"]) == "0"
    })
    .await;
    consumer.stop.trigger();
    consumer.running.await.unwrap().unwrap();
}
