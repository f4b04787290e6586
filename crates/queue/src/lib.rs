//! The reliable Redis queue of ebb: at-least-once delivery over a plain Redis list, compatible
//! with the dojo (default queue `padok`, items pushed with `RPUSH`), on a standalone Redis or a
//! Redis Cluster.
//!
//! ```text
//!  producer                       Redis                                consumer (lease)
//!  Queue::push ──MULTI RPUSH… EXEC──▶ padok ──BLMOVE──▶ {padok}:processing:<id> ──LREM──▶ acked
//!                                      ▲                       │   {padok}:heartbeat:<id> (TTL)
//!                                      └─── Queue::reap ◀──────┘   (heartbeat expired)
//!  Queue::lengths: waiting = LLEN padok, in flight = Σ LLEN of registered processing lists
//! ```
//!
//! The queue's own keys carry the list's name as a hash tag (`{padok}:…`), so on a cluster they
//! share the list's slot and every script and transaction runs on one node; the list keeps its
//! plain name. Keys of earlier versions (`padok:processing:<id>`, …) are still counted and
//! reaped on a standalone Redis, for rolling upgrades (see `keys.rs`).
//!
//! The API, in the order a program meets it:
//! - [`RedisAddress`]: parse `--redis-server` (`host:port`, `redis://[:password@]host:port[/db]`,
//!   `rediss://…` for TLS, `#insecure` to skip certificate checks, and for a Redis Cluster
//!   `redis+cluster://[:password@]host:port[,host:port…]` or `rediss+cluster://…`); anything
//!   else is a one-line [`Error::InvalidAddress`]. [`RedisAddress::trusting`] adds a private CA.
//!   On a cluster, `MOVED`/`ASK` redirections are followed, transactions included.
//! - [`QueueArgs`]: the `--redis-server`, `--redis-ca`, `--redis-queue` flags, shared by every
//!   command that talks to a queue.
//! - [`Queue::new`]: a cheap, cloneable handle; connects lazily and reconnects by itself, so
//!   programs start while Redis is down and recover when it is back.
//! - [`Queue::push`]: a batch of encoded [`Item`]s in one round trip, all or nothing: one
//!   `RPUSH` (atomic by itself), or `MULTI`/`EXEC` around 10k-item `RPUSH`es for more.
//!   [`Queue::push_batch`] takes a [`Batch`]: fresh items encoded back to back in one buffer.
//! - Every call is bounded in time ([`PING_TIMEOUT`], [`COMMAND_TIMEOUT`],
//!   [`Queue::push_timeout`]): a frozen Redis gives [`Error::NoAnswer`], not a hang.
//! - [`Queue::lengths`]: [`Lengths`] `{ waiting, in_flight }` read atomically (for scalers).
//! - [`Queue::reap`]: return the items of dead consumers to the head of the queue; atomic, so
//!   any number of processes may run it concurrently (every consumer does, periodically).
//!   Now and then it also sweeps for processing lists whose consumer is not registered
//!   ([`Queue::reap_orphans`]).
//! - [`Queue::consumer_lease`] → [`ConsumerLease`]: [`heartbeat`](ConsumerLease::heartbeat)
//!   (register + extend the lease), [`pop`](ConsumerLease::pop) (leased `BLMOVE`, waiting in
//!   Redis at most a sixth of the lease, heartbeating first when due, reconciling the
//!   processing list after a failed pop), [`ack`](ConsumerLease::ack),
//!   [`ack_and_take`](ConsumerLease::ack_and_take) (the acks and a non-blocking move of the
//!   next items in one script, for a consumer still registered and not draining: one round
//!   trip per item while items wait, fewer for items shorter than [`BATCH_WORK`]),
//!   [`release`](ConsumerLease::release),
//!   [`leave`](ConsumerLease::leave) (graceful exit); [`Queue::drain`] and
//!   [`Queue::undrain`] ask consumers to take nothing new before a scale-in (`drain.rs`).
//! - [`RedisErrorKind`]: what a failed call means (wrong password, WRONGTYPE naming the key,
//!   OOM, READONLY, TLS mismatch, unreachable…), one line every component shows alike.
//! - [`RedisReader`]: read-only views for scalers: a list's length, a stream consumer group's
//!   backlog ([`StreamGroup`]), a leased queue's counts ([`QueueCounts`]), and who holds what
//!   ([`RedisReader::queue_holders`], [`RedisReader::stream_group_holders`]). One per server,
//!   shared: concurrent calls are coalesced into one pipeline per round trip (per node on a
//!   cluster), each caller getting its own answer or error.
//! - [`Item`]: the JSON envelope `{"id", "enqueued_at_ms", "payload"}`; plain strings from other
//!   tools decode as a payload without id.
//!
//! Guarantee: an item is removed only by an ack, and never stranded. A consumer killed mid-item
//! stops heartbeating; once its lease has expired the next reaper pass puts its items back at
//! the head of the queue, so they are redelivered (at least once; duplicates only for items of
//! consumers judged dead). An item moved by a pop whose answer was lost goes back at the next
//! pop, and one in the list of an unregistered consumer at the next sweep (see `lease.rs`).

mod address;
mod args;
mod batch;
mod connection;
mod drain;
mod error;
mod held;
mod holders;
mod inspect;
mod item;
mod keys;
mod kind;
mod lease;
mod notify;
mod orphans;
mod queue;
mod take;
mod tls_diagnosis;

pub use address::RedisAddress;
pub use args::{QueueArgs, RedisServerParser};
pub use error::{Error, Result};
pub use held::PendingConsumer;
pub use holders::{FINGERPRINTED, HeldItems};
pub use inspect::{GroupBacklog, QueueCounts, ReadScript, RedisReader, StreamGroup};
pub use item::{Batch, DEFAULT_PAYLOAD, Item, unix_ms_now};
pub use keys::{glob_escaped, key_name, key_patterns, key_prefix, queue_name};
pub use kind::RedisErrorKind;
pub use lease::{ConsumerLease, Delivery, MAX_POP_WAIT, MIN_LEASE};
pub use notify::{KeyWatch, KeyspaceEvents};
pub use orphans::ORPHAN_SWEEP_EVERY;
pub use queue::{COMMAND_TIMEOUT, Lengths, PING_TIMEOUT, Queue, Reaped};
pub use take::{AckAndTake, BATCH_WORK, MAX_BATCH, Next, batch_to_take};
