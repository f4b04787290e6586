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
//! - Policies: `ebb` (the `ebb-scaling` crate, reading the queue every `--interval` and
//!   measuring rates for `--drain-time` with the same `RateMeter` as `ebb up`, fed the same
//!   readings: waiting, in flight, the completion counter, ready replicas) and `hpa-pipeline` (the dojo: 5 s scrape, 1 s recording rule, adapter serving the
//!   latest sample, HPA sync every 5 s without `behavior`, 20 s downscale stabilization).
//! - Consumers take one item at a time for `--per-msg` and start `--startup` after being
//!   requested; scaled-down busy consumers finish their item first.
//! - Summary: drain time (last arrival → last completion), p50/p95/max item latency
//!   (arrival → completion; `-` in the table and empty in CSV when nothing was processed),
//!   replica-seconds (consumers alive × time, until the run settles at min replicas), scale
//!   events (changes of the requested count).
//! - The scaler's flags (`--min-replicas` … `--interval`) are `ebb up`'s, with its defaults
//!   and `EBB_*` variables ([`ebb_scaling::ScalerArgs`]).
//! - Durations are Go-style (`500ms`, `1m30s`) in whole milliseconds; `--per-msg`,
//!   `--startup` and `--sample-every` are whole numbers of `--step`, periods are above 0,
//!   and a run stays within the [`limits`] (24 h, 10⁸ items, 10⁷ steps, 5·10⁵ samples).

mod args;
mod engine;
mod error;
pub mod limits;
mod policy;
mod report;
mod rng;
mod svg;
mod workload;

use std::path::Path;
use std::time::Duration;

use ebb_scaling::{Behavior, ScalerConfig};

use crate::limits::{MAX_HORIZON, MAX_SAMPLES, MAX_STEPS, past_horizon};

pub use args::{PolicyName, SimulateArgs};
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
    let workload = match &args.arrivals {
        Some(path) => Workload::from_file(path)?,
        None => Workload::scenario(args.scenario.unwrap_or(Scenario::Burst), args.seed),
    };
    let world = world_settings(args, &workload)?;
    let mut runs = Vec::new();
    for name in &args.policies {
        let mut policy = build_policy(*name, args, &world)?;
        runs.push(simulate(&workload, policy.as_mut(), &world));
    }
    let summaries = runs.iter().map(Summary::of).collect();
    Ok(Comparison {
        workload,
        runs,
        summaries,
    })
}

/// The world's flags on the simulated clock, checked: whole milliseconds, every consumer
/// time a whole number of steps (else it would silently round up to one), a run of bounded
/// size.
fn world_settings(args: &SimulateArgs, workload: &Workload) -> Result<WorldSettings> {
    let step_ms = clock_millis("--step", args.step)?;
    if step_ms == 0 {
        return Err(Error::ZeroDuration { flag: "--step" });
    }
    let whole_steps = |flag: &'static str, duration: Duration| {
        let ms = clock_millis(flag, duration)?;
        if !ms.is_multiple_of(step_ms) {
            return Err(Error::InvalidSettings(format!(
                "{flag} ({duration:?}) must be a multiple of --step ({:?}): give a --step that divides it",
                args.step
            )));
        }
        Ok(ms)
    };
    let per_msg_ms = whole_steps("--per-msg", args.per_msg)?;
    let sample_every_ms = whole_steps("--sample-every", args.sample_every)?;
    for (flag, ms) in [
        ("--per-msg", per_msg_ms),
        ("--sample-every", sample_every_ms),
    ] {
        if ms == 0 {
            return Err(Error::ZeroDuration { flag });
        }
    }
    let world = WorldSettings {
        step_ms,
        service_ms: per_msg_ms,
        startup_ms: whole_steps("--startup", args.startup)?,
        sample_every_ms,
        give_up_after_ms: clock_millis("--give-up-after", args.give_up_after)?,
        settled_replicas: args.scaler.min_replicas,
    };
    let horizon_ms = workload.last_arrival_ms() + world.give_up_after_ms;
    for (flag, every, every_ms, what, limit) in [
        ("--step", args.step, step_ms, "steps", MAX_STEPS),
        (
            "--sample-every",
            args.sample_every,
            sample_every_ms,
            "samples per policy",
            MAX_SAMPLES,
        ),
    ] {
        let count = horizon_ms / every_ms;
        if count > limit {
            return Err(Error::InvalidSettings(format!(
                "{flag} ({every:?}) over the {} s simulated is {count} {what}, above the limit of {limit}: use a longer {flag} or a shorter --give-up-after",
                horizon_ms / 1000
            )));
        }
    }
    Ok(world)
}

/// A duration flag as milliseconds of the simulated clock, which counts nothing smaller.
fn clock_millis(flag: &'static str, duration: Duration) -> Result<u64> {
    if duration > MAX_HORIZON {
        return Err(Error::InvalidSettings(past_horizon(&format!(
            "{flag} ({duration:?})"
        ))));
    }
    if !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(Error::InvalidSettings(format!(
            "{flag} ({duration:?}) must be a whole number of milliseconds"
        )));
    }
    // At most MAX_HORIZON: fits.
    Ok(duration.as_millis() as u64)
}

fn build_policy(
    name: PolicyName,
    args: &SimulateArgs,
    world: &WorldSettings,
) -> Result<Box<dyn Policy>> {
    let ebb = args.scaler.scaler_config()?;
    Ok(match name {
        PolicyName::Ebb => Box::new(Ebb::new(ebb, args.scaler.interval)?),
        PolicyName::HpaPipeline => {
            // The dojo's HPA shares the bounds, the target and the tolerance; the rest is
            // the upstream controller's.
            let config = ScalerConfig {
                min_replicas: ebb.min_replicas,
                max_replicas: ebb.max_replicas,
                target_per_replica: ebb.target_per_replica,
                tolerance: ebb.tolerance,
                behavior: Behavior::Unset {
                    downscale_stabilization: args.hpa_downscale_stabilization,
                },
                ..ScalerConfig::hpa_default()
            };
            // The shared settings passed above: only the window can be wrong here.
            config.validate().map_err(|source| Error::PipelineFlag {
                flag: "--hpa-downscale-stabilization",
                source,
            })?;
            Box::new(HpaPipeline::new(
                config,
                pipeline_timing(args, world.step_ms),
            )?)
        }
    })
}

/// The loops of a real cluster start at unrelated moments; the seed picks their phases.
fn pipeline_timing(args: &SimulateArgs, step_ms: u64) -> PipelineTiming {
    let mut rng = SplitMix64::new(args.seed ^ 0x00C0_FFEE_D0C5_5EED);
    let mut phase = |period: Duration| {
        let period_steps = (period.as_millis() / u128::from(step_ms)).max(1);
        let period_steps = u64::try_from(period_steps).unwrap_or(u64::MAX);
        Duration::from_millis(rng.range(0, period_steps).saturating_mul(step_ms))
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
