//! `ebb up`: the whole system on one machine, autoscaling. The embedded default.
//!
//! ```text
//!   curl POST /publish/200            (this process)                    child processes
//!  ─────────────────────▶ producer ─RPUSH─▶ Redis ◀─BLMOVE/ack── consumer-1 … consumer-N
//!                          (child)          (child, unless        ▲ spawn / SIGTERM
//!                                         --redis-server)         │
//!                                             │ waiting, in flight│
//!                                             ▼                   │
//!                          ControlLoop: RedisSource → Scaler → LocalProcesses (Supervisor)
//!                                             │ Status
//!                                             ▼
//!                              live view (stdout) · /status, /metrics (--admin)
//! ```
//!
//! Every child gets `PR_SET_PDEATHSIG`, so nothing outlives `ebb up`, even SIGKILLed. On
//! Ctrl-C or SIGTERM the loop stops scaling, the producer stops, consumers finish the item
//! in hand, then the Redis it started (if any) stops.

mod admin;
mod error;
mod event_log;
mod orphan;
mod output;
mod run_dir;
mod supervisor;
mod target;
mod view;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use ebb_autoscaler::ControlLoop;
use ebb_autoscaler::sources::queue::RedisSource;
use ebb_queue::{Queue, RedisAddress};
use ebb_redis_server::Launch;
use ebb_runtime::{Shutdown, format_duration, parse_duration, parse_listen_address};
use ebb_scaling::{Scaler, ScalerArgs, ScalerConfig};
use tokio::sync::oneshot;

pub use error::{Error, Result};
use event_log::EventLog;
use run_dir::RunDir;
use supervisor::{ReplicaOutput, ReplicaSpec, Supervisor};
use target::LocalProcesses;

/// `ebb up` flags. The scaler's ([`ScalerArgs`], shared with `ebb simulate`) default to the
/// dojo's (min 0, max 20, 20 items per replica) with windows short enough for a demo; the
/// consumers take 1 s per item, as the dojo's.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Producer address (`host:port`, or `:port` for every interface).
    #[arg(long, env = "EBB_HTTP", default_value = "127.0.0.1:8080", value_parser = listen_address)]
    pub http: String,

    /// The scaler's /status, /metrics and /healthz.
    #[arg(long, env = "EBB_ADMIN", default_value = "127.0.0.1:9090", value_parser = listen_address)]
    pub admin: String,

    /// Redis to use (`host:port`, `redis://`, `rediss://`, or a cluster's seeds with
    /// `redis+cluster://host:port[,host:port…]`); without it, `ebb up` starts a
    /// `redis-server` of its own on a free loopback port.
    #[arg(long, env = "EBB_REDIS_SERVER", value_parser = ebb_queue::RedisServerParser)]
    pub redis_server: Option<RedisAddress>,

    /// PEM file of the CA that signed a rediss:// server's certificate; handed on to every
    /// child.
    #[arg(long, env = "EBB_REDIS_CA", value_name = "FILE")]
    pub redis_ca: Option<PathBuf>,

    /// Redis list of the queue (its own keys are named {<queue>}:…, in the list's cluster slot).
    #[arg(long, env = "EBB_REDIS_QUEUE", default_value = "padok", value_parser = ebb_queue::queue_name)]
    pub redis_queue: String,

    /// Work per item, passed to each consumer.
    #[arg(long, env = "EBB_PER_MSG", default_value = "1s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub per_msg: Duration,

    /// Run this instead of `ebb consumer` for each replica, through `sh -c`; it finds the
    /// queue in EBB_REDIS_SERVER, EBB_REDIS_QUEUE, EBB_PER_MSG and EBB_LEASE.
    #[arg(long, env = "EBB_CONSUMER_CMD")]
    pub consumer_cmd: Option<String>,

    /// A consumer silent for this long is presumed dead and its items go back to the queue.
    #[arg(long, env = "EBB_LEASE", default_value = "10s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub lease: Duration,

    /// How long a consumer may take to stop after SIGTERM before it is killed.
    #[arg(long, env = "EBB_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub grace_period: Duration,

    /// Live view on a terminal, log lines otherwise; or force one.
    #[arg(long, env = "EBB_VIEW", value_enum, default_value_t = ViewChoice::Auto)]
    pub view: ViewChoice,

    /// Timeouts and the connection cap of the --admin server.
    #[command(flatten)]
    pub http_limits: ebb_runtime::http::HttpLimits,

    /// The scaler's flags, the same as `ebb simulate`'s.
    #[command(flatten)]
    pub scaler: ScalerArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ViewChoice {
    Auto,
    Live,
    Plain,
}

/// Consumers heartbeat every third of their lease and pop for at most a sixth of it; below
/// this the heartbeats would flood Redis (the queue crate's own floor).
const SHORTEST_LEASE: Duration = ebb_queue::MIN_LEASE;

impl UpArgs {
    /// Checks every flag before anything starts, so a bad one costs nothing and leaves
    /// nothing behind.
    pub fn validate(&self) -> Result<ScalerConfig> {
        let invalid = |flag: &'static str, reason: String| Err(Error::InvalidFlag { flag, reason });
        if self.redis_ca.is_some() && self.redis_server.is_none() {
            return invalid(
                "--redis-ca",
                "needs --redis-server: the Redis ebb up starts itself speaks no TLS".into(),
            );
        }
        if let Err(reason) = ebb_queue::queue_name(&self.redis_queue) {
            return invalid("--redis-queue", reason);
        }
        if self.lease < SHORTEST_LEASE {
            return invalid(
                "--lease",
                format!(
                    "{:?} is too short: use at least {SHORTEST_LEASE:?}",
                    self.lease
                ),
            );
        }
        if self
            .consumer_cmd
            .as_deref()
            .is_some_and(|cmd| cmd.trim().is_empty())
        {
            return invalid(
                "--consumer-cmd",
                "is empty: give a program and its arguments".into(),
            );
        }
        Ok(self.scaler.scaler_config()?)
    }
}

fn listen_address(given: &str) -> std::result::Result<String, String> {
    parse_listen_address(given)
        .map(|_| given.to_owned())
        .map_err(|error| error.to_string())
}

/// `ebb up` as a command: logging where the view wants it, a runtime, signals.
pub fn main(args: UpArgs) -> Result<()> {
    let live = match args.view {
        ViewChoice::Auto => std::io::IsTerminal::is_terminal(&std::io::stdout()),
        ViewChoice::Live => true,
        ViewChoice::Plain => false,
    };
    let mode = if live {
        let events = EventLog::new(6);
        events.install();
        view::Mode::Live(events)
    } else {
        view::Mode::Plain
    };
    // Two workers: the producer and the consumers are separate processes, this one only
    // reads the queue, decides and supervises.
    ebb_runtime::run_service(2, |shutdown| run(args, mode, shutdown))
}

/// Runs `ebb up` until `shutdown` is requested, then stops everything it started.
async fn run(args: UpArgs, mode: view::Mode, shutdown: Shutdown) -> Result<()> {
    let scaler = Scaler::new(args.validate()?)?;
    // Bind what this process serves and check what the producer will, before starting
    // anything: a taken port fails at once, naming its flag.
    let admin = bind("--admin", &args.admin).await?;
    let admin_address = admin.local_addr().map_err(|source| Error::Io {
        what: "reading the --admin address".into(),
        source,
    })?;
    drop(bind("--http", &args.http).await?);

    let run_dir = RunDir::create()?;
    let (redis, address) = match &args.redis_server {
        Some(address) => match &args.redis_ca {
            Some(ca_file) => (None, address.clone().trusting(ca_file)?),
            None => (None, address.clone()),
        },
        None => {
            let redis = Launch::new(run_dir.path())
                .prepare(orphan::die_with_parent)
                .start()
                .await?;
            let address: RedisAddress = redis.address().parse()?;
            (Some(redis), address)
        }
    };
    let queue = Queue::new(&address, &args.redis_queue)?;
    let ebb = std::env::current_exe().map_err(|source| Error::Io {
        what: "finding the ebb executable".into(),
        source,
    })?;
    let log_dir = run_dir.path().join("logs");
    let output = match mode {
        view::Mode::Live(_) => {
            std::fs::create_dir_all(&log_dir).map_err(|source| Error::Io {
                what: format!("creating {}", log_dir.display()),
                source,
            })?;
            ReplicaOutput::Files(log_dir.clone())
        }
        view::Mode::Plain => ReplicaOutput::Prefixed,
    };
    // Children stop once the loop has stopped scaling them; a second signal reaches them at
    // once (it skips their grace period).
    let (loop_stopped, children) = stop_children_after_the_loop(&shutdown);
    let (producer, producer_done) = Supervisor::start(
        producer_spec(&ebb, &args, &address, output.clone()),
        children.clone(),
    );
    producer.scale(1).await?;
    let (consumers, consumers_done) = Supervisor::start(
        consumer_spec(&ebb, &args, &address, output),
        children.clone(),
    );

    let control = ControlLoop::new(
        RedisSource::new(queue.clone()),
        LocalProcesses(consumers.clone()),
        scaler,
        args.scaler.interval,
    )?;
    let observed = admin::Observed {
        queue: args.redis_queue.clone(),
        status: control.subscribe(),
        replicas: consumers.watch_counts(),
        producer: producer.watch_counts(),
    };
    let admin = tokio::spawn(admin::serve(
        admin,
        observed.clone(),
        args.http_limits,
        children,
    ));

    let mut header = format!(
        "ebb up · producer http://{} · status http://{admin_address}/status\nredis {address} list {}",
        reachable(&args.http),
        args.redis_queue,
    );
    let events = match &mode {
        view::Mode::Live(events) => {
            header.push_str(&format!(" · consumer logs in {}", log_dir.display()));
            Some(events.clone())
        }
        view::Mode::Plain => None,
    };
    let view = tokio::spawn(view::show(mode, header, observed.status, observed.replicas));

    control.run(shutdown.requested()).await;
    tracing::info!("stopping: consumers finish the item in hand");
    let _ = loop_stopped.send(());
    let _ = tokio::join!(producer_done, consumers_done);
    // The view ends with the consumers' supervisor; what is logged after goes to stderr.
    let _ = view.await;
    if let Some(events) = events {
        events.release();
    }
    match admin.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!("--admin: {error}"),
        Err(error) => tracing::warn!("--admin server failed: {error}"),
    }
    if let Some(redis) = redis {
        report_leftovers(&queue).await;
        redis.stop().await;
    }
    output::flush();
    Ok(())
}

/// A listen address as a URL host: `:8080` (every interface) is reached at `localhost:8080`.
fn reachable(listen: &str) -> String {
    match listen.strip_prefix(':') {
        Some(port) => format!("localhost:{port}"),
        None => listen.to_owned(),
    }
}

/// The children's shutdown: requested when `loop_stopped` fires, urgent as soon as `shutdown`
/// is (so a second Ctrl-C kills at once even before the loop has noticed the first).
fn stop_children_after_the_loop(shutdown: &Shutdown) -> (oneshot::Sender<()>, Shutdown) {
    let (trigger, children) = Shutdown::new();
    let (loop_stopped, stopped) = oneshot::channel();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = stopped => trigger.trigger(),
            () = shutdown.urgent() => {}
        }
        shutdown.urgent().await;
        trigger.trigger_urgently();
    });
    (loop_stopped, children)
}

async fn bind(flag: &'static str, address: &str) -> Result<tokio::net::TcpListener> {
    ebb_runtime::http::bind(address)
        .await
        .map_err(|source| Error::Listen { flag, source })
}

fn producer_spec(
    ebb: &Path,
    args: &UpArgs,
    redis: &RedisAddress,
    output: ReplicaOutput,
) -> ReplicaSpec {
    ReplicaSpec {
        name: "producer".into(),
        program: ebb.to_path_buf(),
        args: vec![
            "producer".into(),
            "--http".into(),
            args.http.clone(),
            "--redis-queue".into(),
            args.redis_queue.clone(),
        ],
        env: redis_env(redis, args),
        output,
        id_env: None,
        grace_period: Duration::from_secs(5),
    }
}

fn consumer_spec(
    ebb: &Path,
    args: &UpArgs,
    redis: &RedisAddress,
    output: ReplicaOutput,
) -> ReplicaSpec {
    let per_msg = format_duration(args.per_msg);
    let mut env = redis_env(redis, args);
    env.extend([
        ("EBB_REDIS_QUEUE".to_owned(), args.redis_queue.clone()),
        ("EBB_PER_MSG".to_owned(), per_msg),
        ("EBB_LEASE".to_owned(), format_duration(args.lease)),
        // Every replica serves /healthz and /metrics: each on a port of its own.
        ("EBB_HTTP".to_owned(), "127.0.0.1:0".to_owned()),
    ]);
    let (program, argv) = match &args.consumer_cmd {
        // `exec` so that SIGTERM reaches the program, not the shell.
        Some(command) => (
            PathBuf::from("sh"),
            vec!["-c".into(), format!("exec {command}")],
        ),
        None => (
            ebb.to_path_buf(),
            // Everything else comes from the environment, shared with --consumer-cmd.
            vec!["consumer".into()],
        ),
    };
    ReplicaSpec {
        name: "consumer".into(),
        program,
        args: argv,
        env,
        output,
        // Processing lists then say which replica holds what.
        id_env: Some("EBB_CONSUMER_ID".to_owned()),
        grace_period: args.grace_period,
    }
}

/// Children find Redis in their environment: a password stays out of `ps`.
fn redis_env(redis: &RedisAddress, args: &UpArgs) -> Vec<(String, String)> {
    let mut env = vec![(
        "EBB_REDIS_SERVER".to_owned(),
        redis.url_with_secrets().to_owned(),
    )];
    if let Some(ca_file) = &args.redis_ca {
        let ca_file = std::path::absolute(ca_file).unwrap_or_else(|_| ca_file.clone());
        env.push(("EBB_REDIS_CA".to_owned(), ca_file.display().to_string()));
    }
    env
}

/// Items left in a Redis that is about to go away with `ebb up` are worth a word.
async fn report_leftovers(queue: &Queue) {
    if let Ok(lengths) = queue.lengths().await
        && lengths.waiting + lengths.in_flight > 0
    {
        tracing::warn!(
            "{} items were still queued in the temporary Redis; pass --redis-server to keep them across runs",
            lengths.waiting + lengths.in_flight
        );
    }
}
