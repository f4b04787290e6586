//! The HTTPS server: accept, handshake (in each connection's own task), keep the client
//! certificate chain, then for each request: probe paths answer at once; anything else needs
//! the front proxy's certificate (401; the verdict on a connection's chain is kept 10 s or until
//! the requestheader settings change), a user in the headers (401) and a SubjectAccessReview
//! that allows it (403) before `routes.rs` or `openapi.rs` answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use ebb_runtime::Shutdown;
use http::{Method, Request, Response, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::authn::{Authenticator, ClientChain, Peer};
use crate::authz::{Attributes, Authorizer, Decision};
use crate::metrics::{RequestLabels, RouteLabels, ServerMetrics};
use crate::routes::{Api, Reply, RequestPath, route_of};
use crate::tls::Tls;
use crate::{Error, Result};

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may take to finish once stopping.
const WIND_DOWN: Duration = Duration::from_secs(10);
/// Once stopping, no request in flight for this long means nothing is owed any more: the
/// connections still open are closed without waiting for their clients (an idle HTTP/2 client
/// that does not read would otherwise hold the GOAWAY exchange, and the exit, until WIND_DOWN).
const QUIET: Duration = Duration::from_millis(100);
const QUIET_CHECK: Duration = Duration::from_millis(20);

/// Requests being answered, so that stopping waits for them and for nothing else.
#[derive(Default)]
struct InFlight(AtomicUsize);

struct Answering<'a>(&'a InFlight);

impl InFlight {
    fn start(&self) -> Answering<'_> {
        self.0.fetch_add(1, Ordering::AcqRel);
        Answering(self)
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct Server {
    pub api: Api,
    pub authn: Authenticator,
    pub authz: Authorizer,
    pub metrics: ServerMetrics,
}

/// Serves HTTPS on `listener` until `shutdown`, then lets open requests finish (bounded).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<Tls>,
    server: Arc<Server>,
    shutdown: Shutdown,
) -> Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let in_flight = Arc::new(InFlight::default());
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.map_err(Error::Serve)?,
            () = shutdown.requested() => break,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.current());
        let server = server.clone();
        let watcher = graceful.watcher();
        let in_flight = in_flight.clone();
        connections.spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!("TLS handshake failed: {error}");
                        return;
                    }
                    Err(_) => return,
                };
            let chain = Arc::new(ClientChain::new(stream.get_ref().1.peer_certificates()));
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                let chain = chain.clone();
                let in_flight = in_flight.clone();
                async move {
                    let _answering = in_flight.start();
                    Ok::<_, Infallible>(server.handle(&chain, request).await)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!("connection ended: {error}");
            }
        });
    }
    // Every connection is told to finish (HTTP/1: close after the current answer; HTTP/2:
    // GOAWAY); done when they all have, or when no request has been in flight for QUIET.
    let drained = tokio::time::timeout(WIND_DOWN, graceful.shutdown());
    let quiet = async {
        let mut quiet_for = Duration::ZERO;
        while quiet_for < QUIET {
            tokio::time::sleep(QUIET_CHECK).await;
            quiet_for = if in_flight.count() == 0 {
                quiet_for + QUIET_CHECK
            } else {
                Duration::ZERO
            };
        }
    };
    tokio::select! {
        finished = drained => if finished.is_err() {
            tracing::warn!("requests still unanswered after {WIND_DOWN:?}: closing their connections");
        },
        () = quiet => {}
    }
    connections.abort_all();
    Ok(())
}

impl Server {
    async fn handle(&self, chain: &ClientChain, request: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let (route, reply, content_type) = match RequestPath::parse(request.uri().path()) {
            Err(reply) => ("invalid_path", reply, "application/json"),
            Ok(path) => match route_of(&path) {
                "probe" => (
                    "probe",
                    Reply {
                        code: 200,
                        body: b"ok".to_vec(),
                    },
                    "text/plain; charset=utf-8",
                ),
                route => (
                    route,
                    self.reply(chain, &request, &path).await,
                    "application/json",
                ),
            },
        };
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                route,
                code: reply.code,
            })
            .inc();
        self.metrics
            .latency
            .get_or_create(&RouteLabels { route })
            .observe(started.elapsed().as_secs_f64());
        Response::builder()
            .status(reply.code)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(reply.body))
            .expect("a valid response")
    }

    async fn reply(
        &self,
        chain: &ClientChain,
        request: &Request<Incoming>,
        path: &RequestPath,
    ) -> Reply {
        if request.method() != Method::GET {
            return Reply::failure(
                405,
                "MethodNotAllowed",
                format!(
                    "{} is not supported: this API is read-only (GET)",
                    request.method()
                ),
            );
        }
        if let Peer::Anonymous(reason) = self.authn.peer(chain) {
            return Reply::failure(401, "Unauthorized", format!("Unauthorized: {reason}"));
        }
        let user = match self.authn.user(request.headers()) {
            Ok(user) => user,
            Err(reason) => {
                return Reply::failure(401, "Unauthorized", format!("Unauthorized: {reason}"));
            }
        };
        let attributes = Attributes::of(path);
        match self.authz.review(&user, &attributes).await {
            Ok(Decision::Allowed) => {}
            Ok(Decision::Denied(reason)) => {
                return Reply::failure(
                    403,
                    "Forbidden",
                    forbidden(&user.name, &attributes, &reason),
                );
            }
            Err(error) => {
                return Reply::failure(500, "InternalError", error.to_string());
            }
        }
        if path.raw.starts_with("/openapi/") {
            crate::openapi::answer(&path.raw)
        } else {
            self.api.answer(path, request.uri().query()).await
        }
    }
}

/// The message Kubernetes writes for a denied request.
fn forbidden(user: &str, attributes: &Attributes, reason: &str) -> String {
    let what = match attributes {
        Attributes::Resource {
            verb,
            group,
            namespace,
            resource,
            name,
            subresource,
            ..
        } => {
            let mut what = resource.clone();
            if let Some(name) = name {
                what = format!("{what} {name:?}");
            }
            let full = match subresource {
                Some(subresource) => format!("{resource}/{subresource}"),
                None => resource.clone(),
            };
            let mut text = format!(
                "{what} is forbidden: User {user:?} cannot {verb} resource {full:?} in API group {group:?}"
            );
            if let Some(namespace) = namespace {
                text.push_str(&format!(" in the namespace {namespace:?}"));
            }
            text
        }
        Attributes::NonResource { path } => {
            format!("forbidden: User {user:?} cannot get path {path:?}")
        }
    };
    if reason.is_empty() {
        what
    } else {
        format!("{what}: {reason}")
    }
}
