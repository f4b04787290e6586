//! Scaling on a real node (`scripts/control-plane.sh up --node`), pods really running the
//! consumer chart from the ebb image: run by `bench/node/run.sh`, one `key=value` line per
//! measurement. For each autoscaler (`dojo`: redis_exporter → Prometheus → prometheus-adapter →
//! HPA; `metrics-api`: `ebb metrics-api` as a pod on the node, from its chart, in place of
//! prometheus-adapter → the same HPA; `operator`: a QueueScaler and `ebb operator run` on the
//! host), from an idle Deployment at 0:
//!
//! - burst: `RPUSH` 200 items → (a) the Deployment's `spec.replicas` at 10, (b) 10 pods Running,
//!   (c) the first item processed by a new pod, (d) the queue drained (every item acknowledged);
//! - drain: 1000 items × 1 s with at most 20 pods → drained, against the physical limit of
//!   1000 / 20 × 1 s = 50 s.
//!
//! Times are from the `RPUSH`, polled (the poll's period is printed with them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use ebb_e2e::pipeline::{CONSUMER, DojoPipeline, NAMESPACE, QUEUE};
use ebb_e2e::{charts, node};
use ebb_testkit::control_plane::{ControlPlane, Options};
use ebb_testkit::poll;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

const COMPLETED: &str = "{padok}:completed";
/// The pause between two observations of a burst: the figures are this coarse, plus one read.
const POLL_PAUSE: Duration = Duration::from_millis(100);

#[derive(Parser, Debug)]
#[command(about = "Measures scaling with pods running on a real node")]
struct Args {
    /// The ebb image archive (`scripts/image.sh build`).
    #[arg(long)]
    image: PathBuf,
    /// The ebb release binary, for `ebb operator run` on the host.
    #[arg(long)]
    ebb: PathBuf,
    /// Autoscalers to measure, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "dojo,metrics-api,operator"
    )]
    autoscalers: Vec<String>,
}

type BoxError = Box<dyn std::error::Error>;

fn load() -> String {
    ebb_testkit::load_averages().join(" ")
}

/// Where the consumer Deployment and its pods stand.
struct Observation {
    spec: i64,
    running: usize,
    /// Every consumer pod, terminating ones included.
    pods: usize,
    completed: u64,
    waiting: u64,
}

/// Reads the Deployment and its pods through the API, not kubectl: a kubectl process per poll
/// costs a sizeable share of one of the two cores, which the node needs to start the pods.
async fn observe(pipeline: &DojoPipeline, client: &Client) -> Result<Observation, BoxError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let consumer_pods = ListParams::default().labels("app.kubernetes.io/name=consumer");
    let (deployment, pods) = tokio::join!(deployments.get(CONSUMER), pods.list(&consumer_pods));
    let pods = pods?.items;
    let running = pods
        .iter()
        .filter(|pod| {
            pod.metadata.deletion_timestamp.is_none()
                && pod
                    .status
                    .as_ref()
                    .and_then(|status| status.phase.as_deref())
                    == Some("Running")
        })
        .count();
    Ok(Observation {
        spec: deployment?.spec.replicas.map_or(-1, i64::from),
        running,
        pods: pods.len(),
        completed: pipeline
            .redis
            .cli(&["GET", COMPLETED])
            .trim()
            .parse()
            .unwrap_or(0),
        waiting: pipeline
            .redis
            .cli(&["LLEN", QUEUE])
            .trim()
            .parse()
            .unwrap_or(0),
    })
}

/// Back to an idle start: queue empty, Deployment at 0, no consumer pod left, not even a
/// terminating one (one not yet signalled would take an item from the next burst, and (c)
/// would time an old pod).
async fn settle(pipeline: &DojoPipeline, client: &Client) -> Result<(), BoxError> {
    // A failed look ends the wait as a look that is done, with the failure as its value.
    poll::until("an idle start", Duration::from_secs(300), || async {
        match observe(pipeline, client).await {
            Err(error) => Ok(Some(Err(error))),
            Ok(seen) if seen.spec == 0 && seen.pods == 0 && seen.waiting == 0 => Ok(Some(Ok(()))),
            Ok(seen) => Err(format!(
                "spec {} pods {} waiting {}",
                seen.spec, seen.pods, seen.waiting
            )),
        }
    })
    .await??;
    pipeline.redis.cli(&["DEL", COMPLETED]);
    Ok(())
}

async fn burst(pipeline: &DojoPipeline, client: &Client, autoscaler: &str) -> Result<(), BoxError> {
    settle(pipeline, client).await?;
    let load_before = load();
    let started = Instant::now();
    pipeline.push(200);
    let (mut spec_at_10, mut running_10, mut first, mut drained) = (None, None, None, None);
    let mut polls = 0u32;
    while drained.is_none() {
        if started.elapsed() > Duration::from_secs(600) {
            return Err("burst: not drained after 600 s".into());
        }
        let seen = observe(pipeline, client).await?;
        polls += 1;
        let at = started.elapsed().as_secs_f64();
        if spec_at_10.is_none() && seen.spec >= 10 {
            spec_at_10 = Some(at);
        }
        if running_10.is_none() && seen.running >= 10 {
            running_10 = Some(at);
        }
        if first.is_none() && seen.completed >= 1 {
            first = Some(at);
        }
        if seen.completed >= 200 && seen.waiting == 0 {
            drained = Some(at);
        }
        // Paced: an unpaced loop reads the API server and spawns redis-cli 50 times a second,
        // load that would slow the very pods being timed.
        tokio::time::sleep(POLL_PAUSE).await;
    }
    let show = |value: Option<f64>| value.map_or("never".into(), |seconds| format!("{seconds:.2}"));
    println!(
        "autoscaler={autoscaler} scenario=burst items=200 spec_replicas_10_s={} pods_running_10_s={} first_processed_s={} drained_s={} poll_period_s={:.2} load=\"{load_before}\" load_after=\"{}\"",
        show(spec_at_10),
        show(running_10),
        show(first),
        show(drained),
        started.elapsed().as_secs_f64() / f64::from(polls),
        load()
    );
    Ok(())
}

async fn drain(pipeline: &DojoPipeline, client: &Client, autoscaler: &str) -> Result<(), BoxError> {
    const ITEMS: u64 = 1000;
    const LIMIT_S: f64 = 50.0;
    settle(pipeline, client).await?;
    let load_before = load();
    let started = Instant::now();
    pipeline.push(ITEMS as usize);
    loop {
        if started.elapsed() > Duration::from_secs(900) {
            return Err("drain: not drained after 900 s".into());
        }
        let completed: u64 = pipeline
            .redis
            .cli(&["GET", COMPLETED])
            .trim()
            .parse()
            .unwrap_or(0);
        if completed >= ITEMS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "autoscaler={autoscaler} scenario=drain items={ITEMS} per_item_s=1 max_replicas=20 drained_s={seconds:.2} limit_s={LIMIT_S} ratio={:.2} load=\"{load_before}\" load_after=\"{}\"",
        seconds / LIMIT_S,
        load()
    );
    Ok(())
}

/// The charts' values on the node, for one autoscaler (the producer on a free port).
fn values(chart: &str, redis_port: u16, autoscaler: &str) -> Vec<String> {
    let mut values: Vec<String> = vec![
        "image.pullPolicy=Never".into(),
        "hostNetwork.enabled=true".into(),
        format!("redis.server=localhost:{redis_port}"),
        format!("autoscaler={autoscaler}"),
        // The operator's defaults here: react at once, no cooldown before 0.
        "autoscaling.queueScaler.cooldownSeconds=0".into(),
    ];
    if chart == "producer" {
        values.push(format!(
            "hostNetwork.http=127.0.0.1:{}",
            ebb_testkit::free_port()
        ));
    }
    values
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let cluster = ControlPlane::start_with(Options {
        node: true,
        ..Options::default()
    })
    .await?;
    let client = Client::try_from(
        kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&cluster.kubeconfig)?,
            &KubeConfigOptions::default(),
        )
        .await?,
    )?;
    cluster.load_image(&args.image).await?;
    cluster
        .apply(&std::fs::read_to_string(
            charts::chart_path("operator").join("crds/queuescalers.yaml"),
        )?)
        .await?;
    cluster.wait_established("queuescalers.ebb.dev").await?;
    let mut pipeline =
        DojoPipeline::start_with(cluster, |chart, port| values(chart, port, "hpa")).await?;
    if pipeline.adapter.is_none() {
        return Err("prometheus-adapter was not built: no HPA to measure".into());
    }
    let mut operator = None;
    for autoscaler in &args.autoscalers {
        match autoscaler.as_str() {
            "dojo" => {}
            "metrics-api" => {
                // The consumer's HPA as it is; its metric now from `ebb metrics-api`, a pod:
                // prometheus-adapter stopped and its APIService handed over.
                drop(pipeline.adapter.take());
                drop(operator.take());
                pipeline
                    .control_plane
                    .kubectl(&[
                        "delete",
                        "apiservice",
                        "v1beta1.custom.metrics.k8s.io",
                        "--ignore-not-found",
                    ])
                    .await?;
                let redis = format!("localhost:{}", pipeline.redis.port());
                node::install_metrics_api(
                    &pipeline.control_plane,
                    &redis,
                    Duration::from_secs(180),
                )
                .await?;
                let set = values(CONSUMER, pipeline.redis.port(), "hpa");
                let set: Vec<&str> = set.iter().map(String::as_str).collect();
                charts::install(&pipeline.control_plane, CONSUMER, NAMESPACE, &set).await?;
            }
            "operator" => {
                let set = values(CONSUMER, pipeline.redis.port(), "queueScaler");
                let set: Vec<&str> = set.iter().map(String::as_str).collect();
                charts::install(&pipeline.control_plane, CONSUMER, NAMESPACE, &set).await?;
                let http = ebb_testkit::free_port();
                let log = std::fs::File::create(pipeline.log_dir().join("operator.log"))?;
                operator = Some(
                    tokio::process::Command::new(&args.ebb)
                        .args(["operator", "run", "--http", &format!("127.0.0.1:{http}")])
                        .env("KUBECONFIG", &pipeline.control_plane.kubeconfig)
                        .env("POD_NAME", "bench-operator")
                        .env("POD_NAMESPACE", "default")
                        .stdout(log.try_clone()?)
                        .stderr(log)
                        .kill_on_drop(true)
                        .spawn()?,
                );
            }
            other => {
                return Err(format!(
                    "--autoscalers: unknown {other:?} (dojo, metrics-api, operator)"
                )
                .into());
            }
        }
        burst(&pipeline, &client, autoscaler).await?;
        drain(&pipeline, &client, autoscaler).await?;
    }
    drop(operator);
    Ok(())
}
