//! One check per step of docs/dojo/, each reading the cluster (and Prometheus where the step
//! is about it) and returning what is right, what is wrong and the next hint.

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

/// Step 1: the API server, Redis, the producer and the consumer.
pub async fn bootstrap(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("bootstrap");
    let version = ctx.cluster.version().await?;
    if version.starts_with("v1.37.") {
        report.right(format!("the API server answers: Kubernetes {version}"));
    } else {
        report.right(format!("the API server answers: Kubernetes {version}"));
        report.note("not 1.37: scale to zero (step 9) and the bug hunt (step 10) describe 1.37; scripts/bootstrap.sh pins it");
    }
    let redis = ctx
        .cluster
        .get(&ctx.path("/api/v1", "services", "redis-master"))
        .await?;
    report.expect(
        redis.is_some(),
        "Service redis-master",
        format!(
            "no Service redis-master in {}: scripts/deploy-redis.sh",
            ctx.namespace
        ),
    );
    for name in ["producer", "consumer"] {
        report.expect(
            ctx.deployment(name).await?.is_some(),
            format!("Deployment {name}"),
            format!(
                "no Deployment {name} in {}: scripts/deploy-{name}.sh",
                ctx.namespace
            ),
        );
    }
    let ingress = ctx
        .cluster
        .get(&ctx.path("/apis/networking.k8s.io/v1", "ingresses", "producer"))
        .await?;
    match ingress.as_ref().map(|i| &i["spec"]["rules"][0]["host"]) {
        Some(host) if host == "producer.vcap.me" => {
            report.right("Ingress producer on producer.vcap.me")
        }
        Some(host) => report.wrong(format!(
            "the Ingress producer's host is {host}: producer.vcap.me expected"
        )),
        None => report.wrong(format!("no Ingress producer in {}", ctx.namespace)),
    }
    report.hint("run scripts/bootstrap.sh; docs/dojo/01-bootstrap.md has hints for each failure");
    Ok(report)
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

/// Step 2: the app's pods run.
pub async fn app(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("app");
    let autoscaler = autoscaler_of_consumer(ctx).await?;
    for name in ["producer", "consumer"] {
        let Some(deployment) = ctx.deployment(name).await? else {
            report.wrong(format!("no Deployment {name}: step 1 first"));
            continue;
        };
        let wanted = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
        let ready = deployment["status"]["readyReplicas"].as_i64().unwrap_or(0);
        if ready >= 1 {
            report.right(format!("{name}: {ready} of {wanted} pods ready"));
        } else if wanted == 0 && autoscaler.is_some() {
            report.note(format!(
                "{name}: at 0 replicas, scaled by {}",
                autoscaler.as_deref().unwrap_or("")
            ));
        } else {
            let why = why_not_ready(ctx, &deployment["spec"]["selector"]["matchLabels"]).await?;
            report.wrong(format!("{name}: {ready} of {wanted} pods ready{why}"));
        }
    }
    let slices = ctx
        .cluster
        .list(&format!(
            "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dredis-master",
            ctx.namespace
        ))
        .await?;
    let redis_ready = slices.iter().any(|slice| {
        slice["endpoints"]
            .as_array()
            .is_some_and(|endpoints| endpoints.iter().any(|e| e["conditions"]["ready"] == true))
    });
    if redis_ready {
        report.right("Redis (Service redis-master) has a ready endpoint");
    } else {
        let service = ctx
            .cluster
            .get(&ctx.path("/api/v1", "services", "redis-master"))
            .await?;
        let why = match service {
            Some(service) => why_not_ready(ctx, &service["spec"]["selector"]).await?,
            None => ": there is no Service redis-master (step 1)".to_owned(),
        };
        report.wrong(format!(
            "Service redis-master has no ready endpoint: is the Redis pod running?{why}"
        ));
    }
    report.hint("hint 2 of docs/dojo/02-try-the-app.md: `kubectl describe pod` of a pod that is not Running says why");
    Ok(report)
}

/// Why the pods of `labels` (a label map: a Deployment's `matchLabels`, a Service's selector)
/// are not ready, as the kubelet and the scheduler say it: `": pod <name>: <reason> (<message>)"`
/// for the first one that says anything, `": no pod"` when there is none, else empty.
async fn why_not_ready(ctx: &Context, labels: &Value) -> Result<String> {
    let Some(labels) = labels.as_object().filter(|l| !l.is_empty()) else {
        return Ok(String::new());
    };
    let selector: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
        .collect();
    let pods = ctx
        .cluster
        .list(&format!(
            "/api/v1/namespaces/{}/pods?labelSelector={}",
            ctx.namespace,
            percent_encode(&selector.join(","))
        ))
        .await?;
    if pods.is_empty() {
        return Ok(": no pod (kubectl describe replicaset says why)".to_owned());
    }
    Ok(pods
        .iter()
        .find_map(|pod| {
            pod_problem(pod).map(|problem| format!(": pod {}: {problem}", name_of(pod)))
        })
        .unwrap_or_default())
}

/// What keeps a pod from running: a container's waiting or terminated reason, else an
/// unscheduled pod's reason.
fn pod_problem(pod: &Value) -> Option<String> {
    let said = |reason: &Value, message: &Value| {
        let reason = reason.as_str()?;
        Some(match message.as_str().filter(|m| !m.is_empty()) {
            Some(message) => format!("{reason} ({message})"),
            None => reason.to_owned(),
        })
    };
    let containers = pod["status"]["containerStatuses"].as_array();
    let container = containers.into_iter().flatten().find_map(|c| {
        let state = &c["state"];
        let stopped = ["waiting", "terminated"]
            .into_iter()
            .find_map(|s| said(&state[s]["reason"], &state[s]["message"]));
        // Running but not ready: its readiness probe fails (the kubelet's Unhealthy events
        // say how), and a restart says how it last ended.
        let unready = || {
            let name = c["name"].as_str().unwrap_or("?");
            let last = &c["lastState"]["terminated"];
            Some(match (c["restartCount"].as_i64().unwrap_or(0), last["reason"].as_str()) {
                (0, _) | (_, None) => format!("container {name} runs but its readiness probe fails"),
                (restarts, Some(reason)) => format!(
                    "container {name} runs but its readiness probe fails; restarted {restarts} times, last ended {reason} (exit code {})",
                    last["exitCode"]
                ),
            })
        };
        stopped.or_else(|| (state.get("running").is_some() && c["ready"] == false).then(unready).flatten())
    });
    container.or_else(|| {
        let (scheduled, reason, message) = condition(pod, "PodScheduled")?;
        (!scheduled).then(|| format!("{reason} ({message})"))
    })
}

/// A query parameter's value, every byte but the unreserved ones percent-encoded.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Step 3: three consumers, or an autoscaler that owns the count since.
pub async fn scale(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("scale");
    let Some(deployment) = ctx.deployment("consumer").await? else {
        report.wrong("no Deployment consumer: step 1 first");
        return Ok(report);
    };
    let wanted = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let ready = deployment["status"]["readyReplicas"].as_i64().unwrap_or(0);
    if wanted >= 3 {
        report.right(format!(
            "the consumer asks for {wanted} replicas ({ready} ready)"
        ));
    } else if let Some(autoscaler) = autoscaler_of_consumer(ctx).await? {
        report.right(format!(
            "{autoscaler} owns the consumer's count now ({wanted}): scaling by hand is behind you"
        ));
    } else {
        report.wrong(format!(
            "the consumer's Deployment asks for {wanted}: 3 replicas expected"
        ));
        report.hint("kubectl scale deployment consumer --replicas=3");
    }
    Ok(report)
}

/// A label selector that selects everything: `{}` or `{matchLabels: {}}`, no expressions.
fn selects_everything(selector: &Value) -> bool {
    selector.as_object().is_some_and(|s| {
        s.get("matchLabels")
            .is_none_or(|m| m.as_object().is_some_and(|m| m.is_empty()))
            && s.get("matchExpressions")
                .is_none_or(|e| e.as_array().is_some_and(|e| e.is_empty()))
    })
}

/// Step 4: Prometheus scrapes every 5 s and selects every rule and ServiceMonitor.
pub async fn prometheus(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("prometheus");
    let interval = ctx.prometheus.scrape_interval().await?;
    report.right(format!("Prometheus answers at {}", ctx.prometheus.url()));
    report.expect(
        interval == "5s",
        "scrape interval 5s",
        format!("the global scrape interval is {interval}: 5s expected"),
    );
    if interval != "5s" {
        report
            .hint("hint 2 of docs/dojo/04-prometheus.md: prometheus.prometheusSpec.scrapeInterval");
    }
    if !ctx.cluster.serves("monitoring.coreos.com/v1").await? {
        report.note("the cluster serves no monitoring.coreos.com/v1 API (no prometheus-operator): the selectors were not checked");
        return Ok(report);
    }
    let prometheuses = ctx
        .cluster
        .list(&format!(
            "/apis/monitoring.coreos.com/v1/namespaces/{PROMETHEUS_NAMESPACE}/prometheuses"
        ))
        .await?;
    let Some(object) = prometheuses.first() else {
        report.wrong(format!("no Prometheus object in the namespace {PROMETHEUS_NAMESPACE}: release `prometheus` of kube-prometheus-stack goes there"));
        report.hint(
            "scripts/deploy-prometheus.sh shows the solution; docs/dojo/04-prometheus.md the hints",
        );
        return Ok(report);
    };
    let name = name_of(object);
    let spec = &object["spec"];
    for (field, what) in [
        ("ruleSelector", "PrometheusRules"),
        ("serviceMonitorSelector", "ServiceMonitors"),
        ("ruleNamespaceSelector", "namespaces for rules"),
        (
            "serviceMonitorNamespaceSelector",
            "namespaces for ServiceMonitors",
        ),
    ] {
        report.expect(
            selects_everything(&spec[field]),
            format!("Prometheus {name} selects all {what}"),
            format!(
                "Prometheus {name}: spec.{field} is {}: it must select all {what}",
                spec[field]
            ),
        );
    }
    report.hint("hint 3 of docs/dojo/04-prometheus.md: a selector with an empty matchLabels matches everything");
    Ok(report)
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

/// Step 5: the exporter is scraped and exports the key.
pub async fn exporter(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("exporter");
    let monitor = monitoring_object(ctx, "servicemonitors", |m| {
        name_of(m).contains("redis-exporter")
    })
    .await?;
    match monitor {
        Some(Some(name)) => report.right(format!("ServiceMonitor {name}")),
        Some(None) => {
            report.wrong(format!(
                "no ServiceMonitor for the exporter in {}",
                ctx.namespace
            ));
            report.hint("hint 1 of docs/dojo/05-redis-exporter.md: the chart creates one with serviceMonitor.enabled");
        }
        None => report.note("no monitoring.coreos.com/v1 API: the ServiceMonitor was not checked"),
    }
    let up = ctx
        .prometheus
        .query(&format!(
            r#"up{{service="{EXPORTER_SERVICE}",namespace="{}"}}"#,
            ctx.namespace
        ))
        .await?;
    match up
        .iter()
        .map(|s| s.value)
        .fold(None, |best: Option<f64>, v| {
            Some(best.map_or(v, |b| b.max(v)))
        }) {
        Some(v) if v >= 1.0 => report.right(format!(
            "Prometheus scrapes the Service {EXPORTER_SERVICE}: up"
        )),
        Some(_) => {
            report.wrong(format!("Prometheus has a target for the Service {EXPORTER_SERVICE} but it is down (up == 0)"));
            report.hint("is the exporter running, and does redisAddress point at redis-master? `kubectl logs deploy/prometheus-redis-exporter`");
        }
        None => {
            report.wrong(format!(
                "Prometheus has no target for the Service {EXPORTER_SERVICE} in {}",
                ctx.namespace
            ));
            report.hint("the ServiceMonitor selects the exporter's Service; Prometheus must select the ServiceMonitor (step 4)");
        }
    }
    let sizes = ctx
        .prometheus
        .query(&format!("redis_key_size{{{}}}", ctx.exporter_matchers()))
        .await?;
    report.expect(
        !sizes.is_empty(),
        format!("the exporter reports redis_key_size{{key=\"{QUEUE}\"}}"),
        format!("no redis_key_size{{key=\"{QUEUE}\"}}: the exporter does not watch the key (if the queue is empty, an exporter in cluster mode or older than 1.17 reports nothing: push an item and check again)"),
    );
    if sizes.is_empty() {
        report.hint("hint 3 of docs/dojo/05-redis-exporter.md: REDIS_EXPORTER_CHECK_SINGLE_KEYS");
    }
    Ok(report)
}

/// Step 6: the recorded series exists, exactly once.
pub async fn rule(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("rule");
    let recording = monitoring_object(ctx, "prometheusrules", |r| {
        r["spec"]["groups"].as_array().is_some_and(|groups| {
            groups.iter().any(|g| {
                g["rules"]
                    .as_array()
                    .is_some_and(|rules| rules.iter().any(|r| r["record"] == METRIC))
            })
        })
    })
    .await?;
    match recording {
        Some(Some(name)) => report.right(format!("PrometheusRule {name} records {METRIC}")),
        Some(None) => report.wrong(format!(
            "no PrometheusRule in {} records {METRIC}",
            ctx.namespace
        )),
        None => report
            .note("no monitoring.coreos.com/v1 API: the PrometheusRule object was not checked"),
    }
    let samples = ctx
        .prometheus
        .query(&format!("{METRIC}{{{}}}", ctx.exporter_matchers()))
        .await?;
    match samples.as_slice() {
        [sample] => report.right(format!(
            "Prometheus records {METRIC}{{key=\"{QUEUE}\"}} = {}",
            sample.value
        )),
        [] => {
            report.wrong(format!(
                "Prometheus has no {METRIC}{{{}}}",
                ctx.exporter_matchers()
            ));
            report.hint("hint 2 of docs/dojo/06-recording-rule.md: absent(), clamp_max() and `or`; then scripts/update-consumer.sh");
        }
        many => {
            let labels: Vec<String> = many
                .iter()
                .map(|s| Value::Object(s.labels.clone()).to_string())
                .collect();
            report.wrong(format!(
                "{} series of {METRIC} for the queue: {}",
                many.len(),
                labels.join(", ")
            ));
            report.hint("the 0 of absent() must carry the same labels as the real series, so that `or` keeps one");
        }
    }
    Ok(report)
}

/// Step 7: the custom metrics API serves the queue length.
pub async fn adapter(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("adapter");
    api_service_available(ctx, &mut report).await?;
    metric_served(ctx, &mut report).await?;
    report.hint(
        "hint 3 of docs/dojo/07-prometheus-adapter.md; the adapter relists series once a minute",
    );
    Ok(report)
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

/// Step 8: the HPA, as the dojo wants it, and what its controller says.
pub async fn hpa_step(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("hpa");
    let Some(hpa) = ctx.hpa().await? else {
        report.wrong(format!("no HPA consumer in {}", ctx.namespace));
        report.hint("add an autoscaling/v2 HorizontalPodAutoscaler to helm/charts/consumer/templates/, then scripts/update-consumer.sh");
        return Ok(report);
    };
    hpa::check_spec(&hpa, &Expected::default(), &[0, 1], &mut report);
    hpa::check_conditions(&hpa, true, &mut report);
    report.hint("docs/dojo/08-hpa.md, hint 3");
    Ok(report)
}

/// Step 9: at zero, because the HPA put it there.
pub async fn zero(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("zero");
    let Some(hpa) = ctx.hpa().await? else {
        report.wrong(format!(
            "no HPA consumer in {}: step 8 first",
            ctx.namespace
        ));
        return Ok(report);
    };
    let min = hpa["spec"]["minReplicas"].as_i64().unwrap_or(1);
    report.expect(
        min == 0,
        "minReplicas 0",
        format!("minReplicas is {min}: set it to 0 (autoscaling.minReplicas)"),
    );
    match ctx.metric().await? {
        Ok(value) if value > 0.0 => report.wrong(format!(
            "the queue holds {value} items: the HPA rightly keeps consumers; let them drain it"
        )),
        Ok(_) => report.right("the queue is empty"),
        Err(message) => report.note(format!(
            "the queue length is not served ({message}): step 7"
        )),
    }
    let desired = hpa["status"]["desiredReplicas"].as_i64().unwrap_or(-1);
    let replicas = ctx
        .deployment("consumer")
        .await?
        .and_then(|d| d["spec"]["replicas"].as_i64())
        .unwrap_or(-1);
    report.expect(
        desired == 0 && replicas == 0,
        "the HPA and the Deployment are at 0 replicas",
        format!("the HPA wants {desired} and the Deployment asks for {replicas}: both should be 0 (the scale-down waits for the 20 s stabilization window)"),
    );
    match hpa::scaled_to_zero(&hpa) {
        Some(true) => report.right("ScaledToZero=True: the HPA took it there, so it will scale it up again"),
        Some(false) => report.wrong("ScaledToZero=False: the HPA did not take the Deployment to 0 itself, so it will not scale it up from 0"),
        None => report.wrong("no ScaledToZero condition: is HPAScaleToZero on (it is by default from 1.37)?"),
    }
    report.hint("docs/dojo/09-scale-to-zero.md, hint 3");
    Ok(report)
}

/// Step 10: the learner's line against the upstream one at the cluster's version.
pub async fn bug_step(ctx: &Context, answer: &Answer) -> Result<Report> {
    let mut report = Report::new("bug");
    let version = ctx.cluster.version().await.ok();
    let (site, exact) = bug::site_for(version.as_deref());
    if !exact {
        report.note(format!(
            "the cluster runs {}: line numbers are known for {}; compared with that release",
            version.as_deref().unwrap_or("an unknown version"),
            site.version
        ));
    }
    if let Ok(Some(hpa)) = ctx.hpa().await {
        let average = &hpa["status"]["currentMetrics"][0]["object"]["current"]["averageValue"];
        if average
            .as_str()
            .is_some_and(|v| v.starts_with("-9223372036854775808"))
        {
            report.note(format!("your HPA shows it now: averageValue {average}"));
        }
    }
    bug::judge(answer, &site, &mut report);
    Ok(report)
}

/// Step 11: `ebb metrics-api` serves the metric instead of prometheus-adapter.
pub async fn metrics_api(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("metrics-api");
    if let Some(service) = api_service_available(ctx, &mut report).await? {
        report.expect(
            service.ends_with("metrics-api"),
            format!("custom.metrics.k8s.io is served by {service}"),
            format!("custom.metrics.k8s.io is served by {service}, not by ebb metrics-api"),
        );
    }
    metric_served(ctx, &mut report).await?;
    match ctx.hpa().await? {
        Some(hpa) => hpa::check_spec(&hpa, &Expected::default(), &[0, 1], &mut report),
        None => report.wrong("no HPA consumer: keep the HPA of step 8, unchanged"),
    }
    report.hint(
        "scripts/deploy-metrics-api.sh replaces prometheus-adapter (docs/dojo/11-metrics-api.md)",
    );
    Ok(report)
}

/// Step 12: a QueueScaler drives the consumer, and nothing competes with it.
pub async fn operator(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("operator");
    let crd = ctx
        .cluster
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/queuescalers.ebb.dev")
        .await?;
    if crd.is_none() {
        report.wrong(
            "no CRD queuescalers.ebb.dev: install the operator (scripts/deploy-operator.sh)",
        );
        report.hint("docs/dojo/12-operator.md");
        return Ok(report);
    }
    report.right("CRD queuescalers.ebb.dev");
    let Some(scaler) = scaler_of_consumer(ctx, QUEUE_SCALERS).await? else {
        report.wrong(format!(
            "no QueueScaler targets the Deployment consumer in {}",
            ctx.namespace
        ));
        report.hint("scripts/update-consumer.sh --set autoscaler=queueScaler");
        return Ok(report);
    };
    let name = name_of(&scaler);
    match condition(&scaler, "Ready") {
        Some((true, _, _)) => report.right(format!("QueueScaler {name} is Ready")),
        Some((false, reason, message)) => report.wrong(format!("QueueScaler {name} is not Ready: {reason}: {message}")),
        None => report.wrong(format!("QueueScaler {name} has no Ready condition: is the operator running? (kubectl get pods -n ebb-system)")),
    }
    if let Some((true, reason, message)) = condition(&scaler, "Conflict") {
        report.wrong(format!("QueueScaler {name}: Conflict, {reason}: {message}"));
        report.hint("hint 2 of docs/dojo/12-operator.md: remove the HPA");
    }
    if let Some(hpa) = scaler_of_consumer(ctx, HPAS).await? {
        report.wrong(format!(
            "the HPA {} also targets the Deployment consumer: two autoscalers fight over one count",
            name_of(&hpa)
        ));
        report.hint("hint 2 of docs/dojo/12-operator.md: `autoscaler: queueScaler` renders no HPA");
    } else {
        report.right("no HPA competes for the Deployment consumer");
    }
    let status = &scaler["status"];
    if status["replicas"] == 0 {
        report.expect(
            status.get("averagePerReplica").is_none_or(Value::is_null),
            "at 0 replicas the status has no per-replica average (no −2⁶³)",
            format!(
                "at 0 replicas the status shows averagePerReplica {}",
                status["averagePerReplica"]
            ),
        );
    }
    report.hint("docs/dojo/12-operator.md, hint 1");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{percent_encode, pod_problem, selects_everything};

    #[test]
    fn only_empty_selectors_select_everything() {
        assert!(selects_everything(&json!({})));
        assert!(selects_everything(&json!({"matchLabels": {}})));
        assert!(
            !selects_everything(&json!(null)),
            "nil selects nothing in prometheus-operator"
        );
        assert!(!selects_everything(
            &json!({"matchLabels": {"release": "prometheus"}})
        ));
        assert!(!selects_everything(
            &json!({"matchExpressions": [{"key": "a", "operator": "Exists"}]})
        ));
    }

    #[test]
    fn a_pod_problem_is_the_kubelet_or_the_scheduler_reason() {
        let waiting = json!({"status": {"containerStatuses": [{"state": {"waiting": {
            "reason": "ErrImageNeverPull",
            "message": "Container image \"redis:8.10.2-alpine\" is not present with pull policy of Never"
        }}}]}});
        assert_eq!(
            pod_problem(&waiting).as_deref(),
            Some(
                "ErrImageNeverPull (Container image \"redis:8.10.2-alpine\" is not present with pull policy of Never)"
            )
        );
        let crashed = json!({"status": {"containerStatuses": [{"state": {"terminated": {"reason": "Error"}}}]}});
        assert_eq!(pod_problem(&crashed).as_deref(), Some("Error"));
        let unscheduled = json!({"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/0 nodes are available"
        }]}});
        assert_eq!(
            pod_problem(&unscheduled).as_deref(),
            Some("Unschedulable (0/0 nodes are available)")
        );
        let running =
            json!({"status": {"containerStatuses": [{"state": {"running": {}}, "ready": true}]}});
        assert_eq!(pod_problem(&running), None);
        let unready = json!({"status": {"containerStatuses": [{
            "name": "producer", "state": {"running": {}}, "ready": false, "restartCount": 0
        }]}});
        assert_eq!(
            pod_problem(&unready).as_deref(),
            Some("container producer runs but its readiness probe fails")
        );
        let restarted = json!({"status": {"containerStatuses": [{
            "name": "producer", "state": {"running": {}}, "ready": false, "restartCount": 3,
            "lastState": {"terminated": {"reason": "Error", "exitCode": 143}}
        }]}});
        assert_eq!(
            pod_problem(&restarted).as_deref(),
            Some(
                "container producer runs but its readiness probe fails; restarted 3 times, last ended Error (exit code 143)"
            )
        );
    }

    #[test]
    fn label_selectors_are_percent_encoded() {
        assert_eq!(
            percent_encode("app.kubernetes.io/name=redis,app.kubernetes.io/instance=redis"),
            "app.kubernetes.io%2Fname%3Dredis%2Capp.kubernetes.io%2Finstance%3Dredis"
        );
    }
}
