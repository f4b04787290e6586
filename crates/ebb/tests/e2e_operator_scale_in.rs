//! Scale-in through `ebb operator run` on the real kube-apiserver, kube-controller-manager
//! (its ReplicaSet controller deletes the pods) and kube-scheduler: the pods are bound to a
//! Node object that reports Ready and are marked Running and Ready by the test (there is no
//! kubelet in this tier), and each pod's consumer is an ebb queue lease named after it, as
//! the consumer chart names them. The ReplicaSet would delete the pods Ready for the
//! shortest time first; the tests make those the busy ones, so only the operator's choice
//! (pod-deletion-cost, written before the scale patch) removes the idle ones instead.

mod common;

use std::time::Duration;

use ebb_queue::{ConsumerLease, Delivery, Item, Next, Queue, RedisAddress};
use ebb_testkit::control_plane::Options;
use ebb_testkit::redis::RedisServer;
use ebb_testkit::scenario::condition;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use common::operator::OperatorScenario;
use common::ready_pods::{ReadyNode, is_going, make_ready, pods};

/// Leases outlive the test: nothing heartbeats them between the steps.
const LEASE: Duration = Duration::from_secs(600);
const WITHIN: Duration = Duration::from_secs(30);

async fn scenario(test: &str, namespace: &str) -> Option<OperatorScenario> {
    OperatorScenario::start(test, Options::default(), namespace, &[]).await
}

/// The Deployment `consumer` scaled on the ebb queue `padok` of `redis`, one replica per
/// waiting item up to `max`, at once in both directions, with `scale_in` as its spec.scaleIn.
async fn install(scenario: &OperatorScenario, redis: &RedisServer, max: u32, scale_in: &str) {
    let namespace = &scenario.namespace;
    scenario
        .apply(&format!(
            r#"{}
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: consumer, namespace: {namespace}}}
spec:
  scaleTargetRef: {{name: consumer}}
  source: {{ebbQueue: {{redis: {{address: "{}"}}, queue: padok}}}}
  targetPerReplica: 1
  maxReplicas: {max}
  cooldownSeconds: 1
  behavior:
    scaleDown: {{stabilizationWindowSeconds: 0}}
  scaleIn: {scale_in}
"#,
            scenario.deployment("consumer"),
            redis.address()
        ))
        .await;
}

/// The consumer pods, oldest first, once `count` of them are bound; each then made Ready,
/// the later ones Ready for a shorter time (the ones a ReplicaSet deletes first).
async fn ready_pods(scenario: &OperatorScenario, count: usize) -> Vec<String> {
    let namespace = &scenario.namespace;
    let control_plane = scenario.control_plane;
    let bound = ebb_testkit::poll::until(
        &format!("{count} consumer pods bound to the node"),
        WITHIN,
        || async {
            let pods = pods(control_plane, namespace, "app=consumer").await;
            let bound: Vec<String> = pods
                .iter()
                .filter(|pod| pod["spec"]["nodeName"].is_string())
                .filter_map(|pod| pod["metadata"]["name"].as_str().map(str::to_owned))
                .collect();
            match bound.len() == count && pods.len() == count {
                true => Ok(Some(bound)),
                false => Err(format!("{} pods, {} bound", pods.len(), bound.len())),
            }
        },
    )
    .await
    .unwrap();
    let start = Timestamp::now() - SignedDuration::from_mins(10);
    for (index, name) in bound.iter().enumerate() {
        let since = start + SignedDuration::from_mins(index as i64);
        make_ready(control_plane, namespace, name, since).await;
    }
    bound
}

/// One registered consumer per pod, named after it.
async fn consumers(queue: &Queue, pods: &[String]) -> Vec<ConsumerLease> {
    let mut leases = Vec::new();
    for pod in pods {
        let lease = queue.consumer_lease(pod, LEASE).unwrap();
        lease.heartbeat().await.unwrap();
        leases.push(lease);
    }
    leases
}

async fn take_one(consumer: &ConsumerLease) -> Delivery {
    consumer
        .pop(Duration::ZERO)
        .await
        .unwrap()
        .expect("an item waits")
}

fn queue_of(redis: &RedisServer) -> Queue {
    let address: RedisAddress = redis.address().parse().unwrap();
    Queue::new(&address, "padok").unwrap()
}

async fn push(queue: &Queue, count: usize) {
    let items: Vec<String> = (0..count)
        .map(|n| Item::new(format!("item {n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();
}

/// Keeps the first `count` waiting items (`LTRIM`): fewer replicas wanted, nobody busy more.
fn keep_waiting(redis: &RedisServer, count: usize) {
    match count {
        0 => redis.cli(&["DEL", "padok"]),
        _ => redis.cli(&["LTRIM", "padok", "0", &(count - 1).to_string()]),
    };
}

/// Waits until exactly `going` of the consumer pods are going, and returns them.
async fn wait_for_going(scenario: &OperatorScenario, all: &[String], going: usize) -> Vec<String> {
    ebb_testkit::poll::until(
        &format!("{going} consumer pods deleted"),
        WITHIN,
        || async {
            let now = pods(scenario.control_plane, &scenario.namespace, "app=consumer").await;
            let gone: Vec<String> = all
                .iter()
                .filter(|name| is_going(&now, name))
                .cloned()
                .collect();
            match gone.len() == going {
                true => Ok(Some(gone)),
                false => Err(format!("going: {gone:?}")),
            }
        },
    )
    .await
    .unwrap()
}

fn annotation<'p>(pods: &'p [Value], name: &str, key: &str) -> Option<&'p str> {
    pods.iter()
        .find(|pod| pod["metadata"]["name"] == name)
        .and_then(|pod| pod["metadata"]["annotations"][key].as_str())
}

/// `ebb_operator_api_writes_total{write="pod",result="written"}` of the scenario's operator.
async fn pod_writes(scenario: &OperatorScenario) -> u64 {
    let metrics = reqwest::get(scenario.operator.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find(|line| {
            line.starts_with("ebb_operator_api_writes_total")
                && line.contains(r#"write="pod""#)
                && line.contains(r#"result="written""#)
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// 4 pods, the two Ready longest idle, the two Ready for the shortest time busy: the scale
/// to 2 removes the idle ones, marked with pod-deletion-cost before the patch, and says so.
#[tokio::test(flavor = "multi_thread")]
async fn scale_in_removes_the_idle_pods_not_the_ones_the_replicaset_would_pick() {
    let Some(scenario) = scenario(
        "scale_in_removes_the_idle_pods_not_the_ones_the_replicaset_would_pick",
        "scale-in-idle",
    )
    .await
    else {
        return;
    };
    let _node = ReadyNode::start(scenario.control_plane, "scale-in-idle-node").await;
    let redis = RedisServer::start();
    install(&scenario, &redis, 4, "{policy: Choose}").await;
    let queue = queue_of(&redis);
    push(&queue, 8).await;
    scenario.wait_for_replicas("consumer", 4, WITHIN).await;
    let pods_now = ready_pods(&scenario, 4).await;
    let consumers = consumers(&queue, &pods_now).await;
    // The two Ready for the shortest time take an item each; then 2 wait: 2 replicas wanted.
    let _held = [take_one(&consumers[2]).await, take_one(&consumers[3]).await];
    keep_waiting(&redis, 2);

    scenario.wait_for_replicas("consumer", 2, WITHIN).await;
    let going = wait_for_going(&scenario, &pods_now, 2).await;
    assert_eq!(
        going,
        pods_now[..2],
        "the idle pods went, the busy ones stayed"
    );
    let now = pods(scenario.control_plane, &scenario.namespace, "app=consumer").await;
    for name in &pods_now[..2] {
        assert_eq!(
            annotation(&now, name, "controller.kubernetes.io/pod-deletion-cost"),
            Some("-1000000"),
            "{name}"
        );
    }
    for name in &pods_now[2..] {
        assert_eq!(annotation(&now, name, "ebb.dev/scale-in"), None, "{name}");
    }
    let status = scenario.status("consumer").await;
    assert_eq!(status["scaleIn"]["reason"], "Chosen", "{status}");
    assert_eq!(
        condition(&status, "ScaleInOrder").as_deref(),
        Some("True"),
        "{status}"
    );
    let events = scenario.events("consumer", "Scaled").await;
    assert!(events.contains("idle, 0 busy"), "{events}");
    // One write per chosen pod, none twice.
    assert_eq!(pod_writes(&scenario).await, 2);
}

/// 3 busy pods, one replica wanted: the two whose items began first are drained (they take
/// nothing new, even with an item waiting), the count holds while they work, and they go
/// once their items are acknowledged; the third, still busy, stays.
#[tokio::test(flavor = "multi_thread")]
async fn scale_in_drains_busy_pods_and_removes_them_once_their_items_are_done() {
    let Some(scenario) = scenario(
        "scale_in_drains_busy_pods_and_removes_them_once_their_items_are_done",
        "scale-in-drain",
    )
    .await
    else {
        return;
    };
    let _node = ReadyNode::start(scenario.control_plane, "scale-in-drain-node").await;
    let redis = RedisServer::start();
    install(
        &scenario,
        &redis,
        3,
        "{policy: Drain, drainTimeoutSeconds: 120}",
    )
    .await;
    let queue = queue_of(&redis);
    push(&queue, 8).await;
    scenario.wait_for_replicas("consumer", 3, WITHIN).await;
    let pods_now = ready_pods(&scenario, 3).await;
    let consumers = consumers(&queue, &pods_now).await;
    let mut held = Vec::new();
    for consumer in &consumers {
        held.push(take_one(consumer).await);
        // Distinct lease times (each dated by the operator's reading that first sees it): the
        // first taken is the first expected to finish.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    keep_waiting(&redis, 0);

    // Nothing waits, 3 in flight: 1 replica wanted, and every pod is busy.
    let status = scenario
        .wait_for_status(
            "consumer",
            "a drain waiting for two pods",
            WITHIN,
            |status| {
                status["scaleIn"]["reason"] == "Draining"
                    && status["scaleIn"]["waitingFor"].as_array().map(Vec::len) == Some(2)
            },
        )
        .await;
    let mut waiting_for: Vec<String> = status["scaleIn"]["waitingFor"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect();
    waiting_for.sort();
    let mut oldest = pods_now[..2].to_vec();
    oldest.sort();
    assert_eq!(waiting_for, oldest, "the oldest work is drained");
    for pod in &pods_now[..2] {
        assert_eq!(
            redis.cli(&["EXISTS", &format!("{{padok}}:draining:{pod}")]),
            "1"
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(scenario.replicas("consumer").await.unwrap(), Some(3));

    // An item arrives; the first drained consumer finishes and takes nothing new.
    push(&queue, 1).await;
    let answer = consumers[0]
        .ack_and_take(std::slice::from_ref(&held[0]), 1)
        .await
        .unwrap();
    assert_eq!(answer.acked, [true]);
    assert!(matches!(answer.next, Next::Draining), "{:?}", answer.next);
    assert!(consumers[0].pop(Duration::ZERO).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        scenario.replicas("consumer").await.unwrap(),
        Some(3),
        "the second drained pod still works"
    );
    assert!(consumers[1].ack(&held[1]).await.unwrap());

    scenario.wait_for_replicas("consumer", 1, WITHIN).await;
    let going = wait_for_going(&scenario, &pods_now, 2).await;
    assert_eq!(
        going,
        pods_now[..2],
        "the drained pods went, the busy one stayed"
    );
    let status = scenario.status("consumer").await;
    assert_eq!(status["scaleIn"]["reason"], "Chosen", "{status}");
    assert!(status["scaleIn"]["drainSeconds"].is_string(), "{status}");
    let events = scenario.events("consumer", "Scaled").await;
    assert!(
        events.contains("1 waiting / 1 per replica = 1; ")
            && events.contains(" go (2 idle, 0 busy), drained for "),
        "{events}"
    );
    assert_eq!(pod_writes(&scenario).await, 2);
}

/// A drain cancelled by a growing queue lets its consumer take work again and writes no pod;
/// a scale-up is not held by it.
#[tokio::test(flavor = "multi_thread")]
async fn scale_in_cancels_the_drain_when_the_queue_grows_again() {
    let Some(scenario) = scenario(
        "scale_in_cancels_the_drain_when_the_queue_grows_again",
        "scale-in-cancel",
    )
    .await
    else {
        return;
    };
    let _node = ReadyNode::start(scenario.control_plane, "scale-in-cancel-node").await;
    let redis = RedisServer::start();
    install(&scenario, &redis, 2, "{}").await;
    let queue = queue_of(&redis);
    push(&queue, 6).await;
    scenario.wait_for_replicas("consumer", 2, WITHIN).await;
    let pods_now = ready_pods(&scenario, 2).await;
    let consumers = consumers(&queue, &pods_now).await;
    let first = take_one(&consumers[0]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _second = take_one(&consumers[1]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    keep_waiting(&redis, 0);
    scenario
        .wait_for_status("consumer", "a drain of the oldest work", WITHIN, |status| {
            status["scaleIn"]["waitingFor"][0] == pods_now[0].as_str()
        })
        .await;
    let marker = format!("{{padok}}:draining:{}", pods_now[0]);
    assert_eq!(redis.cli(&["EXISTS", &marker]), "1");

    push(&queue, 3).await;
    scenario
        .wait_for_status("consumer", "the drain cancelled", WITHIN, |status| {
            status["scaleIn"]["reason"] == "DrainCancelled"
        })
        .await;
    assert_eq!(redis.cli(&["EXISTS", &marker]), "0");
    let answer = consumers[0]
        .ack_and_take(std::slice::from_ref(&first), 1)
        .await
        .unwrap();
    assert!(
        matches!(&answer.next, Next::Items(items) if items.len() == 1),
        "back to work: {:?}",
        answer.next
    );
    assert_eq!(scenario.replicas("consumer").await.unwrap(), Some(2));
    assert_eq!(
        pod_writes(&scenario).await,
        0,
        "a cancelled drain marked no pod"
    );
}

/// What an operator that stopped between its pod writes and its scale patch left behind: the
/// chosen pod marked, and a stale mark on a busy one. The next operator chooses the same pod,
/// writes it no second time, takes the stale mark away, and scales.
#[tokio::test(flavor = "multi_thread")]
async fn scale_in_after_a_restart_between_the_marks_and_the_patch_writes_nothing_twice() {
    let Some(mut scenario) = scenario(
        "scale_in_after_a_restart_between_the_marks_and_the_patch_writes_nothing_twice",
        "scale-in-restart",
    )
    .await
    else {
        return;
    };
    let _node = ReadyNode::start(scenario.control_plane, "scale-in-restart-node").await;
    let redis = RedisServer::start();
    install(&scenario, &redis, 3, "{policy: Choose}").await;
    let queue = queue_of(&redis);
    push(&queue, 6).await;
    scenario.wait_for_replicas("consumer", 3, WITHIN).await;
    let pods_now = ready_pods(&scenario, 3).await;
    let consumers = consumers(&queue, &pods_now).await;
    for (pod, annotations) in [
        (
            &pods_now[0],
            "controller.kubernetes.io/pod-deletion-cost=-1000000 ebb.dev/scale-in=chosen",
        ),
        (
            &pods_now[2],
            "controller.kubernetes.io/pod-deletion-cost=-1000000 ebb.dev/scale-in=chosen",
        ),
    ] {
        let mut args = vec!["annotate", "pod", pod.as_str(), "--overwrite"];
        args.extend(annotations.split(' '));
        scenario.kubectl(&args).await;
    }
    scenario.restart_operator();
    // pods_now[2] is busy, pods_now[0] and [1] idle; 2 wait: one replica fewer wanted. Of
    // the two idle pods, the one the stopped operator had marked goes.
    let _held = take_one(&consumers[2]).await;
    keep_waiting(&redis, 2);

    scenario.wait_for_replicas("consumer", 2, WITHIN).await;
    let going = wait_for_going(&scenario, &pods_now, 1).await;
    assert_eq!(going, pods_now[..1]);
    let now = pods(scenario.control_plane, &scenario.namespace, "app=consumer").await;
    assert_eq!(annotation(&now, &pods_now[2], "ebb.dev/scale-in"), None);
    assert_eq!(
        pod_writes(&scenario).await,
        1,
        "only the stale mark was written: the chosen pod was marked already"
    );
}
