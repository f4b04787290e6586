//! The one serving loop of every ebb HTTP server: accept under a cap on open connections,
//! give each connection its deadlines ([`super::deadline`]), and on shutdown stop at once
//! except for requests being answered, which get at most `--http-request-timeout`.
//!
//! ```text
//!   accept ─┬─ slot free (--http-max-connections) ─▶ task: [TLS handshake] ─▶ hyper (h1/h2)
//!           └─ none free ─▶ 503 "too many open connections" (plain) or closed (TLS)
//!   shutdown ─▶ stop accepting ─▶ connections told to finish ─▶ once no request is in flight
//!              (or the request timeout passed, or a second signal) every connection is closed
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use super::deadline::{Activity, DeadlineIo, RequestGuard, Stopping, TimedBody};
use super::limits::HttpLimits;
use crate::{Error, Result, Shutdown};

/// Refused connections being answered at once, at most; past that they are just closed.
const REFUSING_AT_ONCE: usize = 64;
/// How long a refused connection may take to take its 503.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Once stopping, no request in flight for this long means nothing is owed any more: the
/// connections still open are closed without waiting for their clients (an idle HTTP/2 client
/// that does not read would otherwise hold the GOAWAY exchange; a half-sent request would hold
/// its connection until its header deadline).
const QUIET: Duration = Duration::from_millis(100);
const QUIET_CHECK: Duration = Duration::from_millis(20);
/// Once stopping, a request body still arriving gets this long more, then fails (503): an
/// upload from a slow client must not hold up the exit.
const BODY_GRACE_ON_STOP: Duration = Duration::from_secs(1);
/// Once stopping, requests being answered get at most this long (and at most
/// `--http-request-timeout`): below Kubernetes' default 30 s grace period.
const WIND_DOWN: Duration = Duration::from_secs(10);
/// An accept that fails (out of file descriptors) is retried after this pause.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Refusals are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// How a server turns an accepted TCP stream into a connection and its service: as is
/// ([`Plain`]), or after a TLS handshake that may also tell the service who the client is.
pub trait Connector: Send + Sync + 'static {
    /// The stream hyper reads and writes.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// What answers each request of the connection.
    type Service: Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
        + Clone
        + Send
        + 'static;

    /// True when a refused connection can be told why in plain HTTP (not on a TLS port).
    const PLAINTEXT: bool;

    /// The connection over `stream`, or `None` to drop it (a failed handshake). Runs under the
    /// header deadline.
    fn connect(
        &self,
        stream: TcpStream,
    ) -> impl Future<Output = Option<(Self::Io, Self::Service)>> + Send;
}

/// Plain HTTP served by a router.
pub struct Plain(pub Router);

impl Connector for Plain {
    type Io = TcpStream;
    type Service = Router;
    const PLAINTEXT: bool = true;

    async fn connect(&self, stream: TcpStream) -> Option<(TcpStream, Router)> {
        Some((stream, self.0.clone()))
    }
}

/// Serves `router` on `listener` until `shutdown`, within `limits`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: Shutdown,
) -> Result<()> {
    serve_with(listener, Plain(router), limits, shutdown).await
}

/// Requests being answered on every connection of one server.
#[derive(Default)]
struct InFlight(AtomicUsize);

/// Serves the connections `connector` makes of `listener`'s until `shutdown`, within `limits`.
pub async fn serve_with<C: Connector>(
    listener: TcpListener,
    connector: C,
    limits: HttpLimits,
    shutdown: Shutdown,
) -> Result<()> {
    let address = listener.local_addr().map_err(|source| Error::Listen {
        address: "?".into(),
        source,
    })?;
    tracing::info!("Listening on {address}...");
    let connector = Arc::new(connector);
    let slots = Arc::new(Semaphore::new(limits.http_max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let in_flight = Arc::new(InFlight::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut refused = Refusals::default();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.requested() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, most often: the connections open will close.
                tracing::warn!("HTTP server on {address} cannot accept a connection: {error}");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused.note(&address, limits.http_max_connections);
            refuse::<C>(stream, limits.http_max_connections, &refusing);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connector = connector.clone();
        let shutdown = shutdown.clone();
        let in_flight = in_flight.clone();
        let watcher = graceful.watcher();
        connections.spawn(async move {
            let accepted = Instant::now();
            let connected =
                tokio::time::timeout(limits.http_header_timeout, connector.connect(stream)).await;
            let Ok(Some((io, service))) = connected else {
                return;
            };
            let activity = Activity::new(limits, accepted);
            let io = DeadlineIo::new(io, activity.clone());
            let service = hyper::service::service_fn(move |request| {
                let held = (Counted::start(&in_flight), activity.request_started());
                answer(service.clone(), request, limits, stopping(&shutdown), held)
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(io), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!("connection ended: {error}");
            }
            drop(slot);
        });
    }
    wind_down(graceful, &in_flight, limits, &shutdown).await;
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Tells every connection to finish (HTTP/1: close after the current answer; HTTP/2: GOAWAY),
/// and returns once they all have, once no request has been in flight for [`QUIET`], after
/// [`WIND_DOWN`] or the request timeout if shorter, or when shutdown turns urgent.
async fn wind_down(
    graceful: hyper_util::server::graceful::GracefulShutdown,
    in_flight: &InFlight,
    limits: HttpLimits,
    shutdown: &Shutdown,
) {
    let quiet = async {
        let mut quiet_for = Duration::ZERO;
        while quiet_for < QUIET {
            tokio::time::sleep(QUIET_CHECK).await;
            quiet_for = if in_flight.0.load(Ordering::Acquire) == 0 {
                quiet_for + QUIET_CHECK
            } else {
                Duration::ZERO
            };
        }
    };
    tokio::select! {
        () = graceful.shutdown() => {}
        () = quiet => {}
        () = tokio::time::sleep(limits.http_request_timeout.min(WIND_DOWN)) => {
            tracing::warn!(
                "requests still unanswered {:?} after the stop was asked: closing their connections",
                limits.http_request_timeout.min(WIND_DOWN)
            );
        }
        () = shutdown.urgent() => {}
    }
}

/// One request: its body under the body timeout, its handler under the request timeout, and
/// its counts held until its answer is written.
async fn answer<S>(
    service: S,
    request: Request<hyper::body::Incoming>,
    limits: HttpLimits,
    stopping: Stopping,
    held: (Counted, RequestGuard),
) -> std::result::Result<Response<Body>, Infallible>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let json = super::wants_json(request.headers());
    let request =
        request.map(|body| Body::new(TimedBody::new(body, limits.http_body_timeout, stopping)));
    let response =
        match tokio::time::timeout(limits.http_request_timeout, service.oneshot(request)).await {
            Ok(Ok(response)) => response,
            Err(_) => {
                let reason = format!(
                    "the request was not answered within {:?} (--http-request-timeout)",
                    limits.http_request_timeout
                );
                tracing::warn!("{reason}");
                super::error_in(json, StatusCode::SERVICE_UNAVAILABLE, &reason)
            }
        };
    Ok(response.map(|body| {
        Body::new(Finishing {
            inner: body,
            _held: held,
        })
    }))
}

/// Completes [`BODY_GRACE_ON_STOP`] after shutdown was requested.
fn stopping(shutdown: &Shutdown) -> Stopping {
    let shutdown = shutdown.clone();
    Box::pin(async move {
        shutdown.requested().await;
        tokio::time::sleep(BODY_GRACE_ON_STOP).await;
    })
}

/// A request counted in its server's [`InFlight`] until dropped.
struct Counted(Arc<InFlight>);

impl Counted {
    fn start(in_flight: &Arc<InFlight>) -> Counted {
        in_flight.0.fetch_add(1, Ordering::AcqRel);
        Counted(in_flight.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body, holding its request's counts until hyper is done with it.
struct Finishing {
    inner: Body,
    _held: (Counted, RequestGuard),
}

impl HttpBody for Finishing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Refusals since the last warning, so a flood of them logs one line every [`WARN_EVERY`].
#[derive(Default)]
struct Refusals {
    since_warned: u64,
    warned_at: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, address: &std::net::SocketAddr, max: usize) {
        self.since_warned += 1;
        if self.warned_at.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            tracing::warn!(
                "HTTP server on {address}: refused {} connection(s): {max} are open, the maximum (--http-max-connections)",
                self.since_warned
            );
            self.since_warned = 0;
            self.warned_at = Some(Instant::now());
        }
    }
}

/// A connection over the cap: told why in plain HTTP, then closed (bounded in time and in
/// number; past that, or on a TLS port, closed at once).
fn refuse<C: Connector>(mut stream: TcpStream, max: usize, refusing: &Arc<Semaphore>) {
    if !C::PLAINTEXT {
        return;
    }
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let body = format!(
            "too many open connections: {max} are open, the maximum (--http-max-connections); try again later\n"
        );
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
            // Closing with the request unread would reset the connection, and the client could
            // lose the answer: read (and drop) what it sent until it closes.
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
        drop(permit);
    });
}
