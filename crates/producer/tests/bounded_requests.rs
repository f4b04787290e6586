//! What one request, and all of them together, may cost the producer: `--max-batch-bytes`
//! counts what goes to Redis (the envelope of each item, not only its body), and
//! `--max-in-flight-bytes` answers 429 instead of growing when publishes in flight hold it.

use std::time::Duration;

use clap::Parser;
use ebb_producer::Args;
use ebb_runtime::Shutdown;
use ebb_testkit::redis::RedisServer;
use reqwest::StatusCode;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

/// A producer of `redis` with `flags`, on a free port; its base URL and its stop trigger.
async fn start(redis: &RedisServer, flags: &[&str]) -> (String, ebb_runtime::ShutdownTrigger) {
    let args =
        Cli::try_parse_from([&["producer", "--redis-server", &redis.address()], flags].concat())
            .unwrap()
            .args;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, shutdown) = Shutdown::new();
    tokio::spawn(ebb_producer::serve(args, listener, shutdown));
    (base, stop)
}

async fn post(base: &str, path: &str, body: &'static str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_million_one_byte_items_are_refused_413_naming_the_limit_before_anything_is_built() {
    let redis = RedisServer::start();
    let (base, _stop) = start(&redis, &[]).await;
    let refused = post(&base, "/publish/1000000", "x").await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        refused.text().await.unwrap(),
        "batch of 1000000 × 90 encoded bytes = 90000000 bytes is above the maximum of 16777216 bytes (--max-batch-bytes)\n"
    );
    assert_eq!(redis.cli(&["EXISTS", "padok"]), "0", "nothing pushed");
    // The largest batch that fits is published whole.
    let fits = (16 << 20) / 90;
    let published = post(&base, &format!("/publish/{fits}"), "x").await;
    assert_eq!(published.status(), StatusCode::OK);
    assert_eq!(redis.cli(&["LLEN", "padok"]), fits.to_string());
}

#[tokio::test]
async fn publishes_past_the_in_flight_budget_are_answered_429_and_push_nothing() {
    let redis = RedisServer::start();
    // 100 one-byte items take 100 × (5 × 90 + 72) = 52200 bytes while pushed.
    let (base, _stop) = start(&redis, &["--max-in-flight-bytes", "80000"]).await;
    redis.pause();
    // Redis frozen: this publish holds its share until Redis answers (52200, and 1 for its
    // body; the refused one holds 1 for its own body while it is answered).
    let holding = tokio::spawn({
        let base = base.clone();
        async move { post(&base, "/publish/100", "x").await.status() }
    });
    let mut busy = None;
    for _ in 0..100 {
        let answer = post(&base, "/publish/100", "x").await;
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            busy = Some(answer);
            break;
        }
        // The first publish had not taken its share yet.
        assert!(answer.status().is_server_error() || answer.status() == StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let busy = busy.expect("a second publish fitted beside the first");
    assert_eq!(busy.headers()["retry-after"], "1");
    let reason = busy.text().await.unwrap();
    assert!(
        reason.starts_with("the producer is busy: publishes in flight hold 52202 of the 80000 bytes allowed (--max-in-flight-bytes) and this one needs 52200; nothing published, try again"),
        "{reason}"
    );
    redis.unpause();
    assert_eq!(holding.await.unwrap(), StatusCode::OK);
    assert_eq!(
        redis.cli(&["LLEN", "padok"]),
        "100",
        "only the first was pushed"
    );

    // One that could never fit is told so, not to retry.
    let never = post(&base, "/publish/200", "x").await;
    assert_eq!(never.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        never.text().await.unwrap(),
        "batch of 200 × 90 encoded bytes needs 104400 bytes of memory to publish, above the 80000 bytes all publishes may hold (--max-in-flight-bytes)\n"
    );
}
