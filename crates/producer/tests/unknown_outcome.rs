//! A publish whose connection to Redis breaks after the push was written: Redis applied it,
//! the producer never heard back. The answer must say "may or may not be published" (504),
//! never "nothing published" (503), or a retry would duplicate the batch.
//!
//! The break is made by a proxy of the test's own between the producer and a real Redis: it
//! forwards everything until a connection has sent more than a big push's worth of bytes, then
//! closes that connection instead of forwarding Redis' reply.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use ebb_producer::Args;
use ebb_runtime::Shutdown;
use ebb_testkit::redis::RedisServer;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

/// A connection that sent at least this much is a push's (the probe sends a few bytes).
const PUSH_BYTES: usize = 10_000;

/// Forwards connections to `upstream`; once `armed`, a connection that has sent `PUSH_BYTES`
/// is closed as soon as Redis answers it, the answer dropped.
async fn cutting_proxy(upstream: String, armed: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let server = TcpStream::connect(&upstream).await.unwrap();
            tokio::spawn(relay(client, server, armed.clone()));
        }
    });
    address
}

async fn relay(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting = sent.clone();
    let upstream = tokio::spawn(async move {
        let mut buffer = vec![0u8; 65536];
        while let Ok(read) = client_read.read(&mut buffer).await {
            if read == 0 || server_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
            counting.fetch_add(read, Ordering::SeqCst);
        }
    });
    let mut buffer = vec![0u8; 65536];
    while let Ok(read) = server_read.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        if armed.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) >= PUSH_BYTES {
            // The push reached Redis and was applied; its answer never comes back.
            break;
        }
        if client_write.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    upstream.abort();
}

#[tokio::test]
async fn a_connection_lost_after_the_push_was_written_answers_may_or_may_not_be_published() {
    let redis = RedisServer::start();
    let armed = Arc::new(AtomicBool::new(false));
    let proxy = cutting_proxy(redis.address(), armed.clone()).await;
    let args = Cli::try_parse_from(["producer", "--redis-server", &proxy])
        .unwrap()
        .args;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, shutdown) = Shutdown::new();
    tokio::spawn(ebb_producer::serve(args, listener, shutdown));
    let client = reqwest::Client::new();
    let publish = |count: u32| {
        client
            .post(format!("{base}/publish/{count}"))
            .body("x")
            .send()
    };
    // Connected through the proxy first, before it cuts anything.
    assert_eq!(publish(1).await.unwrap().status(), StatusCode::OK);

    armed.store(true, Ordering::SeqCst);
    let answer = publish(1000).await.unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{text}");
    assert!(
        text.ends_with("the 1000 item(s) may or may not be published\n"),
        "{text}"
    );
    assert!(!text.contains("nothing published"), "{text}");
    assert_eq!(
        redis.cli(&["LLEN", "padok"]),
        "1001",
        "the batch did land: only the answer was lost"
    );
}
