//! The shared serving loop against real sockets: every way a client can stall (half-sent
//! headers, a body that stops, a handler that hangs, an idle keep-alive, an answer nobody
//! reads) ends in a bounded time, and connections past `--http-max-connections` are refused
//! with a clear line.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ebb_runtime::Shutdown;
use ebb_runtime::http::{self, HttpLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const SHORT: Duration = Duration::from_secs(1);

struct Server {
    address: std::net::SocketAddr,
    _trigger: ebb_runtime::ShutdownTrigger,
    _task: JoinHandle<ebb_runtime::Result<()>>,
}

async fn upload(body: Result<Bytes, BytesRejection>) -> Response {
    match body {
        Ok(body) => format!("{} bytes\n", body.len()).into_response(),
        Err(rejection) => match http::body_timed_out(&rejection) {
            Some(cut) => (cut.status(), format!("{cut}\n")).into_response(),
            None => (rejection.status(), rejection.body_text()).into_response(),
        },
    }
}

fn router() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello\n" }))
        .route("/upload", post(upload))
        .route("/hang", get(std::future::pending::<&'static str>))
        .route("/large", get(|| async { Body::from(vec![b'x'; 64 << 20]) }))
}

async fn start(limits: HttpLimits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(http::serve(listener, router(), limits, shutdown));
    Server {
        address,
        _trigger: trigger,
        _task: task,
    }
}

fn short_limits() -> HttpLimits {
    HttpLimits {
        http_header_timeout: SHORT,
        http_body_timeout: SHORT,
        http_request_timeout: SHORT,
        http_idle_timeout: SHORT,
        ..HttpLimits::default()
    }
}

/// Reads until the server closes; a reset counts as closed.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return seen,
            Ok(read) => seen.extend_from_slice(&chunk[..read]),
        }
    }
}

async fn get_on(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    // Small answers with content-length: read until the blank line and the body are in.
    loop {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(
            read > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|value| value.parse::<usize>().ok());
            if length.is_some_and(|length| body.len() >= length) {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn three_hundred_half_sent_request_lines_are_all_closed_within_the_header_timeout_plus_one_second()
 {
    let server = start(short_limits()).await;
    let mut streams = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(server.address).await.unwrap();
        stream.write_all(b"GET /hel").await.unwrap();
        streams.push(stream);
    }
    // Each connection's deadline runs from its own accept, before this point.
    let closing = futures_join(streams.iter_mut().map(read_to_close));
    let closed = tokio::time::timeout(SHORT + Duration::from_secs(1), closing)
        .await
        .expect("a half-sent request still held its connection after the header timeout + 1 s");
    assert!(
        closed.iter().all(Vec::is_empty),
        "nothing is answered to half a request line"
    );

    let mut fresh = TcpStream::connect(server.address).await.unwrap();
    let answer = get_on(&mut fresh, "/hello").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut outputs = Vec::new();
    // Every read is already in the kernel's hands: awaiting them in turn waits for the last.
    for future in futures {
        outputs.push(future.await);
    }
    outputs
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_with_a_clear_503_until_one_closes() {
    let server = start(HttpLimits {
        http_max_connections: 4,
        ..HttpLimits::default()
    })
    .await;
    // Four connections, each answered once, so each surely holds its slot.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(server.address).await.unwrap();
        assert!(
            get_on(&mut stream, "/hello")
                .await
                .starts_with("HTTP/1.1 200")
        );
        held.push(stream);
    }
    let mut extra = TcpStream::connect(server.address).await.unwrap();
    let refused = get_on(&mut extra, "/hello").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.contains(
            "too many open connections: 4 are open, the maximum (--http-max-connections)"
        ),
        "{refused}"
    );
    assert!(
        read_to_close(&mut extra).await.is_empty(),
        "refused, then closed"
    );

    // A slot freed is a connection served again.
    drop(held.pop());
    let mut answered = None;
    for _ in 0..200 {
        let mut stream = TcpStream::connect(server.address).await.unwrap();
        let answer = get_on(&mut stream, "/hello").await;
        if answer.starts_with("HTTP/1.1 200") {
            answered = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        answered.is_some(),
        "no connection served after one of the four closed"
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408_naming_the_flag() {
    let server = start(short_limits()).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\nhalf")
        .await
        .unwrap();
    let answer = String::from_utf8(read_to_close(&mut stream).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the request body did not arrive within 1s (--http-body-timeout)"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_handler_slower_than_the_request_timeout_is_answered_503_naming_the_flag() {
    let server = start(short_limits()).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let answer = get_on(&mut stream, "/hang").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("the request was not answered within 1s (--http-request-timeout)"),
        "{answer}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(HttpLimits {
        http_idle_timeout: SHORT,
        ..HttpLimits::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    assert!(
        get_on(&mut stream, "/hello")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let closed = tokio::time::timeout(SHORT + Duration::from_secs(1), read_to_close(&mut stream))
        .await
        .expect("an idle keep-alive connection still open after the idle timeout + 1 s");
    assert!(closed.is_empty());
}

#[tokio::test]
async fn a_client_that_does_not_read_its_answer_is_disconnected() {
    let server = start(short_limits()).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(b"GET /large HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    // Read nothing for a while: the server's writes block, then it gives up.
    tokio::time::sleep(SHORT * 3).await;
    let received = read_to_close(&mut stream).await;
    assert!(
        received.len() < 64 << 20,
        "the whole answer arrived: the write stall was not cut"
    );
}
