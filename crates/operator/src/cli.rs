//! `ebb operator …` on the command line.

use clap::{Args, Subcommand};
use ebb_runtime::{Health, Metrics, Shutdown, http};
use prometheus_client::registry::Registry;

#[derive(Debug, Args)]
pub struct OperatorArgs {
    #[command(subcommand)]
    pub command: OperatorCommand,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Print the QueueScaler CustomResourceDefinition as YAML (the copy under
    /// helm/charts/operator/crds/ is this output).
    Crd,
    /// Run the controller: scale every QueueScaler's workload to its queue.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Address of /healthz and /metrics (`:8080` = every interface).
    #[arg(long, env = "EBB_HTTP", default_value = ":8080")]
    pub http: String,

    /// Only QueueScalers of this namespace; all namespaces when unset.
    #[arg(long, env = "EBB_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
}

/// Runs `ebb operator …`.
pub fn main(args: OperatorArgs) -> crate::Result<()> {
    match args.command {
        OperatorCommand::Crd => {
            print!("{}", crate::crd_yaml());
            Ok(())
        }
        // Two workers: reads, decisions and API calls of many scalers overlap.
        OperatorCommand::Run(args) => ebb_runtime::run_service(2, |shutdown| run(args, shutdown)),
    }
}

async fn run(args: RunArgs, shutdown: Shutdown) -> crate::Result<()> {
    // The port first: a taken one fails at once, naming its flag, before any API call.
    let listener = http::bind(&args.http).await?;
    let client = kube::Client::try_default().await?;
    let health = Health::new();
    health.set_healthy();
    let mut registry = Registry::default();
    let operator_metrics = crate::metrics::Metrics::register(&mut registry);
    let router = http::with_error_fallbacks(http::ops_router(health, Metrics::new(registry)));
    tracing::info!(
        "ebb operator: scaling QueueScalers in {}",
        args.namespace.as_deref().unwrap_or("all namespaces")
    );
    let stopping = shutdown.clone();
    let identity = std::env::var("POD_NAME").ok();
    let controlled = crate::controller::run(
        client,
        args.namespace,
        operator_metrics,
        identity,
        async move { stopping.requested().await },
    );
    let (served, ()) = tokio::join!(http::serve(listener, router, shutdown), controlled);
    Ok(served?)
}
