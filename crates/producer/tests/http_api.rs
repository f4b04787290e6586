//! Every producer endpoint and error, over real HTTP, against a real Redis.

use std::time::Duration;

use ebb_producer::Args;
use ebb_queue::{DEFAULT_PAYLOAD, Item};
use ebb_runtime::{Shutdown, ShutdownTrigger};
use ebb_testkit::redis::RedisServer;
use reqwest::{Client, StatusCode};

struct Producer {
    base: String,
    client: Client,
    _stop: ShutdownTrigger,
}

impl Producer {
    async fn start(redis: &RedisServer, max_batch: u64) -> Producer {
        let args = Args {
            http: "127.0.0.1:0".into(),
            redis_server: redis.address().parse().unwrap(),
            redis_queue: "padok".into(),
            max_batch,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, shutdown) = Shutdown::new();
        tokio::spawn(ebb_producer::serve(args, listener, shutdown));
        Producer {
            base,
            client: Client::new(),
            _stop: stop,
        }
    }

    async fn post(&self, path: &str, body: &str, json: bool) -> (StatusCode, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .body(body.to_owned());
        if json {
            request = request.header("accept", "application/json");
        }
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn wait_for_health(&self, want: StatusCode) -> String {
        for _ in 0..100 {
            let (status, body) = self.get("/healthz").await;
            if status == want {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("/healthz never answered {want}");
    }
}

fn queued(redis: &RedisServer) -> Vec<Item> {
    redis
        .cli(&["LRANGE", "padok", "0", "-1"])
        .lines()
        .map(Item::decode)
        .collect()
}

#[tokio::test]
async fn publishes_like_the_dojo_with_ids_and_enqueue_times() {
    let redis = RedisServer::start();
    let producer = Producer::start(&redis, 1_000_000).await;

    assert_eq!(
        producer.post("/publish", "", false).await,
        (StatusCode::OK, "Message published 👌\n".into())
    );
    assert_eq!(
        producer.post("/publish/10", "", false).await,
        (StatusCode::OK, "10 messages published 👌\n".into())
    );
    let items = queued(&redis);
    assert_eq!(items.len(), 11);
    let mut ids: Vec<_> = items.iter().map(|item| item.id.clone().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 11, "every item has its own id");
    assert!(items.iter().all(|item| item.payload == DEFAULT_PAYLOAD));
    let now = ebb_queue::unix_ms_now();
    assert!(
        items
            .iter()
            .all(|item| now - item.enqueued_at_ms.unwrap() < 60_000)
    );
}

#[tokio::test]
async fn the_body_is_the_payload_and_json_is_negotiated() {
    let redis = RedisServer::start();
    let producer = Producer::start(&redis, 1_000_000).await;
    let (status, body) = producer.post("/publish/3", "resize photo 42", true).await;
    assert_eq!(status, StatusCode::OK);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["published"], 3);
    assert_eq!(answer["queue"], "padok");
    let items = queued(&redis);
    assert!(items.iter().all(|item| item.payload == "resize photo 42"));
    assert_eq!(answer["first_id"], items[0].id.clone().unwrap());
    assert_eq!(answer["last_id"], items[2].id.clone().unwrap());
}

#[tokio::test]
async fn bad_input_gets_a_one_line_400_and_pushes_nothing() {
    let redis = RedisServer::start();
    let producer = Producer::start(&redis, 100).await;
    for (path, reason) in [
        (
            "/publish/0",
            "invalid count \"0\": expected a positive integer",
        ),
        (
            "/publish/-1",
            "invalid count \"-1\": expected a positive integer",
        ),
        (
            "/publish/abc",
            "invalid count \"abc\": expected a positive integer",
        ),
        (
            "/publish/2.5",
            "invalid count \"2.5\": expected a positive integer",
        ),
        (
            "/publish/101",
            "count 101 is above the maximum batch of 100 (--max-batch)",
        ),
    ] {
        assert_eq!(
            producer.post(path, "", false).await,
            (StatusCode::BAD_REQUEST, format!("{reason}\n")),
            "{path}"
        );
    }
    let (status, body) = producer.post("/publish/101", "", true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        r#"{"error":"count 101 is above the maximum batch of 100 (--max-batch)"}"#
    );
    assert_eq!(redis.cli(&["EXISTS", "padok"]), "0");
    assert_eq!(
        producer.post("/publish/100", "", false).await.0,
        StatusCode::OK,
        "the maximum itself is fine"
    );
}

#[tokio::test]
async fn wrong_methods_and_paths_are_refused() {
    let redis = RedisServer::start();
    let producer = Producer::start(&redis, 100).await;
    assert_eq!(
        producer.get("/publish").await,
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method GET is not allowed on /publish\n".into()
        )
    );
    assert_eq!(
        producer.get("/publish/3").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        producer.post("/healthz", "", false).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        producer.post("/publish/1/2", "", false).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(redis.cli(&["EXISTS", "padok"]), "0");
}

#[tokio::test]
async fn health_and_metrics() {
    let redis = RedisServer::start();
    let producer = Producer::start(&redis, 100).await;
    assert_eq!(
        producer.get("/healthz").await,
        (StatusCode::OK, "The server is healthy\n".into())
    );
    producer.post("/publish/7", "", false).await;
    producer.post("/publish", "", false).await;
    producer.post("/publish/0", "", false).await;
    let (status, metrics) = producer.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains("producer_messages_published_total 8\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "producer_request_duration_seconds_count{route=\"/publish/{count}\",code=\"200\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "producer_request_duration_seconds_count{route=\"/publish/{count}\",code=\"400\"} 1\n"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn redis_down_gives_503_and_both_recover_on_their_own() {
    let mut redis = RedisServer::start();
    let producer = Producer::start(&redis, 100).await;
    producer.post("/publish", "", false).await;

    redis.stop();
    let (status, body) = producer.post("/publish/5", "", false).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let expected = format!(
        "nothing published: Redis at {} is unreachable",
        redis.address()
    );
    assert!(body.starts_with(&expected), "{body}");
    assert_eq!(body.lines().count(), 1, "{body}");
    let unhealthy = producer
        .wait_for_health(StatusCode::SERVICE_UNAVAILABLE)
        .await;
    assert!(
        unhealthy.starts_with("The server is unhealthy: "),
        "{unhealthy}"
    );

    redis.resume();
    // Nobody publishes: the health probe alone notices that Redis is back.
    producer.wait_for_health(StatusCode::OK).await;
    assert_eq!(
        producer.post("/publish/2", "", false).await.0,
        StatusCode::OK
    );
    assert_eq!(
        redis.cli(&["LLEN", "padok"]),
        "3",
        "1 before the outage + 2 after"
    );
}
