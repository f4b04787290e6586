//! Step 1: the API server, Redis, the producer and the consumer.

use super::*;

/// Step 1: the API server, Redis, the producer and the consumer.
pub async fn bootstrap(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("bootstrap");
    let version = ctx.cluster.version().await?;
    if version.starts_with("v1.37.") {
        report.right(format!("the API server answers: Kubernetes {version}"));
    } else {
        report.right(format!("the API server answers: Kubernetes {version}"));
        report.note("not 1.37: scale to zero (step 9) and the bug hunt (step 10) describe 1.37; scripts/bootstrap.sh pins it");
    }
    let redis = ctx
        .cluster
        .get(&ctx.path("/api/v1", "services", "redis-master"))
        .await?;
    report.expect(
        redis.is_some(),
        "Service redis-master",
        format!(
            "no Service redis-master in {}: scripts/deploy-redis.sh",
            ctx.namespace
        ),
    );
    for name in ["producer", "consumer"] {
        report.expect(
            ctx.deployment(name).await?.is_some(),
            format!("Deployment {name}"),
            format!(
                "no Deployment {name} in {}: scripts/deploy-{name}.sh",
                ctx.namespace
            ),
        );
    }
    let ingress = ctx
        .cluster
        .get(&ctx.path("/apis/networking.k8s.io/v1", "ingresses", "producer"))
        .await?;
    match ingress.as_ref().map(|i| &i["spec"]["rules"][0]["host"]) {
        Some(host) if host == "producer.vcap.me" => {
            report.right("Ingress producer on producer.vcap.me")
        }
        Some(host) => report.wrong(format!(
            "the Ingress producer's host is {host}: producer.vcap.me expected"
        )),
        None => report.wrong(format!("no Ingress producer in {}", ctx.namespace)),
    }
    report.hint("run scripts/bootstrap.sh; docs/dojo/01-bootstrap.md has hints for each failure");
    Ok(report)
}
