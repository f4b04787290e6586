//! Coalescing of concurrent reads into pipelines: every read queued while the previous
//! pipeline is in flight goes out in the next one, so a thousand scalers reading the same
//! server in the same instant cost a round trip or two, not a thousand (DataLoader style).
//!
//! ```text
//!  call ─┐                     ┌─ reply (its own value or error)
//!  call ─┼─▶ queue ─▶ sender ──┼─ reply        one sender task at a time per reader; it drains
//!  call ─┘     (≤ MAX_BATCH per pipeline)      the queue pipeline after pipeline, then ends
//! ```
//!
//! - Errors stay per call: a `WRONGTYPE` answer fails its own call only; a lost connection or
//!   a timeout fails every call of that pipeline.
//! - Scripts go as `EVALSHA`; those Redis does not know yet (`NOSCRIPT`) are sent again as
//!   `EVAL` in a second pipeline.
//! - Redis Cluster: one pipeline per node, sent together, after the slot map read with
//!   `CLUSTER SLOTS`; an answer redirected (`MOVED`, `ASK`) or a node not reached drops that
//!   map and its calls are sent again one by one through the client's own routing, which
//!   follows redirections.
//! - The sender is a task of its own, so a caller that gives up (a dropped future) never
//!   leaves the queue without a sender.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::SingleNodeRoutingInfo;
use redis::{RedisError, RedisResult, ServerErrorKind, Value};
use tokio::sync::oneshot;

use crate::connection::Connection;
use crate::keys::hashed_part;
use crate::{COMMAND_TIMEOUT, Error, RedisAddress, Result};

/// Most commands in one pipeline: bounds the memory and the time of one round trip.
pub(crate) const MAX_BATCH: usize = 512;

/// One read: its command, and the key that routes it on a cluster.
pub(crate) struct Command {
    pub(crate) command: redis::Cmd,
    /// The same call as `EVAL`, for a script Redis does not know yet.
    pub(crate) eval: Option<redis::Cmd>,
    pub(crate) key: String,
}

impl Command {
    pub(crate) fn plain(command: redis::Cmd, key: &str) -> Command {
        Command {
            command,
            eval: None,
            key: key.to_owned(),
        }
    }

    /// `script` on `keys` (the first routes it) with `args`.
    pub(crate) fn script(script: &LuaScript, keys: &[&str], args: &[&str]) -> Command {
        let call = |verb: &str, body: &str| {
            let mut command = redis::cmd(verb);
            command.arg(body).arg(keys.len()).arg(keys).arg(args);
            command
        };
        Command {
            command: call("EVALSHA", &script.hash),
            eval: Some(call("EVAL", script.code)),
            key: keys
                .first()
                .map(|key| (*key).to_owned())
                .unwrap_or_default(),
        }
    }
}

/// A Lua script sent by hash (`EVALSHA`), and in full when Redis does not know it yet.
pub(crate) struct LuaScript {
    code: &'static str,
    hash: String,
}

impl LuaScript {
    pub(crate) fn new(code: &'static str) -> LuaScript {
        LuaScript {
            code,
            hash: redis::Script::new(code).get_hash().to_owned(),
        }
    }
}

struct Call {
    command: Command,
    reply: oneshot::Sender<Answer>,
}

/// One call's outcome inside the batcher; a pipeline's failure is copied to each of its calls.
type Answer = std::result::Result<Value, Failure>;

#[derive(Clone)]
enum Failure {
    Redis(RedisError),
    NoAnswer,
}

#[derive(Default)]
struct Queued {
    calls: VecDeque<Call>,
    /// A sender task runs: new calls wait for its next pipeline.
    sending: bool,
}

/// Where each slot range is served, from `CLUSTER SLOTS`: start → (end, host, port).
type SlotMap = BTreeMap<u16, (u16, String, u16)>;

pub(crate) struct Batcher {
    address: RedisAddress,
    connection: Connection,
    queued: Mutex<Queued>,
    slots: tokio::sync::Mutex<Option<SlotMap>>,
    round_trips: AtomicU64,
}

impl Batcher {
    pub(crate) fn new(address: RedisAddress, connection: Connection) -> Batcher {
        Batcher {
            address,
            connection,
            queued: Mutex::default(),
            slots: tokio::sync::Mutex::new(None),
            round_trips: AtomicU64::new(0),
        }
    }

    /// Pipelines sent so far (each one round trip to one server or node).
    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Queues `command` and waits for its answer. Each pipeline waits at most
    /// [`COMMAND_TIMEOUT`]; a call may wait for the pipeline in flight before its own.
    pub(crate) async fn call(self: &Arc<Self>, command: Command) -> Result<Value> {
        let (reply, answer) = oneshot::channel();
        let start_sender = {
            let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
            queued.calls.push_back(Call { command, reply });
            !std::mem::replace(&mut queued.sending, true)
        };
        if start_sender {
            tokio::spawn(Arc::clone(self).send_queued());
        }
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::Redis(error))) => Err(self.address.redis_error(error)),
            Ok(Err(Failure::NoAnswer)) | Err(_) => Err(Error::NoAnswer {
                address: self.address.to_string(),
                within: COMMAND_TIMEOUT,
            }),
        }
    }

    async fn send_queued(self: Arc<Self>) {
        // Clears `sending` if this task ends early (a panic, its runtime going away), so the
        // reader is not left without a sender; a normal end clears it under the lock itself.
        struct Sending<'a> {
            batcher: &'a Batcher,
            ended: bool,
        }
        impl Drop for Sending<'_> {
            fn drop(&mut self) {
                if !self.ended {
                    let queued = &self.batcher.queued;
                    queued
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .sending = false;
                }
            }
        }
        let mut sending = Sending {
            batcher: &self,
            ended: false,
        };
        loop {
            let calls: Vec<Call> = {
                let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
                if queued.calls.is_empty() {
                    queued.sending = false;
                    sending.ended = true;
                    return;
                }
                let take = queued.calls.len().min(MAX_BATCH);
                queued.calls.drain(..take).collect()
            };
            match &self.connection {
                Connection::Server(_) => self.send_to_server(calls).await,
                Connection::Cluster(lazy) => match bounded(lazy.get()).await {
                    Ok(connection) => self.send_to_cluster(connection, calls).await,
                    Err(failure) => reply_all(calls, &failure),
                },
            }
        }
    }

    /// One pipeline; then, when Redis did not know some scripts, one with them as `EVAL`.
    async fn send_to_server(&self, calls: Vec<Call>) {
        let mut connection = self.connection.clone();
        let answers = self
            .pipeline(
                &mut connection,
                calls.iter().map(|call| &call.command.command),
            )
            .await;
        let Some(answers) = matched(answers, &calls) else {
            return reply_all(calls, &wrong_count());
        };
        let answers = match answers {
            Ok(answers) => answers,
            Err(failure) => return reply_all(calls, &failure),
        };
        let mut unknown_scripts = Vec::new();
        for (call, answer) in calls.into_iter().zip(answers) {
            if call.command.eval.is_some() && is_server_error(&answer, ServerErrorKind::NoScript) {
                unknown_scripts.push(call);
            } else {
                let _ = call.reply.send(value(answer));
            }
        }
        if unknown_scripts.is_empty() {
            return;
        }
        let evals = unknown_scripts
            .iter()
            .filter_map(|call| call.command.eval.as_ref());
        let answers = self.pipeline(&mut connection, evals).await;
        match matched(answers, &unknown_scripts) {
            Some(Ok(answers)) => {
                for (call, answer) in unknown_scripts.into_iter().zip(answers) {
                    let _ = call.reply.send(value(answer));
                }
            }
            Some(Err(failure)) => reply_all(unknown_scripts, &failure),
            None => reply_all(unknown_scripts, &wrong_count()),
        }
    }

    async fn pipeline<'a>(
        &self,
        connection: &mut Connection,
        commands: impl Iterator<Item = &'a redis::Cmd>,
    ) -> std::result::Result<Vec<Value>, Failure> {
        let mut pipeline = redis::pipe();
        for command in commands {
            pipeline.add_command(command.clone());
        }
        let count = pipeline.len();
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        bounded(connection.req_packed_commands(&pipeline, 0, count)).await
    }

    /// One pipeline per node, all in flight together.
    async fn send_to_cluster(&self, connection: ClusterConnection, calls: Vec<Call>) {
        let slots = self.slot_map(&connection).await;
        let mut per_node: BTreeMap<(String, u16), Vec<Call>> = BTreeMap::new();
        let mut unrouted = Vec::new();
        for call in calls {
            let slot = slot_of(&call.command.key);
            let node = slots.as_ref().and_then(|slots| {
                slots
                    .range(..=slot)
                    .next_back()
                    .filter(|(_, (end, _, _))| slot <= *end)
                    .map(|(_, (_, host, port))| (host.clone(), *port))
            });
            match node {
                Some(node) => per_node.entry(node).or_default().push(call),
                None => unrouted.push(call),
            }
        }
        let sends = per_node
            .into_iter()
            .map(|(node, calls)| self.send_to_node(&connection, node, calls));
        let retries: Vec<Call> = futures::future::join_all(sends)
            .await
            .into_iter()
            .flatten()
            .chain(unrouted)
            .collect();
        if !retries.is_empty() {
            *self.slots.lock().await = None;
            self.send_one_by_one(&connection, retries).await;
        }
    }

    /// Sends `calls` to `node` in one pipeline (scripts Redis did not know: again as `EVAL`);
    /// returns those to send again through the client's own routing (redirected, or the node
    /// not reached).
    async fn send_to_node(
        &self,
        connection: &ClusterConnection,
        node: (String, u16),
        calls: Vec<Call>,
    ) -> Vec<Call> {
        let send = |commands: Vec<redis::Cmd>| {
            let mut pipeline = redis::pipe();
            for command in commands {
                pipeline.add_command(command);
            }
            let count = pipeline.len();
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let route = SingleNodeRoutingInfo::ByAddress {
                host: node.0.clone(),
                port: node.1,
            };
            let mut connection = connection.clone();
            async move { bounded(connection.route_pipeline(pipeline, 0, count, route)).await }
        };
        let answers = send(
            calls
                .iter()
                .map(|call| call.command.command.clone())
                .collect(),
        )
        .await;
        let Some(Ok(answers)) = matched(answers, &calls) else {
            // The node went away or is not connected yet: the client's routing finds it.
            return calls;
        };
        let mut retry = Vec::new();
        let mut unknown_scripts = Vec::new();
        for (call, answer) in calls.into_iter().zip(answers) {
            if is_redirected(&answer) {
                retry.push(call);
            } else if call.command.eval.is_some()
                && is_server_error(&answer, ServerErrorKind::NoScript)
            {
                unknown_scripts.push(call);
            } else {
                let _ = call.reply.send(value(answer));
            }
        }
        if !unknown_scripts.is_empty() {
            let evals = unknown_scripts
                .iter()
                .filter_map(|call| call.command.eval.clone())
                .collect();
            let answers = send(evals).await;
            match matched(answers, &unknown_scripts) {
                Some(Ok(answers)) => {
                    for (call, answer) in unknown_scripts.into_iter().zip(answers) {
                        if is_redirected(&answer) {
                            retry.push(call);
                        } else {
                            let _ = call.reply.send(value(answer));
                        }
                    }
                }
                _ => retry.extend(unknown_scripts),
            }
        }
        retry
    }

    /// Each call on its own, through the cluster client's routing (redirections followed).
    async fn send_one_by_one(&self, connection: &ClusterConnection, calls: Vec<Call>) {
        let sends = calls.into_iter().map(|call| {
            let mut connection = connection.clone();
            async move {
                self.round_trips.fetch_add(1, Ordering::Relaxed);
                let command = call.command.eval.as_ref().unwrap_or(&call.command.command);
                let answer = bounded(connection.req_packed_command(command))
                    .await
                    .and_then(value);
                let _ = call.reply.send(answer);
            }
        });
        futures::future::join_all(sends).await;
    }

    /// The cluster's slot map, read once and kept until an answer shows it is out of date.
    async fn slot_map(&self, connection: &ClusterConnection) -> Option<SlotMap> {
        let mut slots = self.slots.lock().await;
        if slots.is_none() {
            let mut connection = connection.clone();
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let answer = bounded(
                redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async::<Vec<Vec<Value>>>(&mut connection),
            )
            .await;
            *slots = answer.ok().map(|ranges| parse_slots(&ranges));
        }
        slots.clone()
    }
}

/// A server's answer as the caller's value or error.
fn value(answer: Value) -> Answer {
    match answer {
        Value::ServerError(error) => Err(Failure::Redis(error.into())),
        value => Ok(value),
    }
}

/// `answers` when there is one per call (`None` otherwise).
fn matched(
    answers: std::result::Result<Vec<Value>, Failure>,
    calls: &[Call],
) -> Option<std::result::Result<Vec<Value>, Failure>> {
    match answers {
        Ok(answers) if answers.len() != calls.len() => None,
        other => Some(other),
    }
}

fn wrong_count() -> Failure {
    Failure::Redis(RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "a pipeline answered with the wrong number of replies",
    )))
}

async fn bounded<T>(call: impl Future<Output = RedisResult<T>>) -> std::result::Result<T, Failure> {
    match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
        Ok(answer) => answer.map_err(Failure::Redis),
        Err(_) => Err(Failure::NoAnswer),
    }
}

fn reply_all(calls: Vec<Call>, failure: &Failure) {
    for call in calls {
        let _ = call.reply.send(Err(failure.clone()));
    }
}

/// The cluster slot of `key`: CRC16 (XMODEM) of its hashed part, modulo 16384, as Redis
/// Cluster's specification defines it.
pub(crate) fn slot_of(key: &str) -> u16 {
    let mut crc: u16 = 0;
    for byte in hashed_part(key).bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}

fn is_server_error(answer: &Value, kind: ServerErrorKind) -> bool {
    matches!(answer, Value::ServerError(error) if error.kind() == Some(kind))
}

fn is_redirected(answer: &Value) -> bool {
    [
        ServerErrorKind::Moved,
        ServerErrorKind::Ask,
        ServerErrorKind::TryAgain,
        ServerErrorKind::ClusterDown,
    ]
    .into_iter()
    .any(|kind| is_server_error(answer, kind))
}

/// `CLUSTER SLOTS`: `[[start, end, [host, port, id…], replicas…], …]`, masters only.
fn parse_slots(ranges: &[Vec<Value>]) -> SlotMap {
    let mut map = SlotMap::new();
    for range in ranges {
        let (Some(start), Some(end), Some(Value::Array(master))) =
            (range.first(), range.get(1), range.get(2))
        else {
            continue;
        };
        let number = |value: &Value| redis::from_redis_value_ref::<u16>(value).ok();
        let host = master
            .first()
            .and_then(|host| redis::from_redis_value_ref::<String>(host).ok());
        if let (Some(start), Some(end), Some(host), Some(port)) = (
            number(start),
            number(end),
            host,
            master.get(1).and_then(number),
        ) {
            map.insert(start, (end, host, port));
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::slot_of;

    #[test]
    fn slots_are_redis_cluster_s() {
        // Values from `CLUSTER KEYSLOT` and the specification's CRC16 check value.
        assert_eq!(slot_of("foo"), 12_182);
        assert_eq!(slot_of("123456789"), 0x31C3);
        assert_eq!(slot_of("{123456789}.anything"), 0x31C3);
        assert_eq!(slot_of("{padok}:consumers"), slot_of("padok"));
    }
}
