//! What every scaler task shares.

use std::sync::Arc;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Client;
use kube::runtime::reflector::Store;

use crate::allowed::AllowedAddresses;
use crate::crd::QueueScaler;
use crate::metrics::Metrics;
use crate::redis_pool::RedisPool;
use crate::target::TargetWatches;
use crate::writer::Writer;

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
    /// The one way to write to the API server (scale, status, Events): gated by leadership
    /// and counted.
    pub writer: Arc<Writer>,
    /// One watch per kind and namespace of scale targets, shared by their scalers.
    pub targets: TargetWatches,
    /// One reader and one keyspace subscription per Redis server, shared by its scalers.
    pub redis: RedisPool,
    /// Where a credential from a Secret may be sent (`--allowed-addresses`).
    pub allowed: AllowedAddresses,
}
