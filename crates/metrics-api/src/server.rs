//! The HTTPS server: the shared serving loop (`ebb_runtime::http`: connection cap, header,
//! body, request and idle deadlines, the TLS handshake under the header deadline) accepts and
//! handshakes, the client certificate chain is kept per connection, then for each request: probe paths answer at once; anything else needs
//! the front proxy's certificate (401; the verdict on a connection's chain is kept 10 s or until
//! the requestheader settings change), a user in the headers (401) and a SubjectAccessReview
//! that allows it (403) before `routes.rs` or `openapi.rs` answer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use ::http::{Method, Request, Response, header};
use axum::body::Body;
use ebb_runtime::Shutdown;
use ebb_runtime::http::{self, Connector, HttpLimits};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::authn::{Authenticator, ClientChain, Peer};
use crate::authz::Authorizer;
use crate::metrics::{RequestLabels, RouteLabels, ServerMetrics};
use crate::review::{Attributes, Decision};
use crate::routes::{Api, Reply, RequestPath, route_of};
use crate::tls::Tls;
use crate::{Error, Result};

pub struct Server {
    pub api: Api,
    pub authn: Authenticator,
    pub authz: Authorizer,
    pub metrics: ServerMetrics,
}

/// Serves HTTPS on `listener` until `shutdown`, within `limits` (the TLS handshake under the
/// header deadline), through the shared serving loop.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<Tls>,
    server: Arc<Server>,
    limits: HttpLimits,
    shutdown: Shutdown,
) -> Result<()> {
    http::serve_with(listener, TlsPort { tls, server }, limits, shutdown)
        .await
        .map_err(Error::from)
}

/// The handshake, then a service that knows the connection's client certificate chain.
struct TlsPort {
    tls: Arc<Tls>,
    server: Arc<Server>,
}

impl Connector for TlsPort {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Service = Answering;
    const PLAINTEXT: bool = false;

    async fn connect(&self, stream: TcpStream) -> Option<(Self::Io, Answering)> {
        let acceptor = TlsAcceptor::from(self.tls.current());
        let stream = match acceptor.accept(stream).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!("TLS handshake failed: {error}");
                return None;
            }
        };
        let chain = Arc::new(ClientChain::new(stream.get_ref().1.peer_certificates()));
        Some((
            stream,
            Answering {
                server: self.server.clone(),
                chain,
            },
        ))
    }
}

/// Answers the requests of one connection.
#[derive(Clone)]
struct Answering {
    server: Arc<Server>,
    chain: Arc<ClientChain>,
}

impl tower::Service<Request<Body>> for Answering {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.server.handle(&this.chain, request).await) })
    }
}

impl Server {
    async fn handle(&self, chain: &ClientChain, request: Request<Body>) -> Response<Body> {
        let started = Instant::now();
        // Only GETs are answered: the body is never read, and not held across the awaits.
        let request = Request::from_parts(request.into_parts().0, ());
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

    async fn reply(&self, chain: &ClientChain, request: &Request<()>, path: &RequestPath) -> Reply {
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
