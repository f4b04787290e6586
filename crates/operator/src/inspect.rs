//! `ebb inspect`: reads a source once, written as a QueueScaler's `spec.source`, and prints
//! what ebb sees: waiting, in flight, the oldest age, and who holds what. The first thing to
//! run when a scaler surprises you: the reading is the one the operator and the metrics API
//! take, through the same catalogue, the same mapping (`source.rs`) and the same checks.
//!
//! ```text
//!  --source YAML / -f FILE ─▶ crd::Source ─▶ source::spec ─▶ SourceSpec::build ─▶ read ─▶ table | JSON
//! ```
//!
//! It runs outside the cluster and reads no Secret: a source whose Redis server comes from
//! one (`urlFrom`, `passwordFrom`, `caFrom`) takes the address from `--redis-server` instead.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use ebb_queue::{RedisAddress, RedisReader, RedisServerParser};
use ebb_sources::{MetricSource, Reading, Redis};
use serde_json::{Value, json};

use crate::crd::{QueueScaler, RedisServer, Source};
use crate::{Error, Result};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The source as a QueueScaler writes it under spec.source, in YAML or JSON (for example
    /// `{ebbQueue: {redis: {address: "redis:6379"}, queue: padok}}`).
    #[arg(long, conflicts_with = "file")]
    pub source: Option<String>,

    /// A file holding the source, or a whole QueueScaler (its spec.source is read); `-` for
    /// standard input.
    #[arg(short, long)]
    pub file: Option<PathBuf>,

    /// The Redis server to read instead of the source's `redis` (required when that comes
    /// from a Secret): host:port, redis://[:password@]host:port[/db] or rediss://….
    #[arg(long, env = "EBB_REDIS_SERVER", value_parser = RedisServerParser)]
    pub redis_server: Option<RedisAddress>,

    /// How to print the reading.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// `ebb inspect`: one read on a runtime of its own.
pub fn main(args: InspectArgs) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Error::InvalidField {
            field: "ebb inspect",
            reason: format!("cannot start: {error}"),
        })?
        .block_on(inspect(args))
}

/// Reads the source once and prints the reading on standard output.
pub async fn inspect(args: InspectArgs) -> Result<()> {
    let (text, origin) = match (&args.source, &args.file) {
        (Some(text), _) => (text.clone(), "--source".to_owned()),
        (None, Some(path)) => (read_file(path)?, path.display().to_string()),
        (None, None) => {
            return Err(Error::InvalidField {
                field: "--source",
                reason: "give the source (--source YAML, or -f FILE)".to_owned(),
            });
        }
    };
    let source = parse(&text, &origin)?;
    let (spec, server) = crate::source::spec(&source)?;
    let redis = match (server, &args.redis_server) {
        (_, Some(address)) => Some(address.clone()),
        (Some((server, field)), None) => Some(address_of(server, &field)?),
        (None, None) => None,
    };
    let redis = redis
        .map(|address| {
            Ok::<_, Error>(Redis {
                reader: RedisReader::new(&address).map_err(ebb_sources::Error::from)?,
                address,
            })
        })
        .transpose()?;
    let built = spec.build(redis.as_ref())?;
    let reading = built.read().await?;
    let described = built.describe();
    match args.output {
        Output::Table => print!("{}", table(&described, &reading, SystemTime::now())),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&as_json(&described, &reading, SystemTime::now()))
                .expect("JSON always serializes")
        ),
    }
    Ok(())
}

fn read_file(path: &PathBuf) -> Result<String> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::read_to_string(path).map(|read| text = read)
    };
    read.map_err(|error| Error::InvalidField {
        field: "--file",
        reason: format!("{}: {error}", path.display()),
    })?;
    Ok(text)
}

/// The source in `text`: a `spec.source`, or a whole QueueScaler.
fn parse(text: &str, origin: &str) -> Result<Source> {
    let invalid = |field: &'static str, reason: String| Error::InvalidField {
        field,
        reason: format!("{origin}: {reason}"),
    };
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|error| invalid("--source", format!("not YAML: {error}")))?;
    if value.get("kind").is_some() {
        let scaler: QueueScaler = serde_json::from_value(value)
            .map_err(|error| invalid("--source", format!("not a QueueScaler: {error}")))?;
        return Ok(scaler.spec.source);
    }
    // A kind the catalogue does not have would be dropped silently: name it.
    let kinds: Vec<&str> = ebb_sources::CATALOGUE
        .iter()
        .map(|info| info.kind)
        .collect();
    if let Some(unknown) = value
        .as_object()
        .and_then(|given| given.keys().find(|key| !kinds.contains(&key.as_str())))
    {
        return Err(invalid(
            "spec.source",
            format!("{unknown:?} is not a source; one of {}", kinds.join(", ")),
        ));
    }
    serde_json::from_value(value).map_err(|error| invalid("spec.source", error.to_string()))
}

/// The address written in the source, or why it cannot be used here.
fn address_of(server: &RedisServer, field: &str) -> Result<RedisAddress> {
    let from_secret = [
        ("urlFrom", server.url_from.is_some()),
        ("passwordFrom", server.password_from.is_some()),
        ("caFrom", server.ca_from.is_some()),
    ];
    if let Some((secret_field, _)) = from_secret.iter().find(|(_, set)| *set) {
        return Err(Error::InvalidField {
            field: "--redis-server",
            reason: format!(
                "{field}.{secret_field}: ebb inspect reads no Secret; give the server with --redis-server (redis://:PASSWORD@host:port)"
            ),
        });
    }
    let given = server.address.as_deref().unwrap_or_default();
    given.parse().map_err(|error| Error::InvalidField {
        field: "--source",
        reason: format!("{field}.address: {error}"),
    })
}

fn count(value: Option<u64>) -> String {
    value.map_or("unknown".to_owned(), |value| value.to_string())
}

fn age(since: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
    since.map(|since| now.duration_since(since).unwrap_or_default())
}

/// The reading as a person reads it.
pub fn table(described: &str, reading: &Reading, now: SystemTime) -> String {
    let mut out = format!(
        "source       {described}\nwaiting      {}\nin flight    {}\n",
        reading.waiting,
        count(reading.in_flight)
    );
    let optional = [
        ("paused", reading.paused),
        ("scheduled", reading.scheduled),
        ("completed", reading.completed_total),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            out.push_str(&format!("{name:<12} {value}\n"));
        }
    }
    out.push_str(&format!(
        "oldest       {}\n",
        reading
            .oldest_waiting_age
            .map_or("unknown".to_owned(), |age| format!(
                "{:.1}s",
                age.as_secs_f64()
            ))
    ));
    if reading.leases.is_empty() {
        out.push_str("consumers    unknown: this source cannot tell who holds what\n");
        return out;
    }
    let width = reading
        .leases
        .iter()
        .map(|lease| lease.consumer.len())
        .max()
        .unwrap_or(0)
        .max("CONSUMER".len());
    out.push_str(&format!("\n{:<width$}  ITEMS  OLDEST LEASE\n", "CONSUMER"));
    for lease in &reading.leases {
        let oldest = age(lease.since, now)
            .map_or("-".to_owned(), |age| format!("{:.1}s", age.as_secs_f64()));
        out.push_str(&format!(
            "{:<width$}  {:>5}  {oldest}\n",
            lease.consumer, lease.leased
        ));
    }
    out
}

/// The reading for a program: unknown counts are `null`, never 0.
pub fn as_json(described: &str, reading: &Reading, now: SystemTime) -> Value {
    json!({
        "source": described,
        "waiting": reading.waiting,
        "inFlight": reading.in_flight,
        "completedTotal": reading.completed_total,
        "paused": reading.paused,
        "scheduled": reading.scheduled,
        "oldestWaitingSeconds": reading.oldest_waiting_age.map(|age| age.as_secs_f64()),
        "consumers": (!reading.leases.is_empty()).then(|| {
            reading
                .leases
                .iter()
                .map(|lease| json!({
                    "consumer": lease.consumer,
                    "items": lease.leased,
                    "oldestLeaseSeconds": age(lease.since, now).map(|age| age.as_secs_f64()),
                }))
                .collect::<Vec<_>>()
        }),
    })
}
