//! The HTTP plumbing shared by ebb's servers: binding the dojo's `--http` address, the one
//! serving loop with its timeouts and connection cap ([`serve`], [`serve_with`],
//! [`HttpLimits`]), the operations routes (`/livez`, `/readyz`, `/healthz`, `/metrics`),
//! content negotiation and one-line errors.
//!
//! Liveness and readiness are apart on purpose: `/livez` says only that the process serves
//! (a failing liveness probe restarts the pod, which cures nothing when Redis refuses the
//! password), `/readyz` says whether it can do its job, with the reason when not. `/healthz`
//! is `/readyz` under the name earlier versions and the dojo use.

mod connections;
mod deadline;
mod limits;

pub use connections::{Connector, Plain, serve, serve_with};
pub use deadline::{BodyTimedOut, body_timed_out};
pub use limits::HttpLimits;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::{Error, Health, Result};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A finished metrics registry, shared by the code that updates it and `GET /metrics`.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
}

impl Metrics {
    pub fn new(registry: Registry) -> Metrics {
        Metrics {
            registry: Arc::new(registry),
        }
    }

    /// The Prometheus/OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// `--http` as the dojo writes it (`:8080` = every interface) or `host:port`, as a string
/// `TcpListener::bind` resolves.
pub fn parse_listen_address(given: &str) -> Result<String> {
    let invalid = || Error::InvalidListenAddress {
        given: given.to_owned(),
    };
    let (host, port) = given.rsplit_once(':').ok_or_else(invalid)?;
    port.parse::<u16>().map_err(|_| invalid())?;
    Ok(if host.is_empty() {
        format!("0.0.0.0:{port}")
    } else {
        given.to_owned()
    })
}

/// Binds the `--http` address.
pub async fn bind(given: &str) -> Result<TcpListener> {
    let address = parse_listen_address(given)?;
    TcpListener::bind(&address)
        .await
        .map_err(|source| Error::Listen { address, source })
}

/// `GET /livez` (200 while the process serves), `GET /readyz` and its alias `GET /healthz`
/// (200, or 503 with the [`Health`] problem), and `GET /metrics`. Merge a component's own
/// routes into it, then add [`with_error_fallbacks`].
pub fn ops_router(health: Health, metrics: Metrics) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz).with_state(health.clone()))
        .route("/healthz", get(readyz).with_state(health))
        .route("/metrics", get(metrics_text).with_state(metrics))
}

/// Adds the one-line 404 and 405 answers; call last, after merging every route.
pub fn with_error_fallbacks(router: Router) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// True when the client asked for JSON (`Accept: application/json`).
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/json"))
}

/// An answer in the client's format: `text` plus a newline, or `json`.
pub fn negotiated(
    headers: &HeaderMap,
    status: StatusCode,
    text: &str,
    json: serde_json::Value,
) -> Response {
    negotiated_in(wants_json(headers), status, text, json)
}

fn negotiated_in(
    json_wanted: bool,
    status: StatusCode,
    text: &str,
    json: serde_json::Value,
) -> Response {
    if json_wanted {
        (status, axum::Json(json)).into_response()
    } else {
        (status, format!("{text}\n")).into_response()
    }
}

/// A one-line error in the client's format (`{"error": reason}` for JSON clients).
pub fn error(headers: &HeaderMap, status: StatusCode, reason: &str) -> Response {
    error_in(wants_json(headers), status, reason)
}

/// [`error`] once the request is gone: `json` says whether it asked for JSON.
pub(crate) fn error_in(json: bool, status: StatusCode, reason: &str) -> Response {
    negotiated_in(json, status, reason, serde_json::json!({ "error": reason }))
}

async fn livez(headers: HeaderMap) -> Response {
    negotiated(
        &headers,
        StatusCode::OK,
        "The process is alive",
        serde_json::json!({ "alive": true }),
    )
}

async fn readyz(State(health): State<Health>, headers: HeaderMap) -> Response {
    match health.problem() {
        None => negotiated(
            &headers,
            StatusCode::OK,
            "The server is healthy",
            serde_json::json!({ "healthy": true }),
        ),
        Some(reason) => negotiated(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The server is unhealthy: {reason}"),
            serde_json::json!({ "healthy": false, "reason": reason }),
        ),
    }
}

async fn metrics_text(State(metrics): State<Metrics>) -> Response {
    let mut response = metrics.encode().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    response
}

async fn not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    error(
        &headers,
        StatusCode::NOT_FOUND,
        &format!("no such endpoint: {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    error(
        &headers,
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method {method} is not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_address(":8080").unwrap(), "0.0.0.0:8080");
        assert_eq!(parse_listen_address("127.0.0.1:0").unwrap(), "127.0.0.1:0");
        for bad in ["8080", "localhost:http", ""] {
            let error = parse_listen_address(bad).unwrap_err().to_string();
            assert!(error.contains("expected :port or host:port"), "{error}");
        }
    }

    #[tokio::test]
    async fn serves_health_metrics_and_one_line_errors_until_shutdown() {
        use prometheus_client::metrics::counter::Counter;

        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("demo_things", "Things", counter.clone());
        counter.inc();
        let health = Health::new();
        let router = with_error_fallbacks(ops_router(health.clone(), Metrics::new(registry)));
        let listener = bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (trigger, shutdown) = crate::Shutdown::new();
        let server = tokio::spawn(serve(listener, router, HttpLimits::default(), shutdown));
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("{base}{path}")).send();

        let healthy = get("/healthz").await.unwrap();
        assert_eq!(healthy.status(), 200);
        assert_eq!(healthy.text().await.unwrap(), "The server is healthy\n");
        health.set_unhealthy("Redis is down");
        // Liveness stays: restarting the process would not bring Redis back.
        let alive = get("/livez").await.unwrap();
        assert_eq!(alive.status(), 200);
        assert_eq!(alive.text().await.unwrap(), "The process is alive\n");
        let unready = get("/readyz").await.unwrap();
        assert_eq!(unready.status(), 503);
        assert_eq!(
            unready.text().await.unwrap(),
            "The server is unhealthy: Redis is down\n"
        );
        let unhealthy = client
            .get(format!("{base}/healthz"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(unhealthy.status(), 503);
        assert_eq!(
            unhealthy.text().await.unwrap(),
            r#"{"healthy":false,"reason":"Redis is down"}"#
        );

        let metrics = get("/metrics").await.unwrap().text().await.unwrap();
        assert!(metrics.contains("demo_things_total 1\n"), "{metrics}");

        let missing = get("/nope").await.unwrap();
        assert_eq!(missing.status(), 404);
        assert_eq!(
            missing.text().await.unwrap(),
            "no such endpoint: GET /nope\n"
        );
        let wrong_method = client.post(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(wrong_method.status(), 405);
        assert_eq!(
            wrong_method.text().await.unwrap(),
            "method POST is not allowed on /healthz\n"
        );

        trigger.trigger();
        server.await.unwrap().unwrap();
    }
}
