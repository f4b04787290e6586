//! Step 4: Prometheus scrapes every 5 s and selects every rule and ServiceMonitor.

use super::*;

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::selects_everything;

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
}
