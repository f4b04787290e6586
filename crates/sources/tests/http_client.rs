//! The shared outbound HTTP client against real TCP servers of the test's own, each behaving
//! as a hostile server a QueueScaler's author could name: one that redirects elsewhere, one
//! that never stops sending, one that announces a huge body, one that answers a page of
//! another service. Through `PrometheusSource`, as the operator and the metrics API use it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use ebb_sources::MetricSource;
use ebb_sources::http_client::{HttpClient, MAX_REPLY_BYTES};
use ebb_sources::prometheus::{EmptyResult, PrometheusSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a test server saw: connections accepted and body bytes written.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    written: AtomicU64,
}

/// A server on 127.0.0.1 answering every connection with `answer`; returns its base URL.
async fn serve<F, Fut>(answer: F) -> (String, Arc<Seen>)
where
    F: Fn(TcpStream, Arc<Seen>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let counted = Arc::clone(&seen);
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counted.connections.fetch_add(1, Ordering::SeqCst);
            let answer = Arc::clone(&answer);
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                // The request head, whatever it is (the client sends one small GET).
                let mut head = vec![0; 4096];
                let _ = stream.read(&mut head).await;
                answer(stream, counted).await;
            });
        }
    });
    (url, seen)
}

async fn write(stream: &mut TcpStream, seen: &Seen, bytes: &[u8]) -> bool {
    let ok = stream.write_all(bytes).await.is_ok();
    if ok {
        seen.written.fetch_add(bytes.len() as u64, Ordering::SeqCst);
    }
    ok
}

async fn read_error(server: &str) -> String {
    PrometheusSource::new(server, "vector(1)", EmptyResult::Error)
        .unwrap()
        .read()
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (elsewhere, elsewhere_seen) = serve(|mut stream, seen| async move {
        write(
            &mut stream,
            &seen,
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
        )
        .await;
    })
    .await;
    let location = format!("{elsewhere}/api/v1/query?query=vector(1)");
    let (redirecting, _) = serve(move |mut stream, seen| {
        let head =
            format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n");
        async move {
            write(&mut stream, &seen, head.as_bytes()).await;
        }
    })
    .await;
    let message = read_error(&redirecting).await;
    assert!(
        message.contains("answered HTTP 302 Found (a redirect, not followed)"),
        "{message}"
    );
    assert_eq!(
        elsewhere_seen.connections.load(Ordering::SeqCst),
        0,
        "the redirect's target was reached"
    );
}

#[tokio::test]
async fn an_endless_reply_is_cut_at_the_cap() {
    let (endless, seen) = serve(|mut stream, seen| async move {
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if !write(&mut stream, &seen, head).await {
            return;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
        while write(&mut stream, &seen, chunk.as_bytes()).await {}
    })
    .await;
    for _ in 0..3 {
        let message = read_error(&endless).await;
        assert!(message.contains("reply larger than 1 MiB"), "{message}");
        assert!(!message.contains("xxxx"), "{message}");
    }
    // What the server got out before the client hung up: the cap and what the sockets'
    // buffers took, per request; never the whole endless body.
    let written = seen.written.load(Ordering::SeqCst);
    assert!(
        written < 3 * (MAX_REPLY_BYTES as u64 + 16 * 1024 * 1024),
        "{written} bytes were sent for 3 capped reads"
    );
}

#[tokio::test]
async fn an_announced_huge_reply_is_refused_unread() {
    let (huge, _) = serve(|mut stream, seen| async move {
        write(
            &mut stream,
            &seen,
            b"HTTP/1.1 200 OK\r\ncontent-length: 10000000000\r\n\r\n{",
        )
        .await;
        let _ = stream.read(&mut [0; 16]).await;
    })
    .await;
    let message = read_error(&huge).await;
    assert!(message.contains("reply larger than 1 MiB"), "{message}");
}

#[tokio::test]
async fn a_reply_of_another_service_never_reaches_the_error() {
    const PAGE: &str = "<html>internal admin page: token=SENSITIVE-42</html>";
    let (page, _) = serve(|mut stream, seen| async move {
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{PAGE}",
            PAGE.len()
        );
        write(&mut stream, &seen, reply.as_bytes()).await;
    })
    .await;
    let message = read_error(&page).await;
    assert!(!message.contains("SENSITIVE"), "{message}");
    assert!(!message.contains("html"), "{message}");
    assert!(
        message.contains(&format!(
            "HTTP 200 OK: reply was not the query API's JSON ({} bytes)",
            PAGE.len()
        )),
        "{message}"
    );
}

#[tokio::test]
async fn replies_held_at_once_share_one_budget() {
    let body = "x".repeat(60 * 1024);
    let (server, _) = serve(move |mut stream, seen| {
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        async move {
            write(&mut stream, &seen, reply.as_bytes()).await;
        }
    })
    .await;
    let client = HttpClient::new(64 * 1024, 100 * 1024).unwrap();
    let url: reqwest::Url = format!("{server}/").parse().unwrap();
    let held = client.get(url.clone(), &server).await.unwrap();
    assert_eq!(held.body.len(), 60 * 1024);
    let refused = client
        .get(url.clone(), &server)
        .await
        .err()
        .expect("a second reply fits the budget while the first is held")
        .to_string();
    assert!(
        refused.contains("too many replies being read at once"),
        "{refused}"
    );
    drop(held);
    assert_eq!(
        client.get(url, &server).await.unwrap().body.len(),
        60 * 1024
    );
}

#[tokio::test]
async fn credentials_in_the_server_address_never_reach_an_error() {
    let port = ebb_testkit::free_port();
    let server = format!("http://user:hunter2@127.0.0.1:{port}");
    let message = read_error(&server).await;
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.starts_with(&format!(
            "querying Prometheus at http://***@127.0.0.1:{port} for \"vector(1)\": error sending request: "
        )),
        "{message}"
    );
    let bad = PrometheusSource::new("http://user:hunter2@[::1", "vector(1)", EmptyResult::Zero)
        .err()
        .unwrap()
        .to_string();
    assert!(!bad.contains("hunter2"), "{bad}");
}
