//! Step 3: three consumers, or an autoscaler that owns the count since.

use super::*;

/// Step 3: three consumers, or an autoscaler that owns the count since.
pub async fn scale(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("scale");
    let Some(deployment) = ctx.deployment("consumer").await? else {
        report.wrong("no Deployment consumer: step 1 first");
        return Ok(report);
    };
    let wanted = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let ready = deployment["status"]["readyReplicas"].as_i64().unwrap_or(0);
    if wanted >= 3 {
        report.right(format!(
            "the consumer asks for {wanted} replicas ({ready} ready)"
        ));
    } else if let Some(autoscaler) = autoscaler_of_consumer(ctx).await? {
        report.right(format!(
            "{autoscaler} owns the consumer's count now ({wanted}): scaling by hand is behind you"
        ));
    } else {
        report.wrong(format!(
            "the consumer's Deployment asks for {wanted}: 3 replicas expected"
        ));
        report.hint("kubectl scale deployment consumer --replicas=3");
    }
    Ok(report)
}
