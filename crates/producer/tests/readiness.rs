//! Liveness and readiness apart, against a real Redis that refuses the producer's password:
//! `/livez` stays 200 (a restart would not fix the password), `/readyz` and `/healthz` answer
//! 503 naming the kind, and a publish is refused with the same line.

use std::time::Duration;

use clap::Parser;
use ebb_producer::Args;
use ebb_runtime::Shutdown;
use ebb_testkit::poll;
use ebb_testkit::redis::RedisServer;
use reqwest::{Client, StatusCode};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

async fn get(client: &Client, url: &str) -> (StatusCode, String) {
    let response = client.get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_wrong_password_keeps_the_producer_alive_and_unready_with_the_reason() {
    let redis = RedisServer::start_with(&["--requirepass", "right"]);
    let server = format!("redis://:not-it@{}", redis.address());
    let args = Cli::try_parse_from(["producer", "--redis-server", &server])
        .unwrap()
        .args;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, shutdown) = Shutdown::new();
    tokio::spawn(ebb_producer::serve(args, listener, shutdown));
    let client = Client::new();

    // Readiness follows the producer's Redis probe, which runs every second.
    let (status, body) = poll::until(
        "/readyz to answer other than 200",
        Duration::from_secs(20),
        || async {
            let answer = get(&client, &format!("{base}/readyz")).await;
            (answer.0 != StatusCode::OK).then_some(answer)
        },
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("wrong password"), "{body}");
    assert!(!body.contains("unreachable"), "{body}");
    assert!(!body.contains("not-it"), "{body}");
    assert_eq!(get(&client, &format!("{base}/healthz")).await.0, status);
    assert_eq!(
        get(&client, &format!("{base}/livez")).await,
        (StatusCode::OK, "The process is alive\n".to_owned())
    );

    let published = client.post(format!("{base}/publish")).send().await.unwrap();
    assert_eq!(published.status(), StatusCode::SERVICE_UNAVAILABLE);
    let line = published.text().await.unwrap();
    assert!(line.contains(": wrong password: "), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert_eq!(redis.cli(&["LLEN", "padok"]), "0");
}
