//! Step 9: at zero, because the HPA put it there.

use super::*;

/// Step 9: at zero, because the HPA put it there.
pub async fn zero(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("zero");
    let Some(hpa) = ctx.hpa().await? else {
        report.wrong(format!(
            "no HPA consumer in {}: step 8 first",
            ctx.namespace
        ));
        return Ok(report);
    };
    let min = hpa["spec"]["minReplicas"].as_i64().unwrap_or(1);
    report.expect(
        min == 0,
        "minReplicas 0",
        format!("minReplicas is {min}: set it to 0 (autoscaling.minReplicas)"),
    );
    match ctx.metric().await? {
        Ok(value) if value > 0.0 => report.wrong(format!(
            "the queue holds {value} items: the HPA rightly keeps consumers; let them drain it"
        )),
        Ok(_) => report.right("the queue is empty"),
        Err(message) => report.note(format!(
            "the queue length is not served ({message}): step 7"
        )),
    }
    let desired = hpa["status"]["desiredReplicas"].as_i64().unwrap_or(-1);
    let replicas = ctx
        .deployment("consumer")
        .await?
        .and_then(|d| d["spec"]["replicas"].as_i64())
        .unwrap_or(-1);
    report.expect(
        desired == 0 && replicas == 0,
        "the HPA and the Deployment are at 0 replicas",
        format!("the HPA wants {desired} and the Deployment asks for {replicas}: both should be 0 (the scale-down waits for the 20 s stabilization window)"),
    );
    match hpa::scaled_to_zero(&hpa) {
        Some(true) => report.right("ScaledToZero=True: the HPA took it there, so it will scale it up again"),
        Some(false) => report.wrong("ScaledToZero=False: the HPA did not take the Deployment to 0 itself, so it will not scale it up from 0"),
        None => report.wrong("no ScaledToZero condition: is HPAScaleToZero on (it is by default from 1.37)?"),
    }
    report.hint("docs/dojo/09-scale-to-zero.md, hint 3");
    Ok(report)
}
