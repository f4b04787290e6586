//! What the operator makes of a QueueScaler before it reads a queue or a Secret: the source,
//! the Redis server and where it is written, the keys whose notifications wake the scaler, the
//! workload's kind, the scaler's configuration, the polling interval, the fallback, the
//! scale-in policy and the pause. Each part comes from the function the scaler task itself calls, so a test that
//! pins a [`Reading`] pins what the operator does with the object.

use std::time::Duration;

use ebb_autoscaler::{Fallback, ScaleInPolicy};
use ebb_scaling::ScalerConfig;
use ebb_sources::SourceSpec;
use kube::ResourceExt;
use kube::core::GroupVersionKind;

use crate::Result;
use crate::config::scaler_config;
use crate::crd::{QueueScaler, RedisServer};
use crate::scaler_task::{fallback, paused, polling_interval, scale_in_policy};
use crate::source::{spec as source_spec, watched_patterns};
use crate::target::kind_of;

/// A QueueScaler as the operator reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub source: SourceSpec,
    /// The Redis server the source reads, with the field it is written in.
    pub redis: Option<(RedisServer, String)>,
    /// The Redis glob patterns whose keyspace notifications wake the scaler.
    pub watched: Vec<String>,
    /// The workload's group, version and kind, and its name.
    pub target: (GroupVersionKind, String),
    pub scaler: ScalerConfig,
    pub polling_interval: Duration,
    pub fallback: Option<Fallback>,
    /// How a scale-in picks the replicas that go.
    pub scale_in: ScaleInPolicy,
    /// `None` when not paused; `Some(None)` frozen at the current count; `Some(Some(n))`
    /// frozen at n.
    pub paused: Option<Option<u32>>,
}

/// How the operator reads `scaler`; an error names the field it cannot read.
pub fn read(scaler: &QueueScaler) -> Result<Reading> {
    let spec = &scaler.spec;
    let (source, redis) = source_spec(&spec.source)?;
    let redis = redis.map(|(server, field)| (server.clone(), field));
    Ok(Reading {
        watched: watched_patterns(&source),
        source,
        redis,
        target: (
            kind_of(&spec.scale_target_ref),
            spec.scale_target_ref.name.clone(),
        ),
        scaler: scaler_config(spec)?,
        polling_interval: polling_interval(spec),
        fallback: fallback(spec),
        scale_in: scale_in_policy(spec),
        paused: paused(scaler.annotations())?,
    })
}
