//! The name of each setting, as a flag and as a resource field, to say which one is wrong.

/// One of the settings, to say which one is wrong: as a flag on the command line, as a
/// field in a custom resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    MinReplicas,
    MaxReplicas,
    TargetPerReplica,
    ActivationThreshold,
    Cooldown,
    ScaleDownStabilization,
    Tolerance,
    DrainTime,
    Interval,
}

impl Setting {
    pub const ALL: [Setting; 9] = [
        Setting::MinReplicas,
        Setting::MaxReplicas,
        Setting::TargetPerReplica,
        Setting::ActivationThreshold,
        Setting::Cooldown,
        Setting::ScaleDownStabilization,
        Setting::Tolerance,
        Setting::DrainTime,
        Setting::Interval,
    ];

    /// The command-line flag (`--min-replicas`).
    pub const fn flag(self) -> &'static str {
        match self {
            Setting::MinReplicas => "--min-replicas",
            Setting::MaxReplicas => "--max-replicas",
            Setting::TargetPerReplica => "--target-per-replica",
            Setting::ActivationThreshold => "--activation-threshold",
            Setting::Cooldown => "--cooldown",
            Setting::ScaleDownStabilization => "--scale-down-stabilization",
            Setting::Tolerance => "--tolerance",
            Setting::DrainTime => "--drain-time",
            Setting::Interval => "--interval",
        }
    }

    /// The field of a Kubernetes resource (`minReplicas`).
    pub const fn field(self) -> &'static str {
        match self {
            Setting::MinReplicas => "minReplicas",
            Setting::MaxReplicas => "maxReplicas",
            Setting::TargetPerReplica => "targetPerReplica",
            Setting::ActivationThreshold => "activationThreshold",
            Setting::Cooldown => "cooldown",
            Setting::ScaleDownStabilization => "scaleDownStabilization",
            Setting::Tolerance => "tolerance",
            Setting::DrainTime => "drainTime",
            Setting::Interval => "interval",
        }
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.flag())
    }
}
