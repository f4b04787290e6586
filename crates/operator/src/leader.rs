//! Leader election: of the operator's replicas, only the holder of a coordination.k8s.io
//! Lease runs the controller. `kube-lease-manager` acquires and renews the Lease; this
//! module decides when this replica may *act*, and that is stricter than "holds the Lease".
//!
//! ```text
//!  kube-lease-manager ──acquire / renew every 4 s──▶ Lease (renewTime, 12 s)
//!  watch on the Lease ──holder = me: acting until renewTime + 12 s − 3 s──▶ GateSwitch
//!  gate open  ─▶ controller::run      gate closed ─▶ controller stopped, writes refused
//! ```
//!
//! The other replicas take the Lease once `renewTime + leaseDuration` has passed on their
//! clock. A leader stops acting `WRITE_MARGIN` before that, counted from the `renewTime` it
//! wrote itself (taken before its request left, so never later than the server's view): a
//! renewal that hangs or fails, a frozen process (SIGSTOP) or a lost Lease all close the gate
//! in time. The [`Gate`](crate::Gate) is a value given to the one [`Writer`](crate::Writer),
//! which checks it right before every write, so a process resumed after a freeze does not
//! send a write that its stopping controller had queued.
//!
//! The Lease lasts 12 s rather than 15 s so that a standby takes over within 15 s of the
//! leader's death even when the leader dies just after a renewal (12 s + the standby's
//! up-to-1 s random back-off + one scale tick). A leader stopping normally releases the
//! Lease, so a standby takes over at once.
//!
//! Renewals run on a thread and runtime of their own, with an API client of their own: with
//! a thousand scalers the operator's two workers are busy, and a renewal queued behind their
//! tasks lost the Lease under load. `ebb_operator_lease_renewal_interval_seconds` records the
//! time between two renewals as the Lease's watch sees them (due every 4 s; the gate closes
//! after 9 s).

use std::future::Future;
use std::time::{Duration, SystemTime};

use clap::Args;
use ebb_runtime::Shutdown;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::watch;

use crate::gate::GateSwitch;

/// How long a Lease lasts after its last renewal.
pub const LEASE_SECONDS: u64 = 12;
/// The holder renews this long before expiry: every 4 s, so two renewals may fail before
/// the gate closes.
const RENEW_BEFORE_EXPIRY_SECONDS: u64 = 8;
/// How often the holder renews: [`LEASE_SECONDS`] − [`RENEW_BEFORE_EXPIRY_SECONDS`].
pub const RENEW_EVERY: Duration = Duration::from_secs(LEASE_SECONDS - RENEW_BEFORE_EXPIRY_SECONDS);
/// A leader stops acting this long before its Lease can be taken: room for clock skew
/// between replicas and for a write already on the wire.
const WRITE_MARGIN: Duration = Duration::from_secs(3);
/// At most this long is spent releasing the Lease on the way out.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Args)]
pub struct ElectionArgs {
    /// Name of the coordination.k8s.io Lease the replicas elect a leader with.
    #[arg(long, env = "EBB_LEASE_NAME", default_value = "ebb-operator")]
    pub lease_name: String,

    /// Namespace of that Lease (the operator's own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,

    /// This replica's identity in the Lease; `<hostname>-<pid>` when unset.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

impl ElectionArgs {
    /// The identity given, or `<hostname>-<pid>`.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "ebb-operator".to_owned());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// What the election tells the rest of the process.
pub struct Outputs {
    /// 1 while this replica runs the controller (`ebb_operator_leader`).
    pub leading: Gauge,
    /// The time between two renewals of the Lease.
    pub renewals: Histogram,
    /// Opens the writers' gates while this replica may act; closed before anything else.
    pub switch: GateSwitch,
}

/// Campaigns for the Lease until `shutdown`, running `work` while this replica may act.
/// `work` gets a future that completes when it must stop; it has to return only after every
/// write it started is over. On shutdown the Lease is released, so a standby takes over now.
///
/// The campaign (renewals, the watch on the Lease) runs on a thread and runtime of its own
/// with a client of its own (`config`): a thousand scaler tasks keeping the operator's
/// workers busy must not delay a renewal past the gate's margin.
pub async fn run<W, F>(
    config: kube::Config,
    args: &ElectionArgs,
    identity: &str,
    outputs: Outputs,
    shutdown: Shutdown,
    mut work: W,
) -> crate::Result<()>
where
    W: FnMut(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
    F: Future<Output = ()>,
{
    let Outputs {
        leading,
        renewals,
        switch,
    } = outputs;
    switch.close();
    let acting_rx = switch.gate();
    let (stop_campaign, campaign_stopped) = watch::channel(false);
    let (campaign_tx, campaign_done) = tokio::sync::oneshot::channel();
    let campaign = Campaign {
        args: args.clone(),
        identity: identity.to_owned(),
        acting_until: switch,
        renewals,
    };
    std::thread::Builder::new()
        .name("ebb-lease".into())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| ebb_runtime::Error::AsyncRuntime(error).into())
                .and_then(|runtime| runtime.block_on(campaign.run(config, campaign_stopped)));
            let _ = campaign_tx.send(outcome);
        })
        .map_err(ebb_runtime::Error::AsyncRuntime)?;

    let supervise = async {
        let mut acting = acting_rx.clone();
        loop {
            // Shutdown first: after a stop for shutdown the Lease may still be ours.
            tokio::select! {
                biased;
                () = shutdown.requested() => return,
                () = acting.opened() => {}
            }
            tracing::info!("leading: starting the controller");
            leading.set(1);
            let mut stop_acting = acting_rx.clone();
            let stopping = shutdown.clone();
            work(Box::pin(async move {
                tokio::select! {
                    () = stopping.requested() => {}
                    () = stop_acting.closed() => {}
                }
            }))
            .await;
            leading.set(0);
            tracing::info!("not leading: the controller stopped");
        }
    };
    futures::pin_mut!(supervise, campaign_done);
    let outcome = tokio::select! {
        () = &mut supervise => {
            // The controller has stopped: the campaign may release the Lease.
            let _ = stop_campaign.send(true);
            campaign_done.await
        }
        // The campaign ended by itself (its watch ended, or it failed): its switch went with
        // it, and that closed the gates.
        outcome = &mut campaign_done => outcome,
    };
    leading.set(0);
    outcome.unwrap_or(Ok(()))
}

/// The Lease side of the election, on its own thread: acquire, renew, watch, release.
struct Campaign {
    args: ElectionArgs,
    identity: String,
    acting_until: GateSwitch,
    renewals: Histogram,
}

impl Campaign {
    async fn run(self, config: kube::Config, mut stop: watch::Receiver<bool>) -> crate::Result<()> {
        let client = Client::try_from(config)?;
        let args = &self.args;
        let identity = self.identity.as_str();
        let build = || {
            LeaseManagerBuilder::new(client.clone(), &args.lease_name)
                .with_namespace(&args.lease_namespace)
                .with_identity(identity)
                .with_duration(LEASE_SECONDS)
                .with_grace(RENEW_BEFORE_EXPIRY_SECONDS)
                .with_create_mode(LeaseCreateMode::AutoCreate)
                .build()
        };
        let mut manager = build().await?;
        tracing::info!(
            "leader election: Lease {}/{} as {identity}",
            args.lease_namespace,
            args.lease_name
        );
        // Counts the times the Lease was seen without a holder (released by a leader on its
        // way out).
        let (freed_tx, mut freed) = watch::channel(0_u64);

        let follow_lease = async {
            let api: Api<Lease> = Api::namespaced(client.clone(), &args.lease_namespace);
            let config =
                watcher::Config::default().fields(&format!("metadata.name={}", args.lease_name));
            let events = watcher(api, config).default_backoff().applied_objects();
            futures::pin_mut!(events);
            let mut last_renewal: Option<SystemTime> = None;
            while let Some(event) = events.next().await {
                match event {
                    Ok(lease) => {
                        let until = acting_deadline(&lease, identity);
                        self.acting_until.set(until);
                        let renewed = until.and_then(|_| renew_time(&lease));
                        if let (Some(before), Some(now)) = (last_renewal, renewed)
                            && let Ok(gap) = now.duration_since(before)
                            && !gap.is_zero()
                        {
                            self.renewals.observe(gap.as_secs_f64());
                            if gap > RENEW_EVERY + Duration::from_secs(2) {
                                tracing::warn!(
                                    "the Lease was renewed {gap:?} after the previous renewal (due every {RENEW_EVERY:?})"
                                );
                            }
                        }
                        last_renewal = renewed;
                        if lease
                            .spec
                            .as_ref()
                            .and_then(|spec| spec.holder_identity.as_deref())
                            .is_none_or(str::is_empty)
                        {
                            freed_tx.send_modify(|count| *count += 1);
                        }
                    }
                    Err(error) => tracing::warn!("watching the Lease: {error}"),
                }
            }
        };
        futures::pin_mut!(follow_lease);
        loop {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                () = &mut follow_lease => break,
                // The pause after an error is inside the branch, so the watch keeps running.
                changed = async {
                    let changed = manager.changed().await;
                    if changed.is_err() {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    changed
                } => match changed {
                    Ok(true) => tracing::info!("acquired the Lease"),
                    Ok(false) => tracing::info!("lost the Lease"),
                    Err(error) => tracing::warn!("leader election: {error}"),
                },
                Ok(()) = freed.changed() => {
                    // kube-lease-manager sleeps until the expiry it last read and does not
                    // watch the Lease: a fresh manager reads it now and takes a released
                    // Lease at once.
                    manager = build().await?;
                }
            }
        }
        self.acting_until.close();
        match tokio::time::timeout(RELEASE_TIMEOUT, manager.release()).await {
            Ok(Ok(())) => tracing::info!("released the Lease"),
            Ok(Err(error)) => tracing::warn!("releasing the Lease: {error}"),
            Err(_) => tracing::warn!("releasing the Lease: no answer in {RELEASE_TIMEOUT:?}"),
        }
        Ok(())
    }
}

fn renew_time(lease: &Lease) -> Option<SystemTime> {
    Some(lease.spec.as_ref()?.renew_time.as_ref()?.0.into())
}

/// Until when `identity` may act on `lease`: `WRITE_MARGIN` before the others may take it.
fn acting_deadline(lease: &Lease, identity: &str) -> Option<SystemTime> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed: SystemTime = spec.renew_time.as_ref()?.0.into();
    let seconds = u64::try_from(spec.lease_duration_seconds?).ok()?;
    renewed
        .checked_add(Duration::from_secs(seconds))?
        .checked_sub(WRITE_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed: SystemTime, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                renew_time: Some(MicroTime(renewed.try_into().unwrap())),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn the_holder_acts_until_the_margin_before_expiry() {
        let renewed = SystemTime::now();
        let until = acting_deadline(&lease("a", renewed, 12), "a").unwrap();
        assert_eq!(until, renewed + Duration::from_secs(12) - WRITE_MARGIN);
    }

    #[test]
    fn another_holder_or_no_renewal_means_no_acting() {
        let renewed = SystemTime::now();
        assert_eq!(acting_deadline(&lease("b", renewed, 12), "a"), None);
        let mut unrenewed = lease("a", renewed, 12);
        unrenewed.spec.as_mut().unwrap().renew_time = None;
        assert_eq!(acting_deadline(&unrenewed, "a"), None);
        assert_eq!(acting_deadline(&Lease::default(), "a"), None);
    }
}
