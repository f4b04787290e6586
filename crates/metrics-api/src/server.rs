//! The HTTPS server: accept, handshake (in each connection's own task), judge the client
//! certificate once per connection, then for each request: probe paths answer at once;
//! anything else needs the front proxy's certificate (401), a user in the headers (401) and a
//! SubjectAccessReview that allows it (403) before `routes.rs` or `openapi.rs` answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use ebb_runtime::Shutdown;
use http::{Method, Request, Response, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::authn::{Authenticator, Peer};
use crate::authz::{Attributes, Authorizer, Decision};
use crate::metrics::{RequestLabels, RouteLabels, ServerMetrics};
use crate::routes::{Api, Reply, route_of};
use crate::tls::Tls;
use crate::{Error, Result};

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may take to finish once stopping.
const WIND_DOWN: Duration = Duration::from_secs(10);

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
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.map_err(Error::Serve)?,
            () = shutdown.requested() => break,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.current());
        let server = server.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!("TLS handshake failed: {error}");
                        return;
                    }
                    Err(_) => return,
                };
            let peer = Arc::new(server.authn.peer(stream.get_ref().1.peer_certificates()));
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                let peer = peer.clone();
                async move { Ok::<_, Infallible>(server.handle(&peer, request).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!("connection ended: {error}");
            }
        });
    }
    if tokio::time::timeout(WIND_DOWN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {WIND_DOWN:?}: closing them");
    }
    Ok(())
}

impl Server {
    async fn handle(&self, peer: &Peer, request: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let path = request.uri().path().to_owned();
        let route = route_of(&path);
        let (reply, content_type) = if route == "probe" {
            (
                Reply {
                    code: 200,
                    body: b"ok".to_vec(),
                },
                "text/plain; charset=utf-8",
            )
        } else {
            (self.reply(peer, &request, &path).await, "application/json")
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

    async fn reply(&self, peer: &Peer, request: &Request<Incoming>, path: &str) -> Reply {
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
        if let Peer::Anonymous(reason) = peer {
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
                return Reply::failure(
                    500,
                    "InternalError",
                    format!("the SubjectAccessReview failed: {error}"),
                );
            }
        }
        if path.starts_with("/openapi/") {
            crate::openapi::answer(path)
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
