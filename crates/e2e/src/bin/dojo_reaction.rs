//! Reaction time of the dojo pipeline on the loopback control plane: items pushed → HPA
//! desiredReplicas and Deployment spec.replicas at the target, and back to 0 once emptied.
//! Run by `bench/dojo-pipeline/run.sh`; prints one `key=value` line per measurement.

use std::time::Duration;

use clap::Parser;
use ebb_e2e::pipeline::DojoPipeline;
use ebb_testkit::control_plane::ControlPlane;

#[derive(Parser, Debug)]
#[command(about = "Measures the dojo pipeline's scaling reaction time")]
struct Args {
    /// Items pushed in each round.
    #[arg(long, env = "EBB_BENCH_ITEMS", default_value_t = 100)]
    items: usize,
    /// Items per replica the HPA targets (the consumer chart's averageItemsPerReplica).
    #[arg(long, env = "EBB_BENCH_ITEMS_PER_REPLICA", default_value_t = 20)]
    items_per_replica: usize,
    /// Rounds (push, wait for the target, empty, wait for 0).
    #[arg(long, env = "EBB_BENCH_ROUNDS", default_value_t = 3)]
    rounds: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let target = args.items.div_ceil(args.items_per_replica).min(20) as i64;
    let pipeline = DojoPipeline::start(ControlPlane::start().await?).await?;
    if pipeline.adapter.is_none() {
        return Err("prometheus-adapter was not built: no HPA reaction to measure".into());
    }
    // The consumer starts at 1 replica: settle at 0 first, so each round starts from scale-to-zero.
    pipeline
        .wait_for_replicas(0, Duration::from_secs(120))
        .await?;
    for round in 1..=args.rounds {
        pipeline.push(args.items);
        let up = pipeline
            .wait_for_replicas(target, Duration::from_secs(120))
            .await?;
        println!(
            "round={round} items={} scale_up_to={target} seconds={:.2}",
            args.items,
            up.as_secs_f64()
        );
        pipeline.empty();
        let down = pipeline
            .wait_for_replicas(0, Duration::from_secs(180))
            .await?;
        println!(
            "round={round} scale_down_to=0 seconds={:.2}",
            down.as_secs_f64()
        );
    }
    Ok(())
}
