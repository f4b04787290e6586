//! Step 12: a QueueScaler drives the consumer, and nothing competes with it.

use super::*;

/// Step 12: a QueueScaler drives the consumer, and nothing competes with it.
pub async fn operator(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("operator");
    let crd = ctx
        .cluster
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/queuescalers.ebb.dev")
        .await?;
    if crd.is_none() {
        report.wrong(
            "no CRD queuescalers.ebb.dev: install the operator (scripts/deploy-operator.sh)",
        );
        report.hint("docs/dojo/12-operator.md");
        return Ok(report);
    }
    report.right("CRD queuescalers.ebb.dev");
    let Some(scaler) = scaler_of_consumer(ctx, QUEUE_SCALERS).await? else {
        report.wrong(format!(
            "no QueueScaler targets the Deployment consumer in {}",
            ctx.namespace
        ));
        report.hint("scripts/update-consumer.sh --set autoscaler=queueScaler");
        return Ok(report);
    };
    let name = name_of(&scaler);
    match condition(&scaler, "Ready") {
        Some((true, _, _)) => report.right(format!("QueueScaler {name} is Ready")),
        Some((false, reason, message)) => report.wrong(format!("QueueScaler {name} is not Ready: {reason}: {message}")),
        None => report.wrong(format!("QueueScaler {name} has no Ready condition: is the operator running? (kubectl get pods -n ebb-system)")),
    }
    if let Some((true, reason, message)) = condition(&scaler, "Conflict") {
        report.wrong(format!("QueueScaler {name}: Conflict, {reason}: {message}"));
        report.hint("hint 2 of docs/dojo/12-operator.md: remove the HPA");
    }
    if let Some(hpa) = scaler_of_consumer(ctx, HPAS).await? {
        report.wrong(format!(
            "the HPA {} also targets the Deployment consumer: two autoscalers fight over one count",
            name_of(&hpa)
        ));
        report.hint("hint 2 of docs/dojo/12-operator.md: `autoscaler: queueScaler` renders no HPA");
    } else {
        report.right("no HPA competes for the Deployment consumer");
    }
    let status = &scaler["status"];
    if status["replicas"] == 0 {
        report.expect(
            status.get("averagePerReplica").is_none_or(Value::is_null),
            "at 0 replicas the status has no per-replica average (no −2⁶³)",
            format!(
                "at 0 replicas the status shows averagePerReplica {}",
                status["averagePerReplica"]
            ),
        );
    }
    report.hint("docs/dojo/12-operator.md, hint 1");
    Ok(report)
}
