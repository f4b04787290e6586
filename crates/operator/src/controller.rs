//! Keeps one running scaler per QueueScaler: started when one appears, restarted when its
//! spec changes (a new generation), stopped when it is deleted. QueueScalers are followed
//! by a watch; nothing is polled.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::crd::QueueScaler;
use crate::scaler_task;

struct Running {
    generation: Option<i64>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs every QueueScaler in `namespace` (all namespaces when `None`) until `shutdown`.
pub async fn run(client: Client, namespace: Option<String>, shutdown: impl Future<Output = ()>) {
    let api: Api<QueueScaler> = match &namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let mut running: HashMap<(String, String), Running> = HashMap::new();
    // Keys seen since the watch (re)started listing: after a relist, a scaler it no longer
    // lists was deleted while the watch was down.
    let mut listed: HashSet<(String, String)> = HashSet::new();
    let events = watcher(api, watcher::Config::default()).default_backoff();
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
                let generation = scaler.metadata.generation;
                if running
                    .get(&key)
                    .is_some_and(|r| r.generation == generation && !r.task.is_finished())
                {
                    continue;
                }
                if let Some(old) = running.remove(&key) {
                    stop(old).await;
                }
                let (stop_tx, stop_rx) = watch::channel(false);
                let task = tokio::spawn(scaler_task::drive(
                    client.clone(),
                    Arc::new(scaler),
                    stop_rx,
                ));
                running.insert(
                    key,
                    Running {
                        generation,
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
            }
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitDone) => {
                let gone: Vec<_> = running
                    .keys()
                    .filter(|key| !listed.contains(*key))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some(old) = running.remove(&key) {
                        stop(old).await;
                    }
                }
            }
            Err(error) => tracing::warn!("watching QueueScalers: {error}"),
        }
    }
    for (_, old) in running.drain() {
        stop(old).await;
    }
}

async fn stop(running: Running) {
    let _ = running.stop.send(true);
    let _ = running.task.await;
}
