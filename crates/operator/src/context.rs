//! What every scaler task shares.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Client;
use kube::runtime::reflector::Store;

use crate::crd::QueueScaler;
use crate::metrics::Metrics;

pub struct Context {
    /// The API client, shared by every task (one connection pool).
    pub client: Client,
    /// Every QueueScaler as the operator's watch last saw it: a newer one on the same
    /// workload yields to an older one.
    pub scalers: Store<QueueScaler>,
    /// Every HorizontalPodAutoscaler as watched: an HPA on the same workload is a conflict.
    pub hpas: Store<HorizontalPodAutoscaler>,
    /// The operator's Prometheus metrics.
    pub metrics: Metrics,
    /// This operator instance, as named in Events (`POD_NAME`).
    pub identity: Option<String>,
    /// Turn on keyspace notifications on each Redis read (`CONFIG SET`), rather than only
    /// use them where the server already sends them.
    pub enable_keyspace_events: bool,
}
