//! The dojo, end to end, on a real control plane: Redis → redis_exporter → Prometheus
//! (recording rule from the consumer chart) → prometheus-adapter → HPA → Deployment.
//! `cargo test --workspace e2e_dojo_pipeline` runs just these.

use std::time::Duration;

use ebb_e2e::charts::{self, MONITORING_API};
use ebb_e2e::daemon::temp_dir;
use ebb_e2e::pipeline::{DojoPipeline, RECORDED_SERIES};
use ebb_testkit::control_plane::{self, Options};

/// `int64(NaN)` on amd64: what the HPA writes for the per-replica average at 0 replicas.
const MIN_INT64: &str = "-9223372036854775808";

/// One HPA sync (5 s) after Prometheus (5 s scrape, 1 s rule) sees the change, with slack for
/// two shared cores; scaling down adds the 20 s stabilization window.
const SCALE_UP_WITHIN: Duration = Duration::from_secs(60);
const SCALE_DOWN_WITHIN: Duration = Duration::from_secs(90);

#[test]
fn e2e_dojo_pipeline_charts_lint_and_render_the_dojo_solution() {
    let Some(bin) =
        control_plane::require("e2e_dojo_pipeline_charts_lint_and_render_the_dojo_solution")
    else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    for chart in ["producer", "consumer"] {
        charts::lint(&bin, home.path(), chart).unwrap();
    }

    let producer = charts::template(&bin, home.path(), "producer", "default", &[]).unwrap();
    assert!(producer.contains("host: producer.vcap.me"), "{producer}");
    assert!(producer.contains("path: /livez"), "{producer}");
    assert!(producer.contains("path: /readyz"), "{producer}");

    let without_monitoring =
        charts::template(&bin, home.path(), "consumer", "default", &[]).unwrap();
    assert!(
        !without_monitoring.contains("kind: PrometheusRule"),
        "{without_monitoring}"
    );

    let consumer =
        charts::template(&bin, home.path(), "consumer", "tests", &[MONITORING_API]).unwrap();
    for expected in [
        "kind: PrometheusRule",
        "- record: redis_items_in_queue",
        r#"redis_key_size{service="prometheus-redis-exporter",namespace="tests",key="padok"}"#,
        r#"clamp_max(absent(redis_key_size{service="prometheus-redis-exporter",namespace="tests",key="padok"}), 0)"#,
        "apiVersion: autoscaling/v2",
        "minReplicas: 0",
        "maxReplicas: 20",
        "type: Object",
        "name: prometheus-redis-exporter",
        "key: padok",
        "type: AverageValue",
        r#"averageValue: "20""#,
    ] {
        assert!(
            consumer.contains(expected),
            "missing `{expected}` in:\n{consumer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_dojo_pipeline_scales_0_to_5_and_back_to_0_showing_the_division_by_zero() {
    let Some(control_plane) = control_plane::start_or_skip(
        "e2e_dojo_pipeline_scales_0_to_5_and_back_to_0_showing_the_division_by_zero",
        Options::default(),
    )
    .await
    else {
        return;
    };
    let pipeline = DojoPipeline::start(control_plane).await.unwrap();
    let cluster = &pipeline.control_plane;

    // Every chart object went through the API server.
    for (kind, name) in [
        ("deployment", "producer"),
        ("service", "producer"),
        ("ingress", "producer"),
        ("deployment", "consumer"),
        ("service", "consumer"),
        ("prometheusrule", "consumer"),
        ("horizontalpodautoscalers.v2.autoscaling", "consumer"),
    ] {
        cluster.get(kind, "default", name).await.unwrap();
    }

    let empty = pipeline.prometheus.query(RECORDED_SERIES).await.unwrap();
    assert_eq!(empty.len(), 1, "{empty:?}");
    assert_eq!(empty[0].value, 0.0, "absent key recorded as 0: {empty:?}");

    // Only outside CI: under CI the pipeline refuses to start without the adapter.
    if pipeline.adapter.is_none() {
        eprintln!(
            "\n!!!!!!!! PARTLY SKIPPED: prometheus-adapter was not built: checked up to Prometheus; the adapter → HPA hop was LEFT OUT\n"
        );
        return;
    }
    assert_eq!(pipeline.metric_value().await.unwrap(), "0");

    pipeline.push(100);
    let took = pipeline
        .wait_for_replicas(5, SCALE_UP_WITHIN)
        .await
        .unwrap();
    eprintln!("100 items → 5 replicas in {took:.1?}");
    assert_eq!(pipeline.metric_value().await.unwrap(), "100");

    pipeline.empty();
    let took = pipeline
        .wait_for_replicas(0, SCALE_DOWN_WITHIN)
        .await
        .unwrap();
    eprintln!("empty → 0 replicas in {took:.1?}");
    assert_eq!(pipeline.metric_value().await.unwrap(), "0");

    // The dojo's last step: at 0 replicas the Deployment's status.replicas is omitted, and the
    // HPA divides the metric by 0 replicas: int64(NaN) lands in its v2 status.
    let bug = cluster
        .wait_for(
            "the HPA's v2 status at 0 replicas",
            Duration::from_secs(30),
            || async {
                let scale = pipeline.scale().await.map_err(|error| error.to_string())?;
                let hpa = pipeline.hpa().await.map_err(|error| error.to_string())?;
                let average =
                    hpa["status"]["currentMetrics"][0]["object"]["current"]["averageValue"].clone();
                match average.as_str() {
                    Some(value) if scale.status.is_none() && value.starts_with(MIN_INT64) => {
                        Ok(Some(value.to_owned()))
                    }
                    _ => Err(format!(
                        "{scale:?}, currentMetrics: {}",
                        hpa["status"]["currentMetrics"]
                    )),
                }
            },
        )
        .await
        .unwrap();
    eprintln!("HPA status at 0 replicas: averageValue = {bug}");
    assert_eq!(pipeline.metric_value().await.unwrap(), "0");
}
