//! The oracle of the metrics-api e2e tests, `tools/metrics-check`, checked against the reference
//! server: prometheus-adapter in the dojo pipeline must pass it (discovery, the dojo's metric
//! through the HPA's own client, strictly decoded), and what the adapter does not serve must
//! fail it with the API server's Status. An oracle that failed the reference, or passed a
//! missing API, would prove nothing about ebb.

use ebb_e2e::metrics_api::MetricsCheck;
use ebb_e2e::pipeline::DojoPipeline;
use ebb_testkit::control_plane::{self, Options};

#[tokio::test(flavor = "multi_thread")]
async fn e2e_metrics_api_oracle_accepts_prometheus_adapter_and_refuses_what_it_does_not_serve() {
    let Some(control_plane) = control_plane::start_or_skip(
        "e2e_metrics_api_oracle_accepts_prometheus_adapter_and_refuses_what_it_does_not_serve",
        Options::default(),
    )
    .await
    else {
        return;
    };
    let pipeline = DojoPipeline::start(control_plane).await.unwrap();
    if pipeline.adapter.is_none() {
        eprintln!("\n!!!!!!!! SKIPPED: prometheus-adapter was not built\n");
        return;
    }
    pipeline.push(7);
    let check = MetricsCheck::new(&pipeline.control_plane);

    // As the HPA asks (protobuf, JSON accepted): the adapter answers discovery in protobuf.
    let hpa_like = check.run(&["discovery"]).await.unwrap();
    assert_eq!(
        hpa_like.result()["preferredCustomVersion"],
        "custom.metrics.k8s.io/v1beta1"
    );
    // In JSON, every body is strictly decoded too.
    let discovery = check
        .run(&["--content-type=application/json", "discovery"])
        .await
        .unwrap();
    let result = discovery.result();
    assert_eq!(
        result["preferredCustomVersion"], "custom.metrics.k8s.io/v1beta1",
        "{result}"
    );
    let resources = result["resources"]["custom.metrics.k8s.io/v1beta1"]["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{result}"));
    assert!(
        resources
            .iter()
            .any(|r| r["name"] == "services/redis_items_in_queue" && r["kind"] == "MetricValueList"),
        "{result}"
    );
    // Every metrics-group body it saw was strictly decoded.
    for response in discovery.document["responses"].as_array().unwrap() {
        assert_eq!(response["strict"], "ok", "{response}");
    }

    // The dojo's metric through the HPA's client, once the scrape and the rule have seen it.
    let args = [
        "--content-type=application/json",
        "custom",
        "--version=v1beta1",
        "--kind=Service",
        "--namespace=default",
        "--name=prometheus-redis-exporter",
        "--metric=redis_items_in_queue",
        "--metric-selector=key=padok",
    ];
    let value = pipeline
        .control_plane
        .wait_for(
            "the adapter to serve 7 through the oracle",
            std::time::Duration::from_secs(60),
            || async {
                let checked = check.run(&args).await.map_err(|error| error.to_string())?;
                if checked.ok && checked.document["result"]["items"][0]["value"] == "7" {
                    Ok(Some(checked.document))
                } else {
                    Err(checked.document.to_string())
                }
            },
        )
        .await
        .unwrap();
    let item = &value["result"]["items"][0];
    assert_eq!(item["describedObject"]["kind"], "Service", "{value}");
    assert_eq!(item["metric"]["name"], "redis_items_in_queue", "{value}");
    assert_eq!(value["responses"][0]["strict"], "ok", "{value}");

    // Not served by the adapter: the oracle fails, with the API server's 404.
    let v1beta2 = check
        .run(&[
            "custom",
            "--version=v1beta2",
            "--kind=Service",
            "--namespace=default",
            "--name=prometheus-redis-exporter",
            "--metric=redis_items_in_queue",
        ])
        .await
        .unwrap();
    assert!(!v1beta2.ok, "{}", v1beta2.document);
    assert_eq!(v1beta2.code(), 404, "{}", v1beta2.document);
    let external = check
        .run(&[
            "external",
            "--namespace=default",
            "--metric=redis_items_in_queue",
            "--selector=key=padok",
        ])
        .await
        .unwrap();
    assert!(!external.ok, "{}", external.document);
    assert_eq!(external.code(), 404, "{}", external.document);
}
