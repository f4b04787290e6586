//! Liveness and readiness apart, against a real Redis that refuses the consumer's password:
//! `/livez` stays 200 (a restart would not fix the password), `/readyz` and `/healthz` answer
//! 503 naming the kind, and the consumer keeps running, retrying.

use std::time::Duration;

use clap::Parser;
use ebb_consumer::Args;
use ebb_runtime::Shutdown;
use ebb_testkit::poll;
use ebb_testkit::redis::RedisServer;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_wrong_password_keeps_the_consumer_alive_and_unready_with_the_reason() {
    let redis = RedisServer::start_with(&["--requirepass", "right"]);
    let server = format!("redis://:not-it@{}", redis.address());
    let args = Cli::try_parse_from(["consumer", "--redis-server", &server, "--lease", "1s"])
        .unwrap()
        .args;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, shutdown) = Shutdown::new();
    let running = tokio::spawn(ebb_consumer::serve(args, listener, shutdown));

    let (status, body) = poll::until(
        "/readyz to answer other than 200",
        Duration::from_secs(20),
        || async {
            let answer = get(&format!("{base}/readyz")).await;
            (answer.0 != 200).then_some(answer)
        },
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("wrong password"), "{body}");
    assert!(!body.contains("unreachable"), "{body}");
    assert!(!body.contains("not-it"), "{body}");
    assert_eq!(get(&format!("{base}/healthz")).await.0, 503);
    assert_eq!(
        get(&format!("{base}/livez")).await,
        (200, "The process is alive\n".to_owned())
    );
    assert!(!running.is_finished(), "the consumer keeps retrying");

    stop.trigger();
    running.await.unwrap().unwrap();
}
