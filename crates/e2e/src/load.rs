//! An open-loop HTTPS load generator for the metrics-api benchmarks: a fixed request rate
//! over a few kept-alive TLS connections (HTTP/1.1), optionally presenting a client
//! certificate and headers (the front proxy's certificate and `X-Remote-User`, as the
//! kube-apiserver sends them to an aggregated server).
//!
//! Open loop: request `k` is due at `start + k / rate`. When its connection is still busy with
//! the previous answer at that time, its latency is measured from the due time, so a slow
//! answer also counts against the requests queued behind it (no coordinated omission); when
//! the connection is free, from the moment it is sent, since the timer wakes the sender up to
//! a millisecond after the due time (tokio's timer ticks in milliseconds), and that lateness is
//! the generator's, not the server's. A run reports percentiles of the latencies, how many
//! answers were not 200, and the bursts of slow answers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb_testkit::tls::AnyServerCertificate;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::{Error, Result};

/// One load run.
#[derive(Debug, Clone)]
pub struct Load {
    /// `https://host:port/path?query`.
    pub url: String,
    /// Requests per second, over all connections.
    pub rate: u32,
    pub connections: usize,
    /// Measured time (after `warmup`).
    pub duration: Duration,
    /// Requests sent before the measurement, unrecorded (connections, caches, JIT-less warmup).
    pub warmup: Duration,
    pub tls: Tls,
    /// Extra request headers, `(name, value)`.
    pub headers: Vec<(String, String)>,
}

/// How the client trusts the server and proves who it is.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// PEM CA to verify the server with; `None`: no verification (a self-signed test server).
    pub ca: Option<PathBuf>,
    /// The name the server's certificate is checked for; `None`: the URL's host.
    pub server_name: Option<String>,
    /// PEM client certificate and key.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub requests: usize,
    /// Answers other than 200, and transport errors.
    pub errors: usize,
    /// The first non-200 answer or error, for the report.
    pub first_error: Option<String>,
    pub achieved_rate: f64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    /// The same quantiles measured from the due time always (the generator's timer lateness
    /// included), as this generator measured before.
    pub p50_from_due: Duration,
    pub p99_from_due: Duration,
    /// Bursts of answers slower than [`STALL`]: when (seconds into the measured time), how
    /// many, and the slowest; at most [`STALLS_SHOWN`], the earliest first.
    pub stalls: Vec<Stall>,
}

/// An answer slower than this is part of a stall.
pub const STALL: Duration = Duration::from_millis(10);
/// Slow answers closer together than this are one stall.
const STALL_GAP: Duration = Duration::from_millis(200);
const STALLS_SHOWN: usize = 8;

/// A burst of slow answers.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    /// Due time of its first request, from the start of the measured time.
    pub at: Duration,
    pub requests: usize,
    pub slowest: Duration,
}

/// The bursts of answers slower than [`STALL`] among `(due offset, latency)` pairs.
fn stalls(mut answers: Vec<(Duration, Duration)>) -> Vec<Stall> {
    answers.retain(|(_, latency)| *latency > STALL);
    answers.sort_unstable_by_key(|(due, _)| *due);
    let mut stalls: Vec<Stall> = Vec::new();
    let mut last_due = None;
    for (due, latency) in answers {
        match stalls.last_mut() {
            Some(stall) if last_due.is_some_and(|last| due - last < STALL_GAP) => {
                stall.requests += 1;
                stall.slowest = stall.slowest.max(latency);
            }
            _ => stalls.push(Stall {
                at: due,
                requests: 1,
                slowest: latency,
            }),
        }
        last_due = Some(due);
    }
    stalls.truncate(STALLS_SHOWN);
    stalls
}

impl Report {
    /// `key=value` pairs, milliseconds with 3 decimals; `stalls` as `<at>s:<requests>x:<slowest>ms`.
    pub fn line(&self) -> String {
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
        format!(
            "requests={} errors={} rate={:.0} p50_ms={} p90_ms={} p99_ms={} p999_ms={} max_ms={}",
            self.requests,
            self.errors,
            self.achieved_rate,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max)
        ) + &format!(
            " p50_from_due_ms={} p99_from_due_ms={} stalls={}",
            ms(self.p50_from_due),
            ms(self.p99_from_due),
            if self.stalls.is_empty() {
                "none".to_owned()
            } else {
                self.stalls
                    .iter()
                    .map(|stall| {
                        format!(
                            "{:.2}s:{}x:{:.0}ms",
                            stall.at.as_secs_f64(),
                            stall.requests,
                            stall.slowest.as_secs_f64() * 1000.0
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            }
        )
    }
}

fn io_error(path: &std::path::Path, error: impl std::fmt::Display) -> Error {
    Error::Unexpected(format!("{}: {error}", path.display()))
}

fn client_config(tls: &Tls) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Unexpected(error.to_string()))?;
    let builder = match &tls.ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| io_error(ca, e))? {
                roots
                    .add(cert.map_err(|e| io_error(ca, e))?)
                    .map_err(|e| io_error(ca, e))?;
            }
            builder.with_root_certificates(roots)
        }
        None => builder
            .dangerous()
            // Only for servers whose certificate is self-made at start (prometheus-adapter's),
            // where latency, not trust, is measured.
            .with_custom_certificate_verifier(AnyServerCertificate::new(provider)),
    };
    match &tls.client_cert {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| io_error(cert, e))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| io_error(cert, e))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| io_error(key, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| Error::Unexpected(error.to_string()))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// One kept-alive HTTP/1.1 connection over TLS.
async fn connect(load: &Load, config: Arc<rustls::ClientConfig>) -> Result<Sender> {
    let uri: hyper::Uri = load
        .url
        .parse()
        .map_err(|error| Error::Unexpected(format!("{}: {error}", load.url)))?;
    let host = uri.host().unwrap_or_default().to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|source| Error::Spawn {
            program: format!("connect {host}:{port}"),
            source,
        })?;
    tcp.set_nodelay(true).ok();
    let name = load.tls.server_name.clone().unwrap_or(host);
    let server_name = ServerName::try_from(name.clone())
        .map_err(|error| Error::Unexpected(format!("{name}: {error}")))?;
    let stream = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|source| Error::Spawn {
            program: format!("TLS handshake with {}", load.url),
            source,
        })?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| Error::Unexpected(format!("HTTP handshake: {error}")))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The request line's target and the Host header of the URL.
#[derive(Debug, Clone)]
struct Target {
    path: String,
    authority: String,
}

impl Target {
    fn of(url: &str) -> Result<Self> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|error| Error::Unexpected(format!("{url}: {error}")))?;
        Ok(Self {
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
            authority: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
        })
    }
}

/// One request and its whole answer: `Ok(())` on 200, the status and body otherwise.
async fn request(
    sender: &mut Sender,
    load: &Load,
    target: &Target,
) -> std::result::Result<(), String> {
    sender.ready().await.map_err(|error| error.to_string())?;
    let mut builder = hyper::Request::get(&target.path).header("Host", &target.authority);
    for (name, value) in &load.headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Empty::new())
        .map_err(|error| error.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?
        .to_bytes();
    if status == hyper::StatusCode::OK {
        Ok(())
    } else {
        Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        ))
    }
}

/// Runs `load` and reports its latencies.
pub async fn run(load: &Load) -> Result<Report> {
    let config = Arc::new(client_config(&load.tls)?);
    let target = Target::of(&load.url)?;
    let mut senders = Vec::with_capacity(load.connections);
    for _ in 0..load.connections {
        senders.push(connect(load, config.clone()).await?);
    }
    let interval = Duration::from_secs_f64(1.0 / f64::from(load.rate));
    let total = ((load.warmup + load.duration).as_secs_f64() * f64::from(load.rate)) as usize;
    let warmup = (load.warmup.as_secs_f64() * f64::from(load.rate)) as usize;
    let start = Instant::now() + Duration::from_millis(50);
    let connections = load.connections;
    let mut tasks = Vec::new();
    for (index, mut sender) in senders.into_iter().enumerate() {
        let load = load.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut first_error = None;
            let mut last = start;
            for k in (index..total).step_by(connections) {
                let due = start + interval * k as u32;
                tokio::time::sleep_until(due.into()).await;
                let sent = Instant::now();
                let queued = last > due;
                let answer = request(&mut sender, &load, &target).await;
                last = Instant::now();
                if k < warmup {
                    continue;
                }
                let from = if queued { due } else { sent };
                latencies.push((due - (start + load.warmup), last - from, last - due));
                if let Err(error) = answer {
                    errors += 1;
                    first_error.get_or_insert(error);
                }
            }
            (latencies, errors, first_error, last)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut end = start;
    for task in tasks {
        let (mut some, failed, error, last) = task
            .await
            .map_err(|error| Error::Unexpected(error.to_string()))?;
        latencies.append(&mut some);
        errors += failed;
        if first_error.is_none() {
            first_error = error;
        }
        end = end.max(last);
    }
    let stalls = stalls(
        latencies
            .iter()
            .map(|(due, latency, _)| (*due, *latency))
            .collect(),
    );
    let mut from_due: Vec<Duration> = latencies.iter().map(|(_, _, from_due)| *from_due).collect();
    from_due.sort_unstable();
    let mut latencies: Vec<Duration> = latencies
        .into_iter()
        .map(|(_, latency, _)| latency)
        .collect();
    latencies.sort_unstable();
    let quantile_of = |sorted: &[Duration], quantile: f64| {
        sorted
            .get(((sorted.len() as f64 * quantile).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    let at = |quantile: f64| quantile_of(&latencies, quantile);
    let measured = end.saturating_duration_since(start + load.warmup);
    Ok(Report {
        requests: latencies.len(),
        errors,
        first_error,
        achieved_rate: latencies.len() as f64 / measured.as_secs_f64().max(1e-9),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: latencies.last().copied().unwrap_or_default(),
        p50_from_due: quantile_of(&from_due, 0.50),
        p99_from_due: quantile_of(&from_due, 0.99),
        stalls,
    })
}

/// One GET on a fresh connection: the status and the body (for tests of one answer, such as
/// 401 without a client certificate).
pub async fn fetch(url: &str, tls: &Tls, headers: &[(&str, &str)]) -> Result<(u16, String)> {
    let load = Load {
        url: url.to_owned(),
        rate: 1,
        connections: 1,
        duration: Duration::ZERO,
        warmup: Duration::ZERO,
        tls: tls.clone(),
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    };
    let mut sender = connect(&load, Arc::new(client_config(tls)?)).await?;
    let target = Target::of(url)?;
    sender
        .ready()
        .await
        .map_err(|error| Error::Unexpected(error.to_string()))?;
    let mut builder = hyper::Request::get(&target.path).header("Host", &target.authority);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Empty::new())
        .map_err(|error| Error::Unexpected(error.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| Error::Unexpected(format!("GET {url}: {error}")))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| Error::Unexpected(format!("GET {url}: {error}")))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
