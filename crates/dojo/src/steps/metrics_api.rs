//! Step 11: `ebb metrics-api` serves the metric instead of prometheus-adapter.

use super::*;

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
