//! The launcher against a real `redis-server`.

use std::time::Duration;

use ebb_redis_server::{Error, Launch, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one inline command and returns the first reply chunk.
async fn ask(port: u16, command: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .await?;
    let mut reply = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut reply))
        .await
        .map_err(std::io::Error::other)??;
    Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
}

#[tokio::test]
async fn a_started_server_answers_and_is_gone_once_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path()).start().await.unwrap();
    let port = server.port();
    assert_eq!(server.address(), format!("127.0.0.1:{port}"));
    assert_eq!(ask(port, "PING").await.unwrap(), "+PONG\r\n");
    server.stop().await;
    assert!(
        ask(port, "PING").await.is_err(),
        "still answering on {port}"
    );
}

#[tokio::test]
async fn a_port_served_by_another_redis_is_not_taken_for_ours() {
    let dir = tempfile::tempdir().unwrap();
    let neighbour = Launch::new(dir.path()).start().await.unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    // The neighbour answers PING on that port at once: only the pid tells it is not ours.
    let result = Launch::new(other_dir.path())
        .port(neighbour.port())
        .start()
        .await;
    assert!(
        matches!(result, Err(Error::Exited { port, .. }) if port == neighbour.port()),
        "{result:?}"
    );
    neighbour.stop().await;
}

#[tokio::test]
async fn a_password_protected_server_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .password("with space")
        .start()
        .await
        .unwrap();
    assert!(
        ask(server.port(), "PING")
            .await
            .unwrap()
            .starts_with("-NOAUTH")
    );
    server.kill().await;
}

#[tokio::test]
async fn a_durable_server_restarts_on_its_port_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch::new(dir.path()).durable();
    let server = launch.start().await.unwrap();
    let port = server.port();
    assert_eq!(ask(port, "SET kept yes").await.unwrap(), "+OK\r\n");
    server.kill().await;
    let again = launch.port(port).start().await.unwrap();
    assert_eq!(ask(port, "GET kept").await.unwrap(), "$3\r\nyes\r\n");
    again.kill().await;
}

#[tokio::test]
async fn a_frozen_server_answers_nothing_and_still_stops() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path()).start().await.unwrap();
    let port = server.port();
    server.signal(Signal::SIGSTOP).unwrap();
    assert!(ask(port, "PING").await.is_err(), "a frozen server answered");
    let stopping = std::time::Instant::now();
    server.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(3));
    assert!(ask(port, "PING").await.is_err());
}
