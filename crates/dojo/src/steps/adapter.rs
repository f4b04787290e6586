//! Step 7: the custom metrics API serves the queue length.

use super::*;

/// Step 7: the custom metrics API serves the queue length.
pub async fn adapter(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("adapter");
    api_service_available(ctx, &mut report).await?;
    metric_served(ctx, &mut report).await?;
    report.hint(
        "hint 3 of docs/dojo/07-prometheus-adapter.md; the adapter relists series once a minute",
    );
    Ok(report)
}
