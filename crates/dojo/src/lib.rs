//! `ebb dojo check <step>`: tells a learner of the dojo (docs/dojo/) whether a step is done,
//! against the cluster of the current kubeconfig and, for the monitoring steps, Prometheus at
//! `--prometheus-url`. It prints what is right (`✔`), what is wrong (`✘`) and the next hint
//! (`→`).
//!
//! ```text
//!   ebb dojo check hpa ──▶ steps::hpa_step ──▶ Cluster (GET …/horizontalpodautoscalers/consumer)
//!                                         └──▶ hpa::check_spec / check_conditions (pure)
//!                     ◀── Report ──▶ stdout, exit code
//! ```
//!
//! Exit codes: [`EXIT_DONE`] 0, [`EXIT_WRONG`] 1, [`EXIT_USAGE`] 2 (clap's own code for a bad
//! command line), [`EXIT_CANNOT_CHECK`] 3, [`EXIT_TIMED_OUT`] 4.
//!
//! - [`report`]: findings and their printing; [`cluster`], [`prometheus`]: the two readers;
//! - [`steps`]: one check per step; [`hpa`] and [`bug`]: the pure rules of steps 8 and 10.

pub mod bug;
pub mod cluster;
pub mod error;
pub mod hpa;
pub mod prometheus;
pub mod report;
pub mod steps;

use std::process::ExitCode;
use std::time::Duration;

pub use error::{Error, Result};

use crate::bug::Answer;
use crate::report::Report;
use crate::steps::Context;

/// The step is done.
pub const EXIT_DONE: u8 = 0;
/// Something is wrong: the `✘` lines say what.
pub const EXIT_WRONG: u8 = 1;
/// A bad command line (unknown step, `bug` without `--answer`, …).
pub const EXIT_USAGE: u8 = 2;
/// The check could not run: no cluster, or Prometheus did not answer.
pub const EXIT_CANNOT_CHECK: u8 = 3;
/// `check all` ran out of time.
pub const EXIT_TIMED_OUT: u8 = 4;

const EXIT_CODES: &str = "Exit codes: 0 the step is done; 1 something is wrong (the ✘ lines, then the hint); 2 bad command line; 3 the check could not run (no cluster, Prometheus did not answer); 4 `check all` ran out of time.";

#[derive(Debug, clap::Args)]
pub struct DojoArgs {
    #[command(subcommand)]
    pub command: DojoCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DojoCommand {
    /// Check a step of the dojo (docs/dojo/) against the current kubeconfig's cluster.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
}

/// The dojo's steps, in the order of docs/dojo/.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    /// 1: the cluster, Redis, the producer and the consumer.
    Bootstrap,
    /// 2: the app's pods run.
    App,
    /// 3: three consumers.
    Scale,
    /// 4: Prometheus, scraping every 5 s, selecting every rule and ServiceMonitor.
    Prometheus,
    /// 5: the Redis exporter, scraped, exporting the key.
    Exporter,
    /// 6: the recording rule redis_items_in_queue.
    Rule,
    /// 7: prometheus-adapter serving custom.metrics.k8s.io.
    Adapter,
    /// 8: the HPA.
    Hpa,
    /// 9: scaled to zero.
    Zero,
    /// 10: the line of Kubernetes behind −2⁶³ (with --answer).
    Bug,
    /// 11: ebb metrics-api instead of the chain.
    MetricsApi,
    /// 12: ebb operator instead of the HPA.
    Operator,
    /// Steps 1 to 9 in order, and 10 with --answer; stops at the first that is not done.
    All,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The step to check.
    #[arg(value_enum)]
    pub step: Step,
    /// Prometheus' URL, for steps 4 to 6.
    #[arg(
        long,
        env = "EBB_PROMETHEUS_URL",
        default_value = "http://prometheus.vcap.me"
    )]
    pub prometheus_url: String,
    /// The app's namespace.
    #[arg(long, env = "EBB_DOJO_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// For `bug`: where the bug is, as <file>:<line> (e.g. pkg/…/file.go:123, or a GitHub link
    /// ending in #L123).
    #[arg(long, required_if_eq("step", "bug"))]
    pub answer: Option<Answer>,
    /// For `all`: the time limit of the whole check.
    #[arg(long, default_value = "120s", value_parser = ebb_units::parse_duration)]
    pub timeout: Duration,
}

/// Runs `ebb dojo …` and returns its exit code.
pub fn main(args: DojoArgs) -> ExitCode {
    let DojoCommand::Check(args) = args.command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    ExitCode::from(runtime.block_on(check(&args)))
}

/// Checks `args.step`, prints the reports, and returns the exit code.
pub async fn check(args: &CheckArgs) -> u8 {
    let outcome = async {
        let ctx = Context {
            cluster: cluster::Cluster::from_kubeconfig().await?,
            prometheus: prometheus::Prometheus::new(&args.prometheus_url),
            namespace: args.namespace.clone(),
        };
        if args.step == Step::All {
            return Ok(check_all(&ctx, args).await);
        }
        let report = run(&ctx, args.step, args.answer.as_ref()).await?;
        print!("{report}");
        Ok(if report.done() { EXIT_DONE } else { EXIT_WRONG })
    };
    match outcome.await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ebb dojo check: {error}");
            match error {
                Error::Usage(_) => EXIT_USAGE,
                _ => EXIT_CANNOT_CHECK,
            }
        }
    }
}

async fn check_all(ctx: &Context, args: &CheckArgs) -> u8 {
    let mut steps = vec![
        Step::Bootstrap,
        Step::App,
        Step::Scale,
        Step::Prometheus,
        Step::Exporter,
        Step::Rule,
        Step::Adapter,
        Step::Hpa,
        Step::Zero,
    ];
    if args.answer.is_some() {
        steps.push(Step::Bug);
    }
    let all = async {
        for step in steps {
            let report = run(ctx, step, args.answer.as_ref()).await?;
            print!("{report}");
            if !report.done() {
                println!(
                    "stopped at step {}: the steps after it build on it",
                    report.step
                );
                return Ok::<u8, Error>(EXIT_WRONG);
            }
        }
        println!("all done.");
        Ok(EXIT_DONE)
    };
    match tokio::time::timeout(args.timeout, all).await {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("ebb dojo check: {error}");
            EXIT_CANNOT_CHECK
        }
        Err(_) => {
            eprintln!(
                "ebb dojo check: `all` did not finish within --timeout {}",
                ebb_units::format_duration(args.timeout)
            );
            EXIT_TIMED_OUT
        }
    }
}

async fn run(ctx: &Context, step: Step, answer: Option<&Answer>) -> Result<Report> {
    match step {
        Step::Bootstrap => steps::bootstrap(ctx).await,
        Step::App => steps::app(ctx).await,
        Step::Scale => steps::scale(ctx).await,
        Step::Prometheus => steps::prometheus(ctx).await,
        Step::Exporter => steps::exporter(ctx).await,
        Step::Rule => steps::rule(ctx).await,
        Step::Adapter => steps::adapter(ctx).await,
        Step::Hpa => steps::hpa_step(ctx).await,
        Step::Zero => steps::zero(ctx).await,
        Step::Bug => {
            let answer = answer
                .ok_or_else(|| Error::Usage("step bug needs --answer <file>:<line>".into()))?;
            steps::bug_step(ctx, answer).await
        }
        Step::MetricsApi => steps::metrics_api(ctx).await,
        Step::Operator => steps::operator(ctx).await,
        Step::All => unreachable!("`all` runs the steps one by one"),
    }
}
