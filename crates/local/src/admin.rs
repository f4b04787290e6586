//! The scaler's own HTTP endpoints on `--admin`: `/status` (JSON), `/metrics` (Prometheus
//! text), `/healthz` (503 with the reason while the queue cannot be read).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use ebb_autoscaler::Status;
use ebb_runtime::http::{Metrics, ops_router, with_error_fallbacks};
use ebb_runtime::{Health, Shutdown};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::supervisor::ReplicaCounts;

/// What `/status` and `/metrics` are made of.
#[derive(Clone)]
pub struct Observed {
    pub queue: String,
    pub status: watch::Receiver<Status>,
    pub replicas: watch::Receiver<ReplicaCounts>,
    pub producer: watch::Receiver<ReplicaCounts>,
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
    producer_restarts: u64,
}

/// Serves the admin endpoints on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    observed: Observed,
    limits: ebb_runtime::http::HttpLimits,
    shutdown: Shutdown,
) -> ebb_runtime::Result<()> {
    let health = Health::new();
    let gauges = Gauges::default();
    let mut registry = Registry::with_prefix("ebb");
    gauges.register(&mut registry);
    tokio::spawn(follow(observed.clone(), gauges, health.clone()));
    let router = ops_router(health, Metrics::new(registry)).merge(
        Router::new()
            .route("/status", get(status_json))
            .with_state(observed),
    );
    ebb_runtime::http::serve(listener, with_error_fallbacks(router), limits, shutdown).await
}

async fn status_json(State(observed): State<Observed>) -> Json<serde_json::Value> {
    let status = observed.status.borrow().clone();
    let replicas = *observed.replicas.borrow();
    Json(
        serde_json::to_value(StatusBody {
            queue: &observed.queue,
            status: &status,
            running_replicas: replicas.running,
            stopping_replicas: replicas.stopping,
            replica_restarts: replicas.restarts,
            producer_restarts: observed.producer.borrow().restarts,
        })
        .expect("the status serializes"),
    )
}

#[derive(Clone, Default)]
struct Gauges {
    waiting: Gauge,
    in_flight: Gauge,
    replicas: Gauge,
    running: Gauge,
    desired: Gauge,
    scale_events: Counter,
    restarts: Counter,
}

impl Gauges {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "queue_waiting_items",
            "Items waiting in the queue",
            self.waiting.clone(),
        );
        registry.register(
            "queue_in_flight_items",
            "Items taken by a consumer and not yet acknowledged",
            self.in_flight.clone(),
        );
        registry.register(
            "replicas",
            "Consumer replicas asked for",
            self.replicas.clone(),
        );
        registry.register(
            "running_replicas",
            "Consumer processes running and not stopping",
            self.running.clone(),
        );
        registry.register(
            "desired_replicas",
            "Replicas the last decision asked for",
            self.desired.clone(),
        );
        registry.register(
            "scale_events",
            "Times the scaler changed the replica count",
            self.scale_events.clone(),
        );
        registry.register(
            "replica_restarts",
            "Consumer processes that exited on their own and were replaced",
            self.restarts.clone(),
        );
    }

    fn update(&self, status: &Status, replicas: &ReplicaCounts) {
        let saturating = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.waiting.set(saturating(status.waiting));
        // Left as it was when the source cannot tell (`ebb up`'s queue always can).
        if let Some(in_flight) = status.in_flight {
            self.in_flight.set(saturating(in_flight));
        }
        self.replicas.set(i64::from(replicas.desired));
        self.running.set(i64::from(replicas.running));
        self.desired.set(i64::from(status.desired_replicas));
        // The sources count from the start; counters only take what is new.
        self.scale_events
            .inc_by(status.scale_events.saturating_sub(self.scale_events.get()));
        self.restarts
            .inc_by(replicas.restarts.saturating_sub(self.restarts.get()));
    }
}

/// Keeps the gauges and health in step with the control loop and the supervisor.
async fn follow(mut observed: Observed, gauges: Gauges, health: Health) {
    loop {
        {
            let status = observed.status.borrow_and_update();
            gauges.update(&status, &observed.replicas.borrow_and_update());
            match &status.last_error {
                Some(error) => health.set_unhealthy(error.clone()),
                None => health.set_healthy(),
            }
        }
        tokio::select! {
            changed = observed.status.changed() => if changed.is_err() { return },
            changed = observed.replicas.changed() => if changed.is_err() { return },
        }
    }
}
