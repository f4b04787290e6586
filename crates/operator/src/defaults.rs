//! The CRD's defaults. Each is ebb-scaling's shared setting, the one `ebb up` and
//! `ebb simulate` use for their flags, so a QueueScaler with no overrides behaves like
//! `ebb up` with none.

pub(crate) fn target_per_replica() -> u64 {
    20
}

pub(crate) fn min_replicas() -> u32 {
    0
}

pub(crate) fn max_replicas() -> u32 {
    20
}

pub(crate) fn activation_threshold() -> u64 {
    0
}

pub(crate) fn cooldown_seconds() -> u32 {
    20
}

/// One API read per second per scaler is cheap for Redis and invisible to the API server
/// (reads of the queue never touch it); keyspace notifications make it a safety net.
pub(crate) fn polling_interval_seconds() -> u32 {
    1
}

pub(crate) fn fallback_failure_threshold() -> u32 {
    3
}

pub(crate) fn target_api_version() -> String {
    "apps/v1".into()
}

pub(crate) fn target_kind() -> String {
    "Deployment".into()
}
