//! `ebb metrics-api` end to end on one machine: the HTTPS server in-process on 127.0.0.1:0,
//! real client certificates made here, a real redis-server, a real Prometheus (PromQL
//! sources), and a real kube-apiserver answering the SubjectAccessReviews and holding the
//! extension-apiserver-authentication ConfigMap. One control plane per test binary: every
//! step runs in this one test, in order.

mod common;

use std::time::{Duration, Instant};

use common::{Client, HPA_HEADERS, RunningServer, TestCa, insecure_client, without_timestamps};
use ebb_metrics_api::Config;
use ebb_testkit::control_plane;
use ebb_testkit::poll;
use ebb_testkit::prometheus::PrometheusServer;
use ebb_testkit::redis::RedisServer;
use serde_json::json;

const CUSTOM_V1BETA1: &str = "/apis/custom.metrics.k8s.io/v1beta1";
const CUSTOM_V1BETA2: &str = "/apis/custom.metrics.k8s.io/v1beta2";
const EXTERNAL: &str = "/apis/external.metrics.k8s.io/v1beta1";
const SEED: &str = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue";

/// `unanswered`: an address that accepts connections and never answers, for a PromQL source
/// whose every read takes its whole timeout (5 s).
fn config(prometheus: Option<&str>, unanswered: &str) -> String {
    let mut text = String::from(
        r#"
interval: 200ms
maxAge: 2s
firstReadWait: 2s
learnedKeys: {max: 2, expireAfter: 3s}
metrics:
  - name: redis_items_in_queue
    source: {redisList: {}}
    label: key
    keys: [padok, "jobs-*"]
    objects:
      # `labels` is accepted (configurations written before objects were listed) and ignored.
      - {resource: services, namespace: default, name: prometheus-redis-exporter, labels: {app: exporter}}
      - {resource: services, namespace: default, name: second, labels: {app: exporter}}
      - {resource: services, namespace: default, name: third, labels: {app: other}}
    external: {namespaces: [default]}
  - name: work_waiting
    source: {queue: {count: waiting}}
    label: queue
    keys: [work]
    objects: [{resource: namespaces, name: default}]
  - name: events_lag
    source: {stream: {group: g, count: lag}}
    label: stream
    keys: [events]
    objects: [{resource: deployments.apps, namespace: default, name: worker}]
"#,
    );
    text.push_str(&format!(
        r#"  - name: promql_unanswered
    source: {{prometheus: {{server: "http://{unanswered}", query: "vector(1)", emptyResult: zero}}}}
    objects: [{{resource: nodes, name: node-b}}]
"#
    ));
    if let Some(url) = prometheus {
        text.push_str(&format!(
            r#"  - name: promql_value
    source: {{prometheus: {{server: "{url}", query: "vector({{{{key}}}})", emptyResult: zero}}}}
    label: n
    keys: ["7", "1234.5"]
    objects: [{{resource: nodes, name: node-a}}]
  - name: promql_missing_is_zero
    source: {{prometheus: {{server: "{url}", query: "up{{job=\"{{{{name}}}}\"}}", emptyResult: zero}}}}
    objects: [{{resource: nodes, name: node-a}}]
  - name: promql_missing_is_404
    source: {{prometheus: {{server: "{url}", query: "up{{job=\"{{{{name}}}}\"}}", emptyResult: notFound}}}}
    objects: [{{resource: nodes, name: node-a}}]
"#
        ));
    }
    text
}

/// Asks `path` until `check` accepts the answer or `timeout` passes (the test kit's
/// [`poll::until`]); the last answer either way, for the caller's assertion to show.
async fn eventually(
    client: &Client,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
    check: impl Fn(&common::Answer) -> bool,
) -> common::Answer {
    let last = std::cell::RefCell::new(None);
    let (seen, check) = (&last, &check);
    let accepted = poll::until(
        &format!("{path} to answer as expected"),
        timeout,
        || async move {
            let answer = client.get(path, headers).await;
            if check(&answer) {
                return Some(answer);
            }
            seen.replace(Some(answer));
            None
        },
    )
    .await;
    accepted.unwrap_or_else(|_| last.take().expect("at least one answer"))
}

/// SubjectAccessReviews the kube-apiserver has answered, from its own metrics.
async fn subject_access_reviews(cp: &control_plane::ControlPlane) -> u64 {
    let text = cp.kubectl(&["get", "--raw", "/metrics"]).await.unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("apiserver_request_total{")
                && line.contains(r#"resource="subjectaccessreviews""#)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn status(code: u16, reason: &str, message: &str) -> serde_json::Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_api_serves_authenticates_and_authorizes_like_an_aggregated_server() {
    let Some(cp) = control_plane::start_or_skip(
        "metrics_api_serves_authenticates_and_authorizes_like_an_aggregated_server",
        control_plane::Options::default(),
    )
    .await
    else {
        return;
    };
    let mut redis = RedisServer::start();
    let prometheus = PrometheusServer::start_or_skip("metrics_api PromQL sources");
    // Connections queue in its backlog and are never answered: a Prometheus that hangs.
    let unanswered = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config.yaml");
    std::fs::write(
        &config_file,
        config(
            prometheus.as_ref().map(|p| p.url()).as_deref(),
            &unanswered.local_addr().unwrap().to_string(),
        ),
    )
    .unwrap();

    // Certificates: the serving one, the front proxy's (from a requestheader CA given as a
    // file), one from a foreign CA, one from the right CA with a name that is not allowed.
    let serving_ca = TestCa::new(dir.path(), "serving-ca");
    let (serving_cert, serving_key) = serving_ca.issue("metrics-api", &["localhost", "127.0.0.1"]);
    let proxy_ca = TestCa::new(dir.path(), "proxy-ca");
    let (proxy_cert, proxy_key) = proxy_ca.issue("front-proxy-client", &[]);
    let (wrong_name_cert, wrong_name_key) = proxy_ca.issue("someone-else", &[]);
    let (foreign_cert, foreign_key) =
        TestCa::new(dir.path(), "foreign-ca").issue("front-proxy-client", &[]);

    let kubeconfig = cp.kubeconfig.display().to_string();
    let server = RunningServer::start(
        &[
            "--config",
            config_file.to_str().unwrap(),
            "--tls-cert-file",
            serving_cert.to_str().unwrap(),
            "--tls-private-key-file",
            serving_key.to_str().unwrap(),
            "--requestheader-client-ca-file",
            proxy_ca.cert_file().to_str().unwrap(),
            "--requestheader-allowed-names",
            "front-proxy-client",
            "--authorization-kubeconfig",
            &kubeconfig,
            "--redis-server",
            &redis.address(),
        ],
        Config::load(&config_file).unwrap(),
    )
    .await;
    let ca = serving_ca.cert_file();
    let anonymous = Client::new(server.secure, &ca, None);
    let proxy = Client::new(server.secure, &ca, Some((&proxy_cert, &proxy_key)));
    let foreign = Client::new(server.secure, &ca, Some((&foreign_cert, &foreign_key)));
    let wrong_name = Client::new(
        server.secure,
        &ca,
        Some((&wrong_name_cert, &wrong_name_key)),
    );

    // Probes need no certificate.
    for path in ["/healthz", "/livez", "/readyz"] {
        let answer = anonymous.get(path, &[]).await;
        assert_eq!((answer.code, answer.body.as_str()), (200, "ok"), "{path}");
    }

    // 401: no certificate, a foreign CA's, a name not allowed, no user header.
    let answer = anonymous.get(CUSTOM_V1BETA1, &HPA_HEADERS).await;
    assert_eq!(answer.code, 401);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(
        answer.json(),
        status(401, "Unauthorized", "Unauthorized: no client certificate")
    );
    let answer = foreign.get(SEED, &HPA_HEADERS).await;
    assert_eq!(answer.code, 401, "{}", answer.body);
    assert!(
        answer.body.contains("not signed by the requestheader CA"),
        "{}",
        answer.body
    );
    let answer = wrong_name.get(SEED, &HPA_HEADERS).await;
    assert_eq!(answer.code, 401, "{}", answer.body);
    assert!(
        answer
            .body
            .contains(r#"common name \"someone-else\" is not an allowed requestheader name"#),
        "{}",
        answer.body
    );
    let answer = proxy.get(SEED, &[]).await;
    assert_eq!(
        answer.json(),
        status(
            401,
            "Unauthorized",
            "Unauthorized: no user in the X-Remote-User header"
        )
    );

    // 403: the kube-apiserver's SubjectAccessReview denies a user without RBAC rights.
    let nobody = [
        ("X-Remote-User", "nobody"),
        ("X-Remote-Group", "system:authenticated"),
    ];
    let answer = proxy.get(SEED, &nobody).await;
    assert_eq!(
        answer.json(),
        status(
            403,
            "Forbidden",
            r#"services "prometheus-redis-exporter" is forbidden: User "nobody" cannot get resource "services/redis_items_in_queue" in API group "custom.metrics.k8s.io" in the namespace "default""#
        ),
    );

    // HTTP/2, as the kube-apiserver's proxy negotiates it.
    let answer = proxy.get_h2(SEED, &HPA_HEADERS).await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.json()["kind"], "MetricValueList");
    assert_eq!(anonymous.get_h2("/readyz", &[]).await.body, "ok");

    // Reviews are cached: 20 more identical requests within 10 s make no new review.
    let reviews_before = subject_access_reviews(&cp).await;
    assert!(reviews_before > 0, "the reviews so far are counted");
    for _ in 0..20 {
        assert_eq!(proxy.get(SEED, &HPA_HEADERS).await.code, 200);
    }
    assert_eq!(subject_access_reviews(&cp).await, reviews_before);

    // Discovery, in the upstream shapes, for the HPA's user.
    let hpa = &HPA_HEADERS[..];
    let answer = proxy.get(CUSTOM_V1BETA1, hpa).await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    let mut expected_resources = vec![
        json!({"name": "deployments.apps/events_lag", "singularName": "", "namespaced": true, "kind": "MetricValueList", "verbs": ["get"]}),
        json!({"name": "namespaces/work_waiting", "singularName": "", "namespaced": false, "kind": "MetricValueList", "verbs": ["get"]}),
    ];
    let mut nodes = vec!["promql_unanswered"];
    if prometheus.is_some() {
        nodes.extend([
            "promql_missing_is_404",
            "promql_missing_is_zero",
            "promql_value",
        ]);
    }
    nodes.sort();
    for name in nodes {
        expected_resources.push(json!({"name": format!("nodes/{name}"), "singularName": "", "namespaced": false, "kind": "MetricValueList", "verbs": ["get"]}));
    }
    expected_resources.push(json!({"name": "services/redis_items_in_queue", "singularName": "", "namespaced": true, "kind": "MetricValueList", "verbs": ["get"]}));
    assert_eq!(
        answer.json(),
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "custom.metrics.k8s.io/v1beta1", "resources": expected_resources})
    );
    assert_eq!(
        proxy.get(CUSTOM_V1BETA2, hpa).await.json()["groupVersion"],
        "custom.metrics.k8s.io/v1beta2"
    );
    assert_eq!(
        proxy.get(EXTERNAL, hpa).await.json(),
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "external.metrics.k8s.io/v1beta1", "resources": [
            {"name": "redis_items_in_queue", "singularName": "", "namespaced": true, "kind": "ExternalMetricValueList", "verbs": ["get"]}
        ]})
    );

    // The seed's command: no selector, one item per configured exact key.
    redis.cli(&["RPUSH", "padok", "a", "b", "c"]);
    let answer = eventually(&proxy, SEED, hpa, Duration::from_secs(3), |a| {
        a.body.contains(r#""value":"3""#)
    })
    .await;
    assert_eq!(
        without_timestamps(answer.json(), Duration::from_secs(3)),
        json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta1", "metadata": {}, "items": [{
            "describedObject": {"kind": "Service", "namespace": "default", "name": "prometheus-redis-exporter", "apiVersion": "v1"},
            "metricName": "redis_items_in_queue", "timestamp": "<ts>", "value": "3",
            "selector": {"matchLabels": {"key": "padok"}}}]})
    );
    // The HPA's request, v1beta2 shape.
    let answer = proxy
        .get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue?metricLabelSelector=key%3Dpadok", hpa)
        .await;
    assert_eq!(
        without_timestamps(answer.json(), Duration::from_secs(3)),
        json!({"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta2", "metadata": {}, "items": [{
            "describedObject": {"kind": "Service", "namespace": "default", "name": "prometheus-redis-exporter", "apiVersion": "v1"},
            "metric": {"name": "redis_items_in_queue", "selector": {"matchLabels": {"key": "padok"}}},
            "timestamp": "<ts>", "value": "3"}]})
    );
    // A key a pattern allows, missing in Redis: learned on first request, 0.
    let answer = proxy
        .get(&format!("{SEED}?metricLabelSelector=key%3Djobs-a"), hpa)
        .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.json()["items"][0]["value"], "0");
    assert_eq!(
        answer.json()["items"][0]["selector"],
        json!({"matchLabels": {"key": "jobs-a"}})
    );
    // External.
    let answer = proxy
        .get(
            &format!(
                "{EXTERNAL}/namespaces/default/redis_items_in_queue?labelSelector=key%3Dpadok"
            ),
            hpa,
        )
        .await;
    assert_eq!(
        without_timestamps(answer.json(), Duration::from_secs(3)),
        json!({"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1", "metadata": {}, "items": [{
            "metricName": "redis_items_in_queue", "metricLabels": {"key": "padok"}, "timestamp": "<ts>", "value": "3"}]})
    );
    // The leased queue's waiting count (cluster-scoped namespace object) and a stream's lag.
    redis.cli(&["RPUSH", "work", "x", "y"]);
    let answer = eventually(
        &proxy,
        &format!("{CUSTOM_V1BETA1}/namespaces/default/metrics/work_waiting"),
        hpa,
        Duration::from_secs(3),
        |a| a.body.contains(r#""value":"2""#),
    )
    .await;
    assert_eq!(
        answer.json()["items"][0]["describedObject"],
        json!({"kind": "Namespace", "name": "default", "apiVersion": "v1"}),
        "{}",
        answer.body
    );
    redis.cli(&["XGROUP", "CREATE", "events", "g", "$", "MKSTREAM"]);
    for _ in 0..4 {
        redis.cli(&["XADD", "events", "*", "f", "v"]);
    }
    let answer = eventually(
        &proxy,
        &format!("{CUSTOM_V1BETA1}/namespaces/default/deployments.apps/worker/events_lag"),
        hpa,
        Duration::from_secs(3),
        |a| a.body.contains(r#""value":"4""#),
    )
    .await;
    assert_eq!(
        answer.json()["items"][0]["describedObject"],
        json!({"kind": "Deployment", "namespace": "default", "name": "worker", "apiVersion": "apps/v1"}),
        "{}",
        answer.body
    );

    // PromQL: a template filled per key and object; an empty result is 0 or 404, as configured.
    if prometheus.is_some() {
        let answer = proxy
            .get(&format!("{CUSTOM_V1BETA1}/nodes/node-a/promql_value"), hpa)
            .await;
        assert_eq!(answer.json()["items"][0]["value"], "7", "{}", answer.body);
        // A fraction is served as it is, in its canonical quantity form (not rounded up).
        assert_eq!(
            answer.json()["items"][1]["value"],
            "1234500m",
            "{}",
            answer.body
        );
        assert_eq!(
            answer.json()["items"][0]["describedObject"],
            json!({"kind": "Node", "name": "node-a", "apiVersion": "v1"})
        );
        let answer = proxy
            .get(
                &format!("{CUSTOM_V1BETA1}/nodes/node-a/promql_missing_is_zero"),
                hpa,
            )
            .await;
        assert_eq!(answer.json()["items"][0]["value"], "0", "{}", answer.body);
        assert_eq!(
            answer.json()["items"][0]["selector"],
            serde_json::Value::Null
        );
        let answer = proxy
            .get(
                &format!("{CUSTOM_V1BETA1}/nodes/node-a/promql_missing_is_404"),
                hpa,
            )
            .await;
        assert_eq!(
            answer.json(),
            status(
                404,
                "NotFound",
                "the server could not find the metric promql_missing_is_404 for nodes node-a: the query matched nothing"
            )
        );
    }

    // A source that never answers is refused (503) and holds up no other: it has been hanging
    // since the start, for longer than maxAge, while every Redis value above stayed fresh.
    let answer = proxy
        .get(
            &format!("{CUSTOM_V1BETA1}/nodes/node-b/promql_unanswered"),
            hpa,
        )
        .await;
    assert_eq!(answer.code, 503, "{}", answer.body);
    assert!(
        answer.body.contains("prometheus http://127.0.0.1:"),
        "{}",
        answer.body
    );
    assert_eq!(proxy.get(SEED, hpa).await.code, 200);

    // 404s and 400s, as Status objects.
    for (path, code, reason, message) in [
        (
            format!(
                "{CUSTOM_V1BETA1}/namespaces/default/services/prometheus-redis-exporter/no_such_metric"
            ),
            404,
            "NotFound",
            "the server could not find the metric no_such_metric for services",
        ),
        (
            format!("{CUSTOM_V1BETA1}/namespaces/default/services/unknown/redis_items_in_queue"),
            404,
            "NotFound",
            "the server could not find the metric redis_items_in_queue for services default/unknown",
        ),
        (
            format!(
                "{CUSTOM_V1BETA1}/namespaces/default/pods/prometheus-redis-exporter/redis_items_in_queue"
            ),
            404,
            "NotFound",
            "the server could not find the metric redis_items_in_queue for pods",
        ),
        (
            format!("{SEED}?metricLabelSelector=key%3Dsecret"),
            404,
            "NotFound",
            "the metric redis_items_in_queue does not serve key=secret (not among its configured keys)",
        ),
        (
            format!("{SEED}?metricLabelSelector=key%3D%3D%3D"),
            400,
            "BadRequest",
            r#"invalid metricLabelSelector: "key===": "=" is not a label value"#,
        ),
        (
            format!(
                "{CUSTOM_V1BETA1}/namespaces/default/services/*/redis_items_in_queue?labelSelector=app+in+(a"
            ),
            400,
            "BadRequest",
            r#"invalid labelSelector: "app in (a": a `(` is not closed"#,
        ),
        (
            format!("{CUSTOM_V1BETA1}/namespaces/default/services/%zz/redis_items_in_queue"),
            400,
            "BadRequest",
            r#"invalid URL path "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/%zz/redis_items_in_queue": invalid escape "%zz""#,
        ),
        (
            format!("{CUSTOM_V1BETA1}/namespaces/default/services/%FF/redis_items_in_queue"),
            400,
            "BadRequest",
            r#"invalid URL path "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/%FF/redis_items_in_queue": not UTF-8 once decoded: invalid utf-8 sequence of 1 bytes from index 0"#,
        ),
        (
            format!("{CUSTOM_V1BETA1}/namespaces/default/services/%2"),
            400,
            "BadRequest",
            r#"invalid URL path "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/%2": invalid escape "%2""#,
        ),
        (
            format!("{EXTERNAL}/namespaces/kube-system/redis_items_in_queue"),
            404,
            "NotFound",
            "the server could not find the external metric redis_items_in_queue in namespace kube-system",
        ),
    ] {
        let answer = proxy.get(&path, hpa).await;
        assert_eq!(answer.json(), status(code, reason, message), "{path}");
    }

    // Learned keys are capped (learnedKeys.max 2: jobs-a and jobs-b, then 503) and forgotten
    // once nobody asks for them (expireAfter 3 s), which makes room again.
    for key in ["jobs-a", "jobs-b"] {
        let answer = proxy
            .get(&format!("{SEED}?metricLabelSelector=key%3D{key}"), hpa)
            .await;
        assert_eq!(answer.code, 200, "{key}: {}", answer.body);
    }
    let full = Instant::now();
    let answer = proxy
        .get(&format!("{SEED}?metricLabelSelector=key%3Djobs-c"), hpa)
        .await;
    assert_eq!(answer.code, 503, "{}", answer.body);
    assert!(answer.body.contains("learnedKeys.max"), "{}", answer.body);
    let answer = eventually(
        &proxy,
        &format!("{SEED}?metricLabelSelector=key%3Djobs-c"),
        hpa,
        Duration::from_secs(10),
        |a| a.code == 200,
    )
    .await;
    assert_eq!(
        answer.code, 200,
        "room again once jobs-a and jobs-b expired: {}",
        answer.body
    );
    assert!(
        full.elapsed() >= Duration::from_millis(2500),
        "admitted before the others expired: {:?}",
        full.elapsed()
    );

    // The kube-apiserver fetches discovery and OpenAPI for itself as `system:aggregator` with
    // no X-Remote-Group: allowed only because every authenticated user is in
    // system:authenticated, to which the cluster's RBAC grants these paths.
    let aggregator = [("X-Remote-User", "system:aggregator")];
    for path in [
        "/apis",
        "/apis/custom.metrics.k8s.io/v1beta1",
        "/openapi/v2",
    ] {
        let answer = proxy.get(path, &aggregator).await;
        assert_eq!(
            answer.code, 200,
            "{path} as system:aggregator: {}",
            answer.body
        );
    }
    // Escaped segments name the same thing (client-go escapes what it sends).
    let escaped = proxy
        .get(
            &SEED.replace("redis_items_in_queue", "redis%5Fitems%5Fin%5Fqueue"),
            hpa,
        )
        .await;
    assert_eq!(escaped.code, 200, "{}", escaped.body);

    // OpenAPI documents for the aggregator.
    let v2 = proxy.get("/openapi/v2", hpa).await;
    assert_eq!(v2.json()["swagger"], "2.0", "{}", v2.body);
    assert!(
        v2.json()["definitions"]["io.k8s.metrics.pkg.apis.custom_metrics.v1beta1.MetricValueList"]
            .is_object()
    );
    let v3 = proxy.get("/openapi/v3", hpa).await.json();
    let document = v3["paths"]["apis/custom.metrics.k8s.io/v1beta2"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(proxy.get(&document, hpa).await.json()["openapi"], "3.0.0");

    // Its own metrics, on the plain port.
    let text = server.metrics_text().await;
    for line in [
        r#"ebb_metrics_api_requests_total{route="custom_value",code="200"}"#,
        r#"ebb_metrics_api_requests_total{route="custom_value",code="401"}"#,
        r#"ebb_metrics_api_requests_total{route="custom_value",code="403"}"#,
        r#"ebb_metrics_api_requests_total{route="probe",code="200"} 4"#,
        r#"ebb_metrics_api_request_duration_seconds_bucket{le="0.001",route="custom_value"}"#,
        "ebb_metrics_api_cache_age_seconds ",
        "ebb_metrics_api_cache_entries ",
    ] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }

    // A frozen Redis (SIGSTOP): a new key's first request waits firstReadWait (2 s), no more,
    // then says 503; known keys keep their last value until it is older than maxAge.
    redis.pause();
    let started = Instant::now();
    let answer = proxy
        .get(&format!("{SEED}?metricLabelSelector=key%3Djobs-d"), hpa)
        .await;
    let waited = started.elapsed();
    redis.unpause();
    assert_eq!(
        answer.json(),
        status(
            503,
            "ServiceUnavailable",
            &format!(
                "redis {} list jobs-d: not read yet (waited 2000ms, and the read under way has not answered yet)",
                redis.address()
            )
        )
    );
    assert!(
        (Duration::from_secs(2)..Duration::from_millis(2500)).contains(&waited),
        "waited {waited:?}"
    );

    // Redis gone: the values age past maxAge (2 s) and the API answers 503, never a stale value.
    redis.stop();
    let answer = eventually(&proxy, SEED, hpa, Duration::from_secs(10), |a| {
        a.code == 503
    })
    .await;
    assert_eq!(answer.code, 503, "{}", answer.body);
    assert_eq!(answer.json()["reason"], "ServiceUnavailable");
    assert!(
        answer.body.contains("padok"),
        "the reason names the read that failed: {}",
        answer.body
    );
    assert!(
        server
            .metrics_text()
            .await
            .contains(r#"ebb_metrics_api_source_errors_total{source="redisList"}"#)
    );
    redis.resume();
    redis.cli(&["DEL", "padok"]);
    redis.cli(&["RPUSH", "padok", "1", "2", "3", "4", "5"]);
    let answer = eventually(&proxy, SEED, hpa, Duration::from_secs(10), |a| {
        a.body.contains(r#""value":"5""#)
    })
    .await;
    assert_eq!(answer.code, 200, "back once Redis is: {}", answer.body);

    // Rotation: new serving pair and a new requestheader CA written over the files are used
    // within seconds (re-read every 2 s), without a restart.
    let mut kept_alive = proxy.connect().await;
    assert_eq!(kept_alive.get(SEED, hpa).await, 200);
    let serving_ca_2 = TestCa::new(dir.path(), "serving-ca-2");
    let (new_cert, new_key) = serving_ca_2.issue("metrics-api", &["localhost", "127.0.0.1"]);
    std::fs::copy(&new_key, &serving_key).unwrap();
    std::fs::copy(&new_cert, &serving_cert).unwrap();
    let proxy_ca_2 = TestCa::new(dir.path(), "proxy-ca-2");
    let (proxy_cert_2, proxy_key_2) = proxy_ca_2.issue("front-proxy-client", &[]);
    std::fs::copy(proxy_ca_2.cert_file(), proxy_ca.cert_file()).unwrap();
    let rotated = Client::new(
        server.secure,
        &serving_ca_2.cert_file(),
        Some((&proxy_cert_2, &proxy_key_2)),
    );
    let started = Instant::now();
    let answer = loop {
        if let Some(answer) = rotated.try_get(SEED, hpa).await
            && (answer.code == 200 || started.elapsed() > Duration::from_secs(10))
        {
            break answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new serving certificate is not served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        answer.code, 200,
        "the new CA's client is accepted: {}",
        answer.body
    );
    let answer = Client::new(
        server.secure,
        &serving_ca_2.cert_file(),
        Some((&proxy_cert, &proxy_key)),
    )
    .get(SEED, hpa)
    .await;
    assert_eq!(
        answer.code, 401,
        "the old CA's client is not: {}",
        answer.body
    );
    assert_eq!(
        kept_alive.get(SEED, hpa).await,
        401,
        "nor on a connection it opened before the rotation"
    );
    server.stop().await.unwrap();

    // The default: the requestheader CA and names from the extension-apiserver-authentication
    // ConfigMap (the control plane's real front-proxy CA), a self-signed serving certificate.
    let server = RunningServer::start(
        &[
            "--kubeconfig",
            &kubeconfig,
            "--redis-server",
            &redis.address(),
        ],
        Config::builtin(),
    )
    .await;
    let front_proxy = (
        cp.pki.join("front-proxy-client.crt"),
        cp.pki.join("front-proxy-client.key"),
    );
    let client = insecure_client(server.secure, Some((&front_proxy.0, &front_proxy.1)));
    let answer = eventually(&client, SEED, hpa, Duration::from_secs(10), |a| {
        a.code == 200
    })
    .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.json()["items"][0]["value"], "5");
    let answer = insecure_client(server.secure, Some((&proxy_cert, &proxy_key)))
        .get(SEED, hpa)
        .await;
    assert_eq!(
        answer.code, 401,
        "the test CA is not the cluster's: {}",
        answer.body
    );
    server.stop().await.unwrap();
}
