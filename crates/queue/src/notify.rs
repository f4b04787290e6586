//! Keyspace notifications: Redis telling scalers that a key they read changed, so they read
//! at once instead of at their next poll. Polling stays the safety net: a notification is a
//! hint to read now, never a value.
//!
//! One [`KeyspaceEvents`] per server serves every scaler reading it: one pub/sub connection
//! per server (per master on a Redis Cluster, where each node announces only its own keys),
//! subscribed to the union of the scalers' key patterns, fanning each message out to the
//! scalers whose pattern it matched.
//!
//! ```text
//!  scaler ─watch(patterns, wake)─┐                       ┌─ node 1: PSUBSCRIBE __keyspace@*__:<p>…
//!  scaler ─watch(patterns, wake)─┼─▶ registry (patterns) ┼─ node 2 …        (one connection each)
//!  scaler ─watch(patterns, wake)─┘        ▲              └─ message → the wakes of its pattern
//! ```
//!
//! Only where a node already sends them (`notify-keyspace-events` with `K` and list events,
//! `l` or `A`), detected per node: turning them on is an explicit opt-in
//! ([`RedisAddress::enable_keyspace_events`], or `enable` in [`KeyspaceEvents::new`]), since
//! `CONFIG SET` on a shared or managed Redis is intrusive. A node that does not send them is
//! asked again every [`RECHECK`]; a lost subscription is made again, and every scaler is
//! woken then, since a change may have gone unannounced meanwhile.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Notify, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::address::Target;
use crate::{COMMAND_TIMEOUT, Error, RedisAddress, Result};

/// How often a node that sends no notifications is asked again, and a cluster's masters
/// are listed again.
pub const RECHECK: Duration = Duration::from_secs(30);
/// The wait before subscribing again after a lost connection.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);
/// What a keyspace channel pattern starts with (every database).
const CHANNEL_PREFIX: &str = "__keyspace@*__:";

/// Whether a `notify-keyspace-events` value makes Redis announce list changes on keyspace
/// channels.
fn announces_list_changes(flags: &str) -> bool {
    flags.contains('K') && (flags.contains('A') || flags.contains('l'))
}

/// The keyspace notifications of one server or cluster, shared by the scalers reading it.
/// Cheap to clone. Its task (one subscription per node) runs while a clone or a
/// [`KeyWatch`] lives.
#[derive(Clone)]
pub struct KeyspaceEvents {
    hub: Arc<Hub>,
}

struct Hub {
    address: RedisAddress,
    registry: Mutex<Registry>,
    /// Bumped on every change of the registry's patterns: the node tasks subscribe to the
    /// difference.
    patterns_changed: watch::Sender<u64>,
    /// Nodes subscribed right now.
    subscribed_nodes: watch::Sender<usize>,
    task: Mutex<Option<AbortHandle>>,
    enable: bool,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    /// pattern → (watch id, its wake).
    wakes: BTreeMap<String, Vec<(u64, Arc<Notify>)>>,
}

/// A scaler's interest in some keys: its wake is notified on each of their changes until
/// this is dropped.
pub struct KeyWatch {
    hub: Arc<Hub>,
    id: u64,
    patterns: Vec<String>,
}

impl KeyspaceEvents {
    /// The notifications of the server or cluster at `address`; with `enable`, turns them on
    /// (`CONFIG SET`, on each master) where they are off. Touches no network until the first
    /// [`KeyspaceEvents::watch`]; must then be inside a Tokio runtime.
    pub fn new(address: &RedisAddress, enable: bool) -> KeyspaceEvents {
        KeyspaceEvents {
            hub: Arc::new(Hub {
                address: address.clone(),
                registry: Mutex::default(),
                patterns_changed: watch::Sender::new(0),
                subscribed_nodes: watch::Sender::new(0),
                task: Mutex::new(None),
                enable,
            }),
        }
    }

    /// Notifies `wake` whenever a key matching one of `patterns` (Redis glob patterns, as
    /// `PSUBSCRIBE` takes them) changes, until the returned [`KeyWatch`] is dropped.
    pub fn watch(&self, patterns: Vec<String>, wake: Arc<Notify>) -> KeyWatch {
        let id = {
            let mut registry = self.hub.lock();
            registry.next_id += 1;
            let id = registry.next_id;
            for pattern in &patterns {
                registry
                    .wakes
                    .entry(pattern.clone())
                    .or_default()
                    .push((id, wake.clone()));
            }
            id
        };
        self.hub.patterns_changed.send_modify(|count| *count += 1);
        let mut task = self.hub.task.lock().unwrap_or_else(PoisonError::into_inner);
        if task.is_none() {
            let hub = Arc::downgrade(&self.hub);
            *task = Some(tokio::spawn(follow_nodes(hub, self.hub.address.clone())).abort_handle());
        }
        KeyWatch {
            hub: self.hub.clone(),
            id,
            patterns,
        }
    }

    /// Waits until `count` nodes are subscribed (every node that sends notifications, once
    /// they are all reached); for tests and start-up checks.
    pub async fn subscribed(&self, count: usize) {
        let mut nodes = self.hub.subscribed_nodes.subscribe();
        let _ = nodes.wait_for(|subscribed| *subscribed >= count).await;
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn patterns(&self) -> BTreeSet<String> {
        self.lock().wakes.keys().cloned().collect()
    }

    fn wake(&self, pattern: &str) {
        if let Some(wakes) = self.lock().wakes.get(pattern) {
            for (_, wake) in wakes {
                wake.notify_one();
            }
        }
    }

    fn wake_all(&self) {
        for wakes in self.lock().wakes.values() {
            for (_, wake) in wakes {
                wake.notify_one();
            }
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl Drop for KeyWatch {
    fn drop(&mut self) {
        {
            let mut registry = self.hub.lock();
            for pattern in &self.patterns {
                if let Some(wakes) = registry.wakes.get_mut(pattern) {
                    wakes.retain(|(id, _)| *id != self.id);
                    if wakes.is_empty() {
                        registry.wakes.remove(pattern);
                    }
                }
            }
        }
        self.hub.patterns_changed.send_modify(|count| *count += 1);
    }
}

/// Keeps one subscription per node: the server, or each master of the cluster (listed again
/// every [`RECHECK`]). Ends when the hub is gone.
async fn follow_nodes(hub: Weak<Hub>, address: RedisAddress) {
    let mut nodes: HashMap<String, AbortHandle> = HashMap::new();
    let mut tasks = JoinSet::new();
    let enable = match hub.upgrade() {
        Some(hub) => hub.enable,
        None => return,
    };
    loop {
        let masters = match &address.target {
            Target::Server(_) => Ok(vec![address.clone()]),
            Target::Cluster(_) => address.cluster_masters().await,
        };
        match masters {
            Ok(masters) => {
                let listed: BTreeSet<String> = masters.iter().map(ToString::to_string).collect();
                nodes.retain(|node, task| {
                    let keep = listed.contains(node);
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for node in masters {
                    nodes
                        .entry(node.to_string())
                        .or_insert_with(|| tasks.spawn(follow_node(hub.clone(), node, enable)));
                }
            }
            Err(error) => tracing::debug!("keyspace notifications of {address}: {error}"),
        }
        if matches!(address.target, Target::Server(_)) && !nodes.is_empty() {
            // One node, for good: only wait for the hub to go (the abort).
            while tasks.join_next().await.is_some() {}
            return;
        }
        tokio::time::sleep(RECHECK).await;
        while tasks.try_join_next().is_some() {}
    }
}

/// One node's subscription, made again whenever it is lost.
async fn follow_node(hub: Weak<Hub>, node: RedisAddress, enable: bool) {
    let mut first = true;
    let mut sending: Option<bool> = None;
    loop {
        let Some(strong) = hub.upgrade() else { return };
        let mut patterns_changed = strong.patterns_changed.subscribe();
        drop(strong);
        match node.subscription(enable).await {
            Ok(Some(pubsub)) => {
                if sending != Some(true) {
                    tracing::info!(
                        "keyspace notifications of {node}: scalers reading it are woken by them"
                    );
                    sending = Some(true);
                }
                let Some(strong) = hub.upgrade() else { return };
                strong.subscribed_nodes.send_modify(|count| *count += 1);
                if !first {
                    // A change may have gone unannounced while the connection was down.
                    strong.wake_all();
                }
                drop(strong);
                first = false;
                let outcome = relay(&hub, &node, pubsub, &mut patterns_changed).await;
                if let Some(strong) = hub.upgrade() {
                    strong.subscribed_nodes.send_modify(|count| *count -= 1);
                }
                match outcome {
                    Ok(()) => tracing::debug!("keyspace notifications of {node}: connection lost"),
                    Err(error) => tracing::debug!("keyspace notifications of {node}: {error}"),
                }
                tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            }
            Ok(None) => {
                if sending != Some(false) {
                    tracing::info!(
                        "{node} sends no keyspace notifications: scalers reading it poll (asked again every {RECHECK:?})"
                    );
                    sending = Some(false);
                }
                tokio::time::sleep(RECHECK).await;
            }
            Err(error) => {
                tracing::debug!("keyspace notifications of {node}: {error}");
                tokio::time::sleep(RESUBSCRIBE_AFTER * 5).await;
            }
        }
    }
}

/// Subscribes to the registry's patterns, follows its changes, and hands each message to the
/// wakes of its pattern; returns when the connection ends.
async fn relay(
    hub: &Weak<Hub>,
    node: &RedisAddress,
    pubsub: redis::aio::PubSub,
    patterns_changed: &mut watch::Receiver<u64>,
) -> Result<()> {
    let (mut sink, mut messages) = pubsub.split();
    let mut subscribed: BTreeSet<String> = BTreeSet::new();
    loop {
        let Some(strong) = hub.upgrade() else {
            return Ok(());
        };
        // Seen before reading, so a change made meanwhile is caught by the next round.
        patterns_changed.borrow_and_update();
        let wanted = strong.patterns();
        drop(strong);
        for pattern in wanted.difference(&subscribed) {
            bounded(node, sink.psubscribe(format!("{CHANNEL_PREFIX}{pattern}"))).await?;
        }
        for pattern in subscribed.difference(&wanted) {
            bounded(
                node,
                sink.punsubscribe(format!("{CHANNEL_PREFIX}{pattern}")),
            )
            .await?;
        }
        subscribed = wanted;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { return Ok(()) };
                    let Ok(channel_pattern) = message.get_pattern::<String>() else { continue };
                    if let (Some(pattern), Some(hub)) =
                        (channel_pattern.strip_prefix(CHANNEL_PREFIX), hub.upgrade())
                    {
                        hub.wake(pattern);
                    }
                }
                changed = patterns_changed.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    break;
                }
            }
        }
    }
}

async fn bounded<T>(
    node: &RedisAddress,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T> {
    tokio::time::timeout(COMMAND_TIMEOUT, call)
        .await
        .map_err(|_| node.no_answer(COMMAND_TIMEOUT))?
        .map_err(|source| node.redis_error(source))
}

impl RedisAddress {
    async fn notify_flags(&self, client: &redis::Client) -> Result<String> {
        let mut connection = bounded(self, client.get_multiplexed_async_connection()).await?;
        let answer: Vec<String> = bounded(
            self,
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("notify-keyspace-events")
                .query_async(&mut connection),
        )
        .await?;
        Ok(answer.get(1).cloned().unwrap_or_default())
    }

    /// A pub/sub connection to this standalone server when it sends keyspace notifications
    /// (turned on first with `enable`); `Ok(None)` when it does not, or refuses `CONFIG GET`
    /// as managed services may.
    async fn subscription(&self, enable: bool) -> Result<Option<redis::aio::PubSub>> {
        let Target::Server(url) = &self.target else {
            return Ok(None);
        };
        let client = self.server_client(url)?;
        if enable && let Err(error) = self.enable_on(&client).await {
            tracing::warn!("turning on keyspace notifications of {self}: {error}");
        }
        match self.notify_flags(&client).await {
            Ok(flags) if announces_list_changes(&flags) => {}
            Ok(_) | Err(Error::Redis { .. }) => return Ok(None),
            Err(other) => return Err(other),
        }
        bounded(self, client.get_async_pubsub()).await.map(Some)
    }

    /// Turns on keyspace notifications for list and generic events (`Klg`, added to what
    /// the server already sends), on every master of a cluster. The explicit opt-in: it
    /// changes the servers' configuration.
    pub async fn enable_keyspace_events(&self) -> Result<()> {
        let nodes = match &self.target {
            Target::Server(_) => vec![self.clone()],
            Target::Cluster(_) => self.cluster_masters().await?,
        };
        for node in nodes {
            if let Target::Server(url) = &node.target {
                node.enable_on(&node.server_client(url)?).await?;
            }
        }
        Ok(())
    }

    async fn enable_on(&self, client: &redis::Client) -> Result<()> {
        let flags = self.notify_flags(client).await?;
        if announces_list_changes(&flags) {
            return Ok(());
        }
        let mut wanted: String = flags;
        for flag in ['K', 'l', 'g'] {
            if !wanted.contains(flag) {
                wanted.push(flag);
            }
        }
        let mut connection = bounded(self, client.get_multiplexed_async_connection()).await?;
        bounded(
            self,
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("notify-keyspace-events")
                .arg(&wanted)
                .query_async::<()>(&mut connection),
        )
        .await
    }

    /// The masters of this cluster, each as a standalone address (same credentials and
    /// TLS), from `CLUSTER SLOTS` asked of the first seed that answers.
    async fn cluster_masters(&self) -> Result<Vec<RedisAddress>> {
        let Target::Cluster(seeds) = &self.target else {
            return Ok(vec![self.clone()]);
        };
        let mut last_error = None;
        for seed in seeds {
            let client = self.server_client(seed)?;
            let answer = async {
                let mut connection =
                    bounded(self, client.get_multiplexed_async_connection()).await?;
                bounded(
                    self,
                    redis::cmd("CLUSTER")
                        .arg("SLOTS")
                        .query_async::<Vec<Vec<redis::Value>>>(&mut connection),
                )
                .await
            };
            match answer.await {
                Ok(ranges) => {
                    let masters: BTreeSet<(String, u16)> = ranges
                        .iter()
                        .filter_map(|range| match range.get(2) {
                            Some(redis::Value::Array(master)) => Some((
                                redis::from_redis_value_ref::<String>(master.first()?).ok()?,
                                redis::from_redis_value_ref::<u16>(master.get(1)?).ok()?,
                            )),
                            _ => None,
                        })
                        .collect();
                    return Ok(masters
                        .into_iter()
                        .map(|(host, port)| self.cluster_node(seed, &host, port))
                        .collect());
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| self.no_answer(COMMAND_TIMEOUT)))
    }

    fn no_answer(&self, within: Duration) -> Error {
        Error::NoAnswer {
            address: self.to_string(),
            within,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::announces_list_changes;

    #[test]
    fn list_changes_need_keyspace_and_list_or_all_events() {
        assert!(announces_list_changes("Kl"));
        assert!(announces_list_changes("KA"));
        assert!(announces_list_changes("AKE"));
        assert!(!announces_list_changes(""));
        assert!(!announces_list_changes("El"));
        assert!(!announces_list_changes("Kg"));
    }
}
