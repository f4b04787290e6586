//! The status follower: what the control loop sees (a watch channel of `Status`) becomes
//! the QueueScaler's status, its metrics and its Events.
//!
//! ```text
//!  ControlLoop ──Status (watch)──▶ follow_status ─┬─▶ Writer::status (SSA, counts alone at most every COUNTS_EVERY)
//!                                                 ├─▶ metrics (observe; the reconcile's duration
//!                                                 │   once its status and Events are out)
//!                                                 └─▶ Events: Scaled, Overridden
//! ```

use ebb_autoscaler::{ScaleInCounts, Status, TickCounts};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use tokio::sync::watch;

use super::Task;
use crate::metrics::{DecisionLabels, Metrics, ScalerLabels};
use crate::status::{self, COUNTS_EVERY};
use crate::{Error, Result};

impl Task {
    /// Follows the loop's status: writes it to the QueueScaler (decisions, replica changes
    /// and conditions at once; counts alone at most every `COUNTS_EVERY`), keeps the metrics,
    /// and records an Event on every scale, and when someone else changed the count.
    pub(super) async fn follow_status(
        &self,
        mut seen: watch::Receiver<Status>,
        scale_in_rule: (bool, &'static str, String),
    ) -> Result<()> {
        let name = self.scaler.name_any();
        let mut written = self.scaler.status.clone().unwrap_or_default();
        let mut written_at = tokio::time::Instant::now();
        let mut scale_events = 0;
        let mut our_count: Option<u32> = None;
        let mut counted = TickCounts::default();
        let mut counted_scale_ins = ScaleInCounts::default();
        let mut reconciled = None;
        loop {
            seen.changed().await.map_err(|_| Error::LoopStopped)?;
            let current = seen.borrow_and_update().clone();
            let scales = current.scale_events.saturating_sub(scale_events);
            let scaled_now = scales > 0;
            scale_events = current.scale_events;
            self.observe(&current, scales, since(&mut counted, current.counts));
            self.observe_scale_in(&current, &mut counted_scale_ins);
            if current.last_error.is_none() || current.fallback_active {
                if let Some(ours) = our_count
                    && current.replicas != ours
                {
                    self.event(
                        "Overridden",
                        format!(
                            "the workload was set to {} replicas outside this QueueScaler; {}",
                            current.replicas,
                            current
                                .last_decision
                                .as_ref()
                                .map_or("", |d| d.reason.as_str())
                        ),
                    )
                    .await;
                }
                our_count = Some(current.desired_replicas);
            }
            if scaled_now && let Some(decision) = &current.last_decision {
                // A scale-in says which replicas went and why, in the same Event.
                let chosen = current.scale_in.as_ref().filter(|_| {
                    current.desired_replicas < current.replicas && current.desired_replicas > 0
                });
                let note = match chosen {
                    Some(scale_in) if !scale_in.chosen.is_empty() => {
                        // The decision's reason already says "scale 3 → 1".
                        let chosen = scale_in
                            .message
                            .split_once(": ")
                            .map_or(scale_in.message.as_str(), |(_, chosen)| chosen);
                        format!("{}; {chosen}", decision.reason)
                    }
                    _ => decision.reason.clone(),
                };
                self.event("Scaled", note).await;
            }
            let conflict = self
                .conflict()
                .map(|conflict| conflict.message(&self.scaler.spec.scale_target_ref));
            let next = status::next_status(
                &written,
                &current,
                status::Facts {
                    generation: self.generation(),
                    scaled_now,
                    conflict,
                    scale_in_rule: scale_in_rule.clone(),
                },
                Timestamp::now(),
            );
            let due = written_at.elapsed() >= COUNTS_EVERY;
            if next != written && (status::differs_beyond_counts(&written, &next) || due) {
                match self.context.writer.status(&self.api, &name, &next).await {
                    Ok(()) => {
                        written = next;
                        written_at = tokio::time::Instant::now();
                    }
                    Err(error) => {
                        self.context.metrics.error(&self.labels, "status");
                        tracing::warn!("queuescaler {}: writing status: {error}", self.describe());
                    }
                }
            }
            // The reconcile is over: read, decided, applied, and published (status, Events).
            // Ticks the watch channel merged are sampled by the last of them.
            if current.tick_started != reconciled
                && let Some(started) = current.tick_started
            {
                self.context
                    .metrics
                    .reconcile_duration
                    .get_or_create(&self.labels)
                    .observe(started.elapsed().as_secs_f64());
                reconciled = current.tick_started;
            }
        }
    }

    /// Updates the metrics from the loop's status: `new` is what the ticks did since the
    /// status seen before (several ticks when the watch channel merged them), `scales` the
    /// scale requests among them.
    fn observe(&self, current: &Status, scales: u64, new: TickCounts) {
        let metrics = &self.context.metrics;
        let labels = &self.labels;
        let gauge = |family: &prometheus_client::metrics::family::Family<
            ScalerLabels,
            prometheus_client::metrics::gauge::Gauge,
        >,
                     value: u64| {
            family
                .get_or_create(labels)
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        metrics.errors_by(labels, "read", new.read_failures);
        metrics.errors_by(labels, "apply", new.apply_failures);
        if new.reads > 0 {
            metrics.reads.get_or_create(labels).inc_by(new.reads);
            // The last read's duration stands for the merged ones (a sample, not each).
            if let Some(seconds) = current.read_seconds {
                metrics.read_duration.get_or_create(labels).observe(seconds);
            }
        }
        gauge(&metrics.waiting, current.waiting);
        // A source that cannot tell what is in flight has no series, rather than a 0.
        match current.in_flight {
            Some(in_flight) => gauge(&metrics.in_flight, in_flight),
            None => {
                metrics.in_flight.remove(labels);
            }
        }
        // The count once this tick's decision applied, not the one read before it.
        let replicas = if scales > 0 {
            current.desired_replicas
        } else {
            current.replicas
        };
        gauge(&metrics.replicas, replicas.into());
        gauge(&metrics.desired_replicas, current.desired_replicas.into());
        for (reason, count) in [
            ("scale_up", new.scale_up),
            ("scale_down", new.scale_down),
            ("hold", new.hold),
            ("fallback", new.fallback),
        ] {
            if count > 0 {
                metrics
                    .decisions
                    .get_or_create(&DecisionLabels {
                        namespace: labels.namespace.clone(),
                        queuescaler: labels.queuescaler.clone(),
                        reason: reason.into(),
                    })
                    .inc_by(count);
            }
        }
    }
}

impl Task {
    /// The scale-in metrics: what the loop's scale-in totals did since `counted`.
    fn observe_scale_in(&self, current: &Status, counted: &mut ScaleInCounts) {
        let metrics = &self.context.metrics;
        let labels = &self.labels;
        let now = current.scale_in_counts;
        let before = std::mem::replace(counted, now);
        let waiting = current
            .scale_in
            .as_ref()
            .map_or(0, |scale_in| scale_in.waiting_for.len());
        metrics
            .draining_replicas
            .get_or_create(labels)
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        let drains = [
            ("timed_out", now.drains_timed_out - before.drains_timed_out),
            ("cancelled", now.drains_cancelled - before.drains_cancelled),
        ];
        for (end, count) in drains {
            Metrics::count_by(&metrics.drains, labels, end, count);
        }
        let scale_ins = now.scale_ins - before.scale_ins;
        let Some(scale_in) = current.scale_in.as_ref().filter(|_| scale_ins > 0) else {
            return;
        };
        // Merged statuses: the last scale-in stands for the ones merged into it.
        let outcome = if !scale_in.ordered && scale_in.chosen.is_empty() {
            "unchosen"
        } else if scale_in.busy > 0 || scale_in.drain_timed_out {
            "busy"
        } else {
            "idle"
        };
        Metrics::count_by(&metrics.scale_ins, labels, outcome, scale_ins);
        Metrics::count_by(
            &metrics.scale_in_replicas,
            labels,
            "idle",
            scale_in.idle.into(),
        );
        Metrics::count_by(
            &metrics.scale_in_replicas,
            labels,
            "busy",
            scale_in.busy.into(),
        );
        if let Some(seconds) = scale_in.drain_seconds {
            if !scale_in.drain_timed_out {
                Metrics::count_by(&metrics.drains, labels, "done", scale_ins);
            }
            metrics
                .drain_duration
                .get_or_create(labels)
                .observe(seconds);
        }
    }
}

/// What the loop's ticks did since `counted`, which becomes `current` (the loop's totals
/// only grow).
fn since(counted: &mut TickCounts, current: TickCounts) -> TickCounts {
    let previous = std::mem::replace(counted, current);
    TickCounts {
        reads: current.reads.saturating_sub(previous.reads),
        read_failures: current.read_failures.saturating_sub(previous.read_failures),
        apply_failures: current
            .apply_failures
            .saturating_sub(previous.apply_failures),
        scale_up: current.scale_up.saturating_sub(previous.scale_up),
        scale_down: current.scale_down.saturating_sub(previous.scale_down),
        hold: current.hold.saturating_sub(previous.hold),
        fallback: current.fallback.saturating_sub(previous.fallback),
    }
}

#[cfg(test)]
mod tests {
    use super::{TickCounts, since};

    #[test]
    fn merged_statuses_count_every_tick_between_them() {
        let mut counted = TickCounts::default();
        let first = TickCounts {
            reads: 1,
            hold: 1,
            ..TickCounts::default()
        };
        assert_eq!(since(&mut counted, first), first);
        // Three ticks merged into one status: two holds and a scale-up, one failed read.
        let merged = TickCounts {
            reads: 3,
            read_failures: 1,
            hold: 2,
            scale_up: 1,
            ..TickCounts::default()
        };
        assert_eq!(
            since(&mut counted, merged),
            TickCounts {
                reads: 2,
                read_failures: 1,
                hold: 1,
                scale_up: 1,
                ..TickCounts::default()
            }
        );
        assert_eq!(since(&mut counted, merged), TickCounts::default());
    }
}
