//! One check per step of docs/dojo/, each reading the cluster (and Prometheus where the step
//! is about it) and returning what is right, what is wrong and the next hint. One file per
//! step under `steps/`; this file holds what every step reads (the [`Context`], the dojo's
//! names) and the lookups that several steps share.

mod adapter;
mod app;
mod bootstrap;
mod bug_step;
mod exporter;
mod hpa_step;
mod metrics_api;
mod operator;
mod prometheus;
mod rule;
mod scale;
mod zero;

pub use adapter::adapter;
pub use app::app;
pub use bootstrap::bootstrap;
pub use bug_step::bug_step;
pub use exporter::exporter;
pub use hpa_step::hpa_step;
pub use metrics_api::metrics_api;
pub use operator::operator;
pub use prometheus::prometheus;
pub use rule::rule;
pub use scale::scale;
pub use zero::zero;

use serde_json::Value;

use crate::Result;
use crate::bug::{self, Answer};
use crate::cluster::{Cluster, condition};
use crate::hpa::{self, Expected};
use crate::prometheus::Prometheus;
use crate::report::Report;

/// The dojo's names: the queue, the Service the metric is attached to, the recorded series.
pub const QUEUE: &str = "padok";
pub const EXPORTER_SERVICE: &str = "prometheus-redis-exporter";
pub const METRIC: &str = "redis_items_in_queue";
pub const CUSTOM_METRICS_API_SERVICE: &str = "v1beta1.custom.metrics.k8s.io";
pub const PROMETHEUS_NAMESPACE: &str = "prometheus";

/// What every check reads.
pub struct Context {
    pub cluster: Cluster,
    pub prometheus: Prometheus,
    /// Where the app runs (`default` in the dojo).
    pub namespace: String,
}

impl Context {
    fn path(&self, api: &str, resource: &str, name: &str) -> String {
        format!("{api}/namespaces/{}/{resource}/{name}", self.namespace)
    }

    async fn deployment(&self, name: &str) -> Result<Option<Value>> {
        self.cluster
            .get(&self.path("/apis/apps/v1", "deployments", name))
            .await
    }

    async fn hpa(&self) -> Result<Option<Value>> {
        self.cluster
            .get(&self.path(
                "/apis/autoscaling/v2",
                "horizontalpodautoscalers",
                "consumer",
            ))
            .await
    }

    /// The custom metrics API's answer for the queue, as the HPA asks for it.
    async fn metric(&self) -> Result<Result<f64, String>> {
        let path = format!(
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/{}/services/{EXPORTER_SERVICE}/{METRIC}?metricLabelSelector=key%3D{QUEUE}",
            self.namespace
        );
        Ok(self.cluster.get_answer(&path).await?.and_then(|list| {
            list["items"][0]
                .get("value")
                .and_then(hpa::quantity)
                .ok_or_else(|| format!("no items[0].value in {list}"))
        }))
    }

    /// PromQL label matchers of the exporter's series in the app's namespace.
    fn exporter_matchers(&self) -> String {
        format!(
            r#"service="{EXPORTER_SERVICE}",namespace="{}",key="{QUEUE}""#,
            self.namespace
        )
    }
}

/// The kinds of autoscaler that can own the consumer's count: (what the learner calls it, the
/// path of its collection under a namespace).
const HPAS: (&str, &str) = (
    "HPA",
    "/apis/autoscaling/v2/namespaces/{}/horizontalpodautoscalers",
);
const QUEUE_SCALERS: (&str, &str) = (
    "QueueScaler",
    "/apis/ebb.dev/v1alpha1/namespaces/{}/queuescalers",
);

/// The first autoscaler of `kind` (an HPA or a QueueScaler) in the app's namespace that targets
/// the Deployment `consumer`.
async fn scaler_of_consumer(ctx: &Context, kind: (&str, &str)) -> Result<Option<Value>> {
    let objects = ctx
        .cluster
        .list(&kind.1.replace("{}", &ctx.namespace))
        .await?;
    Ok(objects
        .into_iter()
        .find(|o| o["spec"]["scaleTargetRef"]["name"] == "consumer"))
}

/// Whether an HPA or a QueueScaler of the namespace targets the Deployment `consumer`.
async fn autoscaler_of_consumer(ctx: &Context) -> Result<Option<String>> {
    for kind in [HPAS, QUEUE_SCALERS] {
        if let Some(scaler) = scaler_of_consumer(ctx, kind).await? {
            return Ok(Some(format!("{} {}", kind.0, name_of(&scaler))));
        }
    }
    Ok(None)
}

/// The name of the first prometheus-operator object of `resource` in the app's namespace that
/// is `wanted`: `None` when the cluster serves no monitoring.coreos.com/v1 API (no
/// prometheus-operator), `Some(None)` when no object is.
async fn monitoring_object(
    ctx: &Context,
    resource: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Result<Option<Option<String>>> {
    if !ctx.cluster.serves("monitoring.coreos.com/v1").await? {
        return Ok(None);
    }
    let objects = ctx
        .cluster
        .list(&format!(
            "/apis/monitoring.coreos.com/v1/namespaces/{}/{resource}",
            ctx.namespace
        ))
        .await?;
    Ok(Some(
        objects
            .iter()
            .find(|o| wanted(o))
            .map(|o| name_of(o).to_owned()),
    ))
}

/// An object's `metadata.name`.
fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("?")
}

/// The APIService of `custom.metrics.k8s.io` is Available; returns the Service behind it.
async fn api_service_available(ctx: &Context, report: &mut Report) -> Result<Option<String>> {
    let path = format!("/apis/apiregistration.k8s.io/v1/apiservices/{CUSTOM_METRICS_API_SERVICE}");
    let Some(api_service) = ctx.cluster.get(&path).await? else {
        report.wrong(format!(
            "no APIService {CUSTOM_METRICS_API_SERVICE}: nothing serves custom.metrics.k8s.io"
        ));
        return Ok(None);
    };
    let service = format!(
        "{}/{}",
        api_service["spec"]["service"]["namespace"]
            .as_str()
            .unwrap_or("?"),
        api_service["spec"]["service"]["name"]
            .as_str()
            .unwrap_or("?")
    );
    match condition(&api_service, "Available") {
        Some((true, _, _)) => report.right(format!("APIService {CUSTOM_METRICS_API_SERVICE} is Available (Service {service})")),
        Some((false, reason, message)) => report.wrong(format!("APIService {CUSTOM_METRICS_API_SERVICE} (Service {service}) is not Available: {reason}: {message}")),
        None => report.wrong(format!("APIService {CUSTOM_METRICS_API_SERVICE} has no Available condition yet")),
    }
    Ok(Some(service))
}

async fn metric_served(ctx: &Context, report: &mut Report) -> Result<()> {
    match ctx.metric().await? {
        Ok(value) => report.right(format!(
            "the custom metrics API serves {METRIC}{{key={QUEUE}}} = {value}"
        )),
        Err(message) => report.wrong(format!(
            "GET …/services/{EXPORTER_SERVICE}/{METRIC}?metricLabelSelector=key={QUEUE}: {message}"
        )),
    }
    Ok(())
}
