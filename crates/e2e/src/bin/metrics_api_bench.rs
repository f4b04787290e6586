//! `ebb metrics-api` against the dojo chain, in one run on one control plane: latency
//! percentiles (kept-alive TLS at a fixed rate) and resident memory of the server against
//! prometheus-adapter serving the same metric, straight and through the kube-apiserver; then
//! the reaction time of the same HPA (the consumer chart's) from `--items` (100) pushed to
//! desiredReplicas and spec.replicas at items / 20 (and to the metric API first reading them),
//! first through the dojo chain, then through ebb; for each `--hpa-variants` (the HPA as the
//! dojo has it, and one whose `behavior` lets it reach the target in one sync).
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
    /// Reaction rounds per side (0: no reaction, latency and memory only).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Items pushed in each reaction round.
    #[arg(long, default_value_t = 100)]
    items: usize,
    /// Measure the reaction only (no latency or memory runs).
    #[arg(long)]
    reaction_only: bool,
    /// The HPA variants whose reaction is measured, each on both sides with the same push
    /// offsets: `default` (the consumer chart's HPA as the dojo has it, no `behavior`) and
    /// `one-sync` (the same with a `behavior.scaleUp` that may reach the target in one sync).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "default")]
    hpa_variants: Vec<HpaVariant>,
}

/// The consumer chart's HPA, as measured.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum HpaVariant {
    /// No `behavior`: the controller's legacy scale-up limit, max(2 × current, 4) per sync, so
    /// 0 → 4 → 5 takes two syncs.
    Default,
    /// `behavior.scaleUp`: up to 20 pods per 15 s, no stabilization, so 0 → 5 in one sync.
    OneSync,
}

impl HpaVariant {
    fn name(self) -> &'static str {
        match self {
            HpaVariant::Default => "default",
            HpaVariant::OneSync => "one-sync",
        }
    }

    /// The consumer chart's values that make it (helm/charts/consumer, `autoscaling.hpaBehavior`).
    fn chart_values(self) -> &'static [&'static str] {
        match self {
            HpaVariant::Default => &["autoscaling.hpaBehavior=null"],
            HpaVariant::OneSync => &[
                "autoscaling.hpaBehavior.scaleUp.stabilizationWindowSeconds=0",
                "autoscaling.hpaBehavior.scaleUp.policies[0].type=Pods",
                "autoscaling.hpaBehavior.scaleUp.policies[0].value=20",
                "autoscaling.hpaBehavior.scaleUp.policies[0].periodSeconds=15",
            ],
        }
    }

    /// Upgrades the consumer release to this variant and checks the HPA says so.
    async fn apply(self, pipeline: &DojoPipeline) -> Result<(), Box<dyn std::error::Error>> {
        ebb_e2e::charts::install(
            &pipeline.control_plane,
            ebb_e2e::pipeline::CONSUMER,
            ebb_e2e::pipeline::NAMESPACE,
            self.chart_values(),
        )
        .await?;
        let behavior = &pipeline.hpa().await?["spec"]["behavior"];
        let pods_per_period = behavior["scaleUp"]["policies"][0]["value"].as_i64();
        let applied = match self {
            HpaVariant::Default => behavior.is_null(),
            HpaVariant::OneSync => pods_per_period == Some(20),
        };
        if !applied {
            return Err(format!("the HPA's behavior for {}: {behavior}", self.name()).into());
        }
        Ok(())
    }
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

/// The SubjectAccessReviews `server` sent so far: how many a request waited for, how many were
/// refreshed ahead in the background, and their total duration in seconds.
async fn reviews(server: &MetricsApi) -> (f64, f64, f64) {
    let text = server.scrape().await.unwrap_or_default();
    let mut totals = (0.0, 0.0, 0.0);
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        if name.starts_with("ebb_metrics_api_authorization_reviews_total{") {
            if name.contains("waited_by=\"request\"") {
                totals.0 += value;
            } else {
                totals.1 += value;
            }
        } else if name == "ebb_metrics_api_authorization_review_duration_seconds_sum" {
            totals.2 += value;
        }
    }
    totals
}

/// [`latency`] of `server`, with the SubjectAccessReviews it sent meanwhile.
async fn latency_with_reviews(
    name: &str,
    args: &Args,
    server: &MetricsApi,
    url: String,
    rate: u32,
    tls: Tls,
    headers: &[(&str, &str)],
) {
    let before = reviews(server).await;
    latency(name, args, url, rate, tls, headers).await;
    let after = reviews(server).await;
    let waited = after.0 - before.0;
    let background = after.1 - before.1;
    let mean_ms = 1000.0 * (after.2 - before.2) / (waited + background).max(1.0);
    println!(
        "reviews server={name} waited_by_request={waited} background={background} mean_ms={mean_ms:.2}"
    );
}

/// The reaction of the consumer HPA in `variant`, `rounds` times: push `items`, wait for the
/// HPA's target for them, empty, wait for 0.
///
/// Each round starts when the scale to 0 is seen, that is just after one of the HPA's syncs
/// (one every [`HPA_SYNC_PERIOD`]). Pushing then would always give the metric most of a period
/// to arrive before the next sync looks, so any source faster than that would measure the
/// same. Round `k` of `n` pushes `(k - ½) / n` of a period later instead, the same offsets on
/// both sides: the mean is that of a push at a random moment, as a real queue is filled.
async fn reaction(
    name: &str,
    pipeline: &DojoPipeline,
    variant: HpaVariant,
    rounds: usize,
    items: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let target = items.div_ceil(ITEMS_PER_REPLICA).min(MAX_REPLICAS) as i64;
    let expected = items.to_string();
    let hpa = variant.name();
    variant.apply(pipeline).await?;
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
            "reaction chain={name} hpa={hpa} round={round} items={items} target={target} push_offset_seconds={:.2} metric_seconds={:.2} scale_up_seconds={:.2} loadavg={}",
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
            "reaction chain={name} hpa={hpa} round={round} scale_down_seconds={:.2} loadavg={}",
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
    if args.rounds > 0 {
        pipeline.empty();
        for variant in &args.hpa_variants {
            reaction("dojo", &pipeline, *variant, args.rounds, args.items).await?;
        }
    }

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
        latency_with_reviews(
            "ebb",
            &args,
            &server,
            metric_url(&server.url("")),
            args.rate,
            ebb_tls.clone(),
            &forwarded,
        )
        .await;
        latency_with_reviews(
            "ebb-low-rate",
            &args,
            &server,
            metric_url(&server.url("")),
            args.low_rate,
            ebb_tls,
            &forwarded,
        )
        .await;
        latency_with_reviews(
            "ebb-via-apiserver",
            &args,
            &server,
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
    if args.rounds > 0 {
        pipeline.empty();
        for variant in &args.hpa_variants {
            reaction("ebb", &pipeline, *variant, args.rounds, args.items).await?;
        }
    }
    drop(server);
    Ok(())
}
