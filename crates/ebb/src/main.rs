//! `ebb`: one binary, one subcommand per component. Each subcommand's code lives in its own
//! crate (see `crates/`); this file only parses the command line and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ebb",
    version,
    about = "Queue-driven autoscaling, from one machine to Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the dojo's producer API: HTTP requests become queue items.
    Producer(ebb_producer::Args),
    /// Work through queue items, at least once, with a lease and graceful shutdown.
    Consumer(ebb_consumer::Args),
    /// Run the whole system on this machine: Redis, the producer, and consumers scaled to
    /// the queue.
    Up(ebb_local::UpArgs),
    /// Replay a workload through scaling policies on a simulated clock and compare them.
    Simulate(ebb_simulate::SimulateArgs),
    /// The QueueScaler controller for Kubernetes, and its CRD.
    Operator(ebb_operator::OperatorArgs),
    /// The dojo (docs/dojo/): check a step against the current cluster.
    Dojo(ebb_dojo::DojoArgs),
    /// The custom and external metrics API (custom.metrics.k8s.io, external.metrics.k8s.io)
    /// the HPA queries, read straight from the queue.
    MetricsApi(ebb_metrics_api::MetricsApiArgs),
    /// Read a source once, written as a QueueScaler's spec.source, and print what ebb sees:
    /// waiting, in flight, the oldest age, who holds what.
    Inspect(ebb_operator::InspectArgs),
    /// Exec probe: GET /livez (--ready: /readyz) on the port the container's main process
    /// listens on (for replicas that each pick a free port on a host-network node).
    Probe(ebb_runtime::ProbeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        // Two workers: request handling overlaps Redis round trips; still a small footprint.
        Command::Producer(args) => {
            ebb_runtime::run_service(2, |shutdown| ebb_producer::run(args, shutdown))
                .map_err(Into::into)
        }
        // One thread: the consumer waits on Redis and timers; --cpu-burn uses blocking threads.
        Command::Consumer(args) => {
            ebb_runtime::run_service(0, |shutdown| ebb_consumer::run(args, shutdown))
                .map_err(Into::into)
        }
        Command::Up(args) => ebb_local::main(args).map_err(Into::into),
        Command::Simulate(args) => ebb_simulate::run(&args).map_err(Into::into),
        Command::Operator(args) => ebb_operator::main(args).map_err(Into::into),
        // Its own exit codes: 1 a step not done, 3 no cluster, 4 out of time (see its --help).
        Command::Dojo(args) => return ebb_dojo::main(args),
        // Two workers: TLS handshakes and answers overlap the poller's reads.
        Command::MetricsApi(args) => {
            ebb_runtime::run_service(2, |shutdown| ebb_metrics_api::run(args, shutdown))
                .map_err(Into::into)
        }
        Command::Inspect(args) => ebb_operator::inspect_main(args).map_err(Into::into),
        Command::Probe(args) => ebb_runtime::probe(&args).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ebb: {error}");
            ExitCode::FAILURE
        }
    }
}
