//! ebb's own servers as pods on the test node (`scripts/control-plane.sh up --node`), for the
//! with-node e2e tests and `bench/node`: the metrics-api chart in its hostNetwork mode, the pod
//! listening on its Service's fixed ClusterIP (a loopback address on that cluster), where the
//! kube-apiserver dials it (aggregator routing off, no kube-proxy).

use std::time::Duration;

use ebb_testkit::control_plane::ControlPlane;
use serde_json::json;

use crate::metrics_api::{API_SERVICES, NAMESPACE, RELEASE, available_condition};
use crate::{Error, Result, charts};

/// The chart's `metricsPort`: on the host network the pod's own `/metrics`, on the ClusterIP.
pub const METRICS_API_METRICS_PORT: u16 = 8080;
pub const METRICS_API_PODS: &str = "app.kubernetes.io/name=metrics-api";

/// A ClusterIP for the metrics-api Service in the cluster's loopback range (`127.N.0.0/16`):
/// `.10` of its first /24, in the low band the API server keeps for addresses asked for by
/// name (it allocates dynamically from the upper part first).
pub fn fixed_cluster_ip(service_cidr: &str) -> Result<String> {
    let (prefix, _) = service_cidr
        .rsplit_once(".0.0/")
        .ok_or_else(|| Error::Unexpected(format!("service range {service_cidr} is not a /16")))?;
    Ok(format!("{prefix}.0.10"))
}

/// Installs the metrics-api chart (release `metrics-api` in `monitoring`) as one pod from the
/// imported ebb image, reading `redis_server`, and waits (up to `timeout` each) until its
/// APIServices are Available through the kube-apiserver. Returns the ClusterIP it serves on.
pub async fn install_metrics_api(
    control_plane: &ControlPlane,
    redis_server: &str,
    timeout: Duration,
) -> Result<String> {
    control_plane
        .apply(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
                .to_string(),
        )
        .await?;
    let cluster_ip = fixed_cluster_ip(&control_plane.service_cidr)?;
    let set = [
        "image.pullPolicy=Never".to_owned(),
        "hostNetwork.enabled=true".to_owned(),
        "replicaCount=1".to_owned(),
        format!("service.clusterIP={cluster_ip}"),
        format!("redis.server={redis_server}"),
    ];
    let set: Vec<&str> = set.iter().map(String::as_str).collect();
    charts::install_as(control_plane, RELEASE, "metrics-api", NAMESPACE, &set).await?;
    for name in API_SERVICES {
        control_plane
            .wait_for(&format!("APIService {name} Available"), timeout, || async {
                let condition = available_condition(control_plane, name).await?;
                if condition["status"] == "True" {
                    Ok(Some(()))
                } else {
                    Err(format!("{condition}"))
                }
            })
            .await?;
    }
    Ok(cluster_ip)
}
