//! The operator's one writer against a real kube-apiserver: the controller runs in this
//! process with a leadership gate the test holds, so the test decides when this replica
//! leads. While it leads, scales, statuses and Events reach the API server; once it does
//! not, the writes the controller still attempts are refused (counted as such on /metrics)
//! and the API server shows none of them. The reconcile's duration is on /metrics too, and
//! a repeated Event is a count on the first while every other is an Event of its own.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ebb_operator::{ControllerSettings, GateSwitch, Metrics, Writer, crd_yaml, gate};
use ebb_runtime::{Health, Shutdown, ShutdownTrigger, http};
use ebb_testkit::control_plane::{ControlPlane, Options};
use ebb_testkit::poll::until as wait_for;
use ebb_testkit::redis::RedisServer;
use ebb_testkit::scenario::Scenario;
use prometheus_client::registry::Registry;

const WAIT: Duration = Duration::from_secs(60);

/// The namespace `namespace` on this binary's shared control plane (the test kit's
/// [`Scenario`]), with the CRD installed; `None` when the gate skips.
async fn scenario(test: &str, namespace: &str) -> Option<Scenario> {
    Scenario::start(test, Options::default(), &crd_yaml(), namespace).await
}

/// A client of `control_plane`, as its admin.
async fn client(control_plane: &ControlPlane) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&control_plane.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// The controller of one namespace, run in this process, with its gate's switch and its
/// /metrics.
struct Operator {
    switch: GateSwitch,
    metrics_url: String,
    stop: ShutdownTrigger,
    controller: tokio::task::JoinHandle<()>,
}

impl Operator {
    /// Starts the controller of `namespace`, leading (the gate open for an hour).
    async fn start(control_plane: &ControlPlane, namespace: &str) -> Operator {
        let client = client(control_plane).await;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let (switch, gate) = gate();
        switch.open_until(SystemTime::now() + Duration::from_secs(3600));
        let writer = Arc::new(Writer::new(
            client.clone(),
            Some("writer-test".into()),
            gate,
            metrics.clone(),
        ));
        let (stop, shutdown) = Shutdown::new();
        let listener = http::bind("127.0.0.1:0").await.unwrap();
        let metrics_url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let router = http::ops_router(Health::new(), ebb_runtime::Metrics::new(registry));
        tokio::spawn(http::serve(
            listener,
            router,
            http::HttpLimits::default(),
            shutdown.clone(),
        ));
        let settings = ControllerSettings {
            namespace: Some(namespace.to_owned()),
            ..ControllerSettings::default()
        };
        let controller = tokio::spawn(ebb_operator::run_controller(
            client,
            settings,
            metrics,
            writer,
            async move { shutdown.requested().await },
        ));
        Operator {
            switch,
            metrics_url,
            stop,
            controller,
        }
    }

    /// The value of the sample `name{labels}` on /metrics (labels as written there, in
    /// order); 0 when there is no such series.
    async fn sample(&self, name: &str, labels: &str) -> f64 {
        let text = reqwest::get(&self.metrics_url)
            .await
            .expect("/metrics answers")
            .text()
            .await
            .unwrap();
        let series = format!("{name}{{{labels}}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }

    async fn writes(&self, write: &str, result: &str) -> f64 {
        let labels = format!("write=\"{write}\",result=\"{result}\"");
        self.sample("ebb_operator_api_writes_total", &labels).await
    }

    /// Writes of `write` tried so far, whatever their result.
    async fn attempts(&self, write: &str) -> f64 {
        let mut all = 0.0;
        for result in ["written", "refused", "failed"] {
            all += self.writes(write, result).await;
        }
        all
    }

    /// Waits until /metrics counts more attempts of `write` than `before`.
    async fn wait_for_attempt(&self, write: &str, before: f64) {
        wait_for(&format!("a {write} write tried"), WAIT, || async {
            (self.attempts(write).await > before).then_some(())
        })
        .await
        .unwrap();
    }

    async fn stop(self) {
        self.stop.trigger();
        self.controller.await.unwrap();
    }
}

/// A Deployment at 0 replicas (no pods without a node: only the count matters), and a
/// QueueScaler of it on the list `jobs` of `redis`: 100 items per replica, never scaling in.
async fn install(scenario: &Scenario, redis: &RedisServer) {
    let address = redis.address();
    scenario
        .apply(&format!(
            r#"{}
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: work, namespace: {}}}
spec:
  scaleTargetRef: {{name: consumer}}
  source: {{redisList: {{redis: {{address: "{address}"}}, key: jobs}}}}
  targetPerReplica: 100
  maxReplicas: 10
  behavior: {{scaleDown: {{selectPolicy: Disabled}}}}
"#,
            scenario.deployment("consumer"),
            scenario.namespace
        ))
        .await;
}

/// The reasons of the Events about the QueueScaler `work`, oldest first.
async fn events(control_plane: &ControlPlane, namespace: &str) -> Vec<String> {
    let list = control_plane
        .kubectl_json(&["get", "events", "-n", namespace])
        .await
        .unwrap();
    let mut events: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["involvedObject"]["name"] == "work")
        .map(|event| {
            let at = event["eventTime"]
                .as_str()
                .or(event["lastTimestamp"].as_str())
                .unwrap_or_default();
            (at.to_owned(), event["reason"].as_str().unwrap().to_owned())
        })
        .collect();
    events.sort();
    events.into_iter().map(|(_, reason)| reason).collect()
}

async fn replicas(scenario: &Scenario) -> i64 {
    scenario.replicas("consumer").await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_event_is_written_after_leadership_is_lost() {
    let Some(scenario) = scenario(
        "no_event_is_written_after_leadership_is_lost",
        "writer-leadership",
    )
    .await
    else {
        return;
    };
    let (control_plane, namespace) = (scenario.control_plane, scenario.namespace.as_str());
    let redis = RedisServer::start();
    install(&scenario, &redis).await;
    let operator = Operator::start(control_plane, namespace).await;

    // Leading: 200 items make 2 replicas, with an Event and a status saying so.
    redis.push("jobs", 200);
    control_plane
        .wait_for("the scale to 2 and its Event", WAIT, || async {
            let replicas = replicas(&scenario).await;
            let events = events(control_plane, namespace).await;
            let status = scenario.status("work").await;
            let done = replicas == 2
                && events.iter().any(|reason| reason == "Scaled")
                && status["desiredReplicas"] == 2;
            match done {
                true => Ok(Some(())),
                false => Err(format!(
                    "replicas {replicas}, events {events:?}, status {status}"
                )),
            }
        })
        .await
        .unwrap();
    let events_before = events(control_plane, namespace).await;
    let status_before = scenario.status("work").await;
    let (mut written_before, mut tried_before) = (Vec::new(), Vec::new());
    for write in ["scale", "status", "event"] {
        written_before.push(operator.writes(write, "written").await);
        tried_before.push(operator.attempts(write).await);
    }
    assert!(
        written_before.iter().all(|count| *count > 0.0),
        "while leading, every kind of write was made: {written_before:?}"
    );

    // Leadership lost. The controller keeps running (the test holds the switch), so it still
    // decides and tries to write: every attempt must stop at the gate.
    operator.switch.close();
    // Someone sets 3 replicas: the scaler never scales in, so the next tick keeps 3 and would
    // record an `Overridden` Event, and a status with the new count.
    control_plane
        .kubectl(&[
            "scale",
            "deployment/consumer",
            "--replicas=3",
            "-n",
            namespace,
        ])
        .await
        .unwrap();
    operator.wait_for_attempt("event", tried_before[2]).await;
    operator.wait_for_attempt("status", tried_before[1]).await;
    // 1,000 more items want 10 replicas: a scale the gate must refuse too.
    redis.push("jobs", 1000);
    operator.wait_for_attempt("scale", tried_before[0]).await;

    assert_eq!(
        events(control_plane, namespace).await,
        events_before,
        "no Event after leadership was lost"
    );
    assert_eq!(
        scenario.status("work").await,
        status_before,
        "no status write after leadership was lost"
    );
    assert_eq!(
        replicas(&scenario).await,
        3,
        "no scale after leadership was lost: the count is the one set by hand"
    );
    for (write, before) in ["scale", "status", "event"].into_iter().zip(written_before) {
        assert_eq!(
            operator.writes(write, "written").await,
            before,
            "no {write} written after leadership was lost"
        );
        assert!(
            operator.writes(write, "refused").await > 0.0,
            "the {write} tried after leadership was lost is counted as refused"
        );
    }
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_duration_is_observed_on_every_reconcile() {
    let Some(scenario) = scenario(
        "reconcile_duration_is_observed_on_every_reconcile",
        "writer-reconcile",
    )
    .await
    else {
        return;
    };
    let (control_plane, namespace) = (scenario.control_plane, scenario.namespace.as_str());
    let redis = RedisServer::start();
    install(&scenario, &redis).await;
    let operator = Operator::start(control_plane, namespace).await;
    redis.push("jobs", 10);
    let labels = format!("namespace=\"{namespace}\",queuescaler=\"work\"");
    let reconciles = wait_for("reconciles on /metrics", WAIT, || async {
        let count = operator
            .sample("ebb_operator_reconcile_duration_seconds_count", &labels)
            .await;
        (count >= 2.0).then_some(count)
    })
    .await
    .unwrap();
    let seconds = operator
        .sample("ebb_operator_reconcile_duration_seconds_sum", &labels)
        .await;
    assert!(
        seconds > 0.0,
        "{reconciles} reconciles took {seconds} s in all"
    );
    // The reconciles are the loop's ticks: one read each.
    let reads = operator.sample("ebb_operator_reads_total", &labels).await;
    assert!(
        reads >= reconciles,
        "{reconciles} reconciles observed, {reads} reads"
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_event_is_counted_and_every_other_stands_alone() {
    let Some(scenario) = scenario(
        "a_repeated_event_is_counted_and_every_other_stands_alone",
        "writer-events",
    )
    .await
    else {
        return;
    };
    let (control_plane, namespace) = (scenario.control_plane, scenario.namespace.as_str());
    let redis = RedisServer::start();
    install(&scenario, &redis).await;
    let client = client(control_plane).await;
    let (switch, gate) = gate();
    switch.open_until(SystemTime::now() + Duration::from_secs(3600));
    let mut registry = Registry::default();
    let writer = Writer::new(client.clone(), None, gate, Metrics::register(&mut registry));
    let scalers: kube::Api<ebb_operator::QueueScaler> = kube::Api::namespaced(client, namespace);
    let scaler = scalers.get("work").await.unwrap();
    for note in ["scale 0 → 10", "scale 0 → 10", "scale 10 → 0"] {
        writer.event(&scaler, "Scaled", note.into()).await.unwrap();
    }
    let list = control_plane
        .kubectl_json(&["get", "events.events.k8s.io", "-n", namespace])
        .await
        .unwrap();
    let mut seen: Vec<(String, u64)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            let count = event["series"]["count"].as_u64().unwrap_or(1);
            (event["note"].as_str().unwrap().to_owned(), count)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("scale 0 → 10".to_owned(), 2),
            ("scale 10 → 0".to_owned(), 1)
        ]
    );
}
