//! Step 8: the HPA, as the dojo wants it, and what its controller says.

use super::*;

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
