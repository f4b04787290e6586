//! Every producer endpoint and error, over real HTTP, against a real Redis.

use std::time::Duration;

use clap::Parser;
use ebb_producer::Args;
use ebb_queue::{DEFAULT_PAYLOAD, Item};
use ebb_runtime::{Shutdown, ShutdownTrigger};
use ebb_testkit::poll;
use ebb_testkit::redis::RedisServer;
use reqwest::{Client, StatusCode};

/// `ebb producer`'s command line, parsed the way the binary parses it.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn parse(flags: &[&str]) -> Result<Args, String> {
    Cli::try_parse_from([&["producer"], flags].concat())
        .map(|cli| cli.args)
        .map_err(|error| error.to_string())
}

struct Producer {
    base: String,
    client: Client,
    _stop: ShutdownTrigger,
}

impl Producer {
    /// A producer of `redis` with these extra flags.
    async fn start(redis: &RedisServer, flags: &[&str]) -> Producer {
        Producer::start_with(&[&["--redis-server", &redis.address()], flags].concat()).await
    }

    /// A producer on a free port with these flags.
    async fn start_with(flags: &[&str]) -> Producer {
        let args = parse(flags).unwrap();
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

    /// Posts `body` to `path` twice, as a text and as a JSON client, and checks that both are
    /// refused with `status` and `reason`: one line of text, or `{"error": reason}`.
    async fn assert_refused(&self, path: &str, body: &str, status: StatusCode, reason: &str) {
        assert_eq!(
            self.post(path, body, false).await,
            (status, format!("{reason}\n")),
            "{path}"
        );
        assert_eq!(
            self.post(path, body, true).await,
            (status, serde_json::json!({ "error": reason }).to_string()),
            "{path} as JSON"
        );
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
        poll::until(
            &format!("/healthz to answer {want}"),
            Duration::from_secs(10),
            || async {
                let (status, body) = self.get("/healthz").await;
                (status == want).then_some(body)
            },
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"))
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
    let producer = Producer::start(&redis, &[]).await;

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
    let producer = Producer::start(&redis, &[]).await;
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
    let producer = Producer::start(&redis, &["--max-batch", "100"]).await;
    for (path, reason) in [
        (
            "/publish/0",
            "invalid count \"0\": must be a positive integer (digits only)",
        ),
        (
            "/publish/-1",
            "invalid count \"-1\": must be a positive integer (digits only)",
        ),
        (
            "/publish/+5",
            "invalid count \"+5\": must be a positive integer (digits only)",
        ),
        (
            "/publish/abc",
            "invalid count \"abc\": must be a positive integer (digits only)",
        ),
        (
            "/publish/2.5",
            "invalid count \"2.5\": must be a positive integer (digits only)",
        ),
        (
            "/publish/101",
            "count 101 is above the maximum batch of 100 (--max-batch)",
        ),
    ] {
        producer
            .assert_refused(path, "", StatusCode::BAD_REQUEST, reason)
            .await;
    }
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
    let producer = Producer::start(&redis, &["--max-batch", "100"]).await;
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
    let producer = Producer::start(&redis, &["--max-batch", "100"]).await;
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
    let producer = Producer::start(&redis, &["--max-batch", "100"]).await;
    producer.post("/publish", "", false).await;

    redis.stop();
    // The first push may go out on the connection open before Redis stopped: its outcome is
    // unknown to the client (504, "may or may not"); once reconnecting fails, nothing can
    // land and the answer is 503.
    let (mut status, mut body) = producer.post("/publish/5", "", false).await;
    for _ in 0..50 {
        if status != StatusCode::GATEWAY_TIMEOUT {
            break;
        }
        assert!(body.ends_with("may or may not be published\n"), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status, body) = producer.post("/publish/5", "", false).await;
    }
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
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

#[tokio::test]
async fn a_batch_above_max_batch_bytes_is_413_before_anything_is_built() {
    let redis = RedisServer::start();
    let producer = Producer::start(&redis, &["--max-batch-bytes", "2KiB"]).await;
    let body = "x".repeat(100);
    // 100 bytes of payload, 189 encoded: 10 items fit in 2 KiB, 11 do not.
    let reason = "batch of 11 × 189 encoded bytes = 2079 bytes is above the maximum of 2048 bytes (--max-batch-bytes)";
    producer
        .assert_refused("/publish/11", &body, StatusCode::PAYLOAD_TOO_LARGE, reason)
        .await;
    assert_eq!(redis.cli(&["EXISTS", "padok"]), "0", "nothing pushed");
    assert_eq!(
        producer.post("/publish/10", &body, false).await.0,
        StatusCode::OK
    );
    assert_eq!(redis.cli(&["LLEN", "padok"]), "10");
}

#[tokio::test]
async fn a_body_above_max_body_bytes_is_a_one_line_413_and_is_measured() {
    let redis = RedisServer::start();
    let producer = Producer::start(&redis, &["--max-body-bytes", "1KiB"]).await;
    let reason = "the request body is above the maximum of 1024 bytes (--max-body-bytes)";
    let body = "x".repeat(1025);
    for path in ["/publish", "/publish/2"] {
        producer
            .assert_refused(path, &body, StatusCode::PAYLOAD_TOO_LARGE, reason)
            .await;
    }
    assert_eq!(redis.cli(&["EXISTS", "padok"]), "0", "nothing pushed");
    assert_eq!(
        producer.post("/publish", &body[..1024], false).await.0,
        StatusCode::OK,
        "the maximum itself is fine"
    );
    // Refused bodies are measured like every other answer (text + JSON, on each route).
    let (_, metrics) = producer.get("/metrics").await;
    for route in ["/publish", "/publish/{count}"] {
        let line = format!(
            "producer_request_duration_seconds_count{{route=\"{route}\",code=\"413\"}} 2\n"
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn a_frozen_redis_gives_504_may_or_may_not_within_the_bound_and_unhealthy() {
    let redis = RedisServer::start();
    let producer = Producer::start(&redis, &["--max-batch", "100"]).await;
    assert_eq!(producer.post("/publish", "", false).await.0, StatusCode::OK);

    redis.pause();
    let (status, body) = producer.post("/publish/3", "", false).await;
    // Not 503: that promises nothing was published, and these may still land.
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let expected = format!("Redis at {} did not answer within 5", redis.address());
    assert!(body.starts_with(&expected), "{body}");
    assert!(
        body.ends_with("s: the 3 item(s) may or may not be published\n"),
        "{body}"
    );
    assert_eq!(body.lines().count(), 1, "{body}");
    // The probe's own 1 s bound, not the publish failure, is what /healthz reports.
    let unhealthy = producer
        .wait_for_health(StatusCode::SERVICE_UNAVAILABLE)
        .await;
    assert!(
        unhealthy.starts_with("The server is unhealthy: "),
        "{unhealthy}"
    );
    let probe = format!(
        "The server is unhealthy: Redis at {} did not answer within 1s\n",
        redis.address()
    );
    for _ in 0..50 {
        if producer.get("/healthz").await.1 == probe {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(producer.get("/healthz").await.1, probe);

    redis.unpause();
    producer.wait_for_health(StatusCode::OK).await;
    assert_eq!(producer.post("/publish", "", false).await.0, StatusCode::OK);
    // 1 before, 3 sent while frozen (applied once Redis ran again: answered 504, not 503),
    // 1 after.
    assert_eq!(redis.cli(&["LLEN", "padok"]), "5");
}

#[tokio::test]
async fn publishes_over_tls_with_a_private_ca_and_a_password() {
    let mut redis = RedisServer::start_tls(&["--requirepass", "pw"]);
    let url = redis.tls_url().replace("rediss://", "rediss://:pw@");
    let ca = redis.ca_file().display().to_string();
    let producer = Producer::start_with(&["--redis-server", &url, "--redis-ca", &ca]).await;
    assert_eq!(
        producer.post("/publish/2", "over TLS", false).await,
        (StatusCode::OK, "2 messages published 👌\n".into())
    );
    // The probe runs over TLS too: it notices the TLS Redis going away and coming back (same
    // port, same certificate), with nobody publishing in between.
    assert_eq!(
        producer.get("/healthz").await,
        (StatusCode::OK, "The server is healthy\n".into())
    );
    redis.stop();
    let unhealthy = producer
        .wait_for_health(StatusCode::SERVICE_UNAVAILABLE)
        .await;
    assert!(
        unhealthy.starts_with("The server is unhealthy: "),
        "{unhealthy}"
    );
    redis.resume();
    assert_eq!(
        producer.wait_for_health(StatusCode::OK).await,
        "The server is healthy\n"
    );
    let insecure = Producer::start_with(&["--redis-server", &format!("{url}/#insecure")]).await;
    assert_eq!(insecure.post("/publish", "", false).await.0, StatusCode::OK);
    assert_eq!(redis.cli(&["LLEN", "padok"]), "3");
}

#[test]
fn flags_have_sane_defaults_and_one_line_errors_naming_the_flag() {
    let args = parse(&[]).unwrap();
    assert_eq!(args.max_batch, 1_000_000);
    assert_eq!(args.max_batch_bytes, 16 << 20);
    assert_eq!(args.max_in_flight_bytes, 96 << 20);
    assert_eq!(args.max_body_bytes, 2 << 20);
    assert_eq!(args.queue.redis_queue, "padok");
    for (flags, first_line) in [
        (
            &["--redis-queue", ""][..],
            "error: invalid value '' for '--redis-queue <REDIS_QUEUE>': must not be empty",
        ),
        (
            &["--max-batch", "0"],
            "error: invalid value '0' for '--max-batch <MAX_BATCH>': must be a positive integer (digits only)",
        ),
        (
            &["--max-batch", "-3"],
            "error: invalid value '-3' for '--max-batch <MAX_BATCH>': must be a positive integer (digits only)",
        ),
        (
            &["--max-batch-bytes", "-1"],
            "error: invalid value '-1' for '--max-batch-bytes <MAX_BATCH_BYTES>': must be a positive size in bytes: digits, optionally followed by KiB, MiB or GiB",
        ),
        (
            &["--max-body-bytes", "2MB"],
            "error: invalid value '2MB' for '--max-body-bytes <MAX_BODY_BYTES>': must be a positive size in bytes: digits, optionally followed by KiB, MiB or GiB",
        ),
    ] {
        let error = parse(flags).err().unwrap();
        assert_eq!(error.lines().next(), Some(first_line), "{flags:?}: {error}");
    }
}
