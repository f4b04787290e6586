//! The `QueueScaler` custom resource: what to scale, which queue to read, and the rules.
//!
//! The Rust types are the single source of the CRD: `ebb operator crd` prints it, the copy
//! committed under `helm/charts/operator/crds/` is checked against it by a test, and the
//! defaults in its schema are ebb-scaling's, the same that `ebb up`'s flags use.
//!
//! Validation happens in the API server, before anything reaches the operator: the OpenAPI
//! schema (types, minimums, required fields, defaults) and CEL rules for what a schema
//! cannot say (min ≤ max, exactly one source, exactly one way to name the Redis server).
//! Each rule's message names the field, so `kubectl apply` of a bad object says where.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::defaults;

/// Scales a workload to the length of a queue, from and to zero.
///
/// What writing one is worth: the operator then reads the Secrets it references (in this
/// namespace only) and scales the named workload (in this namespace only). It sends a
/// credential from a Secret only to an address on the operator's --allowed-addresses (or
/// inside a urlFrom Secret); any other address is read without credentials. So whoever may
/// create QueueScalers here may make the operator connect to any host without credentials,
/// scale any workload of the namespace, and use (never read) the namespace's Secrets against
/// the allowed servers. See docs/threat-model.md.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ebb.dev",
    version = "v1alpha1",
    kind = "QueueScaler",
    plural = "queuescalers",
    shortname = "qs",
    namespaced,
    status = "QueueScalerStatus",
    category = "all",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.scaleTargetRef.name"}"#,
    printcolumn = r#"{"name":"Min","type":"integer","jsonPath":".spec.minReplicas"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","jsonPath":".spec.maxReplicas"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.replicas"}"#,
    printcolumn = r#"{"name":"Waiting","type":"integer","jsonPath":".status.waiting"}"#,
    printcolumn = r#"{"name":"Active","type":"string","jsonPath":".status.conditions[?(@.type==\"Active\")].status"}"#,
    printcolumn = r#"{"name":"Scale-in","type":"string","jsonPath":".status.scaleIn.reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("spec.minReplicas must not be above spec.maxReplicas").field_path(".minReplicas"))]
#[x_kube(validation = Rule::new("!has(self.fallback) || self.fallback.replicas <= self.maxReplicas").message("spec.fallback.replicas must not be above spec.maxReplicas").field_path(".fallback.replicas"))]
#[x_kube(validation = Rule::new("!has(self.scaleIn) || self.scaleIn.policy != 'Choose' || self.scaleTargetRef.kind in ['Deployment', 'ReplicaSet']").message("spec.scaleIn.policy: Choose needs a Deployment or a ReplicaSet, whose ReplicaSet honours pod-deletion-cost; a StatefulSet removes its highest ordinals whatever their cost (use Drain to let them finish first)").field_path(".scaleIn.policy"))]
pub struct QueueScalerSpec {
    /// The workload to scale: anything with a scale subresource (Deployment, StatefulSet,
    /// a custom resource).
    pub scale_target_ref: ScaleTargetRef,

    /// Where the work is counted. Exactly one of its fields.
    pub source: Source,

    /// Items waiting per replica: the replica count is waiting / targetPerReplica, rounded
    /// up (the HPA's AverageValue target).
    #[serde(default = "defaults::target_per_replica")]
    #[schemars(range(min = 1))]
    pub target_per_replica: u64,

    /// Fewest replicas; 0 lets the workload scale to zero when the queue is empty.
    #[serde(default = "defaults::min_replicas")]
    pub min_replicas: u32,

    /// Most replicas.
    #[serde(default = "defaults::max_replicas")]
    #[schemars(range(min = 1))]
    pub max_replicas: u32,

    /// From 0 replicas, scale up only when more items than this wait.
    #[serde(default = "defaults::activation_threshold")]
    pub activation_threshold: u64,

    /// Scale to 0 only after the queue (waiting and in flight) stayed empty this long.
    #[serde(default = "defaults::cooldown_seconds")]
    pub cooldown_seconds: u32,

    /// How often the queue is read. Keyspace notifications, where the Redis server sends
    /// them, wake the scaler sooner; this stays the safety net.
    #[serde(default = "defaults::polling_interval_seconds")]
    #[schemars(range(min = 1))]
    pub polling_interval_seconds: u32,

    /// How fast the count may change, in the autoscaling/v2 shape: policies, stabilization
    /// windows, tolerance. Unset: scale up at once, scale down over a 20 s window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,

    /// Drain-time objective: the smallest count that empties the backlog within this many
    /// seconds, from the measured arrival and service rates (targetPerReplica applies until
    /// they are known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub drain_time_seconds: Option<u32>,

    /// What to do when the queue cannot be read: after failureThreshold failed reads in a
    /// row, run this many replicas (also from 0) until a read succeeds again. Without it a
    /// failed read holds the current count: it never scales to zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,

    /// Which replicas go when the count drops, and whether they finish their items first.
    /// Unset: `Drain` with a 300 s bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in: Option<ScaleIn>,
}

/// How a scale-in picks the replicas that go (docs/scale-in.md).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleIn {
    /// `Drain`: the operator chooses the replicas that go (idle first, then the ones whose
    /// oldest item began longest ago), asks them to take nothing new, waits until they hold
    /// nothing (at most drainTimeoutSeconds), marks them with
    /// controller.kubernetes.io/pod-deletion-cost and only then lowers the count: no item is
    /// interrupted, however long it runs. `Choose`: the same without waiting. `Workload`:
    /// only lower the count, and let the ReplicaSet pick (the HPA's behaviour).
    #[serde(default)]
    pub policy: ScaleInPolicyName,
    /// The longest a drain waits for the chosen replicas to finish their items; then the
    /// count drops anyway (their items are redelivered if they are killed).
    #[serde(default = "defaults::drain_timeout_seconds")]
    #[schemars(range(min = 1))]
    pub drain_timeout_seconds: u32,
}

#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum ScaleInPolicyName {
    #[default]
    Drain,
    Choose,
    Workload,
}

/// The workload, as in an HPA's `scaleTargetRef`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    /// API group and version of the workload.
    #[serde(default = "defaults::target_api_version")]
    pub api_version: String,
    /// Kind of the workload.
    #[serde(default = "defaults::target_kind")]
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Name of the workload, in the QueueScaler's namespace.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// Where the work is counted: exactly one field is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.redisList), has(self.ebbQueue), has(self.redisStream), has(self.prometheus), has(self.celery), has(self.rq), has(self.dramatiq), has(self.sidekiq), has(self.bullmq)].filter(x, x).size() == 1").message("spec.source must set exactly one of redisList, ebbQueue, redisStream, prometheus, celery, rq, dramatiq, sidekiq, bullmq"))]
pub struct Source {
    /// The length of a Redis list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_list: Option<RedisListSource>,
    /// An ebb leased queue: items waiting plus items in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebb_queue: Option<EbbQueueSource>,
    /// A Redis stream consumer group: entries not yet delivered (lag) plus delivered and not
    /// acknowledged (pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_stream: Option<RedisStreamSource>,
    /// The value of a PromQL query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSource>,
    /// Celery queues on their Redis broker: every priority list, and the tasks workers hold
    /// (see docs/sources/celery.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub celery: Option<CelerySource>,
    /// An RQ (python-rq) queue: jobs waiting plus jobs its workers run (the started
    /// registry), per worker by `rq worker --name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rq: Option<RqSource>,
    /// A Dramatiq queue on its Redis broker: messages waiting plus messages its live workers
    /// hold (running and prefetched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dramatiq: Option<DramatiqSource>,
    /// Sidekiq queues: jobs waiting plus jobs its live processes run, per process by its
    /// identity (see docs/sources/sidekiq.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidekiq: Option<SidekiqSource>,
    /// A BullMQ queue: jobs waiting (prioritized too) plus jobs its Workers hold (`active`),
    /// per Worker by its `name` option; a paused queue's jobs apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bullmq: Option<BullmqSource>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RedisListSource {
    pub redis: RedisServer,
    /// The list's key.
    #[schemars(length(min = 1))]
    pub key: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EbbQueueSource {
    pub redis: RedisServer,
    /// The queue's name (its list's key), as given to the producer and consumers.
    #[schemars(length(min = 1))]
    pub queue: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RedisStreamSource {
    pub redis: RedisServer,
    /// The stream's key.
    #[schemars(length(min = 1))]
    pub stream: String,
    /// The consumer group whose backlog counts.
    #[schemars(length(min = 1))]
    pub group: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CelerySource {
    /// The broker; its database is the address's (`redis://redis:6379/1`).
    pub redis: RedisServer,
    /// The queues the workers consume (`celery worker -Q`); their work adds up.
    #[schemars(length(min = 1), inner(length(min = 1)))]
    pub queues: Vec<String>,
    /// kombu's `priority_steps` transport option, ascending.
    #[serde(default = "ebb_sources::celery::default_priority_steps")]
    #[schemars(length(min = 1))]
    pub priority_steps: Vec<u32>,
    /// kombu's `sep` transport option, between a queue's name and its priority step.
    #[serde(default = "ebb_sources::celery::default_separator")]
    pub separator: String,
    /// kombu's `global_keyprefix` transport option.
    #[serde(default)]
    pub key_prefix: String,
    /// Whether the app sets `task_acks_late=True`. Without it (Celery's default) the running
    /// tasks are in no Redis key: in flight is unknown, and the prefetched tasks count as
    /// waiting.
    #[serde(default)]
    pub acks_late: bool,
    /// kombu's `visibility_timeout` transport option: tasks held longer (a killed worker's)
    /// count as waiting again.
    #[serde(default = "ebb_sources::celery::default_visibility_timeout_seconds")]
    #[schemars(range(min = 1))]
    pub visibility_timeout_seconds: u64,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RqSource {
    pub redis: RedisServer,
    /// The queue's name, as given to `Queue(name)` and `rq worker <name>` (RQ's keys are
    /// `rq:queue:<name>`, …: RQ has no key prefix setting).
    #[schemars(length(min = 1))]
    pub queue: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DramatiqSource {
    pub redis: RedisServer,
    /// The queue's name (an actor's `queue_name`; `default` unless set).
    #[schemars(length(min = 1))]
    pub queue: String,
    /// The broker's key namespace (`RedisBroker(namespace=…)`).
    #[serde(default = "ebb_sources::dramatiq::default_namespace")]
    #[schemars(length(min = 1))]
    pub namespace: String,
    /// The broker's `heartbeat_timeout` in ms: what a worker holds after this long without a
    /// heartbeat counts as waiting (Dramatiq puts it back in the queue).
    #[serde(default = "ebb_sources::dramatiq::default_heartbeat_timeout_ms")]
    #[schemars(range(min = 1))]
    pub heartbeat_timeout_ms: u64,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SidekiqSource {
    pub redis: RedisServer,
    /// The queues the processes serve (`sidekiq -q a -q b`); their work adds up.
    #[schemars(length(min = 1), inner(length(min = 1)))]
    pub queues: Vec<String>,
    /// Sidekiq 6's `redis-namespace` (keys `<namespace>:queue:…`); empty: none (Sidekiq 7
    /// and later have none).
    #[serde(default)]
    pub namespace: String,
    /// A process whose last heartbeat (`beat`) is older than this is taken for dead: what it
    /// ran is not counted (Sidekiq's own is 60 s, when its heartbeat hash expires).
    #[serde(default = "ebb_sources::sidekiq::default_heartbeat_timeout_seconds")]
    #[schemars(range(min = 1))]
    pub heartbeat_timeout_seconds: u64,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BullmqSource {
    pub redis: RedisServer,
    /// The queue's name, as given to `new Queue(name)` and `new Worker(name, …)`.
    #[schemars(length(min = 1))]
    pub queue: String,
    /// The key prefix (the Queue's and Worker's `prefix` option).
    #[serde(default = "ebb_sources::bullmq::default_prefix")]
    #[schemars(length(min = 1))]
    pub prefix: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSource {
    /// Base URL of the Prometheus HTTP API, e.g. `http://prometheus:9090`. Any host is read
    /// (no redirects followed, replies capped at 1 MiB, 5 s timeout, no reply text in the
    /// status); one carrying user:password only if on the operator's --allowed-addresses.
    #[schemars(length(min = 1))]
    pub server_address: String,
    /// A PromQL query whose single value is the number of items waiting.
    #[schemars(length(min = 1))]
    pub query: String,
    /// What an empty result means: `Zero` (nothing waits) or `Error` (a failed read).
    #[serde(default)]
    pub empty_result: EmptyResult,
}

/// How to read an empty PromQL result: the catalogue's one encoding of the rule.
pub use ebb_sources::prometheus::EmptyResult;

/// The Redis server: its address in the spec, or a URL in a Secret; password and CA
/// optionally from Secrets too. Secrets are read from the QueueScaler's own namespace only.
/// A password (passwordFrom, or written into address) is sent only to a server on the
/// operator's --allowed-addresses; otherwise the Ready condition says so and nothing connects.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.address) != has(self.urlFrom)").message("set exactly one of redis.address and redis.urlFrom"))]
pub struct RedisServer {
    /// `host:port`, `redis://host:port[/db]` or `rediss://…`, without a password. Any
    /// address without credentials is read; with passwordFrom it must be on the operator's
    /// --allowed-addresses (set by whoever installs the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub address: Option<String>,
    /// A Secret key holding the whole URL (it may carry the password): host and password
    /// bound by whoever wrote the Secret, so allowed whatever the host. Combined with
    /// passwordFrom, the host must be on --allowed-addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_from: Option<SecretKeyRef>,
    /// A Secret key holding the password, sent in AUTH only to an address on the operator's
    /// --allowed-addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_from: Option<SecretKeyRef>,
    /// A Secret key holding the PEM CA certificate of a `rediss://` server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_from: Option<SecretKeyRef>,
}

/// A key of a Secret in the QueueScaler's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The key inside the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    /// Replicas to run while the queue cannot be read.
    #[schemars(range(min = 1))]
    pub replicas: u32,
    /// Failed reads in a row before the fallback applies.
    #[serde(default = "defaults::fallback_failure_threshold")]
    #[schemars(range(min = 1))]
    pub failure_threshold: u32,
}

/// What the operator saw and did; also what a restarted operator needs to continue the same
/// decision (queueEmptySince, recentRecommendations, lastScaleTime).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct QueueScalerStatus {
    /// The spec generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The workload's replica count (`spec.replicas`) at the last decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// The count decided last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<u32>,
    /// Items waiting at the last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<u64>,
    /// Items taken and not yet acknowledged at the last read; absent when the source cannot
    /// tell (a Redis list, a PromQL value): unknown, not 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
    /// Items waiting per replica, as a quantity; absent at 0 replicas (where an HPA shows
    /// -9223372036854775808).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_per_replica: Option<String>,
    /// When the operator last changed the replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    /// Why the last decision was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<String>,
    /// Since when waiting and in flight have been 0 (the cooldown runs from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_empty_since: Option<Time>,
    /// Recommendations still inside the scale-down stabilization window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_recommendations: Vec<TimedRecommendation>,
    /// Failed reads in a row.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_read_failures: u32,
    /// The last scale-in: the replicas chosen and why, or the drain it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in: Option<ScaleInStatus>,
    /// Ready, Active, Fallback, Paused, Conflict, ScaleInOrder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// What the last scale-in did, or is waiting for.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScaleInStatus {
    /// `Chosen`, `Draining`, `DrainCancelled`, `UnknownConsumer`, `SourceCannotTell`,
    /// `FixedByWorkload`, `NotChoosable`, `WorkloadRules`.
    pub reason: String,
    pub message: String,
    /// The replicas chosen to go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chosen: Vec<String>,
    /// Of the chosen, how many held nothing and how many were busy.
    #[serde(default)]
    pub idle: u32,
    #[serde(default)]
    pub busy: u32,
    /// Chosen replicas still finishing their items, while the drain waits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    /// How long the drain waited, whole seconds and tenths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_seconds: Option<String>,
    /// Scale-ins since the operator started that found no idle replica to remove.
    #[serde(default)]
    pub without_idle: u64,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// A past recommendation, for the stabilization window.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TimedRecommendation {
    pub time: Time,
    pub replicas: u32,
}

/// The condition types the status carries.
pub mod condition {
    /// The last read and decision succeeded.
    pub const READY: &str = "Ready";
    /// The workload runs (replicas above 0), or is being scaled up from 0.
    pub const ACTIVE: &str = "Active";
    /// Reads are failing and the fallback count is applied.
    pub const FALLBACK: &str = "Fallback";
    /// The paused annotation freezes the scaler.
    pub const PAUSED: &str = "Paused";
    /// Another QueueScaler or an HPA targets the same workload.
    pub const CONFLICT: &str = "Conflict";
    /// A scale-in chooses the replicas that go (False: the workload's rules do, and why).
    pub const SCALE_IN_ORDER: &str = "ScaleInOrder";
}

/// schemars names unsigned integers `uint32`/`uint64`, formats the API server does not know
/// (it warns on every apply): they become `int32`/`int64` with a minimum of 0.
fn kubernetes_formats(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(object) => {
            let unsigned = match object.get("format").and_then(|format| format.as_str()) {
                Some("uint32") => Some("int32"),
                Some("uint64") => Some("int64"),
                _ => None,
            };
            if let Some(format) = unsigned {
                object.insert("format".into(), format.into());
                object.entry("minimum").or_insert(0.into());
            }
            object.values_mut().for_each(kubernetes_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(kubernetes_formats),
        _ => {}
    }
}

/// The CRD as YAML, as committed under `helm/charts/operator/crds/`.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let mut crd = serde_json::to_value(QueueScaler::crd()).expect("a CRD always serializes");
    kubernetes_formats(&mut crd);
    let mut yaml = String::from(
        "# Generated by `ebb operator crd` from crates/operator/src/crd.rs: do not edit.\n",
    );
    yaml.push_str(&serde_saphyr::to_string(&crd).expect("a CRD always serializes"));
    yaml
}
