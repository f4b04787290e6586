//! A real SIGTERM to this test process (its own binary, so no other test shares its signals)
//! while slow clients hold connections: one has sent half a request line, one is uploading a
//! body a byte at a time. The server must return well before either client's timeouts (30 s
//! here), and answer the upload that it cut.

use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ebb_runtime::Shutdown;
use ebb_runtime::http::{self, HttpLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Far below the clients' 30 s timeouts: what stopping may take with them connected.
const WITHIN: Duration = Duration::from_secs(5);

async fn upload(body: Result<Bytes, BytesRejection>) -> Response {
    match body {
        Ok(body) => format!("{} bytes\n", body.len()).into_response(),
        Err(rejection) => match http::body_timed_out(&rejection) {
            Some(cut) => (cut.status(), format!("{cut}\n")).into_response(),
            None => (rejection.status(), rejection.body_text()).into_response(),
        },
    }
}

#[tokio::test]
async fn a_slow_client_does_not_hold_up_sigterm() {
    let shutdown = Shutdown::on_signals().unwrap();
    let slow = Duration::from_secs(30);
    let limits = HttpLimits {
        http_header_timeout: slow,
        http_body_timeout: slow,
        http_request_timeout: slow,
        http_idle_timeout: slow,
        ..HttpLimits::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new().route("/upload", post(upload));
    let server = tokio::spawn(http::serve(listener, router, limits, shutdown));

    let mut half_line = TcpStream::connect(address).await.unwrap();
    half_line.write_all(b"GET /hea").await.unwrap();
    let mut uploading = TcpStream::connect(address).await.unwrap();
    uploading
        .write_all(b"POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: 1000\r\n\r\nx")
        .await
        .unwrap();
    let dribbling = tokio::spawn(async move {
        // One byte every 100 ms: it would take 100 s to finish.
        for _ in 0..999 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if uploading.write_all(b"x").await.is_err() {
                break;
            }
        }
        let mut answer = Vec::new();
        let _ = uploading.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let status = Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("cannot run kill");
    assert!(status.success());
    tokio::time::timeout(WITHIN, server)
        .await
        .expect("the slow clients held up SIGTERM")
        .unwrap()
        .unwrap();
    let mut rest = Vec::new();
    let _ = half_line.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "half a request line gets no answer");
    let answer = tokio::time::timeout(WITHIN, dribbling)
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("the server is stopping and the request body had not all arrived"),
        "{answer}"
    );
}
