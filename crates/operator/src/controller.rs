//! Keeps one running scaler per QueueScaler: started when one appears, restarted when its
//! spec or pause annotations change, stopped when it is deleted. QueueScalers and
//! HorizontalPodAutoscalers are followed by watches (reflectors shared with the tasks);
//! nothing is polled.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::allowed::AllowedAddresses;
use crate::context::Context;
use crate::crd::QueueScaler;
use crate::metrics::{Metrics, ScalerLabels};
use crate::redis_pool::RedisPool;
use crate::scaler_task;
use crate::target::TargetWatches;
use crate::writer::Writer;

type Key = (String, String);

struct Running {
    run_key: (Option<i64>, Option<String>, Option<String>),
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What the controller is told at start, besides its client, writer and metrics.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Only QueueScalers of this namespace (`--namespace`); all namespaces when `None`.
    pub namespace: Option<String>,
    /// Turn on keyspace notifications where they are off (`--enable-keyspace-events`).
    pub enable_keyspace_events: bool,
    /// Where a credential from a Secret may be sent (`--allowed-addresses`).
    pub allowed: AllowedAddresses,
}

/// Runs every QueueScaler `settings` select until `shutdown`, writing through `writer` only.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    writer: Arc<Writer>,
    shutdown: impl Future<Output = ()>,
) {
    let Settings {
        namespace,
        enable_keyspace_events,
        allowed,
    } = settings;
    let (scalers_api, hpas_api): (Api<QueueScaler>, Api<HorizontalPodAutoscaler>) = match &namespace
    {
        Some(namespace) => (
            Api::namespaced(client.clone(), namespace),
            Api::namespaced(client.clone(), namespace),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let (hpas, hpa_writer) = reflector::store();
    // The stores keep no managedFields: nothing reads them, and at a thousand objects they
    // are most of the memory the stores take.
    let hpa_watch = reflector::reflector(
        hpa_writer,
        watcher(hpas_api, watcher::Config::default()).modify(crate::stores::without_managed_fields),
    )
    .default_backoff()
    .for_each(|_| async {});
    let hpa_watch = tokio::spawn(hpa_watch);
    let (scalers, scaler_writer) = reflector::store();
    let context = Arc::new(Context {
        targets: TargetWatches::new(client.clone()),
        client,
        scalers,
        hpas,
        metrics,
        writer,
        redis: RedisPool::new(enable_keyspace_events),
        allowed,
    });
    let mut running: HashMap<Key, Running> = HashMap::new();
    // Keys seen since the watch (re)started listing: after a relist, a scaler it no longer
    // lists was deleted while the watch was down.
    let mut listed: HashSet<Key> = HashSet::new();
    let events = reflector::reflector(
        scaler_writer,
        watcher(scalers_api, watcher::Config::default())
            .modify(crate::stores::without_managed_fields),
    )
    .default_backoff();
    futures::pin_mut!(events);
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            () = &mut shutdown => break,
            event = events.next() => event,
        };
        let Some(event) = event else { break };
        match event {
            Ok(watcher::Event::Apply(scaler) | watcher::Event::InitApply(scaler)) => {
                let key = (scaler.namespace().unwrap_or_default(), scaler.name_any());
                listed.insert(key.clone());
                let run_key = scaler_task::run_key(&scaler);
                if running
                    .get(&key)
                    .is_some_and(|r| r.run_key == run_key && !r.task.is_finished())
                {
                    continue;
                }
                if let Some(old) = running.remove(&key) {
                    stop(old).await;
                }
                let (stop_tx, stop_rx) = watch::channel(false);
                let task = tokio::spawn(scaler_task::drive(
                    context.clone(),
                    Arc::new(scaler),
                    stop_rx,
                ));
                running.insert(
                    key,
                    Running {
                        run_key,
                        stop: stop_tx,
                        task,
                    },
                );
            }
            Ok(watcher::Event::Delete(scaler)) => {
                let key = (scaler.namespace().unwrap_or_default(), scaler.name_any());
                if let Some(old) = running.remove(&key) {
                    stop(old).await;
                }
                forget(&context.metrics, key);
            }
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitDone) => {
                let gone: Vec<Key> = running
                    .keys()
                    .filter(|key| !listed.contains(*key))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some(old) = running.remove(&key) {
                        stop(old).await;
                    }
                    forget(&context.metrics, key);
                }
            }
            Err(error) => tracing::warn!("watching QueueScalers: {error}"),
        }
        context.metrics.scalers.set(running.len() as i64);
    }
    for (_, old) in running.drain() {
        stop(old).await;
    }
    hpa_watch.abort();
}

fn forget(metrics: &Metrics, (namespace, queuescaler): Key) {
    metrics.forget(&ScalerLabels {
        namespace,
        queuescaler,
    });
}

async fn stop(running: Running) {
    let _ = running.stop.send(true);
    let _ = running.task.await;
}
