//! `ebb metrics-api` against the dojo chain, in one run on one control plane: latency
//! percentiles (kept-alive TLS at a fixed rate) and resident memory of the server against
//! prometheus-adapter serving the same metric, straight and through the kube-apiserver; then
//! the reaction time of the same HPA (the consumer chart's) from `--items` (100) pushed to
//! desiredReplicas and spec.replicas at items / 20 (and to the metric API first reading them),
//! first through the dojo chain, then through ebb.
//! Run by `bench/metrics-api/run.sh`, and with `--reaction-only --items 200` by
//! `bench/operator/reaction.sh` (its HPA-driven columns); prints one `key=value` line per
//! measurement, each with the load average beside it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use ebb_e2e::load::{self, Load, Tls};
use ebb_e2e::metrics_api::{MetricsApi, SERVICE_DNS_NAME};
use ebb_e2e::pipeline::{DojoPipeline, METRIC_PATH};
use ebb_testkit::control_plane::ControlPlane;

#[derive(Parser, Debug)]
#[command(about = "Benchmarks ebb metrics-api against prometheus-adapter and the dojo chain")]
struct Args {
    /// The ebb binary (a release build).
    #[arg(long)]
    ebb: PathBuf,
    /// Requests per second straight to each server.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// A second, gentler rate straight to each server (one prometheus-adapter can sustain).
    #[arg(long, default_value_t = 100)]
    low_rate: u32,
    /// Requests per second through the kube-apiserver.
    #[arg(long, default_value_t = 200)]
    apiserver_rate: u32,
    /// Measured seconds of each latency run (after 3 s of warmup).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Kept-alive connections of each latency run.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Reaction rounds per side.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Items pushed in each reaction round.
    #[arg(long, default_value_t = 100)]
    items: usize,
    /// Measure the reaction only (no latency or memory runs).
    #[arg(long)]
    reaction_only: bool,
}

/// The consumer chart's `hpa.averageItemsPerReplica` and `hpa.maxReplicas`
/// (helm/charts/consumer/values.yaml): the HPA's target for `items` is ⌈items / 20⌉, at most 20.
const ITEMS_PER_REPLICA: usize = 20;
const MAX_REPLICAS: usize = 20;

/// The kube-controller-manager's `--horizontal-pod-autoscaler-sync-period` (scripts/control-plane.sh).
const HPA_SYNC_PERIOD: Duration = Duration::from_secs(5);

const HPA_USER: &str = "system:serviceaccount:kube-system:horizontal-pod-autoscaler";

/// Comma-separated: a `key=value` field of the lines bench/metrics-api/run.sh reads.
fn loadavg() -> String {
    ebb_testkit::load_averages().join(",")
}

/// VmRSS and VmHWM (peak) of `pid`, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What the HPA asks (the dojo's metric with its selector), at `base`.
fn metric_url(base: &str) -> String {
    format!("{base}{METRIC_PATH}?metricLabelSelector=key%3Dpadok")
}

async fn latency(
    name: &str,
    args: &Args,
    url: String,
    rate: u32,
    tls: Tls,
    headers: &[(&str, &str)],
) {
    let report = load::run(&Load {
        url,
        rate,
        connections: args.connections,
        duration: Duration::from_secs(args.seconds),
        warmup: Duration::from_secs(3),
        tls,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
    })
    .await
    .unwrap_or_else(|error| panic!("{name}: {error}"));
    println!(
        "latency server={name} {} loadavg={}",
        report.line(),
        loadavg()
    );
    if let Some(error) = &report.first_error {
        eprintln!("{name}: first error: {error}");
    }
}

/// The HPA's reaction, `rounds` times: push `items`, wait for the HPA's target for them,
/// empty, wait for 0.
///
/// Each round starts when the scale to 0 is seen, that is just after one of the HPA's syncs
/// (one every [`HPA_SYNC_PERIOD`]). Pushing then would always give the metric most of a period
/// to arrive before the next sync looks, so any source faster than that would measure the
/// same. Round `k` of `n` pushes `(k - ½) / n` of a period later instead, the same offsets on
/// both sides: the mean is that of a push at a random moment, as a real queue is filled.
async fn reaction(
    name: &str,
    pipeline: &DojoPipeline,
    rounds: usize,
    items: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let target = items.div_ceil(ITEMS_PER_REPLICA).min(MAX_REPLICAS) as i64;
    let expected = items.to_string();
    pipeline
        .wait_for_replicas(0, Duration::from_secs(180))
        .await?;
    for round in 1..=rounds {
        let offset = HPA_SYNC_PERIOD.mul_f64((round as f64 - 0.5) / rounds as f64);
        tokio::time::sleep(offset).await;
        let pushed = Instant::now();
        pipeline.push(items);
        // When the metric API first says `items` (through the kube-apiserver, as the HPA reads it).
        pipeline
            .control_plane
            .wait_for(
                &format!("the metric to read {items}"),
                Duration::from_secs(120),
                || async {
                    match pipeline.metric_value().await {
                        Ok(value) if value == expected => Ok(Some(())),
                        other => Err(format!("{other:?}")),
                    }
                },
            )
            .await?;
        let metric = pushed.elapsed();
        pipeline
            .wait_for_replicas(target, Duration::from_secs(120))
            .await?;
        let up = pushed.elapsed();
        println!(
            "reaction chain={name} round={round} items={items} target={target} push_offset_seconds={:.2} metric_seconds={:.2} scale_up_seconds={:.2} loadavg={}",
            offset.as_secs_f64(),
            metric.as_secs_f64(),
            up.as_secs_f64(),
            loadavg()
        );
        pipeline.empty();
        let down = pipeline
            .wait_for_replicas(0, Duration::from_secs(180))
            .await?;
        println!(
            "reaction chain={name} round={round} scale_down_seconds={:.2} loadavg={}",
            down.as_secs_f64(),
            loadavg()
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.items == 0 {
        return Err("--items must be at least 1".into());
    }
    let mut pipeline = DojoPipeline::start(ControlPlane::start().await?).await?;
    let cluster_ip = pipeline
        .control_plane
        .get(
            "service",
            ebb_e2e::adapter::NAMESPACE,
            ebb_e2e::adapter::SERVICE,
        )
        .await?["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pki = pipeline.control_plane.pki.clone();
    let front_proxy = Some((
        pki.join("front-proxy-client.crt"),
        pki.join("front-proxy-client.key"),
    ));
    let admin = Tls {
        ca: Some(pki.join("ca.crt")),
        server_name: None,
        client_cert: Some((pki.join("admin.crt"), pki.join("admin.key"))),
    };
    let forwarded = [
        ("X-Remote-User", HPA_USER),
        ("X-Remote-Group", "system:serviceaccounts"),
        ("X-Remote-Group", "system:serviceaccounts:kube-system"),
        ("X-Remote-Group", "system:authenticated"),
    ];
    let apiserver = pipeline.control_plane.apiserver_url.clone();

    // prometheus-adapter: straight (its certificate is self-made at start: not verified), then
    // through the kube-apiserver.
    if pipeline.adapter.is_none() {
        return Err("prometheus-adapter was not built: no dojo chain to measure".into());
    }
    if !args.reaction_only {
        pipeline.push(7);
        let adapter = pipeline
            .adapter
            .as_mut()
            .ok_or("prometheus-adapter was not built")?;
        let pid = adapter.daemon().pid();
        latency(
            "prometheus-adapter",
            &args,
            metric_url(&format!("https://{cluster_ip}:443")),
            args.rate,
            Tls {
                ca: None,
                server_name: None,
                client_cert: front_proxy.clone(),
            },
            &forwarded,
        )
        .await;
        latency(
            "prometheus-adapter-low-rate",
            &args,
            metric_url(&format!("https://{cluster_ip}:443")),
            args.low_rate,
            Tls {
                ca: None,
                server_name: None,
                client_cert: front_proxy.clone(),
            },
            &forwarded,
        )
        .await;
        latency(
            "prometheus-adapter-via-apiserver",
            &args,
            metric_url(&apiserver),
            args.apiserver_rate,
            admin.clone(),
            &[],
        )
        .await;
        let (rss, peak) = memory(pid);
        println!(
            "memory server=prometheus-adapter rss_kib={rss} peak_kib={peak} loadavg={}",
            loadavg()
        );
    }
    pipeline.empty();
    reaction("dojo", &pipeline, args.rounds, args.items).await?;

    // ebb metrics-api takes over custom.metrics.k8s.io, from its chart, reading the same Redis.
    drop(pipeline.adapter.take());
    pipeline
        .control_plane
        .kubectl(&["delete", "apiservice", "v1beta1.custom.metrics.k8s.io"])
        .await?;
    let dir = ebb_e2e::daemon::temp_dir("ebb-metrics-api-bench")?;
    let mut server = MetricsApi::start(
        &pipeline.control_plane,
        &args.ebb,
        &pipeline.redis.address(),
        &[],
        &[],
        false,
        dir.path(),
    )
    .await?;
    if !args.reaction_only {
        pipeline.push(7);
        let pid = server.daemon().pid();
        let ebb_tls = Tls {
            ca: Some(server.ca_file.clone()),
            server_name: Some(SERVICE_DNS_NAME.into()),
            client_cert: front_proxy,
        };
        latency(
            "ebb",
            &args,
            metric_url(&server.url("")),
            args.rate,
            ebb_tls.clone(),
            &forwarded,
        )
        .await;
        latency(
            "ebb-low-rate",
            &args,
            metric_url(&server.url("")),
            args.low_rate,
            ebb_tls,
            &forwarded,
        )
        .await;
        latency(
            "ebb-via-apiserver",
            &args,
            metric_url(&apiserver),
            args.apiserver_rate,
            admin,
            &[],
        )
        .await;
        let (rss, peak) = memory(pid);
        println!(
            "memory server=ebb rss_kib={rss} peak_kib={peak} loadavg={}",
            loadavg()
        );
    }
    pipeline.empty();
    reaction("ebb", &pipeline, args.rounds, args.items).await?;
    drop(server);
    Ok(())
}
