//! A recording TLS hop between the kube-apiserver and an aggregated server, for asserting what
//! the kube-apiserver really sends on a client's behalf (the front proxy's client certificate,
//! `X-Remote-*`, `Accept`, the query): it serves the aggregated server's certificate on the
//! Service's address, writes down each request, and forwards it unchanged — headers and the
//! front proxy's client certificate included — to the server on another port.
//!
//! ```text
//!  kube-apiserver ──TLS (front-proxy cert)──▶ Recorder (ClusterIP:443) ──TLS (same cert)──▶ server (ClusterIP:<port>)
//!                                                 └─ Recorded { client CN, method, target, headers }
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::load::Tls;
use crate::{Error, Result};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Common name of the client certificate, if one was presented.
    pub client_cn: Option<String>,
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Every header, names lower-case, in arrival order (repeated ones repeated).
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    /// The values of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// Runs until dropped.
#[derive(Debug)]
pub struct Recorder {
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn pem_error(path: &Path, error: impl std::fmt::Display) -> Error {
    Error::Unexpected(format!("{}: {error}", path.display()))
}

fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?;
    name.as_str().ok().map(str::to_owned)
}

impl Recorder {
    /// Listens on `listen` with the certificate `cert`/`key`, asks clients for a certificate
    /// signed by `client_ca` (optional, as the server does), and forwards to `backend`
    /// (`https://…`) trusted with `backend_tls`.
    pub async fn start(
        listen: SocketAddr,
        cert: &Path,
        key: &Path,
        client_ca: &Path,
        backend: String,
        backend_tls: Tls,
    ) -> Result<Self> {
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| pem_error(cert, e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| pem_error(cert, e))?;
        let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(client_ca).map_err(|e| pem_error(client_ca, e))? {
            roots
                .add(ca.map_err(|e| pem_error(client_ca, e))?)
                .map_err(|e| pem_error(client_ca, e))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| pem_error(client_ca, e))?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Unexpected(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, private_key)
            .map_err(|e| pem_error(cert, e))?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Spawn {
                program: format!("recorder on {listen}"),
                source,
            })?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let recorded = recorded.clone();
                let backend = backend.clone();
                let backend_tls = backend_tls.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let client_cn = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(common_name);
                    let service = hyper::service::service_fn(move |request| {
                        forward(
                            request,
                            client_cn.clone(),
                            recorded.clone(),
                            backend.clone(),
                            backend_tls.clone(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { requests, task })
    }

    /// Every request recorded so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("not poisoned").clone()
    }
}

/// Records `request` and answers with the backend's answer to the same request, or 502.
async fn forward(
    request: hyper::Request<Incoming>,
    client_cn: Option<String>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    backend: String,
    backend_tls: Tls,
) -> std::result::Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    recorded.lock().expect("not poisoned").push(Recorded {
        client_cn,
        method: request.method().to_string(),
        target: target.clone(),
        headers: headers.clone(),
    });
    let forwarded: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(name, _)| name != "host" && name != "content-length")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let answer =
        match crate::load::fetch(&format!("{backend}{target}"), &backend_tls, &forwarded).await {
            Ok((status, body)) => hyper::Response::builder()
                .status(status)
                .header("Content-Type", "application/json")
                .body(Full::new(Bytes::from(body))),
            Err(error) => hyper::Response::builder()
                .status(502)
                .body(Full::new(Bytes::from(error.to_string()))),
        };
    let _ = request.into_body().collect().await;
    Ok(answer.expect("a valid response"))
}
