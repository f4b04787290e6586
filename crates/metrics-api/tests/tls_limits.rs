//! The HTTPS port under the shared serving loop's limits, with no kube-apiserver (nothing here
//! reaches authorization): connections that never finish their TLS handshake, and connections
//! that finish it without a client certificate and then send nothing, are all closed within
//! `--http-header-timeout` + 1 s; past `--http-max-connections` a handshake is refused.

mod common;

use std::time::Duration;

use common::{RunningServer, TestCa, insecure_client};
use ebb_metrics_api::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UNUSED_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]
users: [{name: u, user: {token: unused}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
";

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

async fn start(dir: &std::path::Path, extra: &[&str]) -> RunningServer {
    let ca = TestCa::new(dir, "ca");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, UNUSED_KUBECONFIG).unwrap();
    let mut flags = vec![
        "--requestheader-client-ca-file".to_owned(),
        ca.cert_file().to_str().unwrap().to_owned(),
        "--kubeconfig".to_owned(),
        kubeconfig.to_str().unwrap().to_owned(),
        // Nothing listens there: the poller's reads fail, which no step here looks at.
        "--redis-server".to_owned(),
        "127.0.0.1:1".to_owned(),
    ];
    flags.extend(extra.iter().map(|flag| (*flag).to_owned()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    RunningServer::start(&flags, Config::builtin()).await
}

/// Reads until the server closes the connection (a reset counts).
async fn closed<S: AsyncReadExt + Unpin>(mut stream: S) -> usize {
    let mut seen = 0;
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return seen,
            Ok(read) => seen += read,
        }
    }
}

#[tokio::test]
async fn three_hundred_stalled_tls_connections_are_closed_within_the_header_timeout_plus_one_second()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--http-header-timeout", "1s"]).await;
    let client = insecure_client(server.secure, None);
    // Half of them stop inside the handshake: a TLS record header, then nothing.
    let mut half_hellos = Vec::new();
    for _ in 0..150 {
        let mut stream = TcpStream::connect(server.secure).await.unwrap();
        stream
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
            .await
            .unwrap();
        half_hellos.push(stream);
    }
    // The other half finish it without a client certificate and send no request.
    let mut silent = Vec::new();
    for _ in 0..150 {
        silent.push(client.handshake().await.expect("the handshake succeeds"));
    }
    let all_closed = async {
        let mut answered = 0;
        for stream in half_hellos {
            answered += closed(stream).await;
        }
        for stream in silent {
            answered += closed(stream).await;
        }
        answered
    };
    let answered = tokio::time::timeout(HEADER_TIMEOUT + Duration::from_secs(1), all_closed)
        .await
        .expect("a stalled TLS connection was still open after the header timeout + 1 s");
    assert_eq!(answered, 0, "no request, no answer");

    let ready = client.get("/readyz", &[]).await;
    assert_eq!(ready.code, 200, "the port still serves");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_tls_connection_past_the_cap_is_refused_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--http-max-connections", "2"]).await;
    let client = insecure_client(server.secure, None);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut kept = client.connect().await;
        assert_eq!(kept.get("/livez", &[]).await, 200);
        held.push(kept);
    }
    assert!(
        client.handshake().await.is_none(),
        "a third connection got through a cap of 2"
    );
    drop(held.pop());
    let mut served = false;
    for _ in 0..200 {
        if let Some(answer) = client.try_get("/livez", &[]).await {
            served = answer.code == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "no connection served once one of the two closed");
    server.stop().await.unwrap();
}
