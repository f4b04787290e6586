//! `ebb simulate` flags. The scaler's flags are `ebb up`'s ([`ScalerArgs`], variables
//! `EBB_*`); every other flag can also come from an `EBB_SIMULATE_*` variable. Durations are
//! Go-style, read by the same [`parse_duration`] as every other ebb command (`100ms`,
//! `1m30s`); the simulated clock counts whole milliseconds.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ebb_scaling::ScalerArgs;
use ebb_units::parse_duration;

use crate::workload::Scenario;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyName {
    /// ebb's scaler reading the queue directly.
    Ebb,
    /// The dojo's chain: exporter → Prometheus → recording rule → adapter → HPA.
    HpaPipeline,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Scaler flags: --min-replicas, --max-replicas, --target-per-replica and --tolerance shape both policies; the others are ebb's only (the pipeline's own are --hpa-sync-period and --hpa-downscale-stabilization)."
)]
pub struct SimulateArgs {
    /// Built-in workload (default: burst).
    #[arg(
        long,
        env = "EBB_SIMULATE_SCENARIO",
        value_enum,
        conflicts_with = "arrivals"
    )]
    pub scenario: Option<Scenario>,
    /// Workload file: CSV lines `t_seconds,count` in time order (`#` comments allowed).
    #[arg(long, env = "EBB_SIMULATE_ARRIVALS", value_name = "FILE")]
    pub arrivals: Option<PathBuf>,
    /// Seed for the scenario's randomness and the pipeline's phases.
    #[arg(long, env = "EBB_SIMULATE_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Policies to compare.
    #[arg(long = "policy", env = "EBB_SIMULATE_POLICIES", value_enum, value_delimiter = ',',
          default_values_t = [PolicyName::Ebb, PolicyName::HpaPipeline])]
    pub policies: Vec<PolicyName>,
    /// Directory for timeline.csv, chart.svg and summary.csv.
    #[arg(long, env = "EBB_SIMULATE_OUT", default_value = "simulate-out")]
    pub out: PathBuf,

    /// Simulation step.
    #[arg(long, env = "EBB_SIMULATE_STEP", default_value = "100ms", value_parser = parse_duration)]
    pub step: Duration,
    /// Time a consumer spends on one item.
    #[arg(long, env = "EBB_SIMULATE_PER_MSG", default_value = "1s", value_parser = parse_duration)]
    pub per_msg: Duration,
    /// Time from a replica being requested to its consumer taking items.
    #[arg(long, env = "EBB_SIMULATE_STARTUP", default_value = "1s", value_parser = parse_duration)]
    pub startup: Duration,
    /// Timeline resolution (a multiple of --step).
    #[arg(long, env = "EBB_SIMULATE_SAMPLE_EVERY", default_value = "1s", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// Stop this long after the last arrival even if items remain.
    #[arg(long, env = "EBB_SIMULATE_GIVE_UP_AFTER", default_value = "1h", value_parser = parse_duration)]
    pub give_up_after: Duration,

    /// hpa-pipeline: Prometheus scrape interval.
    #[arg(long, env = "EBB_SIMULATE_SCRAPE_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub scrape_interval: Duration,
    /// hpa-pipeline: recording rule evaluation interval.
    #[arg(long, env = "EBB_SIMULATE_RULE_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub rule_interval: Duration,
    /// hpa-pipeline: HPA sync period.
    #[arg(long, env = "EBB_SIMULATE_HPA_SYNC_PERIOD", default_value = "5s", value_parser = parse_duration)]
    pub hpa_sync_period: Duration,
    /// hpa-pipeline: controller's downscale stabilization.
    #[arg(long, env = "EBB_SIMULATE_HPA_DOWNSCALE_STABILIZATION", default_value = "20s", value_parser = parse_duration)]
    pub hpa_downscale_stabilization: Duration,

    /// The scaler's flags, the same as `ebb up`'s (see the `after_help` above).
    #[command(flatten)]
    pub scaler: ScalerArgs,
}
