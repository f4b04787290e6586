//! The dojo for real, on one node (`scripts/control-plane.sh up --node`): the ebb image
//! (`scripts/image.sh build`) imported into the node, the producer and consumer charts
//! installed with helm in their hostNetwork mode, Redis, the Debian redis_exporter,
//! Prometheus and prometheus-adapter on the host as in `e2e_dojo_pipeline`. Pods really run:
//!
//! 1. autoscaling: items published through the producer pod; the HPA scales the consumer
//!    Deployment up, its pods drain the queue (every item processed once, counted in Redis),
//!    and it is scaled back to 0, where the HPA still shows the −2⁶³ average;
//! 2. the dojo's first steps: `POST /publish` and `/publish/10` through the producer pod,
//!    `kubectl logs` shows each item received and processed one at a time, and after
//!    `kubectl scale --replicas=3` three pods work on items at the same time.
//!
//! One test: one control plane and node for this binary (CI's budget).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::node::{self, COMPLETED, CONSUMER_PODS, publish};
use ebb_e2e::pipeline::{CONSUMER, DojoPipeline, NAMESPACE, QUEUE};

/// `int64(NaN)` on amd64: what the HPA writes for the per-replica average at 0 replicas.
const MIN_INT64: &str = "-9223372036854775808";

/// The chart values that run the dojo on the node, the producer on `producer_port` (each
/// consumer replica on a free port of its own, the chart's default).
fn node_values(chart: &str, redis_port: u16, producer_port: u16) -> Vec<String> {
    let producer = format!("hostNetwork.http=127.0.0.1:{producer_port}");
    match chart {
        "producer" => node::chart_values(redis_port, &[&producer]),
        _ => node::chart_values(redis_port, &[]),
    }
}

/// What `kubectl logs --prefix --timestamps` says the consumers did with items: per pod, the
/// (received, processed) times of each item, by its id (kubelet's clock, RFC 3339 with
/// nanoseconds: they sort as text); and every "Received" logged while that pod still had
/// another item unprocessed (the dojo's consumer logs one item at a time).
#[derive(Default)]
struct Work {
    intervals: HashMap<String, Vec<(String, String)>>,
    received_while_busy: Vec<String>,
}

fn work(logs: &str) -> Work {
    let mut in_hand: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut work = Work::default();
    for line in logs.lines() {
        // `[pod/<name>/consumer] <timestamp> <log line> id="<id>"`
        let Some((prefix, rest)) = line.split_once("] ") else {
            continue;
        };
        let (Some((timestamp, _)), Some((_, id))) = (rest.split_once(' '), rest.rsplit_once("id="))
        else {
            continue;
        };
        let pod = prefix.trim_start_matches('[').to_owned();
        let hand = in_hand.entry(pod.clone()).or_default();
        if line.contains("Received a message") {
            if !hand.is_empty() {
                work.received_while_busy.push(line.to_owned());
            }
            hand.insert(id.to_owned(), timestamp.to_owned());
        } else if line.contains("Message processed.") {
            let start = hand
                .remove(id)
                .unwrap_or_else(|| panic!("{pod} processed {id} it never received:\n{logs}"));
            work.intervals
                .entry(pod)
                .or_default()
                .push((start, timestamp.to_owned()));
        }
    }
    work
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_node_dojo_the_producer_and_consumer_pods_drain_the_queue_and_the_hpa_scales_them() {
    let test = "e2e_node_dojo";
    let Some(cluster) = node::start(test).await else {
        return;
    };
    let producer_port = ebb_testkit::free_port();
    let pipeline = DojoPipeline::start_with(cluster, |chart, redis_port| {
        node_values(chart, redis_port, producer_port)
    })
    .await
    .unwrap();
    let cluster = &pipeline.control_plane;
    let producer = format!("http://127.0.0.1:{producer_port}");
    cluster
        .rollout("default", "producer", Duration::from_secs(120))
        .await
        .unwrap_or_else(|report| panic!("{report}"));

    // 1. Autoscaling. The Deployment starts with one pod; the HPA takes it to 0 (empty queue).
    pipeline
        .wait_for_replicas(0, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(
        publish(cluster, &producer, "/publish/100").await,
        "100 messages published 👌"
    );
    let scaled_up = pipeline
        .control_plane
        .wait_for(
            "the HPA to scale the consumers up",
            Duration::from_secs(90),
            || async {
                let scale = pipeline.scale().await.map_err(|error| error.to_string())?;
                if scale.spec >= 1 {
                    Ok(Some(scale.spec))
                } else {
                    Err(format!("{scale:?}"))
                }
            },
        )
        .await
        .unwrap();
    cluster
        .wait_for("consumer pods ready", Duration::from_secs(60), || async {
            match node::ready_pods(cluster, CONSUMER_PODS).await? {
                0 => Err("none ready".into()),
                ready => Ok(Some(ready)),
            }
        })
        .await
        .unwrap();
    node::wait_completed(cluster, &pipeline.redis, 100, Duration::from_secs(180)).await;
    pipeline
        .wait_for_replicas(0, Duration::from_secs(120))
        .await
        .unwrap();
    cluster
        .wait_for(
            "the HPA's average at 0 replicas",
            Duration::from_secs(60),
            || async {
                let hpa = pipeline.hpa().await.map_err(|error| error.to_string())?;
                let average =
                    hpa["status"]["currentMetrics"][0]["object"]["current"]["averageValue"].clone();
                match average.as_str() {
                    Some(value) if value.starts_with(MIN_INT64) => Ok(Some(())),
                    _ => Err(format!("{}", hpa["status"])),
                }
            },
        )
        .await
        .unwrap();
    node::wait_ready(cluster, CONSUMER_PODS, 0, Duration::from_secs(60)).await;
    // Every item processed exactly once, none waiting or in flight.
    assert_eq!(pipeline.redis.cli(&["GET", COMPLETED]).trim(), "100");
    assert_eq!(pipeline.redis.cli(&["LLEN", QUEUE]).trim(), "0");
    eprintln!(
        "{test}: the HPA scaled the consumers to {scaled_up} and back to 0; 100 items processed"
    );

    // 2. The dojo's first steps, without the HPA: one consumer, then three.
    let mut values = node_values(CONSUMER, pipeline.redis.port(), producer_port);
    values.extend(["autoscaling.enabled=false".into(), "replicaCount=1".into()]);
    ebb_e2e::charts::install(cluster, CONSUMER, NAMESPACE, &node::as_strs(&values))
        .await
        .unwrap();
    node::wait_ready(cluster, CONSUMER_PODS, 1, Duration::from_secs(60)).await;
    assert_eq!(
        publish(cluster, &producer, "/publish").await,
        "Message published 👌"
    );
    assert_eq!(
        publish(cluster, &producer, "/publish/10").await,
        "10 messages published 👌"
    );
    node::wait_completed(cluster, &pipeline.redis, 111, Duration::from_secs(60)).await;
    let logs = node::pod_logs(cluster, CONSUMER_PODS).await;
    let one = work(&logs);
    assert_eq!(
        one.intervals.values().map(Vec::len).sum::<usize>(),
        11,
        "{logs}"
    );

    cluster
        .kubectl(&["scale", "deployment", CONSUMER, "--replicas=3"])
        .await
        .unwrap();
    node::wait_ready(cluster, CONSUMER_PODS, 3, Duration::from_secs(60)).await;
    assert_eq!(
        publish(cluster, &producer, "/publish/30").await,
        "30 messages published 👌"
    );
    node::wait_completed(cluster, &pipeline.redis, 141, Duration::from_secs(60)).await;
    let logs = node::pod_logs(cluster, CONSUMER_PODS).await;
    let three = work(&logs);
    assert_eq!(three.intervals.len(), 3, "three pods worked:\n{logs}");
    // Some moment when all three pods were each on an item: the latest start of one item per
    // pod falls before the earliest end of those items.
    let pods: Vec<&Vec<(String, String)>> = three.intervals.values().collect();
    let all_at_once = pods[0].iter().any(|a| {
        pods[1].iter().any(|b| {
            pods[2].iter().any(|c| {
                let start = [&a.0, &b.0, &c.0].into_iter().max().unwrap();
                let end = [&a.1, &b.1, &c.1].into_iter().min().unwrap();
                start < end
            })
        })
    });
    assert!(
        all_at_once,
        "no moment when three pods worked at once:\n{logs}"
    );

    // `kubectl exec` reaches a pod, whose image has the ebb binary and its probe.
    let version = cluster
        .kubectl(&[
            "exec",
            &format!("deployment/{CONSUMER}"),
            "--",
            "/usr/local/bin/ebb",
            "--version",
        ])
        .await
        .unwrap();
    assert!(version.starts_with("ebb "), "{version}");

    // The consumer's pop of the next item overlaps its ack of the previous one; its log must
    // still show one item at a time, as the dojo's consumer does (this once failed).
    let busy: Vec<&String> = one
        .received_while_busy
        .iter()
        .chain(&three.received_while_busy)
        .collect();
    assert!(
        busy.is_empty(),
        "{} items logged as received while the consumer had one unprocessed, e.g.:\n{}",
        busy.len(),
        busy.iter()
            .take(3)
            .map(|line| line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
