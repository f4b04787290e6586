//! The operator chart's Grafana dashboard against real data: `ebb operator run` drives a
//! QueueScaler on a real kube-apiserver and Redis, a real Prometheus scrapes its `/metrics`
//! every second, and every panel query and variable of the committed dashboard, its Grafana
//! variables substituted, must return at least one series with a value. A panel that only
//! parses proves nothing: a renamed metric or label leaves it empty.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use ebb_testkit::control_plane::{ControlPlane, Options, start_or_skip};
use ebb_testkit::poll;
use ebb_testkit::prometheus::PrometheusServer;
use ebb_testkit::redis::RedisServer;
use serde_json::Value;

use common::operator::{install_scaled_deployment, start_operator};

const TEST: &str = "e2e_operator_dashboard_queries_return_data";
const NAMESPACE: &str = "default";
const NAME: &str = "consumer";
/// How long a query may stay empty: a `rate()` or `increase()` needs two scrapes in its
/// window, and a failure counter a failure scraped.
const QUERY_DATA_WITHIN: Duration = Duration::from_secs(60);
/// What Grafana makes of `$__rate_interval` at its default 15 s scrape interval.
const RATE_INTERVAL: &str = "1m";

/// An ebb queue: it knows what is in flight, so the in-flight panel has data (a plain list
/// cannot tell, and has no in-flight series rather than a 0).
fn queue_scaler(redis: &str) -> String {
    format!(
        r#"
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: {NAME}, namespace: {NAMESPACE}}}
spec:
  scaleTargetRef: {{name: {NAME}}}
  source: {{ebbQueue: {{redis: {{address: "{redis}"}}, queue: padok}}}}
"#
    )
}

fn dashboard() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../helm/charts/operator/dashboards/ebb-operator.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

/// Every `(panel title, query)` of the dashboard, rows' nested panels included.
fn panel_queries(panels: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in panels.as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expression) = target["expr"].as_str() {
                queries.push((title.to_owned(), expression.to_owned()));
            }
        }
        queries.extend(panel_queries(&panel["panels"]));
    }
    queries
}

/// `query` as Grafana sends it, its variables set to `values` (`(name, value)`); panics
/// naming the panel if a variable is left that the test does not know.
fn substitute(panel: &str, query: &str, values: &[(&str, &str)]) -> String {
    let mut substituted = query.to_owned();
    // Longest names first: `$__rate_interval` before a hypothetical `$__rate`.
    let mut sorted = values.to_vec();
    sorted.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, value) in sorted {
        substituted = substituted
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    assert!(
        !substituted.contains('$'),
        "panel {panel:?}: `{query}` uses a Grafana variable this test does not set: `{substituted}`"
    );
    substituted
}

/// The Grafana variables a panel may use: the dashboard's own at `namespace` and
/// `queuescaler`, and Grafana's built-in intervals.
fn variables<'a>(namespace: &'a str, queuescaler: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("namespace", namespace),
        ("queuescaler", queuescaler),
        ("__rate_interval", RATE_INTERVAL),
        ("__interval", "15s"),
        ("__range", "1h"),
    ]
}

/// Prometheus' JSON answer to `GET <path>?<params>`; panics on anything but success.
async fn prometheus_api(
    prometheus: &PrometheusServer,
    path: &str,
    params: &[(&str, &str)],
) -> Value {
    let url = reqwest::Url::parse_with_params(&format!("{}{path}", prometheus.url()), params)
        .expect("a valid URL");
    let response = reqwest::get(url.clone())
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: not JSON: {error}"));
    assert!(
        status.is_success() && body["status"] == "success",
        "GET {url}: {status} {body}"
    );
    body["data"].clone()
}

/// The series of an instant query with a value that is a number (`histogram_quantile` over
/// no observations gives NaN: a panel drawing nothing).
async fn series_with_values(prometheus: &PrometheusServer, query: &str) -> Vec<Value> {
    let data = prometheus_api(prometheus, "/api/v1/query", &[("query", query)]).await;
    data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|series| {
            series["value"][1]
                .as_str()
                .and_then(|value| value.parse::<f64>().ok())
                .is_some_and(|value| !value.is_nan())
        })
        .cloned()
        .collect()
}

/// Waits until `query` (of panel `panel`) returns a series with a value; fails with both.
async fn assert_returns_data(prometheus: &PrometheusServer, panel: &str, query: &str) {
    let series = poll::until(
        &format!("panel {panel:?}: `{query}` to return data"),
        QUERY_DATA_WITHIN,
        || async { Some(series_with_values(prometheus, query).await).filter(|s| !s.is_empty()) },
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    eprintln!("panel {panel:?}: `{query}` → {}", Value::from(series));
}

/// The values Grafana offers for a `label_values(<selector>, <label>)` variable, read the way
/// Grafana reads them (`/api/v1/label/<label>/values?match[]=<selector>`).
async fn label_values(prometheus: &PrometheusServer, definition: &str) -> Vec<String> {
    let arguments = definition
        .strip_prefix("label_values(")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("variable `{definition}` is not label_values(…)"));
    let (selector, label) = arguments
        .rsplit_once(',')
        .unwrap_or_else(|| panic!("variable `{definition}` has no label"));
    let data = prometheus_api(
        prometheus,
        &format!("/api/v1/label/{}/values", label.trim()),
        &[("match[]", selector.trim())],
    )
    .await;
    data.as_array()
        .into_iter()
        .flatten()
        .filter_map(|value| value.as_str().map(str::to_owned))
        .collect()
}

/// The dashboard variable `name`.
fn variable<'a>(dashboard: &'a Value, name: &str) -> &'a Value {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|variable| variable["name"] == name)
        .unwrap_or_else(|| panic!("the dashboard has no variable {name:?}"))
}

/// What Grafana puts in a query for the variable `name` when "All" is selected.
fn all_value(dashboard: &Value, name: &str) -> String {
    variable(dashboard, name)["allValue"]
        .as_str()
        .unwrap_or_else(|| panic!("variable {name:?} has no allValue"))
        .to_owned()
}

/// Waits until the dashboard variable `name` offers `expected`.
async fn assert_variable_offers(
    prometheus: &PrometheusServer,
    dashboard: &Value,
    name: &str,
    expected: &str,
) {
    let definition = variable(dashboard, name)["definition"]
        .as_str()
        .unwrap_or_else(|| panic!("variable {name:?} has no definition"));
    // Grafana fills the variables a variable's query uses, like a panel's.
    let query = substitute(
        &format!("variable {name}"),
        definition,
        &variables(NAMESPACE, NAME),
    );
    poll::until(
        &format!("variable {name:?}: `{query}` to offer {expected:?}"),
        QUERY_DATA_WITHIN,
        || async {
            let offered = label_values(prometheus, &query).await;
            match offered.iter().any(|value| value == expected) {
                true => Ok(Some(())),
                false => Err(format!("offers {offered:?}")),
            }
        },
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
}

async fn wait_for_replicas(control_plane: &ControlPlane, expected: i64, within: Duration) {
    control_plane
        .wait_for(
            &format!("deployment {NAMESPACE}/{NAME} at {expected} replicas"),
            within,
            || async {
                let deployment = control_plane
                    .get("deployments.apps", NAMESPACE, NAME)
                    .await
                    .map_err(|error| error.to_string())?;
                Ok((deployment["spec"]["replicas"].as_i64() == Some(expected)).then_some(()))
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_operator_dashboard_queries_return_data() {
    let Some(control_plane) = start_or_skip(TEST, Options::default()).await else {
        return;
    };
    let mut redis = RedisServer::start();
    install_scaled_deployment(
        &control_plane,
        NAMESPACE,
        NAME,
        &queue_scaler(&redis.address()),
    )
    .await;
    let kubeconfig = control_plane.kubeconfig.display().to_string();
    let operator = start_operator("operator", &kubeconfig, &[]);
    let operator_address = format!("127.0.0.1:{}", operator.http_port);
    let Some(prometheus) = PrometheusServer::start_scraping_or_skip(
        TEST,
        &[("ebb-operator", operator_address.as_str())],
        Duration::from_secs(1),
    ) else {
        return;
    };

    // Activity for every panel: items waiting and a scale-up (gauges, decisions, reads), then
    // Redis down for a few ticks (read errors), then back.
    redis.push("padok", 200);
    wait_for_replicas(&control_plane, 10, Duration::from_secs(30)).await;
    redis.stop();
    // Failed reads have to happen and be scraped: time itself is what is waited for.
    tokio::time::sleep(Duration::from_secs(4)).await;
    redis.resume();

    let dashboard = dashboard();
    assert_variable_offers(&prometheus, &dashboard, "namespace", NAMESPACE).await;
    assert_variable_offers(&prometheus, &dashboard, "queuescaler", NAME).await;

    let queries = panel_queries(&dashboard["panels"]);
    assert!(!queries.is_empty(), "the dashboard has no panel query");
    // Each query as a user sees it with the scaler selected, and with "All".
    let all_namespaces = all_value(&dashboard, "namespace");
    let all_scalers = all_value(&dashboard, "queuescaler");
    for (namespace, queuescaler) in [(NAMESPACE, NAME), (&all_namespaces, &all_scalers)] {
        for (panel, query) in &queries {
            let query = substitute(panel, query, &variables(namespace, queuescaler));
            assert_returns_data(&prometheus, panel, &query).await;
        }
    }
    drop(operator);
}
