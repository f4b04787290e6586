//! Scale-in on one real node (`scripts/control-plane.sh up --node`): the consumer chart
//! (`autoscaler: queueScaler`) from the ebb image, 6 s items, `terminationGracePeriodSeconds:
//! 2` (an item outlasts the grace, as in the baseline), at most 8 replicas, 5 items
//! per replica; `ebb operator run` on the host with its default scale-in (`Drain`). While the
//! pods work, the test watches every pod and its consumer's processing list in Redis:
//!
//! - no pod is deleted while its consumer holds an item (an item a deleted pod held would be
//!   interrupted, then redelivered by the reaper);
//! - no busy pod is deleted while an idle one is left;
//! - every item is completed exactly once (the consumers' counter, nothing left anywhere).
//!
//! Two scenarios, one after the other on the binary's one node: a burst of 40 that brings up
//! 8 pods, with the scale-in coming while all of them are busy; and a burst followed by a
//! trickle, so that idle and busy pods stand side by side when replicas drop.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::node::{self, COMPLETED, QUEUE};
use common::operator::start_operator;
use ebb_e2e::charts;
use ebb_testkit::control_plane::ControlPlane;
use ebb_testkit::redis::RedisServer;
use ebb_testkit::scenario::QUEUE_SCALER_CRD;
use serde_json::Value;

const SELECTOR: &str = "app.kubernetes.io/name=consumer";
/// How often the watcher looks: well inside an item (6 s) and the grace period (2 s).
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// What the watcher saw go wrong, and the scale-ins it saw.
#[derive(Default, Debug)]
struct Seen {
    /// Pods seen deleting while their consumer held items, with the items.
    interrupted: BTreeMap<String, u64>,
    /// Busy pods deleted while an idle, Ready one was left.
    busy_before_idle: Vec<String>,
    /// Every pod seen deleting.
    deleted: BTreeSet<String>,
    busiest: usize,
}

/// Items the consumer `pod` holds now (its processing list).
fn held(redis: &RedisServer, pod: &str) -> u64 {
    redis
        .cli(&["LLEN", &format!("{{{QUEUE}}}:processing:{pod}")])
        .trim()
        .parse()
        .unwrap_or(0)
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|condition| condition["type"] == "Ready" && condition["status"] == "True")
}

/// One look: the pods of `namespace`, who holds what, who is going. Returns how many pods
/// are not going (`None` when the look failed).
async fn look(
    cluster: &ControlPlane,
    namespace: &str,
    redis: &RedisServer,
    seen: &Mutex<Seen>,
) -> Option<usize> {
    let Ok(pods) = cluster
        .kubectl_json(&["get", "pods", "-n", namespace, "-l", SELECTOR])
        .await
    else {
        return None;
    };
    let pods = pods["items"].as_array().cloned().unwrap_or_default();
    let mut idle_left = false;
    let mut going = Vec::new();
    let mut busy = 0;
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let items = held(redis, name);
        busy += usize::from(items > 0);
        if pod["metadata"]["deletionTimestamp"].is_null() {
            idle_left |= is_ready(pod) && items == 0;
        } else {
            going.push((name.to_owned(), items));
        }
    }
    let staying = pods.len() - going.len();
    let mut seen = seen.lock().unwrap();
    seen.busiest = seen.busiest.max(busy);
    for (name, items) in going {
        let first_look = seen.deleted.insert(name.clone());
        if items > 0 {
            seen.interrupted.insert(name.clone(), items);
            if first_look && idle_left {
                seen.busy_before_idle.push(name);
            }
        }
    }
    Some(staying)
}

/// The consumer chart in `namespace`, scaled by a host operator of its own, on `redis`.
struct Scenario {
    namespace: String,
    redis: RedisServer,
    seen: Arc<Mutex<Seen>>,
    _operator: common::Ebb,
}

impl Scenario {
    async fn start(cluster: &ControlPlane, namespace: &str) -> Scenario {
        cluster
            .apply(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n"
            ))
            .await
            .unwrap();
        let redis = RedisServer::start();
        let kubeconfig = cluster.kubeconfig.display().to_string();
        let operator = start_operator(
            &format!("operator {namespace}"),
            &kubeconfig,
            &[
                ("EBB_WATCH_NAMESPACE", namespace),
                ("POD_NAMESPACE", namespace),
                ("POD_NAME", namespace),
            ],
        );
        let values = node::chart_values(
            redis.port(),
            &[
                "autoscaler=queueScaler",
                "perMsg=6s",
                "terminationGracePeriodSeconds=2",
                "autoscaling.maxReplicas=8",
                "autoscaling.averageItemsPerReplica=5",
                "autoscaling.queueScaler.cooldownSeconds=2",
            ],
        );
        charts::install(cluster, "consumer", namespace, &node::as_strs(&values))
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        Scenario {
            namespace: namespace.to_owned(),
            redis,
            seen,
            _operator: operator,
        }
    }

    /// Watches the pods until `done` or `within` runs out.
    async fn watch_until_done(&self, cluster: &ControlPlane, total: u64, within: Duration) {
        let started = Instant::now();
        loop {
            let staying = look(cluster, &self.namespace, &self.redis, &self.seen).await;
            let completed = node::completed(&self.redis);
            let replicas = node::spec_replicas(cluster, &self.namespace, "consumer")
                .await
                .unwrap_or(-1);
            // Done once the last pod is seen going, not only asked to.
            if completed >= total && replicas == 0 && staying == Some(0) {
                return;
            }
            assert!(
                started.elapsed() < within,
                "{}: {completed} of {total} completed, {replicas} replicas after {within:?}; {:?}",
                self.namespace,
                self.seen.lock().unwrap()
            );
            tokio::time::sleep(LOOK_EVERY).await;
        }
    }

    fn push(&self, count: usize) {
        let mut push = vec!["RPUSH", QUEUE];
        push.extend(std::iter::repeat_n("From Padok, with love 💜", count));
        self.redis.cli(&push);
    }

    /// The assertions every scenario ends with.
    async fn assert_nothing_interrupted(&self, cluster: &ControlPlane, total: u64, steps: usize) {
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        eprintln!(
            "{}: {} pods deleted, at most {} busy at once",
            self.namespace,
            seen.deleted.len(),
            seen.busiest
        );
        assert!(
            seen.interrupted.is_empty(),
            "pods deleted while holding items: {:?}",
            seen.interrupted
        );
        assert!(
            seen.busy_before_idle.is_empty(),
            "busy pods deleted while an idle one was left: {:?}",
            seen.busy_before_idle
        );
        assert!(
            seen.deleted.len() >= steps,
            "{} scale-in deletions, expected at least {steps}",
            seen.deleted.len()
        );
        drop(seen);
        assert_eq!(
            self.redis.cli(&["GET", COMPLETED]).trim(),
            total.to_string()
        );
        assert_eq!(self.redis.cli(&["LLEN", QUEUE]).trim(), "0");
        let leftovers = self
            .redis
            .cli(&["KEYS", &format!("{{{QUEUE}}}:processing:*")]);
        assert!(leftovers.trim().is_empty(), "items still held: {leftovers}");
        let status = cluster
            .kubectl_json(&["get", "qs", "consumer", "-n", &self.namespace])
            .await
            .unwrap();
        eprintln!(
            "{}: last scale-in: {}",
            self.namespace, status["status"]["scaleIn"]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_scale_in_never_interrupts_an_item_in_a_burst_nor_in_a_trickle() {
    let Some(cluster) = node::start("e2e_node_scale_in").await else {
        return;
    };
    let cluster = &cluster;
    cluster
        .install_crd(&ebb_operator::crd_yaml(), QUEUE_SCALER_CRD)
        .await
        .unwrap();

    // A burst of 40: 8 pods, and scale-ins while every pod is busy.
    let burst = Scenario::start(cluster, "scale-in-burst").await;
    burst.push(40);
    burst
        .watch_until_done(cluster, 40, Duration::from_secs(240))
        .await;
    burst.assert_nothing_interrupted(cluster, 40, 8).await;

    // A burst of 15, then one item every 2 s for 30 s: idle and busy pods side by side.
    let trickle = Scenario::start(cluster, "scale-in-trickle").await;
    trickle.push(15);
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = look(cluster, &trickle.namespace, &trickle.redis, &trickle.seen).await;
        trickle.push(1);
    }
    trickle
        .watch_until_done(cluster, 30, Duration::from_secs(240))
        .await;
    trickle.assert_nothing_interrupted(cluster, 30, 3).await;
}
