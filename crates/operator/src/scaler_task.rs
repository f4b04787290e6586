//! One QueueScaler, driven: build its source, target and scaler from the spec, run
//! ebb-autoscaler's control loop, and mirror what the loop sees into the status.
//!
//! ```text
//!  spec + Secrets ──▶ metric source ─┐
//!  spec ──────────▶ ScalerConfig     ├─▶ ControlLoop (read → decide → apply, every interval)
//!  scaleTargetRef ─▶ KubeScaleTarget ┘            │ Status (watch channel)
//!                                                 ▼
//!                         status writer ──SSA──▶ QueueScaler/status, Events, metrics
//! ```
//!
//! Before the loop runs, two things can keep it hands-off: an older claim on the same
//! workload (`Conflict`) and the paused annotations (`Paused`).
//!
//! This file is the task's life (start, retry, hands-off, paused, the loop); the Secrets it
//! reads are resolved in `secrets.rs`, and the loop's status is followed in `follow.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ebb_autoscaler::{ControlLoop, Fallback, ScaleInPolicy, ScaleTarget};
use ebb_scaling::Scaler;
use ebb_sources::{Redis, Source};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use tokio::sync::{Notify, watch};

use crate::config::scaler_config;
use crate::context::Context;
use crate::crd::{
    QueueScaler, QueueScalerSpec, QueueScalerStatus, ScaleInPolicyName, SecretKeyRef, condition,
};
use crate::defaults;
use crate::metrics::ScalerLabels;
use crate::redis_pool::Server;
use crate::source::watched_patterns;
use crate::status;
use crate::target::KubeScaleTarget;
use crate::{Error, Result};

mod follow;
mod secrets;

/// Freezes a scaler at the workload's current count (`"true"`).
pub const PAUSED: &str = "ebb.dev/paused";
/// Freezes a scaler at this count (`"3"`), set once.
pub const PAUSED_REPLICAS: &str = "ebb.dev/paused-replicas";

/// How often a hands-off scaler looks again at the claims on its workload; an in-memory
/// look at the watched QueueScalers and HPAs, no API call.
const CONFLICT_RECHECK: Duration = Duration::from_secs(1);

/// What decides whether the task must restart: the spec and the pause annotations.
pub fn run_key(scaler: &QueueScaler) -> (Option<i64>, Option<String>, Option<String>) {
    let annotations = scaler.annotations();
    (
        scaler.metadata.generation,
        annotations.get(PAUSED).cloned(),
        annotations.get(PAUSED_REPLICAS).cloned(),
    )
}

/// Drives `scaler` until `stop` turns true. Set-up errors (an unreadable Secret, an unknown
/// kind) are written to the status and retried with a growing delay.
pub async fn drive(context: Arc<Context>, scaler: Arc<QueueScaler>, stop: watch::Receiver<bool>) {
    let task = Task::new(context, scaler);
    let mut delay = Duration::from_secs(1);
    loop {
        let outcome = task.run_once(stop.clone()).await;
        if *stop.borrow() {
            return;
        }
        match outcome {
            // A change the task must start over for (a Secret, a conflict appearing).
            Ok(()) => delay = Duration::from_secs(1),
            Err(error) => {
                tracing::warn!(
                    "queuescaler {}: {error}; retrying in {delay:?}",
                    task.describe()
                );
                task.context.metrics.error(&task.labels, "setup");
                let mut status = task.scaler.status.clone().unwrap_or_default();
                set_condition(
                    &mut status,
                    condition::READY,
                    false,
                    "SetupFailed",
                    &error.to_string(),
                    task.generation(),
                );
                task.write_status(&status).await;
                if wait_or_stop(stop.clone(), delay).await {
                    return;
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Sleeps `delay`; true if `stop` turned true meanwhile.
async fn wait_or_stop(mut stop: watch::Receiver<bool>, delay: Duration) -> bool {
    let stopped = tokio::select! {
        _ = stop.wait_for(|stop| *stop) => true,
        () = tokio::time::sleep(delay) => false,
    };
    stopped || *stop.borrow()
}

struct Task {
    context: Arc<Context>,
    scaler: Arc<QueueScaler>,
    api: Api<QueueScaler>,
    namespace: String,
    labels: ScalerLabels,
}

impl Task {
    fn new(context: Arc<Context>, scaler: Arc<QueueScaler>) -> Self {
        let namespace = scaler.namespace().unwrap_or_default();
        let labels = ScalerLabels {
            namespace: namespace.clone(),
            queuescaler: scaler.name_any(),
        };
        Task {
            api: Api::namespaced(context.client.clone(), &namespace),
            context,
            scaler,
            namespace,
            labels,
        }
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.scaler.name_any())
    }

    fn generation(&self) -> Option<i64> {
        self.scaler.meta().generation
    }

    fn conflict(&self) -> Option<crate::conflict::Conflict> {
        let scalers = self.context.scalers.state();
        let hpas = self.context.hpas.state();
        crate::conflict::find(
            &self.scaler,
            scalers.iter().map(AsRef::as_ref),
            hpas.iter().map(AsRef::as_ref),
        )
    }

    async fn write_status(&self, status: &QueueScalerStatus) {
        let name = self.scaler.name_any();
        match self.context.writer.status(&self.api, &name, status).await {
            Ok(()) => {}
            Err(error) => {
                self.context.metrics.error(&self.labels, "status");
                tracing::warn!("queuescaler {}: writing status: {error}", self.describe());
            }
        }
    }

    /// One life of the scaler: hands-off while another claim is older or it is paused,
    /// otherwise the control loop until `stop`, a Secret change or a conflict.
    async fn run_once(&self, stop: watch::Receiver<bool>) -> Result<()> {
        let spec = &self.scaler.spec;
        if let Some(conflict) = self.conflict().filter(|conflict| conflict.yields) {
            return self.stay_hands_off(&conflict, stop).await;
        }
        let target = KubeScaleTarget::follow(
            &self.context.targets,
            self.context.writer.clone(),
            &self.namespace,
            &spec.scale_target_ref,
        )
        .await?;
        if let Some(paused) = self.paused()? {
            return self.stay_paused(target, paused, stop).await;
        }
        let config = scaler_config(spec)?;
        let scale_in = scale_in_policy(spec);
        let scale_in_rule = match scale_in {
            ScaleInPolicy::Workload => (
                false,
                "WorkloadRules",
                "scaleIn.policy is Workload: the workload's own rules pick the replicas that go"
                    .to_owned(),
            ),
            _ => target
                .scale_in_rule()
                .condition(&spec.scale_target_ref.kind),
        };
        let (source, secrets, watched) = self.source().await?;
        let interval = polling_interval(spec);
        let mut control = ControlLoop::new(source, target, Scaler::new(config)?, interval)?;
        // A restart, or another replica taking over, continues the same decision: the
        // status holds the windows' recommendations and since when the queue is empty.
        if let Some(status) = &self.scaler.status {
            control = control.with_memory(status::memory(status, Timestamp::now()));
        }
        if let Some(fallback) = fallback(spec) {
            control = control.with_fallback(fallback);
        }
        control = control.with_scale_in(scale_in);
        // Woken by a keyspace notification of a key it reads, through its server's one
        // subscription, unsubscribed with this life. The server is held for the whole life:
        // the pool shares it only while held.
        let wake = Arc::new(Notify::new());
        let (_server, _key_watch) = match watched {
            Some((server, patterns)) => {
                control = control.with_wake(wake.clone());
                let key_watch = server.keyspace.watch(patterns, wake.clone());
                (Some(server), Some(key_watch))
            }
            None => (None, None),
        };
        let seen = control.subscribe();
        let mut stop_loop = stop.clone();
        let stopped = async move {
            let _ = stop_loop.wait_for(|stop| *stop).await;
        };
        // The loop stops on its own shutdown; the other branches end this life so the
        // task starts over with what changed.
        tokio::select! {
            () = control.run(stopped) => Ok(()),
            result = self.follow_status(seen, scale_in_rule) => result,
            () = self.secrets_change(secrets) => {
                tracing::info!("queuescaler {}: a Secret it reads changed", self.describe());
                Ok(())
            }
            () = self.conflict_appears() => Ok(()),
        }
    }

    async fn stay_hands_off(
        &self,
        conflict: &crate::conflict::Conflict,
        stop: watch::Receiver<bool>,
    ) -> Result<()> {
        let message = conflict.message(&self.scaler.spec.scale_target_ref);
        tracing::info!("queuescaler {}: {message}", self.describe());
        let mut status = self.scaler.status.clone().unwrap_or_default();
        status.observed_generation = self.generation();
        set_condition(
            &mut status,
            condition::CONFLICT,
            true,
            "OlderScaler",
            &message,
            self.generation(),
        );
        set_condition(
            &mut status,
            condition::READY,
            false,
            "HandsOff",
            &message,
            self.generation(),
        );
        self.write_status(&status).await;
        loop {
            if wait_or_stop(stop.clone(), CONFLICT_RECHECK).await {
                return Ok(());
            }
            if !self.conflict().is_some_and(|conflict| conflict.yields) {
                return Ok(());
            }
        }
    }

    async fn conflict_appears(&self) {
        loop {
            tokio::time::sleep(CONFLICT_RECHECK).await;
            if self.conflict().is_some_and(|conflict| conflict.yields) {
                return;
            }
        }
    }

    fn paused(&self) -> Result<Option<Option<u32>>> {
        paused(self.scaler.annotations())
    }

    async fn stay_paused(
        &self,
        target: KubeScaleTarget,
        paused: Option<u32>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<()> {
        let current = target.replicas().await?;
        let frozen_at = paused.unwrap_or(current);
        if frozen_at != current {
            target.scale(frozen_at).await?;
            self.event(
                "Paused",
                format!("scale {current} → {frozen_at}, paused at {frozen_at}"),
            )
            .await;
        }
        let message = match paused {
            Some(count) => {
                format!("paused at {count} replicas by the {PAUSED_REPLICAS} annotation")
            }
            None => format!("paused at the current {current} replicas by the {PAUSED} annotation"),
        };
        let mut status = self.scaler.status.clone().unwrap_or_default();
        status.observed_generation = self.generation();
        status.replicas = Some(frozen_at);
        status.desired_replicas = Some(frozen_at);
        status.last_decision = Some(message.clone());
        set_condition(
            &mut status,
            condition::PAUSED,
            true,
            "Annotation",
            &message,
            self.generation(),
        );
        set_condition(
            &mut status,
            condition::READY,
            true,
            "Paused",
            &message,
            self.generation(),
        );
        self.write_status(&status).await;
        let _ = stop.wait_for(|stop| *stop).await;
        Ok(())
    }

    /// The metric source the spec names, with its Secrets read; also the Secrets to watch.
    async fn source(&self) -> Result<(Source, Vec<SecretKeyRef>, Watched)> {
        let (spec, redis_server) = crate::source::spec(&self.scaler.spec.source)?;
        let secrets = redis_server
            .as_ref()
            .map(|(redis, _)| {
                [&redis.url_from, &redis.password_from, &redis.ca_from]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        // The server per source, found with its Secrets (and the allow-list) here; the
        // catalogue builds the source on it.
        let (redis, watched) = match redis_server {
            Some((redis, field)) => {
                let address = self.address(redis, &field).await?;
                let server = self.context.redis.server(&address)?;
                let redis = Redis {
                    address,
                    reader: server.reader.clone(),
                };
                (Some(redis), Some((server, watched_patterns(&spec))))
            }
            None => (None, None),
        };
        let built = spec.build(redis.as_ref())?;
        // The same rule as Redis: a credential goes only where the installer allows.
        if let Source::Prometheus(source) = &built
            && source.carries_credentials()
        {
            const FIELD: &str = "spec.source.prometheus.serverAddress";
            self.context.allowed.check(
                FIELD,
                "spec.source.prometheus.serverAddress (its user:password)",
                &[source.host_port()],
            )?;
        }
        Ok((built, secrets, watched))
    }

    async fn event(&self, reason: &str, note: String) {
        if let Err(error) = self.context.writer.event(&self.scaler, reason, note).await {
            tracing::warn!(
                "queuescaler {}: recording an event: {error}",
                self.describe()
            );
        }
    }
}

/// How often the loop reads the queue (at least once a second, whatever the spec says).
pub fn polling_interval(spec: &QueueScalerSpec) -> Duration {
    Duration::from_secs(spec.polling_interval_seconds.max(1).into())
}

/// The count to run while the queue cannot be read, and after how many failed reads.
pub fn fallback(spec: &QueueScalerSpec) -> Option<Fallback> {
    spec.fallback.as_ref().map(|fallback| Fallback {
        replicas: fallback.replicas,
        after_failures: fallback.failure_threshold,
    })
}

/// How a scale-in picks the replicas that go: `Drain` within 300 s unless the spec says.
pub fn scale_in_policy(spec: &QueueScalerSpec) -> ScaleInPolicy {
    let (policy, bound) = spec.scale_in.as_ref().map_or(
        (
            ScaleInPolicyName::default(),
            defaults::drain_timeout_seconds(),
        ),
        |scale_in| (scale_in.policy, scale_in.drain_timeout_seconds),
    );
    match policy {
        ScaleInPolicyName::Drain => ScaleInPolicy::Drain {
            bound: Duration::from_secs(bound.max(1).into()),
        },
        ScaleInPolicyName::Choose => ScaleInPolicy::Choose,
        ScaleInPolicyName::Workload => ScaleInPolicy::Workload,
    }
}

/// `None` when not paused; `Some(None)` frozen at the current count; `Some(Some(n))`
/// frozen at n.
pub fn paused(annotations: &BTreeMap<String, String>) -> Result<Option<Option<u32>>> {
    if let Some(count) = annotations.get(PAUSED_REPLICAS) {
        let replicas = count
            .trim()
            .parse::<u32>()
            .map_err(|_| Error::InvalidField {
                field: "metadata.annotations[ebb.dev/paused-replicas]",
                reason: format!("{count:?} is not a replica count (digits only)"),
            })?;
        return Ok(Some(Some(replicas)));
    }
    match annotations.get(PAUSED).map(|value| value.trim()) {
        None | Some("false") => Ok(None),
        Some("true") => Ok(Some(None)),
        Some(other) => Err(Error::InvalidField {
            field: "metadata.annotations[ebb.dev/paused]",
            reason: format!("{other:?} is neither \"true\" nor \"false\""),
        }),
    }
}

/// The Redis server a scaler reads, and the key patterns whose keyspace notifications wake it.
type Watched = Option<(Arc<Server>, Vec<String>)>;

fn set_condition(
    status: &mut QueueScalerStatus,
    kind: &str,
    value: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let condition = status::carry_over(
        &status.conditions,
        kind,
        value,
        reason,
        message.to_owned(),
        generation,
        Timestamp::now(),
    );
    status.conditions.retain(|existing| existing.type_ != kind);
    status.conditions.push(condition);
}
