//! `ebb operator …` on the command line.

use clap::{Args, Subcommand};
use ebb_runtime::{Health, Metrics, Shutdown, http};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::leader::{self, ElectionArgs};

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
    Run(Box<RunArgs>),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Address of /healthz and /metrics (`:8080` = every interface).
    #[arg(long, env = "EBB_HTTP", default_value = ":8080")]
    pub http: String,

    #[command(flatten)]
    pub http_limits: http::HttpLimits,

    /// Turn on Redis keyspace notifications (`CONFIG SET notify-keyspace-events`) on every
    /// Redis a QueueScaler reads (every master of a Redis Cluster), so a change wakes its
    /// scaler at once. Off: they are used only where a server already sends them, and polling
    /// does the rest.
    #[arg(long, env = "EBB_ENABLE_KEYSPACE_EVENTS")]
    pub enable_keyspace_events: bool,

    /// Where a credential read from a Secret (passwordFrom) may be sent, as comma-separated
    /// host[:port] patterns: exact (`redis-master:6379`) or `*.` suffix wildcards
    /// (`*.cache.svc:6379`); no port: any port. An address off the list works only without
    /// credentials, or through urlFrom (host and password in one Secret). Empty (the default):
    /// no literal address receives a credential.
    #[arg(
        long,
        env = "EBB_ALLOWED_ADDRESSES",
        default_value = "",
        value_parser = crate::allowed::parse_allowed_addresses
    )]
    pub allowed_addresses: crate::allowed::AllowedAddresses,

    /// Only QueueScalers of this namespace; all namespaces when unset.
    #[arg(long, env = "EBB_WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    #[command(flatten)]
    pub election: ElectionArgs,
}

/// API requests in flight at once, at most (the Lease's own client aside).
const API_CONCURRENCY: usize = 32;

/// How long stopping may take once asked: below Kubernetes' default 30 s grace period.
const WIND_DOWN: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `ebb operator …`.
pub fn main(args: OperatorArgs) -> crate::Result<()> {
    match args.command {
        OperatorCommand::Crd => {
            print!("{}", crate::crd_yaml());
            Ok(())
        }
        // Two workers: reads, decisions and API calls of many scalers overlap.
        OperatorCommand::Run(args) => ebb_runtime::run_service(2, |shutdown| run(*args, shutdown)),
    }
}

async fn run(args: RunArgs, shutdown: Shutdown) -> crate::Result<()> {
    // The port first: a taken one fails at once, naming its flag, before any API call.
    let listener = http::bind(&args.http).await?;
    let identity = args.election.identity();
    let config = client_config(&identity).await?;
    // Each request in flight holds a connection of its own (HTTP/1.1): unbounded, a burst of
    // a thousand scalers opened a thousand TLS connections (100 MB of RSS, seconds of
    // handshakes). Watches hold a slot only until their response starts.
    let client = kube::client::ClientBuilder::try_from(config.clone())?
        .with_layer(&tower::limit::ConcurrencyLimitLayer::new(API_CONCURRENCY))
        .build();
    let health = Health::new();
    health.set_healthy();
    let mut registry = Registry::default();
    let operator_metrics = crate::metrics::Metrics::register(&mut registry);
    let leading = Gauge::default();
    registry.register(
        "ebb_operator_leader",
        "1 while this replica leads (holds the Lease and runs the controller), else 0",
        leading.clone(),
    );
    let renewals = Histogram::new([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 12.0]);
    registry.register(
        "ebb_operator_lease_renewal_interval_seconds",
        "Time between two renewals of the Lease this replica holds, as its watch sees them (due every 4 s; writes stop after 9 s)",
        renewals.clone(),
    );
    let router = http::with_error_fallbacks(http::ops_router(health, Metrics::new(registry)));
    tracing::info!(
        "ebb operator: scaling QueueScalers in {}; credentials from Secrets go only to --allowed-addresses ({})",
        args.namespace.as_deref().unwrap_or("all namespaces"),
        args.allowed_addresses
    );
    // One writer for the process: its gate opens while the election says this replica may
    // act, and every scale, status and Event goes through it.
    let (switch, gate) = crate::gate::gate();
    let writer = std::sync::Arc::new(crate::Writer::new(
        client.clone(),
        Some(identity.clone()),
        gate,
        operator_metrics.clone(),
    ));
    let settings = crate::controller::Settings {
        namespace: args.namespace.clone(),
        enable_keyspace_events: args.enable_keyspace_events,
        allowed: args.allowed_addresses.clone(),
    };
    // A standby is healthy too: /healthz answers 200 whether or not this replica leads.
    let elected = leader::run(
        config,
        &args.election,
        &identity,
        leader::Outputs {
            leading,
            renewals,
            switch,
        },
        shutdown.clone(),
        |stop| {
            crate::controller::run(
                client.clone(),
                settings.clone(),
                operator_metrics.clone(),
                writer.clone(),
                stop,
            )
        },
    );
    // A wind-down that hangs (an API server gone, a Redis frozen) must not keep the process
    // past its grace: the Lease then simply expires.
    let stopping = shutdown.clone();
    let elected = async move {
        tokio::select! {
            result = elected => result,
            () = async {
                stopping.requested().await;
                tokio::time::sleep(WIND_DOWN).await;
            } => {
                tracing::warn!("still stopping after {WIND_DOWN:?}: exiting anyway");
                Ok(())
            }
        }
    };
    let (served, elected) = tokio::join!(
        http::serve(listener, router, args.http_limits, shutdown),
        elected
    );
    elected?;
    Ok(served?)
}

/// A client configuration whose requests carry this replica's identity in their User-Agent,
/// so the API server's audit log tells the replicas apart.
async fn client_config(identity: &str) -> crate::Result<kube::Config> {
    let mut config = kube::Config::infer().await?;
    let agent = format!("ebb-operator/{} ({identity})", env!("CARGO_PKG_VERSION"));
    let agent =
        ::http::HeaderValue::from_str(&agent).map_err(|error| crate::Error::InvalidField {
            field: "--identity",
            reason: format!("{identity:?} is not usable in a User-Agent header: {error}"),
        })?;
    config.headers.push((::http::header::USER_AGENT, agent));
    Ok(config)
}
