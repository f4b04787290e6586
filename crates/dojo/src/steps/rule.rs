//! Step 6: the recorded series exists, exactly once.

use super::*;

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
