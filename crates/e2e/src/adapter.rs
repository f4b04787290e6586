//! prometheus-adapter registered as `custom.metrics.k8s.io`, the way its chart deploys it,
//! running as a local process.
//!
//! ```text
//!  HPA ─▶ kube-apiserver ─(front-proxy cert, X-Remote-User)─▶ Service prometheus/prometheus-adapter
//!                                                             ClusterIP 127.x.y.z:443 = this process
//! ```
//!
//! The API server runs with a loopback service range and aggregator routing off, so it dials
//! the Service's ClusterIP, an address this process binds. The availability check wants a
//! ready endpoint for the Service's port: a placeholder EndpointSlice (240.0.0.1, never
//! dialled) stands in for the adapter's pod, which cannot run without a kubelet.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ebb_testkit::control_plane::ControlPlane;
use serde_json::{Value, json};

use crate::daemon::Process;
use crate::values::Values;
use crate::{Error, Result};

pub const NAMESPACE: &str = "prometheus";
pub const SERVICE: &str = "prometheus-adapter";
/// The chart's `service.port`.
const SERVICE_PORT: u16 = 443;
/// The chart's container port (`listenPort`), named `https`.
const TARGET_PORT: u16 = 6443;

#[derive(Debug)]
pub struct PrometheusAdapter {
    daemon: Process,
}

/// The objects the chart renders that the HPA path depends on, plus the placeholder endpoint.
fn registration() -> Value {
    let labels =
        json!({ "app.kubernetes.io/name": SERVICE, "app.kubernetes.io/instance": SERVICE });
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            { "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NAMESPACE } },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": { "name": SERVICE, "namespace": NAMESPACE, "labels": labels },
                "spec": {
                    "type": "ClusterIP",
                    "ports": [{ "port": SERVICE_PORT, "protocol": "TCP", "targetPort": "https" }],
                    "selector": labels,
                },
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": { "name": "v1beta1.custom.metrics.k8s.io", "labels": labels },
                "spec": {
                    "service": { "name": SERVICE, "namespace": NAMESPACE },
                    "group": "custom.metrics.k8s.io",
                    "version": "v1beta1",
                    "insecureSkipTLSVerify": true,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": format!("{SERVICE}-placeholder"),
                    "namespace": NAMESPACE,
                    "labels": {
                        "kubernetes.io/service-name": SERVICE,
                        "endpointslice.kubernetes.io/managed-by": "ebb-e2e",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{ "addresses": ["240.0.0.1"], "conditions": { "ready": true } }],
                "ports": [{ "name": "", "port": TARGET_PORT, "protocol": "TCP" }],
            },
        ],
    })
}

/// The adapter's config as its chart renders it from the dojo's values: the chart's default
/// rules (`rules.default: true`; the container_* ones are left out, there is no cAdvisor
/// here) followed by the values' `rules.custom`. The dojo's custom rule names no resources,
/// so the Service mapping of `redis_items_in_queue` comes from the default rule's
/// `<<.Resource>>` template: a `service` label names a Service.
pub fn config_from_values() -> Result<Value> {
    let values = Values::dojo("prometheus-adapter")?;
    let generic = |filters: Value, matches: &str, query: &str| {
        json!({
            "seriesQuery": "{namespace!=\"\",__name__!~\"^container_.*\"}",
            "seriesFilters": filters,
            "resources": { "template": "<<.Resource>>" },
            "name": { "matches": matches, "as": "" },
            "metricsQuery": query,
        })
    };
    let mut rules = vec![
        generic(
            json!([{ "isNot": ".*_total$" }]),
            "",
            "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
        ),
        generic(
            json!([{ "isNot": ".*_seconds_total" }]),
            "^(.*)_total$",
            "sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)",
        ),
        generic(
            json!([]),
            "^(.*)_seconds_total$",
            "sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)",
        ),
    ];
    let custom = values
        .get("rules.custom")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    rules.extend(custom);
    Ok(json!({ "rules": rules }))
}

impl PrometheusAdapter {
    /// Registers the APIService and starts the adapter against `prometheus_url` (the dojo's
    /// values point at the in-cluster `prometheus-kube-prometheus-prometheus`; here it is the
    /// test's Prometheus). Returns once the APIService is Available.
    pub async fn start(
        control_plane: &ControlPlane,
        prometheus_url: &str,
        dir: &Path,
    ) -> Result<Self> {
        control_plane.apply(&registration().to_string()).await?;
        let service = control_plane.get("service", NAMESPACE, SERVICE).await?;
        let cluster_ip = service["spec"]["clusterIP"]
            .as_str()
            .unwrap_or_default()
            .to_owned();

        let config = dir.join("adapter-config.json");
        std::fs::write(&config, config_from_values()?.to_string()).map_err(|source| Error::Io {
            path: config.clone(),
            source,
        })?;
        let kubeconfig = control_plane.kubeconfig.display().to_string();
        let mut command = Command::new(control_plane.bin.join("prometheus-adapter"));
        command
            .arg(format!("--bind-address={cluster_ip}"))
            .arg(format!("--secure-port={SERVICE_PORT}"))
            .arg(format!(
                "--cert-dir={}",
                dir.join("adapter-certs").display()
            ))
            .arg(format!("--prometheus-url={prometheus_url}"))
            .arg("--metrics-relist-interval=1m")
            .arg(format!("--config={}", config.display()))
            .arg(format!("--lister-kubeconfig={kubeconfig}"))
            .arg(format!("--authentication-kubeconfig={kubeconfig}"))
            .arg(format!("--authorization-kubeconfig={kubeconfig}"))
            .arg("--v=2");
        let daemon = Process::spawn_quiet("prometheus-adapter", &mut command)?;

        let available = control_plane
            .wait_for(
                "APIService v1beta1.custom.metrics.k8s.io to be Available",
                Duration::from_secs(90),
                || {
                    let running = daemon.check_running().map_err(|error| error.to_string());
                    async move {
                        running?;
                        let api_service = control_plane
                            .kubectl_json(&["get", "apiservice", "v1beta1.custom.metrics.k8s.io"])
                            .await
                            .map_err(|error| error.to_string())?;
                        let available = api_service["status"]["conditions"]
                            .as_array()
                            .and_then(|conditions| {
                                conditions.iter().find(|c| c["type"] == "Available")
                            })
                            .cloned()
                            .unwrap_or(Value::Null);
                        if available["status"] == "True" {
                            Ok(Some(()))
                        } else {
                            Err(format!("condition Available = {available}"))
                        }
                    }
                },
            )
            .await;
        if let Err(error) = available {
            daemon.check_running()?;
            return Err(Error::NotReady {
                what: format!("prometheus-adapter on {cluster_ip}:{SERVICE_PORT}"),
                last: error.to_string(),
                tail: daemon.tail(30),
            });
        }
        Ok(Self { daemon })
    }

    pub fn daemon(&mut self) -> &mut Process {
        &mut self.daemon
    }
}
