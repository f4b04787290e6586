//! Step 5: the exporter is scraped and exports the key.

use super::*;

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
