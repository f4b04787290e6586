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
    /// Replay a workload through scaling policies on a simulated clock and compare them.
    Simulate(ebb_simulate::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        Command::Simulate(args) => ebb_simulate::run(&args).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ebb: {error}");
            ExitCode::FAILURE
        }
    }
}
