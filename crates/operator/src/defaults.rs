//! The CRD's defaults: ebb-scaling's shared settings, the ones `ebb up`'s and
//! `ebb simulate`'s flags default to, so a QueueScaler with no overrides decides as
//! `ebb up` with none. Only the polling interval differs, on purpose (see below).

use ebb_scaling::settings;

pub(crate) fn target_per_replica() -> u64 {
    settings::DEFAULT_TARGET_PER_REPLICA as u64
}

pub(crate) fn min_replicas() -> u32 {
    settings::DEFAULT_MIN_REPLICAS
}

pub(crate) fn max_replicas() -> u32 {
    settings::DEFAULT_MAX_REPLICAS
}

pub(crate) fn activation_threshold() -> u64 {
    settings::DEFAULT_ACTIVATION_THRESHOLD
}

pub(crate) fn cooldown_seconds() -> u32 {
    settings::DEFAULT_COOLDOWN.as_secs() as u32
}

/// One read per second rather than `ebb up`'s four: a cluster may run a thousand scalers
/// against one Redis, and keyspace notifications, where the server sends them, wake a
/// scaler at once anyway; polling is the safety net.
pub(crate) fn polling_interval_seconds() -> u32 {
    1
}

pub(crate) fn fallback_failure_threshold() -> u32 {
    3
}

/// Five minutes: most queue items take seconds, and a drain that waits longer than this for
/// one pod is more likely stuck than working. Hour-long jobs set their own.
pub(crate) fn drain_timeout_seconds() -> u32 {
    300
}

pub(crate) fn target_api_version() -> String {
    "apps/v1".into()
}

pub(crate) fn target_kind() -> String {
    "Deployment".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Integers in the CRD, whatever type the shared constant has: nothing may be lost.
    #[test]
    fn the_shared_defaults_survive_the_crds_integer_types() {
        assert_eq!(
            target_per_replica() as f64,
            settings::DEFAULT_TARGET_PER_REPLICA
        );
        assert_eq!(
            u64::from(cooldown_seconds()),
            settings::DEFAULT_COOLDOWN.as_secs()
        );
        assert!(settings::DEFAULT_COOLDOWN.subsec_nanos() == 0);
    }
}
