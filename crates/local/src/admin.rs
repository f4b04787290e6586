//! The scaler's own HTTP endpoints on `--admin`: `/status` (JSON), `/metrics` (Prometheus
//! text), `/healthz`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use ebb_autoscaler::Status;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::supervisor::ReplicaCounts;

#[derive(Clone)]
struct Sources {
    status: watch::Receiver<Status>,
    replicas: watch::Receiver<ReplicaCounts>,
    queue: String,
    metrics: Arc<Metrics>,
}

/// Gauges refreshed from the latest status at each scrape, so they never lag a tick behind.
struct Metrics {
    registry: Registry,
    waiting: Gauge,
    in_flight: Gauge,
    replicas: Gauge,
    running: Gauge,
    desired: Gauge,
    scale_events: Counter,
    restarts: Counter,
}

impl Metrics {
    fn new() -> Self {
        let metrics = Metrics {
            registry: Registry::with_prefix("ebb"),
            waiting: Gauge::default(),
            in_flight: Gauge::default(),
            replicas: Gauge::default(),
            running: Gauge::default(),
            desired: Gauge::default(),
            scale_events: Counter::default(),
            restarts: Counter::default(),
        };
        let Metrics { mut registry, .. } = metrics;
        registry.register(
            "queue_waiting_items",
            "Items waiting in the queue",
            metrics.waiting.clone(),
        );
        registry.register(
            "queue_in_flight_items",
            "Items taken by a consumer and not yet acknowledged",
            metrics.in_flight.clone(),
        );
        registry.register(
            "replicas",
            "Consumer replicas asked for",
            metrics.replicas.clone(),
        );
        registry.register(
            "running_replicas",
            "Consumer processes running and not stopping",
            metrics.running.clone(),
        );
        registry.register(
            "desired_replicas",
            "Replicas the last decision asked for",
            metrics.desired.clone(),
        );
        registry.register(
            "scale_events",
            "Times the scaler changed the replica count",
            metrics.scale_events.clone(),
        );
        registry.register(
            "replica_restarts",
            "Consumer processes that exited on their own and were replaced",
            metrics.restarts.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    fn refresh(&self, status: &Status, replicas: &ReplicaCounts) {
        self.waiting.set(saturating_i64(status.waiting));
        self.in_flight.set(saturating_i64(status.in_flight));
        self.replicas.set(i64::from(replicas.desired));
        self.running.set(i64::from(replicas.running));
        self.desired.set(i64::from(status.desired_replicas));
        // Counters only go up: add what happened since the last scrape.
        self.scale_events
            .inc_by(status.scale_events.saturating_sub(self.scale_events.get()));
        self.restarts
            .inc_by(replicas.restarts.saturating_sub(self.restarts.get()));
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `/status`: the control loop's status plus the processes behind it.
#[derive(Serialize)]
struct StatusBody<'a> {
    queue: &'a str,
    #[serde(flatten)]
    status: &'a Status,
    running_replicas: u32,
    stopping_replicas: u32,
    replica_restarts: u64,
}

/// Binds `address` now (so a taken port fails `ebb up` at once) and returns the server future.
pub async fn bind(
    address: SocketAddr,
    queue: String,
    status: watch::Receiver<Status>,
    replicas: watch::Receiver<ReplicaCounts>,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static)> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| Error::Listen {
            what: "--admin",
            address: address.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| Error::Io {
        what: "reading the admin address".into(),
        source,
    })?;
    let sources = Sources {
        status,
        replicas,
        queue,
        metrics: Arc::new(Metrics::new()),
    };
    let app = Router::new()
        .route("/status", get(status_json))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(sources);
    let serve = async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!("admin server stopped: {error}");
        }
    };
    Ok((bound, serve))
}

async fn status_json(State(sources): State<Sources>) -> Response {
    let status = sources.status.borrow().clone();
    let replicas = *sources.replicas.borrow();
    Json(StatusBody {
        queue: &sources.queue,
        status: &status,
        running_replicas: replicas.running,
        stopping_replicas: replicas.stopping,
        replica_restarts: replicas.restarts,
    })
    .into_response()
}

async fn metrics_text(State(sources): State<Sources>) -> Response {
    let status = sources.status.borrow().clone();
    let replicas = *sources.replicas.borrow();
    sources.metrics.refresh(&status, &replicas);
    let mut body = String::new();
    if let Err(error) = encode(&mut body, &sources.metrics.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
