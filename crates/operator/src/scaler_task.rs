//! One QueueScaler, driven: build its source, target and scaler from the spec, run
//! ebb-autoscaler's control loop, and mirror what the loop sees into the status.
//!
//! ```text
//!  spec ──▶ RedisSource ─┐
//!       ──▶ ScalerConfig ├─▶ ControlLoop (read → decide → apply, every pollingInterval)
//!       ──▶ KubeScaleTarget                    │ Status (watch channel)
//!                                              ▼
//!                          status writer ──SSA──▶ QueueScaler/status, Events on scale
//! ```

use std::sync::Arc;
use std::time::Duration;

use ebb_autoscaler::sources::redis::RedisSource;
use ebb_autoscaler::{ControlLoop, Status};
use ebb_queue::{Queue, RedisAddress};
use ebb_scaling::Scaler;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;

use crate::config::scaler_config;
use crate::crd::{QueueScaler, QueueScalerStatus, RedisServer, condition};
use crate::status::{self, COUNTS_EVERY};
use crate::target::KubeScaleTarget;
use crate::{Error, Result};

/// Drives `scaler` until `stop` turns true. Set-up errors (an unreadable Secret, an unknown
/// kind) are written to the status and retried with a growing delay.
pub async fn drive(client: Client, scaler: Arc<QueueScaler>, mut stop: watch::Receiver<bool>) {
    let name = scaler.name_any();
    let namespace = scaler.namespace().unwrap_or_default();
    let api: Api<QueueScaler> = Api::namespaced(client.clone(), &namespace);
    let mut delay = Duration::from_secs(1);
    loop {
        let outcome = run_loop(&client, &api, &scaler, stop.clone()).await;
        if *stop.borrow() {
            return;
        }
        if let Err(error) = outcome {
            tracing::warn!("queuescaler {namespace}/{name}: {error}; retrying in {delay:?}");
            let mut previous = scaler.status.clone().unwrap_or_default();
            set_condition(
                &mut previous,
                condition::READY,
                false,
                "SetupFailed",
                &error.to_string(),
                scaler.meta().generation,
            );
            if let Err(error) = status::write(&api, &name, &previous).await {
                tracing::warn!("queuescaler {namespace}/{name}: writing status: {error}");
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

async fn run_loop(
    client: &Client,
    api: &Api<QueueScaler>,
    scaler: &QueueScaler,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let namespace = scaler.namespace().unwrap_or_default();
    let spec = &scaler.spec;
    let config = scaler_config(spec)?;
    let source = source(spec)?;
    let target =
        KubeScaleTarget::follow(client.clone(), &namespace, &spec.scale_target_ref).await?;
    let interval = Duration::from_secs(spec.polling_interval_seconds.max(1).into());
    let control = ControlLoop::new(source, target, Scaler::new(config)?, interval)?;
    let seen = control.subscribe();
    let writer = write_statuses(client.clone(), api.clone(), scaler.clone(), seen);
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::select! {
        () = control.run(stopped) => Ok(()),
        result = writer => result,
    }
}

fn source(spec: &crate::QueueScalerSpec) -> Result<RedisSource> {
    let (redis, key) = match (&spec.source.redis_list, &spec.source.ebb_queue) {
        (Some(list), _) => (&list.redis, &list.key),
        (None, Some(queue)) => (&queue.redis, &queue.queue),
        (None, None) => {
            return Err(Error::UnsupportedSource(
                "this operator reads redisList and ebbQueue sources; redisStream and prometheus are not available yet",
            ));
        }
    };
    let address = address(redis)?;
    Ok(RedisSource::new(Queue::new(&address, key)?))
}

fn address(redis: &RedisServer) -> Result<RedisAddress> {
    match (
        &redis.address,
        &redis.url_from,
        &redis.password_from,
        &redis.ca_from,
    ) {
        (Some(address), None, None, None) => address.parse().map_err(Error::from),
        _ => Err(Error::UnsupportedSource(
            "Redis addresses from Secrets (urlFrom, passwordFrom, caFrom) are not available yet",
        )),
    }
}

/// Follows the loop's status and writes it to the QueueScaler: decisions and errors at once,
/// counts alone at most every `COUNTS_EVERY`. Records an Event on every scale.
async fn write_statuses(
    client: Client,
    api: Api<QueueScaler>,
    scaler: QueueScaler,
    mut seen: watch::Receiver<Status>,
) -> Result<()> {
    let name = scaler.name_any();
    let generation = scaler.meta().generation;
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: status::FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let reference = scaler.object_ref(&());
    let mut written = scaler.status.clone().unwrap_or_default();
    let mut written_at = tokio::time::Instant::now();
    let mut scale_events = 0;
    loop {
        seen.changed().await.map_err(|_| Error::LoopStopped)?;
        let current = seen.borrow_and_update().clone();
        let scaled_now = current.scale_events > scale_events;
        scale_events = current.scale_events;
        let next =
            status::next_status(&written, &current, generation, scaled_now, Timestamp::now());
        if scaled_now && let Some(decision) = &current.last_decision {
            let event = Event {
                type_: EventType::Normal,
                reason: "Scaled".into(),
                note: Some(decision.reason.clone()),
                action: "Scale".into(),
                secondary: None,
            };
            if let Err(error) = recorder.publish(&event, &reference).await {
                tracing::warn!("queuescaler {name}: recording an event: {error}");
            }
        }
        let due = written_at.elapsed() >= COUNTS_EVERY;
        if next != written && (status::differs_beyond_counts(&written, &next) || due) {
            status::write(&api, &name, &next).await?;
            written = next;
            written_at = tokio::time::Instant::now();
        }
    }
}

fn set_condition(
    status: &mut QueueScalerStatus,
    kind: &str,
    value: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let value = if value { "True" } else { "False" };
    status
        .conditions
        .retain(|condition| condition.type_ != kind);
    status
        .conditions
        .push(k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: kind.into(),
            status: value.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::now(),
            ),
        });
}
