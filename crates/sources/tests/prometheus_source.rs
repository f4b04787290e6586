//! `PrometheusSource` against a real Prometheus: values, rounding, empty results under both
//! choices, several series, refused values and PromQL errors.

use ebb_sources::prometheus::{EmptyResult, PrometheusSource};
use ebb_sources::{MetricSource, Reading};
use ebb_testkit::prometheus::PrometheusServer;

fn waiting(n: u64) -> Reading {
    // Neither a PromQL value nor a plain list can tell what is in flight: unknown, not 0.
    Reading::waiting(n)
}

async fn read(
    server: &PrometheusServer,
    query: &str,
    empty: EmptyResult,
) -> ebb_sources::Result<Reading> {
    PrometheusSource::new(&server.url(), query, empty)
        .unwrap()
        .read()
        .await
}

async fn error(server: &PrometheusServer, query: &str, empty: EmptyResult) -> String {
    read(server, query, empty).await.unwrap_err().to_string()
}

#[tokio::test]
async fn prometheus_values_are_counts_rounded_up() {
    let Some(server) = PrometheusServer::start_or_skip("prometheus_values_are_counts_rounded_up")
    else {
        return;
    };
    let source = PrometheusSource::new(&server.url(), "vector(42)", EmptyResult::Error).unwrap();
    assert_eq!(
        source.describe(),
        format!("prometheus {} query vector(42)", server.url())
    );
    assert_eq!(source.read().await.unwrap(), waiting(42));
    assert_eq!(
        read(&server, "vector(1.2)", EmptyResult::Error)
            .await
            .unwrap(),
        waiting(2)
    );
    assert_eq!(
        read(&server, "vector(0)", EmptyResult::Error)
            .await
            .unwrap(),
        waiting(0)
    );
    // A scalar is one sample too.
    assert_eq!(
        read(&server, "scalar(vector(7))", EmptyResult::Error)
            .await
            .unwrap(),
        waiting(7)
    );
    // A trailing slash on the server address is fine.
    let slashed = PrometheusSource::new(
        &format!("{}/", server.url()),
        "vector(3)",
        EmptyResult::Error,
    )
    .unwrap();
    assert_eq!(slashed.read().await.unwrap(), waiting(3));
}

#[tokio::test]
async fn an_empty_prometheus_result_is_zero_or_an_error_as_chosen() {
    let Some(server) =
        PrometheusServer::start_or_skip("an_empty_prometheus_result_is_zero_or_an_error_as_chosen")
    else {
        return;
    };
    for query in [r#"up{job="nothing"}"#, r#"absent(up{job="nothing"}) == 0"#] {
        assert_eq!(
            read(&server, query, EmptyResult::Zero).await.unwrap(),
            waiting(0),
            "{query}"
        );
        assert_eq!(
            error(&server, query, EmptyResult::Error).await,
            format!(
                "Prometheus at {}, query {query:?}: the query returned nothing (empty result, read as an error for this source)",
                server.url()
            )
        );
    }
}

#[tokio::test]
async fn several_series_negative_and_non_finite_values_are_refused() {
    let Some(server) = PrometheusServer::start_or_skip(
        "several_series_negative_and_non_finite_values_are_refused",
    ) else {
        return;
    };
    let two = r#"vector(1) or label_replace(vector(2), "a", "b", "", "")"#;
    assert_eq!(
        error(&server, two, EmptyResult::Zero).await,
        format!(
            "Prometheus at {}, query {two:?}: the query returned 2 series, it must return one (aggregate them, e.g. with sum)",
            server.url()
        )
    );
    for (query, shown) in [
        ("vector(-1)", "-1"),
        ("vector(0/0)", "NaN"),
        ("vector(1/0)", "+Inf"),
    ] {
        let message = error(&server, query, EmptyResult::Zero).await;
        assert!(
            message.ends_with(&format!(
                "the value {shown} is not a count of items (it must be a finite number ≥ 0)"
            )),
            "{query}: {message}"
        );
    }
    let range = error(&server, "vector(1)[1m:10s]", EmptyResult::Zero).await;
    assert!(range.contains("the result is not a number"), "{range}");
}

#[tokio::test]
async fn a_promql_error_is_reported_with_its_type() {
    let Some(server) = PrometheusServer::start_or_skip("a_promql_error_is_reported_with_its_type")
    else {
        return;
    };
    let message = error(&server, "sum(", EmptyResult::Zero).await;
    assert!(
        message.starts_with(&format!(
            "Prometheus at {} refused \"sum(\": bad_data: ",
            server.url()
        )),
        "{message}"
    );
    assert!(message.contains("parse error"), "{message}");

    // A wrong path prefix reaches something that is not the query API.
    let elsewhere = format!("{}/elsewhere", server.url());
    let message = PrometheusSource::new(&elsewhere, "vector(1)", EmptyResult::Zero)
        .unwrap()
        .read()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(&format!(
            "Prometheus at {elsewhere}, query \"vector(1)\": HTTP 404 Not Found: reply was not the query API's JSON ("
        )),
        "{message}"
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_or_a_bad_address_is_a_clear_error() {
    let port = ebb_testkit::free_port();
    let address = format!("http://127.0.0.1:{port}");
    let source = PrometheusSource::new(&address, "vector(1)", EmptyResult::Zero).unwrap();
    let message = source.read().await.unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "querying Prometheus at {address} for \"vector(1)\": "
        )),
        "{message}"
    );
    let bad = PrometheusSource::new("prometheus:9090", "vector(1)", EmptyResult::Zero)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        bad,
        "invalid Prometheus server address \"prometheus:9090\": scheme \"prometheus\" is not http"
    );
    let https = PrometheusSource::new("https://prometheus:9090", "vector(1)", EmptyResult::Zero)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        https,
        "invalid Prometheus server address \"https://prometheus:9090\": https is not supported yet: use http"
    );
}
