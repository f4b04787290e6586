//! Step 2: the app's pods run.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::*;

/// Step 2: the app's pods run.
pub async fn app(ctx: &Context) -> Result<Report> {
    let mut report = Report::new("app");
    let autoscaler = autoscaler_of_consumer(ctx).await?;
    for name in ["producer", "consumer"] {
        let Some(deployment) = ctx.deployment(name).await? else {
            report.wrong(format!("no Deployment {name}: step 1 first"));
            continue;
        };
        let wanted = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
        let ready = deployment["status"]["readyReplicas"].as_i64().unwrap_or(0);
        if ready >= 1 {
            report.right(format!("{name}: {ready} of {wanted} pods ready"));
        } else if wanted == 0 && autoscaler.is_some() {
            report.note(format!(
                "{name}: at 0 replicas, scaled by {}",
                autoscaler.as_deref().unwrap_or("")
            ));
        } else {
            let why = why_not_ready(ctx, &deployment["spec"]["selector"]["matchLabels"]).await?;
            report.wrong(format!("{name}: {ready} of {wanted} pods ready{why}"));
        }
    }
    let slices = ctx
        .cluster
        .list(&format!(
            "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dredis-master",
            ctx.namespace
        ))
        .await?;
    let redis_ready = slices.iter().any(|slice| {
        slice["endpoints"]
            .as_array()
            .is_some_and(|endpoints| endpoints.iter().any(|e| e["conditions"]["ready"] == true))
    });
    if redis_ready {
        report.right("Redis (Service redis-master) has a ready endpoint");
    } else {
        let service = ctx
            .cluster
            .get(&ctx.path("/api/v1", "services", "redis-master"))
            .await?;
        let why = match service {
            Some(service) => why_not_ready(ctx, &service["spec"]["selector"]).await?,
            None => ": there is no Service redis-master (step 1)".to_owned(),
        };
        report.wrong(format!(
            "Service redis-master has no ready endpoint: is the Redis pod running?{why}"
        ));
    }
    report.hint("hint 2 of docs/dojo/02-try-the-app.md: `kubectl describe pod` of a pod that is not Running says why");
    Ok(report)
}

/// Why the pods of `labels` (a label map: a Deployment's `matchLabels`, a Service's selector)
/// are not ready, as the kubelet and the scheduler say it: `": pod <name>: <reason> (<message>)"`
/// for the first one that says anything, `": no pod"` when there is none, else empty.
async fn why_not_ready(ctx: &Context, labels: &Value) -> Result<String> {
    let Some(labels) = labels.as_object().filter(|l| !l.is_empty()) else {
        return Ok(String::new());
    };
    let selector: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
        .collect();
    let pods = ctx
        .cluster
        .list(&format!(
            "/api/v1/namespaces/{}/pods?labelSelector={}",
            ctx.namespace,
            percent_encode(&selector.join(","))
        ))
        .await?;
    if pods.is_empty() {
        return Ok(": no pod (kubectl describe replicaset says why)".to_owned());
    }
    let Some((pod, problem)) = pods
        .iter()
        .find_map(|pod| pod_problem(pod).map(|problem| (name_of(pod), problem)))
    else {
        return Ok(String::new());
    };
    // The pod's status says only that a probe fails; the kubelet's event says how.
    let said = match problem.contains("probe fails") {
        true => last_probe_failure(ctx, pod).await?,
        false => None,
    };
    Ok(match said {
        Some(message) => format!(": pod {pod}: {problem}: the kubelet says {message:?}"),
        None => format!(": pod {pod}: {problem}"),
    })
}

/// The message of the latest `Unhealthy` event of `pod` (`Readiness probe failed: …`, with
/// the probe's own output), if the kubelet wrote one.
async fn last_probe_failure(ctx: &Context, pod: &str) -> Result<Option<String>> {
    let events = ctx
        .cluster
        .list(&format!(
            "/api/v1/namespaces/{}/events?fieldSelector={}",
            ctx.namespace,
            percent_encode(&format!(
                "involvedObject.kind=Pod,involvedObject.name={pod},reason=Unhealthy"
            ))
        ))
        .await?;
    Ok(latest_message(&events))
}

/// The trimmed message of the event seen last (`lastTimestamp`, else `eventTime`).
fn latest_message(events: &[Value]) -> Option<String> {
    let seen = |event: &Value| {
        event["lastTimestamp"]
            .as_str()
            .or_else(|| event["eventTime"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    events
        .iter()
        .max_by_key(|event| seen(event))
        .and_then(|event| event["message"].as_str())
        .map(|message| message.trim().to_owned())
        .filter(|message| !message.is_empty())
}

/// What keeps a pod from running: a container's waiting or terminated reason, else an
/// unscheduled pod's reason.
fn pod_problem(pod: &Value) -> Option<String> {
    let said = |reason: &Value, message: &Value| {
        let reason = reason.as_str()?;
        Some(match message.as_str().filter(|m| !m.is_empty()) {
            Some(message) => format!("{reason} ({message})"),
            None => reason.to_owned(),
        })
    };
    let containers = pod["status"]["containerStatuses"].as_array();
    let container = containers.into_iter().flatten().find_map(|c| {
        let state = &c["state"];
        let stopped = ["waiting", "terminated"]
            .into_iter()
            .find_map(|s| said(&state[s]["reason"], &state[s]["message"]));
        // Running but not ready: its readiness probe fails (the kubelet's Unhealthy events
        // say how), and a restart says how it last ended.
        let unready = || {
            let name = c["name"].as_str().unwrap_or("?");
            let last = &c["lastState"]["terminated"];
            Some(match (c["restartCount"].as_i64().unwrap_or(0), last["reason"].as_str()) {
                (0, _) | (_, None) => format!("container {name} runs but its readiness probe fails"),
                (restarts, Some(reason)) => format!(
                    "container {name} runs but its readiness probe fails; restarted {restarts} times, last ended {reason} (exit code {})",
                    last["exitCode"]
                ),
            })
        };
        stopped.or_else(|| (state.get("running").is_some() && c["ready"] == false).then(unready).flatten())
    });
    container.or_else(|| {
        let (scheduled, reason, message) = condition(pod, "PodScheduled")?;
        (!scheduled).then(|| format!("{reason} ({message})"))
    })
}

/// Every byte but RFC 3986's unreserved ones (`A-Z a-z 0-9 - . _ ~`): what a query
/// parameter's value may carry as it is.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A query parameter's value, every byte but the unreserved ones percent-encoded.
fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{latest_message, percent_encode, pod_problem};

    #[test]
    fn a_pod_problem_is_the_kubelet_or_the_scheduler_reason() {
        let waiting = json!({"status": {"containerStatuses": [{"state": {"waiting": {
            "reason": "ErrImageNeverPull",
            "message": "Container image \"redis:8.10.2-alpine\" is not present with pull policy of Never"
        }}}]}});
        assert_eq!(
            pod_problem(&waiting).as_deref(),
            Some(
                "ErrImageNeverPull (Container image \"redis:8.10.2-alpine\" is not present with pull policy of Never)"
            )
        );
        let crashed = json!({"status": {"containerStatuses": [{"state": {"terminated": {"reason": "Error"}}}]}});
        assert_eq!(pod_problem(&crashed).as_deref(), Some("Error"));
        let unscheduled = json!({"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/0 nodes are available"
        }]}});
        assert_eq!(
            pod_problem(&unscheduled).as_deref(),
            Some("Unschedulable (0/0 nodes are available)")
        );
        let running =
            json!({"status": {"containerStatuses": [{"state": {"running": {}}, "ready": true}]}});
        assert_eq!(pod_problem(&running), None);
        let unready = json!({"status": {"containerStatuses": [{
            "name": "producer", "state": {"running": {}}, "ready": false, "restartCount": 0
        }]}});
        assert_eq!(
            pod_problem(&unready).as_deref(),
            Some("container producer runs but its readiness probe fails")
        );
        let restarted = json!({"status": {"containerStatuses": [{
            "name": "producer", "state": {"running": {}}, "ready": false, "restartCount": 3,
            "lastState": {"terminated": {"reason": "Error", "exitCode": 143}}
        }]}});
        assert_eq!(
            pod_problem(&restarted).as_deref(),
            Some(
                "container producer runs but its readiness probe fails; restarted 3 times, last ended Error (exit code 143)"
            )
        );
    }

    #[test]
    fn the_latest_probe_failure_is_the_one_quoted() {
        let events = [
            json!({"lastTimestamp": "2026-12-07T10:00:00Z", "message": "Readiness probe failed: old"}),
            json!({"lastTimestamp": "2026-12-07T10:00:09Z", "message": "Readiness probe failed: 503 wrong password\n"}),
        ];
        assert_eq!(
            latest_message(&events).as_deref(),
            Some("Readiness probe failed: 503 wrong password")
        );
        assert_eq!(latest_message(&[]), None);
    }

    #[test]
    fn label_selectors_are_percent_encoded() {
        assert_eq!(
            percent_encode("app.kubernetes.io/name=redis,app.kubernetes.io/instance=redis"),
            "app.kubernetes.io%2Fname%3Dredis%2Capp.kubernetes.io%2Finstance%3Dredis"
        );
        assert_eq!(percent_encode("a-b_c.d~e f+é"), "a-b_c.d~e%20f%2B%C3%A9");
    }
}
