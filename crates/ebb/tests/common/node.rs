//! What the with-node e2e tests share (`e2e_node_*`): one control plane with a node for the
//! test binary, the ebb image imported into it, the charts' values for that node, and the
//! pods, logs and Redis counters the tests wait on.

use std::time::Duration;

use ebb_testkit::control_plane::{self, ControlPlane, Options};
use ebb_testkit::redis::RedisServer;

/// The consumer chart's pods.
pub const CONSUMER_PODS: &str = "app.kubernetes.io/name=consumer";
/// The consumer's count of acknowledged items for the dojo's queue `padok`.
pub const COMPLETED: &str = "{padok}:completed";
pub const QUEUE: &str = "padok";

/// A control plane with a node and the ebb image in it, or `None` when this machine cannot
/// run a node (skipped loudly outside CI, a failure under CI).
pub async fn start(test: &str) -> Option<ControlPlane> {
    let cluster = control_plane::start_with_node_or_skip(test, Options::default()).await?;
    let image = control_plane::ebb_image().unwrap_or_else(|error| panic!("{test}: {error}"));
    cluster
        .load_image(&image)
        .await
        .unwrap_or_else(|error| panic!("{test}: {error}"));
    Some(cluster)
}

/// The values every ebb chart needs on the node: the imported image and the host's network.
pub const NODE_VALUES: [&str; 2] = ["image.pullPolicy=Never", "hostNetwork.enabled=true"];

/// [`NODE_VALUES`] and, for the charts that read a queue, Redis by name (`localhost`: name
/// resolution inside the image) — plus `more`.
pub fn chart_values(redis_port: u16, more: &[&str]) -> Vec<String> {
    NODE_VALUES
        .iter()
        .chain(more)
        .map(|value| (*value).to_owned())
        .chain([format!("redis.server=localhost:{redis_port}")])
        .collect()
}

/// As `&str`, for `charts::install`.
pub fn as_strs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

/// Pods matching `selector` (in any namespace) that are not being deleted and pass `keep`.
async fn count_pods(
    cluster: &ControlPlane,
    selector: &str,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> Result<usize, String> {
    let pods = cluster
        .kubectl_json(&["get", "pods", "--all-namespaces", "-l", selector])
        .await
        .map_err(|error| error.to_string())?;
    Ok(pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null() && keep(pod))
        .count())
}

/// Pods of `selector` in phase Running.
pub async fn running_pods(cluster: &ControlPlane, selector: &str) -> Result<usize, String> {
    count_pods(cluster, selector, |pod| pod["status"]["phase"] == "Running").await
}

/// Pods of `selector` whose Ready condition is True.
pub async fn ready_pods(cluster: &ControlPlane, selector: &str) -> Result<usize, String> {
    count_pods(cluster, selector, |pod| {
        pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|condition| condition["type"] == "Ready" && condition["status"] == "True")
    })
    .await
}

/// Waits until exactly `count` pods of `selector` are Running.
pub async fn wait_running(cluster: &ControlPlane, selector: &str, count: usize, timeout: Duration) {
    cluster
        .wait_for(
            &format!("{count} pods {selector} running"),
            timeout,
            || async {
                match running_pods(cluster, selector).await? {
                    running if running == count => Ok(Some(())),
                    running => Err(format!("{running} running")),
                }
            },
        )
        .await
        .unwrap();
}

/// Waits until exactly `count` pods of `selector` are Ready.
pub async fn wait_ready(cluster: &ControlPlane, selector: &str, count: usize, timeout: Duration) {
    cluster
        .wait_for(
            &format!("{count} pods {selector} ready"),
            timeout,
            || async {
                match ready_pods(cluster, selector).await? {
                    ready if ready == count => Ok(Some(())),
                    ready => Err(format!("{ready} ready")),
                }
            },
        )
        .await
        .unwrap();
}

/// The consumers' processed count in Redis (0 before the first item).
pub fn completed(redis: &RedisServer) -> u64 {
    redis.cli(&["GET", COMPLETED]).trim().parse().unwrap_or(0)
}

/// Waits until the consumers have processed `total` items.
pub async fn wait_completed(
    cluster: &ControlPlane,
    redis: &RedisServer,
    total: u64,
    timeout: Duration,
) {
    cluster
        .wait_for(&format!("{total} items processed"), timeout, || async {
            match completed(redis) {
                done if done == total => Ok(Some(())),
                done => Err(format!(
                    "{done} processed, {} waiting",
                    redis.cli(&["LLEN", QUEUE]).trim()
                )),
            }
        })
        .await
        .unwrap();
}

/// Every log line of the pods of `selector`, each prefixed with `[pod/<name>/<container>]` and
/// kubelet's RFC 3339 timestamp (`kubectl logs --prefix --timestamps`).
pub async fn pod_logs(cluster: &ControlPlane, selector: &str) -> String {
    cluster
        .kubectl(&[
            "logs",
            "-l",
            selector,
            "--prefix",
            "--timestamps",
            "--tail=-1",
        ])
        .await
        .unwrap()
}

/// `POST <producer><path>` (the producer pod's API); the answer's text.
/// A failure carries the pods' report (events, logs of this and the previous run).
pub async fn publish(cluster: &ControlPlane, producer: &str, path: &str) -> String {
    let response = match reqwest::Client::new()
        .post(format!("{producer}{path}"))
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => panic!(
            "POST {path}: {error:?}\n{}",
            cluster.pod_report("default").await
        ),
    };
    if !response.status().is_success() {
        panic!(
            "POST {path}: {response:?}\n{}",
            cluster.pod_report("default").await
        );
    }
    response.text().await.unwrap().trim_end().to_owned()
}

/// The Deployment's `spec.replicas`.
pub async fn spec_replicas(
    cluster: &ControlPlane,
    namespace: &str,
    name: &str,
) -> Result<i64, String> {
    let deployment = cluster
        .get("deployment", namespace, name)
        .await
        .map_err(|error| error.to_string())?;
    Ok(deployment["spec"]["replicas"].as_i64().unwrap_or(-1))
}
