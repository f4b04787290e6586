//! The operator's Prometheus metrics, per QueueScaler: what it read, what it decided, what
//! failed, and how many writes it made to the API server.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScalerLabels {
    pub namespace: String,
    pub queuescaler: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub namespace: String,
    pub queuescaler: String,
    /// scale_up, scale_down, hold, fallback.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub namespace: String,
    pub queuescaler: String,
    /// read, apply, status, setup.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// scale, status, event.
    pub write: String,
    /// written; refused (this replica does not lead: nothing was sent); failed (the API
    /// server answered with an error, or did not answer).
    pub result: String,
}

fn seconds_buckets() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ])
}

/// Every metric the operator exports; cheap to clone (the families are shared).
#[derive(Clone)]
pub struct Metrics {
    pub waiting: Family<ScalerLabels, Gauge>,
    pub in_flight: Family<ScalerLabels, Gauge>,
    pub replicas: Family<ScalerLabels, Gauge>,
    pub desired_replicas: Family<ScalerLabels, Gauge>,
    pub decisions: Family<DecisionLabels, Counter>,
    pub reads: Family<ScalerLabels, Counter>,
    pub read_duration: Family<ScalerLabels, Histogram, fn() -> Histogram>,
    pub reconcile_duration: Family<ScalerLabels, Histogram, fn() -> Histogram>,
    pub errors: Family<ErrorLabels, Counter>,
    pub api_writes: Family<WriteLabels, Counter>,
    pub scalers: Gauge,
    /// Scale-ins that lowered the count, by outcome (`reason`): `idle` (every replica that
    /// went was idle), `busy` (some went busy: no idle one, or a drain ran out), `unchosen`
    /// (the workload's rules picked).
    pub scale_ins: Family<DecisionLabels, Counter>,
    /// Replicas chosen to go, by state when chosen (`reason`: idle, busy).
    pub scale_in_replicas: Family<DecisionLabels, Counter>,
    /// Drains, by end (`reason`): done, timed_out, cancelled.
    pub drains: Family<DecisionLabels, Counter>,
    /// How long each drain that ended in a scale-in waited.
    pub drain_duration: Family<ScalerLabels, Histogram, fn() -> Histogram>,
    /// Chosen replicas still finishing their items now.
    pub draining_replicas: Family<ScalerLabels, Gauge>,
}

impl Metrics {
    /// The metrics, registered in `registry` under `ebb_operator_…`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            waiting: Family::default(),
            in_flight: Family::default(),
            replicas: Family::default(),
            desired_replicas: Family::default(),
            decisions: Family::default(),
            reads: Family::default(),
            read_duration: Family::new_with_constructor(seconds_buckets),
            reconcile_duration: Family::new_with_constructor(seconds_buckets),
            errors: Family::default(),
            api_writes: Family::default(),
            scalers: Gauge::default(),
            scale_ins: Family::default(),
            scale_in_replicas: Family::default(),
            drains: Family::default(),
            drain_duration: Family::new_with_constructor(seconds_buckets),
            draining_replicas: Family::default(),
        };
        let registry = registry.sub_registry_with_prefix("ebb_operator");
        registry.register(
            "waiting_items",
            "Items waiting in each QueueScaler's queue",
            metrics.waiting.clone(),
        );
        registry.register(
            "in_flight_items",
            "Items taken and not yet acknowledged",
            metrics.in_flight.clone(),
        );
        registry.register(
            "replicas",
            "The workload's replica count at the last decision",
            metrics.replicas.clone(),
        );
        registry.register(
            "desired_replicas",
            "The replica count decided last",
            metrics.desired_replicas.clone(),
        );
        registry.register("decisions", "Decisions, by kind", metrics.decisions.clone());
        registry.register(
            "reads",
            "Successful reads of the queue",
            metrics.reads.clone(),
        );
        registry.register(
            "read_duration_seconds",
            "Time to read the queue",
            metrics.read_duration.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time from a read to the decision applied and published",
            metrics.reconcile_duration.clone(),
        );
        registry.register(
            "errors",
            "Failures, by kind: read, apply, status, setup",
            metrics.errors.clone(),
        );
        registry.register(
            "api_writes",
            "Writes to the Kubernetes API server, by kind (scale, status, event) and result (written, refused: not leading, failed)",
            metrics.api_writes.clone(),
        );
        registry.register(
            "scalers",
            "QueueScalers this operator drives",
            metrics.scalers.clone(),
        );
        registry.register(
            "scale_ins",
            "Scale-ins that lowered the count, by outcome: idle (only idle replicas went), busy (a busy one went), unchosen (the workload's rules picked)",
            metrics.scale_ins.clone(),
        );
        registry.register(
            "scale_in_replicas",
            "Replicas chosen to go on a scale-in, by state when chosen: idle, busy",
            metrics.scale_in_replicas.clone(),
        );
        registry.register(
            "drains",
            "Drains before a scale-in, by end: done, timed_out, cancelled",
            metrics.drains.clone(),
        );
        registry.register(
            "drain_duration_seconds",
            "How long a drain waited for its replicas to finish their items",
            metrics.drain_duration.clone(),
        );
        registry.register(
            "draining_replicas",
            "Replicas chosen to go that are still finishing their items",
            metrics.draining_replicas.clone(),
        );
        metrics
    }

    /// Counts `count` in the `family` series of `scaler` with `reason` (none: no series).
    pub fn count_by(
        family: &Family<DecisionLabels, Counter>,
        scaler: &ScalerLabels,
        reason: &str,
        count: u64,
    ) {
        if count == 0 {
            return;
        }
        family
            .get_or_create(&DecisionLabels {
                namespace: scaler.namespace.clone(),
                queuescaler: scaler.queuescaler.clone(),
                reason: reason.into(),
            })
            .inc_by(count);
    }

    pub fn error(&self, scaler: &ScalerLabels, kind: &str) {
        self.errors_by(scaler, kind, 1);
    }

    /// Counts `count` failures of `kind` (none: no series created).
    pub fn errors_by(&self, scaler: &ScalerLabels, kind: &str, count: u64) {
        if count == 0 {
            return;
        }
        self.errors
            .get_or_create(&ErrorLabels {
                namespace: scaler.namespace.clone(),
                queuescaler: scaler.queuescaler.clone(),
                kind: kind.into(),
            })
            .inc_by(count);
    }

    /// Counts one write of `kind` that ended in `result` (see [`WriteLabels`]).
    pub fn write(&self, kind: &str, result: &str) {
        self.api_writes
            .get_or_create(&WriteLabels {
                write: kind.into(),
                result: result.into(),
            })
            .inc();
    }

    /// Forgets a deleted QueueScaler's series, so a thousand come-and-gone scalers do not
    /// grow the scrape forever.
    pub fn forget(&self, scaler: &ScalerLabels) {
        for family in [
            &self.waiting,
            &self.in_flight,
            &self.replicas,
            &self.desired_replicas,
        ] {
            family.remove(scaler);
        }
        self.reads.remove(scaler);
        self.read_duration.remove(scaler);
        self.reconcile_duration.remove(scaler);
        self.drain_duration.remove(scaler);
        self.draining_replicas.remove(scaler);
    }
}
