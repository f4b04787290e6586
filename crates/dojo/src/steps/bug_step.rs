//! Step 10: the learner's line against the upstream one at the cluster's version.

use super::*;

/// Step 10: the learner's line against the upstream one at the cluster's version.
pub async fn bug_step(ctx: &Context, answer: &Answer) -> Result<Report> {
    let mut report = Report::new("bug");
    let version = ctx.cluster.version().await.ok();
    let (site, exact) = bug::site_for(version.as_deref());
    if !exact {
        report.note(format!(
            "the cluster runs {}: line numbers are known for {}; compared with that release",
            version.as_deref().unwrap_or("an unknown version"),
            site.version
        ));
    }
    if let Ok(Some(hpa)) = ctx.hpa().await {
        let average = &hpa["status"]["currentMetrics"][0]["object"]["current"]["averageValue"];
        if average
            .as_str()
            .is_some_and(|v| v.starts_with("-9223372036854775808"))
        {
            report.note(format!("your HPA shows it now: averageValue {average}"));
        }
    }
    bug::judge(answer, &site, &mut report);
    Ok(report)
}
