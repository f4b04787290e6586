//! `ebb operator run` against a real kube-apiserver and kube-controller-manager, with
//! `HPAScaleToZero` turned off to show it is not needed: one test per scenario, as KEDA's e2e
//! tests have phases (activation, scale out, scale in, pause, …). The tests share the binary's
//! control plane; each has a namespace, an operator and Redis servers of its own, so they run
//! in parallel and a failure names its scenario.

mod common;

use std::time::Duration;

use ebb_testkit::control_plane::Options;
use ebb_testkit::redis::RedisServer;
use ebb_testkit::scenario::condition;

use common::operator::OperatorScenario;

/// The test's Redis servers listen on loopback ports of their own: the scenario with a
/// `passwordFrom` needs them on the operator's allow-list (`--allowed-addresses`).
const ALLOW_LOOPBACK: &[(&str, &str)] = &[("EBB_ALLOWED_ADDRESSES", "127.0.0.1")];

/// The scenario `namespace` of the test `test`, on the binary's control plane (without
/// `HPAScaleToZero`); `None` when the gate skips.
async fn scenario(test: &str, namespace: &str) -> Option<OperatorScenario> {
    let options = Options {
        feature_gates: "HPAScaleToZero=false".into(),
        ..Options::default()
    };
    OperatorScenario::start(test, options, namespace, ALLOW_LOOPBACK).await
}

/// The Deployment `consumer` and its QueueScaler `consumer`, on the list `padok` of `redis`:
/// active above 5 items, 20 per replica, back to 0 two seconds after the queue empties.
async fn install_consumer(scenario: &OperatorScenario, redis: &RedisServer) {
    let namespace = &scenario.namespace;
    let address = redis.address();
    scenario
        .apply(&format!(
            r#"{}
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: consumer, namespace: {namespace}}}
spec:
  scaleTargetRef: {{name: consumer}}
  source: {{redisList: {{redis: {{address: "{address}"}}, key: padok}}}}
  activationThreshold: 5
  cooldownSeconds: 2
  behavior:
    scaleDown: {{stabilizationWindowSeconds: 2}}
"#,
            scenario.deployment("consumer")
        ))
        .await;
}

/// [`install_consumer`] with 200 items waiting: the scenario starts at 10 replicas.
async fn consumer_at_ten(scenario: &OperatorScenario, redis: &RedisServer) {
    install_consumer(scenario, redis).await;
    redis.push("padok", 200);
    scenario
        .wait_for_replicas("consumer", 10, Duration::from_secs(20))
        .await;
}

/// `kubectl annotate` of the QueueScaler `consumer` (`key=value` sets, `key-` removes).
async fn annotate_consumer(scenario: &OperatorScenario, annotation: &str) {
    scenario
        .kubectl(&["annotate", "qs", "consumer", annotation])
        .await;
}

/// Activation: at or under the threshold nothing starts. Scale out: 200 items at 20 per
/// replica. Scale in: the queue emptied, back to 0 (not 1: no HPAScaleToZero needed) after
/// the cooldown and window. Every scale is an Event with its reason.
#[tokio::test(flavor = "multi_thread")]
async fn activation_scale_out_and_scale_in_to_zero_without_hpa_scale_to_zero() {
    let Some(scenario) = scenario(
        "activation_scale_out_and_scale_in_to_zero_without_hpa_scale_to_zero",
        "activation",
    )
    .await
    else {
        return;
    };
    let redis = RedisServer::start();
    install_consumer(&scenario, &redis).await;

    // Time has to pass to show that nothing happens; the status proves the operator read the
    // queue meanwhile.
    redis.cli(&["RPUSH", "padok", "1", "2", "3", "4", "5"]);
    scenario
        .wait_for_status("consumer", "5 waiting", Duration::from_secs(30), |status| {
            status["waiting"] == 5
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(scenario.replicas("consumer").await.unwrap(), Some(0));
    let status = scenario.status("consumer").await;
    assert_eq!(
        condition(&status, "Active").as_deref(),
        Some("False"),
        "{status}"
    );
    assert_eq!(
        condition(&status, "Ready").as_deref(),
        Some("True"),
        "{status}"
    );
    assert!(status.get("averagePerReplica").is_none(), "{status}");

    redis.push("padok", 195);
    scenario
        .wait_for_replicas("consumer", 10, Duration::from_secs(10))
        .await;
    scenario
        .wait_for_status(
            "consumer",
            "10 replicas, 20 each, Active",
            Duration::from_secs(15),
            |status| {
                status["replicas"] == 10
                    && status["averagePerReplica"] == "20"
                    && condition(status, "Active").as_deref() == Some("True")
            },
        )
        .await;

    redis.cli(&["DEL", "padok"]);
    scenario
        .wait_for_replicas("consumer", 0, Duration::from_secs(20))
        .await;
    let status = scenario
        .wait_for_status(
            "consumer",
            "0 replicas, 0 desired",
            Duration::from_secs(15),
            |status| status["replicas"] == 0 && status["desiredReplicas"] == 0,
        )
        .await;
    assert!(status.get("averagePerReplica").is_none(), "{status}");
    assert!(status["lastScaleTime"].is_string(), "{status}");
    let table = scenario.kubectl(&["get", "qs"]).await;
    assert!(!table.contains("-9223372036854775808"), "{table}");

    let scaled = scenario.events("consumer", "Scaled").await;
    assert!(scaled.contains("scale 0 → 10"), "{scaled}");
    assert!(scaled.contains("→ 0"), "{scaled}");
}

/// Paused at a count: applied once, held whatever the queue says, and resumed when the
/// annotation goes.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_scaler_holds_its_count_and_resumes_when_unpaused() {
    let Some(scenario) = scenario(
        "a_paused_scaler_holds_its_count_and_resumes_when_unpaused",
        "pause",
    )
    .await
    else {
        return;
    };
    let redis = RedisServer::start();
    install_consumer(&scenario, &redis).await;
    scenario
        .wait_for_condition("consumer", "Ready", "True")
        .await;

    annotate_consumer(&scenario, "ebb.dev/paused-replicas=3").await;
    scenario
        .wait_for_replicas("consumer", 3, Duration::from_secs(15))
        .await;
    let status = scenario
        .wait_for_condition("consumer", "Paused", "True")
        .await;
    assert!(
        status["lastDecision"]
            .as_str()
            .unwrap()
            .contains("paused at 3"),
        "{status}"
    );
    redis.push("padok", 200);
    // Time has to pass to show that nothing happens.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        scenario.replicas("consumer").await.unwrap(),
        Some(3),
        "paused: the queue is ignored"
    );
    annotate_consumer(&scenario, "ebb.dev/paused-replicas-").await;
    scenario
        .wait_for_replicas("consumer", 10, Duration::from_secs(15))
        .await;
    scenario
        .wait_for_condition("consumer", "Paused", "False")
        .await;
}

/// `kubectl scale` of a managed workload is undone at the next decision, and said so.
#[tokio::test(flavor = "multi_thread")]
async fn a_manual_scale_is_overridden_and_said_so() {
    let Some(scenario) = scenario("a_manual_scale_is_overridden_and_said_so", "manual").await
    else {
        return;
    };
    let redis = RedisServer::start();
    consumer_at_ten(&scenario, &redis).await;

    scenario
        .kubectl(&["scale", "deployment/consumer", "--replicas=7"])
        .await;
    ebb_testkit::poll::until("an Overridden event", Duration::from_secs(15), || async {
        let notes = scenario.events("consumer", "Overridden").await;
        if notes.contains("set to 7 replicas outside") {
            Ok(Some(()))
        } else {
            Err(notes)
        }
    })
    .await
    .unwrap();
    scenario
        .wait_for_replicas("consumer", 10, Duration::from_secs(15))
        .await;
}

/// A restarted operator decides from the same queue and makes no spurious scale, and
/// continues a scale-down window from the status: the window runs from when the queue
/// shrank, not from the restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_operator_makes_no_spurious_scale_and_continues_the_window() {
    let Some(mut scenario) = scenario(
        "a_restarted_operator_makes_no_spurious_scale_and_continues_the_window",
        "restart",
    )
    .await
    else {
        return;
    };
    let redis = RedisServer::start();
    consumer_at_ten(&scenario, &redis).await;
    const WINDOW: u64 = 12;
    scenario
        .kubectl(&[
            "patch",
            "qs",
            "consumer",
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"behavior":{{"scaleDown":{{"stabilizationWindowSeconds":{WINDOW}}}}}}}}}"#),
        ])
        .await;
    scenario
        .wait_for_status(
            "consumer",
            "the new spec observed",
            Duration::from_secs(15),
            |status| status["observedGeneration"] == 2,
        )
        .await;
    let before = scenario.events("consumer", "Scaled").await;

    // Half the queue gone: the recommendation drops to 5, the window holds 10.
    redis.cli(&["LTRIM", "padok", "0", "99"]);
    let shrank = std::time::Instant::now();
    scenario
        .wait_for_status(
            "consumer",
            "the held recommendation",
            Duration::from_secs(15),
            |status| {
                status["recentRecommendations"]
                    .as_array()
                    .is_some_and(|all| all.iter().any(|r| r["replicas"] == 10))
            },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(WINDOW / 2).saturating_sub(shrank.elapsed())).await;
    scenario.restart_operator();
    assert_eq!(
        scenario.replicas("consumer").await.unwrap(),
        Some(10),
        "held across the restart"
    );
    let after = scenario.events("consumer", "Scaled").await;
    assert_eq!(before, after, "the restart scaled something");

    scenario
        .wait_for_replicas("consumer", 5, Duration::from_secs(WINDOW + 10))
        .await;
    let took = shrank.elapsed();
    eprintln!(
        "scale-down {took:?} after the queue shrank, window {WINDOW} s, restart at {} s",
        WINDOW / 2
    );
    // A scaler that forgot would wait a whole window from the restart: 1.5 windows.
    assert!(
        took < Duration::from_secs(WINDOW + WINDOW / 4),
        "the window restarted with the operator: scale-down after {took:?}"
    );
    // And the restarted operator scales out again.
    redis.cli(&["DEL", "padok"]);
    redis.push("padok", 200);
    scenario
        .wait_for_replicas("consumer", 10, Duration::from_secs(15))
        .await;
}

/// An HPA on the same workload is reported by the older QueueScaler, which keeps scaling;
/// a newer QueueScaler on it stays hands-off and says why.
#[tokio::test(flavor = "multi_thread")]
async fn conflicts_with_an_hpa_or_a_newer_queue_scaler_are_reported() {
    let Some(scenario) = scenario(
        "conflicts_with_an_hpa_or_a_newer_queue_scaler_are_reported",
        "conflicts",
    )
    .await
    else {
        return;
    };
    let namespace = &scenario.namespace;
    let redis = RedisServer::start();
    consumer_at_ten(&scenario, &redis).await;
    scenario
        .apply(&format!(
            r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: rival, namespace: {namespace}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: consumer}}
  minReplicas: 1
  maxReplicas: 20
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}
"#
        ))
        .await;
    let status = scenario
        .wait_for_condition("consumer", "Conflict", "True")
        .await;
    assert!(
        status.to_string().contains(&format!(
            "HorizontalPodAutoscaler {namespace}/rival also scales"
        )),
        "{status}"
    );
    scenario.kubectl(&["delete", "hpa", "rival"]).await;
    scenario
        .wait_for_condition("consumer", "Conflict", "False")
        .await;

    scenario
        .apply(&format!(
            r#"
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: newer, namespace: {namespace}}}
spec:
  scaleTargetRef: {{name: consumer}}
  source: {{redisList: {{redis: {{address: "{}"}}, key: other}}}}
"#,
            redis.address()
        ))
        .await;
    let status = scenario
        .wait_for_condition("newer", "Conflict", "True")
        .await;
    assert_eq!(
        condition(&status, "Ready").as_deref(),
        Some("False"),
        "{status}"
    );
    assert!(
        status.to_string().contains(&format!(
            "QueueScaler {namespace}/consumer scales Deployment/consumer and is older"
        )),
        "{status}"
    );
    // The newer one's empty list would scale to 0; hands-off, it does not.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(scenario.replicas("consumer").await.unwrap(), Some(10));
    scenario.kubectl(&["delete", "qs", "newer"]).await;
}

/// Redis behind a password held in a Secret; the password appears nowhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_redis_password_from_a_secret_is_used_and_shown_nowhere() {
    let Some(scenario) = scenario(
        "a_redis_password_from_a_secret_is_used_and_shown_nowhere",
        "secured",
    )
    .await
    else {
        return;
    };
    let namespace = &scenario.namespace;
    const PASSWORD: &str = "s3cret-p@ss";
    let redis = RedisServer::start_with(&["--requirepass", PASSWORD]);
    scenario
        .apply(&format!(
            r#"{}
---
apiVersion: v1
kind: Secret
metadata: {{name: redis-auth, namespace: {namespace}}}
stringData: {{password: "{PASSWORD}"}}
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: worker, namespace: {namespace}}}
spec:
  scaleTargetRef: {{name: worker}}
  source:
    ebbQueue:
      queue: jobs
      redis:
        address: "{}"
        passwordFrom: {{name: redis-auth, key: password}}
"#,
            scenario.deployment("worker"),
            redis.address()
        ))
        .await;
    redis.push("jobs", 40);
    scenario
        .wait_for_replicas("worker", 2, Duration::from_secs(20))
        .await;
    let everything = format!(
        "{}\n{}\n{}",
        scenario.kubectl(&["get", "qs", "-o", "yaml"]).await,
        scenario.kubectl(&["get", "events", "-o", "yaml"]).await,
        scenario.operator.logs().join("\n"),
    );
    assert!(!everything.contains(PASSWORD), "the password leaked");
}

/// The Deployment `worker` and its QueueScaler, reading the list `key` of `redis` with
/// `spec_line` added to its spec (the setting the scenario is about); returns once the
/// QueueScaler is Ready, so that the scenario starts from a scaler that has read the queue.
async fn ready_worker_scaler(
    scenario: &OperatorScenario,
    redis: &RedisServer,
    key: &str,
    spec_line: &str,
) {
    let namespace = &scenario.namespace;
    scenario
        .apply(&format!(
            r#"{}
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: worker, namespace: {namespace}}}
spec:
  scaleTargetRef: {{name: worker}}
  source: {{redisList: {{redis: {{address: "{}"}}, key: {key}}}}}
  {spec_line}
"#,
            scenario.deployment("worker"),
            redis.address()
        ))
        .await;
    scenario.wait_for_condition("worker", "Ready", "True").await;
}

/// Redis stopped: never to zero; the fallback count after the failures, from 0 too,
/// cleared when Redis is back.
#[tokio::test(flavor = "multi_thread")]
async fn redis_down_scales_to_the_fallback_until_it_is_back() {
    let Some(scenario) = scenario(
        "redis_down_scales_to_the_fallback_until_it_is_back",
        "fallback",
    )
    .await
    else {
        return;
    };
    let mut redis = RedisServer::start();
    ready_worker_scaler(
        &scenario,
        &redis,
        "padok",
        "fallback: {replicas: 2, failureThreshold: 2}",
    )
    .await;
    assert_eq!(scenario.replicas("worker").await.unwrap(), Some(0));
    redis.stop();
    scenario
        .wait_for_replicas("worker", 2, Duration::from_secs(30))
        .await;
    let status = scenario
        .wait_for_condition("worker", "Fallback", "True")
        .await;
    assert_eq!(
        condition(&status, "Ready").as_deref(),
        Some("False"),
        "{status}"
    );
    redis.resume();
    redis.push("padok", 100);
    scenario
        .wait_for_replicas("worker", 5, Duration::from_secs(30))
        .await;
    scenario
        .wait_for_condition("worker", "Fallback", "False")
        .await;
}

/// Where Redis sends keyspace notifications, a change wakes the scaler at once: with a
/// 300 s polling interval, the scale follows the push within seconds.
#[tokio::test(flavor = "multi_thread")]
async fn keyspace_notifications_wake_the_scaler_between_polls() {
    let Some(scenario) = scenario(
        "keyspace_notifications_wake_the_scaler_between_polls",
        "events",
    )
    .await
    else {
        return;
    };
    let redis = RedisServer::start_with(&["--notify-keyspace-events", "Kl"]);
    ready_worker_scaler(&scenario, &redis, "jobs", "pollingIntervalSeconds: 300").await;
    // The subscription is made right after the first read; give it a moment to be in place.
    ebb_testkit::poll::until("the subscription", Duration::from_secs(10), || async {
        redis.cli(&["PUBSUB", "NUMPAT"]) != "0"
    })
    .await
    .unwrap();
    let pushed = std::time::Instant::now();
    redis.push("jobs", 40);
    scenario
        .wait_for_replicas("worker", 2, Duration::from_secs(10))
        .await;
    eprintln!(
        "scaled {:?} after the push, polling every 300 s",
        pushed.elapsed()
    );
}

/// Twenty QueueScalers on one Redis: one connection for their reads (one pipeline per tick)
/// and one keyspace subscription fanning out to them, not forty connections; a push wakes
/// its own scaler only.
#[tokio::test(flavor = "multi_thread")]
async fn scalers_of_one_redis_share_its_connections() {
    let Some(scenario) = scenario("scalers_of_one_redis_share_its_connections", "shared").await
    else {
        return;
    };
    let namespace = &scenario.namespace;
    const SCALERS: usize = 20;
    let redis = RedisServer::start_with(&["--notify-keyspace-events", "Kl"]);
    let mut manifests = String::new();
    for n in 0..SCALERS {
        manifests.push_str(&scenario.deployment(&format!("worker-{n}")));
        manifests.push_str(&format!(
            r#"
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: worker-{n}, namespace: {namespace}}}
spec:
  scaleTargetRef: {{name: worker-{n}}}
  source: {{redisList: {{redis: {{address: "{}"}}, key: jobs-{n}}}}}
  pollingIntervalSeconds: 300
---
"#,
            redis.address()
        ));
    }
    scenario.apply(&manifests).await;
    for n in 0..SCALERS {
        scenario
            .wait_for_condition(&format!("worker-{n}"), "Ready", "True")
            .await;
    }
    ebb_testkit::poll::until(
        "one subscription to every scaler's key",
        Duration::from_secs(10),
        || async { redis.cli(&["PUBSUB", "NUMPAT"]) == SCALERS.to_string() },
    )
    .await
    .unwrap();
    // The operator's connections: everything but this redis-cli's own.
    let clients = ebb_testkit::poll::until(
        "the operator's connections to settle at two",
        Duration::from_secs(10),
        || async {
            let clients = redis.cli(&["CLIENT", "LIST"]);
            let operator = clients
                .lines()
                .filter(|line| !line.contains("cmd=client"))
                .count();
            match operator <= 2 {
                true => Ok(Some(clients)),
                false => Err(clients),
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(
        redis
            .cli(&["CLIENT", "LIST", "TYPE", "pubsub"])
            .lines()
            .count(),
        1,
        "{clients}"
    );

    redis.push("jobs-7", 40);
    scenario
        .wait_for_replicas("worker-7", 2, Duration::from_secs(10))
        .await;
    for n in [0, 6, 8, 19] {
        assert_eq!(
            scenario.replicas(&format!("worker-{n}")).await.unwrap(),
            Some(0),
            "worker-{n} scaled by a push to jobs-7"
        );
    }
}
