//! What the metrics API tests share: certificates made in the test (rcgen), a real HTTPS
//! client (hyper over rustls) that presents a client certificate or none, and the server
//! started in-process on 127.0.0.1:0.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Parser;
use ebb_metrics_api::{Config, MetricsApiArgs};
use ebb_runtime::{Shutdown, ShutdownTrigger};
use ebb_testkit::tls::AnyServerCertificate;
use http_body_util::BodyExt;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpListener;

/// A CA made for a test, and the certificates it signs, written as PEM files.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    name: String,
}

impl TestCa {
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), issuer.pem()).unwrap();
        TestCa {
            issuer,
            dir: dir.to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn cert_file(&self) -> PathBuf {
        self.dir.join(format!("{}.crt", self.name))
    }

    /// A leaf certificate with common name `cn` (and `sans`), as (cert file, key file).
    pub fn issue(&self, cn: &str, sans: &[&str]) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        // Named after the CA too: two CAs may issue the same name.
        let cert_file = self.dir.join(format!("{}-{cn}.crt", self.name));
        let key_file = self.dir.join(format!("{}-{cn}.key", self.name));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}

/// One HTTPS GET's result.
#[derive(Debug)]
pub struct Answer {
    pub code: u16,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A client of one server: trusts `server_ca` (or nothing checked when `None`), presents
/// `identity` when given.
#[derive(Clone)]
pub struct Client {
    config: Arc<rustls::ClientConfig>,
    pub address: SocketAddr,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Client {
    pub fn new(address: SocketAddr, server_ca: &Path, identity: Option<(&Path, &Path)>) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(server_ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        Client::presenting(builder, address, identity)
    }

    /// The client of `builder` (its server trust chosen), presenting `identity` when given.
    fn presenting(
        builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
        address: SocketAddr,
        identity: Option<(&Path, &Path)>,
    ) -> Client {
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_file_iter(cert)
                        .unwrap()
                        .map(Result::unwrap)
                        .collect(),
                    PrivateKeyDer::from_pem_file(key).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        Client {
            config: Arc::new(config),
            address,
        }
    }

    /// GET `path` (with its query) with `headers`, on a new connection.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.try_get(path, headers)
            .await
            .expect("the TLS handshake failed")
    }

    /// [`get`](Self::get), `None` when the handshake fails (a server certificate this client
    /// does not trust).
    pub async fn try_get(&self, path: &str, headers: &[(&str, &str)]) -> Option<Answer> {
        let stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let stream = connector
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await
            .ok()?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let mut request = http::Request::get(path).header("host", "localhost");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(
                request
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        Some(Answer::read(response).await)
    }
}

impl Client {
    /// GET `path` over HTTP/2 (ALPN `h2`, as the kube-apiserver's proxy negotiates it).
    pub async fn get_h2(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await
            .unwrap();
        assert_eq!(
            stream.get_ref().1.alpn_protocol(),
            Some(&b"h2"[..]),
            "h2 negotiated"
        );
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let mut request = http::Request::get(format!("https://localhost{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(
                request
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        Answer::read(response).await
    }
}

impl Client {
    /// An HTTP/2 connection (frames written by hand: hyper's client reads on a task of its
    /// own) that asks `GET /readyz`, reads until the answer's headers, then neither reads nor
    /// closes for `hold`: a client that takes no part in the server's GOAWAY and PING exchange,
    /// as curl between transfers. Whether the answer was 200.
    pub async fn readyz_h2_then_go_silent(&self, hold: std::time::Duration) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await
            .unwrap();
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        out.extend([0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS, empty
        // HPACK: :method GET, :scheme https (static), :path and :authority literal.
        let mut block = vec![0x82, 0x87, 0x44, 7];
        block.extend(b"/readyz");
        block.extend([0x41, 9]);
        block.extend(b"localhost");
        let length = block.len() as u32;
        out.extend(&length.to_be_bytes()[1..]);
        out.extend([1, 0x5, 0, 0, 0, 1]); // HEADERS, END_STREAM | END_HEADERS, stream 1
        out.extend(block);
        stream.write_all(&out).await.unwrap();
        stream.flush().await.unwrap();
        let ok = loop {
            let mut header = [0u8; 9];
            stream.read_exact(&mut header).await.unwrap();
            let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0; length];
            stream.read_exact(&mut payload).await.unwrap();
            if header[3] == 1 {
                // :status 200 is static index 8.
                break payload.first() == Some(&0x88);
            }
        };
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            drop(stream);
        });
        ok
    }
}

/// One kept-alive HTTP/1.1 connection.
pub struct KeptAlive {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
}

impl Client {
    /// A TLS connection, handshake done, nothing sent; `None` when the handshake failed.
    pub async fn handshake(
        &self,
    ) -> Option<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let stream = tokio::net::TcpStream::connect(self.address).await.ok()?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await
            .ok()
    }

    /// A connection to send several requests on, as the kube-apiserver keeps its own.
    pub async fn connect(&self) -> KeptAlive {
        let stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let stream = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await
            .unwrap();
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        KeptAlive { sender }
    }
}

impl KeptAlive {
    /// The status code of a GET on this connection.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> u16 {
        self.sender.ready().await.unwrap();
        let mut request = http::Request::get(path).header("host", "localhost");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .sender
            .send_request(
                request
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        let code = response.status().as_u16();
        response.into_body().collect().await.unwrap();
        code
    }
}

/// The headers the HPA sends through the kube-apiserver (DESIGN.md, checked on 1.37.2).
pub const HPA_HEADERS: [(&str, &str); 7] = [
    (
        "X-Remote-User",
        "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
    ),
    ("X-Remote-Group", "system:serviceaccounts"),
    ("X-Remote-Group", "system:serviceaccounts:kube-system"),
    ("X-Remote-Group", "system:authenticated"),
    ("X-Remote-Uid", "4b8f4c1e-0000-4000-8000-000000000001"),
    (
        "X-Remote-Extra-Authentication.kubernetes.io%2fcredential-Id",
        "JTI=test",
    ),
    ("Accept", "application/vnd.kubernetes.protobuf, */*"),
];

/// A server running in-process until dropped.
pub struct RunningServer {
    pub secure: SocketAddr,
    pub metrics: SocketAddr,
    trigger: Option<ShutdownTrigger>,
    task: Option<tokio::task::JoinHandle<ebb_metrics_api::Result<()>>>,
}

impl RunningServer {
    /// Starts `ebb metrics-api <flags>` with `config`, on 127.0.0.1 ports of its own.
    pub async fn start(flags: &[&str], config: Config) -> RunningServer {
        #[derive(Parser)]
        struct Command {
            #[command(flatten)]
            args: MetricsApiArgs,
        }
        let args =
            Command::try_parse_from(std::iter::once("metrics-api").chain(flags.iter().copied()))
                .unwrap()
                .args;
        let secure = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (secure_address, metrics_address) =
            (secure.local_addr().unwrap(), plain.local_addr().unwrap());
        let (trigger, shutdown) = Shutdown::new();
        let task = tokio::spawn(ebb_metrics_api::serve(
            args, config, secure, plain, shutdown,
        ));
        RunningServer {
            secure: secure_address,
            metrics: metrics_address,
            trigger: Some(trigger),
            task: Some(task),
        }
    }

    /// Stops it and returns how serving ended.
    pub async fn stop(mut self) -> ebb_metrics_api::Result<()> {
        self.trigger.take().unwrap().trigger();
        self.task.take().unwrap().await.unwrap()
    }

    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A client that does not check the server's certificate: for the self-signed one made at start.
pub fn insecure_client(address: SocketAddr, identity: Option<(&Path, &Path)>) -> Client {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(AnyServerCertificate::new(provider()));
    Client::presenting(builder, address, identity)
}

/// `body` with every item's `timestamp` checked (RFC 3339, read within `within` of now) and
/// replaced by `"<ts>"`, so that whole shapes can be compared.
pub fn without_timestamps(
    mut body: serde_json::Value,
    within: std::time::Duration,
) -> serde_json::Value {
    if let Some(items) = body.get_mut("items").and_then(|items| items.as_array_mut()) {
        for item in items {
            let stamp = item["timestamp"]
                .as_str()
                .unwrap_or_else(|| panic!("no timestamp: {item}"));
            let at = humantime::parse_rfc3339(stamp).unwrap();
            let age = std::time::SystemTime::now()
                .duration_since(at)
                .unwrap_or_default();
            assert!(age <= within, "timestamp {stamp} is {age:?} old");
            item["timestamp"] = serde_json::json!("<ts>");
        }
    }
    body
}

impl Answer {
    /// Status, content type and body of a response, over HTTP/1.1 or HTTP/2 alike.
    async fn read(response: http::Response<hyper::body::Incoming>) -> Answer {
        let code = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            code,
            content_type,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }
}
