//! Clients that hang up mid-request must not leave pushed items uncounted: under load, many
//! connections send a publish and close at a random moment (before, during or after the push),
//! then `producer_messages_published_total` must equal `LLEN padok` exactly.

use std::time::Duration;

use clap::Parser;
use ebb_producer::Args;
use ebb_runtime::Shutdown;
use ebb_testkit::redis::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

/// Connections sending at once, and how long they keep going.
const CLIENTS: u64 = 128;
const LOAD_FOR: Duration = Duration::from_secs(3);

/// A small xorshift: each client hangs up after its own pseudo-random delay, reproducibly.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Sends publishes on fresh connections until `until`, closing each one after a random delay of
/// up to 3 ms without reading the answer (one in four waits for it, so requests also complete).
/// Returns how many items it asked for.
async fn impatient_client(address: String, seed: u64, until: tokio::time::Instant) -> u64 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut asked = 0;
    while tokio::time::Instant::now() < until {
        let roll = next(&mut state);
        let (path, items) = if roll.is_multiple_of(8) {
            ("/publish/7", 7)
        } else {
            ("/publish", 1)
        };
        let Ok(mut stream) = TcpStream::connect(&address).await else {
            continue;
        };
        let request = format!("POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
        if stream.write_all(request.as_bytes()).await.is_err() {
            continue;
        }
        asked += items;
        if roll % 4 == 1 {
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.read_buf(&mut answer)).await;
        } else {
            tokio::time::sleep(Duration::from_micros((roll >> 8) % 3_000)).await;
            // Reset rather than close, so the server sees the hang-up at once. A zero linger
            // cannot block the drop, which is what the deprecation warns about.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
        }
        drop(stream);
    }
    asked
}

async fn published_total(client: &reqwest::Client, base: &str) -> u64 {
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("producer_messages_published_total "))
        .unwrap_or_else(|| panic!("no producer_messages_published_total in {metrics}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_hanging_up_mid_request_leave_no_item_uncounted() {
    let redis = RedisServer::start();
    let args = Cli::try_parse_from(["producer", "--redis-server", &redis.address()])
        .unwrap()
        .args;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let base = format!("http://{address}");
    let (_stop, shutdown) = Shutdown::new();
    tokio::spawn(ebb_producer::serve(args, listener, shutdown));
    let client = reqwest::Client::new();
    assert_eq!(published_total(&client, &base).await, 0);

    let until = tokio::time::Instant::now() + LOAD_FOR;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|seed| tokio::spawn(impatient_client(address.clone(), seed, until)))
        .collect();
    let mut asked = 0;
    for client in clients {
        asked += client.await.unwrap();
    }

    // Pushes already sent finish on their own; wait until both numbers have stopped moving.
    let mut last = (u64::MAX, u64::MAX);
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = (
            redis.cli(&["LLEN", "padok"]).parse::<u64>().unwrap(),
            published_total(&client, &base).await,
        );
        if now == last {
            break;
        }
        last = now;
    }
    let (pushed, counted) = last;
    eprintln!("{asked} items asked for, {pushed} in Redis, {counted} counted");
    assert!(pushed > 0, "no publish reached Redis: the load never ran");
    assert!(
        pushed < asked,
        "some clients must hang up before their items are pushed, or the test proves nothing"
    );
    assert_eq!(
        counted, pushed,
        "producer_messages_published_total must equal LLEN padok"
    );
}
