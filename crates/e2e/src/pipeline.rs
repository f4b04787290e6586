//! The dojo's pipeline, assembled: the charts installed on the control plane, a real Redis,
//! the exporter, Prometheus with the chart's recording rule, and prometheus-adapter serving
//! `custom.metrics.k8s.io` to the HPA.

use std::time::{Duration, Instant};

use ebb_testkit::control_plane::ControlPlane;
use ebb_testkit::redis::RedisServer;
use serde_json::Value;
use tempfile::TempDir;

use crate::adapter::PrometheusAdapter;
use crate::exporter::RedisExporter;
use crate::prometheus::{Prometheus, ServiceTarget};
use crate::{Result, charts};

pub const NAMESPACE: &str = "default";
pub const QUEUE: &str = "padok";
pub const CONSUMER: &str = "consumer";
pub const EXPORTER_SERVICE: &str = "prometheus-redis-exporter";
/// The dojo's check: the queue length as the HPA reads it.
pub const METRIC_PATH: &str = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue";
/// PromQL for the recorded series, as the dojo checks it in the Prometheus UI.
pub const RECORDED_SERIES: &str =
    r#"redis_items_in_queue{service="prometheus-redis-exporter",namespace="default",key="padok"}"#;

/// Every process of the pipeline; all stopped on drop (the adapter first, the cluster last).
pub struct DojoPipeline {
    pub adapter: Option<PrometheusAdapter>,
    pub prometheus: Prometheus,
    pub exporter: RedisExporter,
    pub redis: RedisServer,
    pub control_plane: ControlPlane,
    dir: TempDir,
}

/// Where the HPA and its Deployment stand.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    /// The HPA's `status.desiredReplicas`.
    pub desired: i64,
    /// The Deployment's `spec.replicas`.
    pub spec: i64,
    /// The Deployment's `status.replicas`: `None` when the field is absent (so at 0).
    pub status: Option<i64>,
}

impl DojoPipeline {
    /// Installs the charts on `control_plane` and starts every hop. Without a
    /// prometheus-adapter binary: under CI ([`ebb_testkit::under_ci`]) an error, since the
    /// adapter → HPA hop is the point of the pipeline; elsewhere the chain stops at Prometheus
    /// (`adapter` is `None`) and this says so loudly.
    pub async fn start(control_plane: ControlPlane) -> Result<Self> {
        Self::start_with(control_plane, |_, _| Vec::new()).await
    }

    /// [`start`](Self::start), with more `--set` values per chart (`producer`, `consumer`),
    /// given Redis' port (started first): e.g. for pods that really run on a node and must
    /// reach that Redis.
    pub async fn start_with(
        control_plane: ControlPlane,
        chart_values: impl Fn(&str, u16) -> Vec<String>,
    ) -> Result<Self> {
        let dir = crate::daemon::temp_dir("ebb-dojo-pipeline")?;
        let redis = RedisServer::start();
        charts::install_monitoring_crds(&control_plane).await?;
        for chart in ["producer", CONSUMER] {
            let values = chart_values(chart, redis.port());
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            charts::install(&control_plane, chart, NAMESPACE, &values).await?;
        }

        let exporter = RedisExporter::start(&redis.url()).await?;
        let rule = control_plane
            .get("prometheusrule", NAMESPACE, CONSUMER)
            .await?;
        let target = ServiceTarget {
            address: exporter.target(),
            namespace: NAMESPACE.into(),
            service: EXPORTER_SERVICE.into(),
            endpoint: "redis-exporter".into(),
        };
        let prometheus = Prometheus::start(dir.path(), &target, &rule["spec"]["groups"]).await?;

        // The adapter lists series once a minute: start it once the recorded series exists.
        control_plane
            .wait_for(
                "Prometheus to record redis_items_in_queue",
                Duration::from_secs(60),
                || async {
                    match prometheus.query(RECORDED_SERIES).await {
                        Ok(samples) if samples.len() == 1 => Ok(Some(())),
                        Ok(samples) => Err(format!("{samples:?}")),
                        Err(error) => Err(error.to_string()),
                    }
                },
            )
            .await?;

        let adapter_binary = control_plane.bin.join("prometheus-adapter");
        let adapter = if adapter_binary.exists() {
            Some(PrometheusAdapter::start(&control_plane, &prometheus.url(), dir.path()).await?)
        } else if ebb_testkit::under_ci() {
            return Err(crate::Error::AdapterMissing(adapter_binary));
        } else {
            eprintln!(
                "\n!!!!!!!! prometheus-adapter was not built: the hop Prometheus → custom.metrics.k8s.io → HPA is LEFT OUT\n"
            );
            None
        };
        Ok(Self {
            adapter,
            prometheus,
            exporter,
            redis,
            control_plane,
            dir,
        })
    }

    /// Pushes `count` items onto the queue in one RPUSH.
    pub fn push(&self, count: usize) {
        let mut args = vec!["RPUSH", QUEUE];
        args.extend(std::iter::repeat_n("From Padok, with love 💜", count));
        self.redis.cli(&args);
    }

    /// Empties the queue (the key disappears, as when consumers drain it).
    pub fn empty(&self) {
        self.redis.cli(&["DEL", QUEUE]);
    }

    /// The custom metrics API's answer for the queue (`kubectl get --raw METRIC_PATH`).
    pub async fn metric(&self) -> Result<Value> {
        Ok(self.control_plane.raw(METRIC_PATH).await?)
    }

    /// The queue length the custom metrics API reports (`items[0].value`, a quantity string).
    pub async fn metric_value(&self) -> Result<String> {
        let metric = self.metric().await?;
        metric["items"][0]["value"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| crate::Error::Unexpected(format!("no items[0].value in {metric}")))
    }

    /// The consumer HPA at autoscaling/v2.
    pub async fn hpa(&self) -> Result<Value> {
        Ok(self
            .control_plane
            .get(
                "horizontalpodautoscalers.v2.autoscaling",
                NAMESPACE,
                CONSUMER,
            )
            .await?)
    }

    pub async fn scale(&self) -> Result<Scale> {
        let hpa = self.hpa().await?;
        let deployment = self
            .control_plane
            .get("deployment", NAMESPACE, CONSUMER)
            .await?;
        Ok(Scale {
            desired: hpa["status"]["desiredReplicas"].as_i64().unwrap_or(-1),
            spec: deployment["spec"]["replicas"].as_i64().unwrap_or(-1),
            status: deployment["status"]["replicas"].as_i64(),
        })
    }

    /// Waits until the HPA wants `replicas` and the Deployment's spec says so; returns how long
    /// that took.
    pub async fn wait_for_replicas(&self, replicas: i64, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        self.control_plane
            .wait_for(
                &format!("HPA desiredReplicas and Deployment spec.replicas = {replicas}"),
                timeout,
                || async {
                    let scale = self.scale().await.map_err(|error| error.to_string())?;
                    if scale.desired == replicas && scale.spec == replicas {
                        Ok(Some(()))
                    } else {
                        Err(format!("{scale:?}"))
                    }
                },
            )
            .await?;
        Ok(started.elapsed())
    }

    /// The folder with the logs of the exporter, Prometheus and the adapter.
    pub fn log_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
