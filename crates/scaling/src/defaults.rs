//! The defaults of every setting, in a file of their own so that the configuration, the
//! behavior and the settings can all read them without reading each other.

use std::time::Duration;

/// The HPA controller's default `--horizontal-pod-autoscaler-tolerance`.
pub const HPA_TOLERANCE: f64 = 0.1;

/// Fewest replicas: 0 lets the target scale to zero.
pub const DEFAULT_MIN_REPLICAS: u32 = 0;
/// Most replicas: the dojo's HPA `maxReplicas`.
pub const DEFAULT_MAX_REPLICAS: u32 = 20;
/// Items waiting per replica: the dojo's HPA `target.averageValue`.
pub const DEFAULT_TARGET_PER_REPLICA: f64 = 20.0;
/// From 0 replicas, scale up as soon as anything waits.
pub const DEFAULT_ACTIVATION_THRESHOLD: u64 = 0;
/// Scale to 0 after the queue stayed empty this long.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(20);
/// Scale down to the highest count recommended over this window: the dojo's
/// `horizontal-pod-autoscaler-downscale-stabilization`.
pub const DEFAULT_SCALE_DOWN_STABILIZATION: Duration = Duration::from_secs(20);
/// ebb keeps the HPA's tolerance.
pub const DEFAULT_TOLERANCE: f64 = HPA_TOLERANCE;
/// Drain-time mode is off unless asked for: the AverageValue rule, as the HPA.
pub const DEFAULT_DRAIN_TIME: Option<Duration> = None;
/// Time between two reads of the queue. A Redis `LLEN` costs microseconds: reading four
/// times a second lets a burst start replicas within about a quarter of a second.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);
