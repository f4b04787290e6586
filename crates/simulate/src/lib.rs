//! `ebb simulate`: replays a workload through scaling policies on a simulated clock and
//! compares them. Deterministic for a given seed: no wall clock, no threads, no I/O until
//! the results are written.
//!
//! ```text
//!  workload (file or scenario) ──▶ engine (step by step) ◀──▶ policy: ebb | hpa-pipeline
//!                                       │
//!                                       ▼
//!                        timeline.csv, chart.svg, summary.csv + table
//! ```
//!
//! - Workload: `--scenario burst|ramp|diurnal|spiky` (seeded), or `--arrivals FILE` with
//!   CSV lines `t_seconds,count` in time order (see [`parse_arrivals`]).
//! - Policies: `ebb` (the `ebb-scaling` crate, reading the queue every `--ebb-interval`)
//!   and `hpa-pipeline` (the dojo: 5 s scrape, 1 s recording rule, adapter serving the
//!   latest sample, HPA sync every 5 s without `behavior`, 20 s downscale stabilization).
//! - Consumers take one item at a time for `--per-msg` and start `--startup` after being
//!   requested; scaled-down busy consumers finish their item first.
//! - Summary: drain time (last arrival → last completion), p50/p95/max item latency
//!   (arrival → completion), replica-seconds (consumers alive × time, until the run
//!   settles at min replicas), scale events (changes of the requested count).

mod args;
mod engine;
mod error;
mod policy;
mod report;
mod rng;
mod svg;
mod workload;

use std::path::Path;
use std::time::Duration;

use ebb_scaling::{Behavior, ScalerConfig, Tolerance};

pub use args::{PolicyName, SimulateArgs, parse_duration};
pub use engine::{Run, Sample, WorldSettings, simulate};
pub use error::{Error, Result};
pub use policy::{Ebb, HpaPipeline, Observation, PipelineTiming, Policy};
pub use report::{SUMMARY_COLUMNS, Summary, summary_csv, summary_table, timeline_csv};
pub use rng::SplitMix64;
pub use svg::chart;
pub use workload::{Arrival, Scenario, Workload, parse_arrivals};

/// The workload, one run per policy, and their summaries.
pub struct Comparison {
    pub workload: Workload,
    pub runs: Vec<Run>,
    pub summaries: Vec<Summary>,
}

/// `ebb simulate`: simulate, write the files, print the table.
pub fn run(args: &SimulateArgs) -> Result<()> {
    let comparison = compare(args)?;
    write_outputs(args, &comparison)?;
    print!(
        "{}",
        summary_table(&comparison.workload.name, &comparison.summaries)
    );
    println!(
        "wrote {}/{{timeline.csv,chart.svg,summary.csv}}",
        args.out.display()
    );
    Ok(())
}

pub fn compare(args: &SimulateArgs) -> Result<Comparison> {
    let world = world_settings(args)?;
    let workload = match &args.arrivals {
        Some(path) => Workload::from_file(path)?,
        None => Workload::scenario(args.scenario.unwrap_or(Scenario::Burst), args.seed),
    };
    let mut runs = Vec::new();
    for name in &args.policies {
        let mut policy = build_policy(*name, args)?;
        runs.push(simulate(&workload, policy.as_mut(), &world));
    }
    let summaries = runs.iter().map(Summary::of).collect();
    Ok(Comparison {
        workload,
        runs,
        summaries,
    })
}

fn world_settings(args: &SimulateArgs) -> Result<WorldSettings> {
    let step_ms = args.step.as_millis() as u64;
    if step_ms == 0 {
        return Err(Error::InvalidSettings(format!(
            "--step must be at least 1ms, got {}ms",
            args.step.as_secs_f64() * 1000.0
        )));
    }
    let sample_every_ms = args.sample_every.as_millis() as u64;
    if sample_every_ms == 0 || !sample_every_ms.is_multiple_of(step_ms) {
        return Err(Error::InvalidSettings(format!(
            "--sample-every ({:?}) must be a multiple of --step ({:?})",
            args.sample_every, args.step
        )));
    }
    if args.per_msg.is_zero() {
        return Err(Error::InvalidSettings(
            "--per-msg must be above 0".to_owned(),
        ));
    }
    Ok(WorldSettings {
        step_ms,
        service_ms: args.per_msg.as_millis() as u64,
        startup_ms: args.startup.as_millis() as u64,
        sample_every_ms,
        give_up_after_ms: args.give_up_after.as_millis() as u64,
        settled_replicas: args.min_replicas,
    })
}

fn build_policy(name: PolicyName, args: &SimulateArgs) -> Result<Box<dyn Policy>> {
    let shared = ScalerConfig {
        min_replicas: args.min_replicas,
        max_replicas: args.max_replicas,
        target_per_replica: args.target_per_replica,
        tolerance: Tolerance::symmetric(args.tolerance),
        ..ScalerConfig::hpa_default()
    };
    Ok(match name {
        PolicyName::Ebb => {
            let config = ScalerConfig {
                activation_threshold: args.activation_threshold,
                cooldown: args.cooldown,
                drain_time: args.drain_time,
                paused_at_zero: false,
                behavior: Behavior::ebb(args.scale_down_window),
                ..shared
            };
            Box::new(Ebb::new(config, args.ebb_interval)?)
        }
        PolicyName::HpaPipeline => {
            let config = ScalerConfig {
                behavior: Behavior::Unset {
                    downscale_stabilization: args.hpa_downscale_stabilization,
                },
                ..shared
            };
            Box::new(HpaPipeline::new(config, pipeline_timing(args))?)
        }
    })
}

/// The loops of a real cluster start at unrelated moments; the seed picks their phases.
fn pipeline_timing(args: &SimulateArgs) -> PipelineTiming {
    let mut rng = SplitMix64::new(args.seed ^ 0x00C0_FFEE_D0C5_5EED);
    let step_ms = (args.step.as_millis() as u64).max(1);
    let mut phase = |period: Duration| {
        let period_steps = (period.as_millis() as u64 / step_ms).max(1);
        Duration::from_millis(rng.range(0, period_steps) * step_ms)
    };
    PipelineTiming {
        scrape_interval: args.scrape_interval,
        scrape_phase: phase(args.scrape_interval),
        rule_interval: args.rule_interval,
        rule_phase: phase(args.rule_interval),
        sync_period: args.hpa_sync_period,
        sync_phase: phase(args.hpa_sync_period),
    }
}

pub fn write_outputs(args: &SimulateArgs, comparison: &Comparison) -> Result<()> {
    let out = &args.out;
    std::fs::create_dir_all(out).map_err(|source| Error::Write {
        path: out.clone(),
        source,
    })?;
    let title = format!(
        "ebb simulate — {} (seed {}, {} items, {:?} per item)",
        comparison.workload.name,
        args.seed,
        comparison.workload.total_items(),
        args.per_msg
    );
    write(&out.join("timeline.csv"), &timeline_csv(&comparison.runs))?;
    write(&out.join("chart.svg"), &chart(&title, &comparison.runs))?;
    write(
        &out.join("summary.csv"),
        &summary_csv(&comparison.workload.name, &comparison.summaries),
    )
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}
