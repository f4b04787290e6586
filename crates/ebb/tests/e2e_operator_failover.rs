//! Two, then three `ebb operator run` replicas against one real control plane, electing a
//! leader with a Lease: the standby takes over within 15 s of the leader's SIGKILL or
//! SIGSTOP, a SIGTERM'd leader hands over at once, and a frozen-then-resumed leader writes
//! nothing more. "No double writes" is proven from the kube-apiserver's audit log, where
//! every scale write carries the User-Agent of the replica that sent it.

mod common;

use std::time::{Duration, Instant};

use ebb_testkit::control_plane::{ControlPlane, Options, start_or_skip};
use ebb_testkit::redis::RedisServer;

use common::Ebb;
use common::operator::{install_scaled_deployment, start_operator};

/// Every write to a Deployment's scale subresource, and nothing else.
const AUDIT_POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [patch, update]
    resources: [{group: apps, resources: [deployments/scale]}]
  - level: None
"#;

/// What the issue promises for a dead or frozen leader.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(15);

fn queue_scaler(redis: &str) -> String {
    format!(
        r#"
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: consumer, namespace: default}}
spec:
  scaleTargetRef: {{name: consumer}}
  source: {{redisList: {{redis: {{address: "{redis}"}}, key: padok}}}}
  targetPerReplica: 20
  maxReplicas: 20
"#
    )
}

async fn spec_replicas(control_plane: &ControlPlane) -> Option<i64> {
    let deployment = control_plane
        .get("deployments.apps", "default", "consumer")
        .await
        .ok()?;
    deployment["spec"]["replicas"].as_i64()
}

/// Waits for `spec.replicas == expected`; returns how long it took from `since`.
async fn wait_for_replicas(
    control_plane: &ControlPlane,
    expected: i64,
    since: Instant,
    within: Duration,
) -> Duration {
    control_plane
        .wait_for(
            &format!("deployment/consumer at {expected} replicas"),
            within,
            || async { Ok((spec_replicas(control_plane).await == Some(expected)).then_some(())) },
        )
        .await
        .unwrap();
    since.elapsed()
}

async fn holder(control_plane: &ControlPlane) -> Option<String> {
    let lease = control_plane
        .get("leases.coordination.k8s.io", "default", "ebb-operator")
        .await
        .ok()?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

async fn wait_for_holder(control_plane: &ControlPlane, expected: &str, since: Instant) -> Duration {
    control_plane
        .wait_for(
            &format!("the Lease held by {expected}"),
            Duration::from_secs(30),
            || async {
                Ok((holder(control_plane).await.as_deref() == Some(expected)).then_some(()))
            },
        )
        .await
        .unwrap();
    since.elapsed()
}

/// A replica named `name`, holding the Lease as `name`.
fn operator(name: &str, kubeconfig: &str) -> Ebb {
    start_operator(name, kubeconfig, &[("POD_NAME", name)])
}

/// The `ebb_operator_leader` gauge of one replica.
async fn leader_gauge(operator: &Ebb) -> String {
    let (status, body) = get(&operator.url("/metrics")).await;
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|line| line.strip_prefix("ebb_operator_leader "))
        .unwrap_or_else(|| panic!("no ebb_operator_leader in {body}"))
        .to_owned()
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("the operator answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

/// One successful scale write from the audit log: who sent it and when the server got it.
#[derive(Debug)]
struct ScaleWrite {
    replica: String,
    received: String,
}

fn scale_writes(audit_log: &std::path::Path) -> Vec<ScaleWrite> {
    let text = std::fs::read_to_string(audit_log).expect("the audit log exists");
    let mut writes: Vec<ScaleWrite> = text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON audit event"))
        .filter(|event| {
            event["stage"] == "ResponseComplete"
                && event["objectRef"]["resource"] == "deployments"
                && event["objectRef"]["subresource"] == "scale"
                && matches!(event["verb"].as_str(), Some("patch" | "update"))
                && event["responseStatus"]["code"]
                    .as_i64()
                    .is_some_and(|code| (200..300).contains(&code))
        })
        .map(|event| {
            let agent = event["userAgent"].as_str().unwrap_or_default();
            // `ebb-operator/<version> (<identity>)`
            let replica = agent
                .rsplit_once('(')
                .and_then(|(_, rest)| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("a scale write from an unknown client: {event}"))
                .to_owned();
            ScaleWrite {
                replica,
                received: event["requestReceivedTimestamp"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            }
        })
        .collect();
    // RFC 3339 with a fixed number of digits in UTC: text order is time order.
    writes.sort_by(|a, b| a.received.cmp(&b.received));
    writes
}

/// The writers in turn: consecutive writes of one replica collapse into one term.
fn terms(writes: &[ScaleWrite]) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for write in writes {
        if terms.last() != Some(&write.replica) {
            terms.push(write.replica.clone());
        }
    }
    terms
}

fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    // Same shape as the audit log's timestamps (microseconds, Z): compared as text.
    let output = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{}.{:06}", now.as_secs(), now.subsec_micros()),
            "+%Y-%m-%dT%H:%M:%S.%6NZ",
        ])
        .output()
        .expect("date runs");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_operator_failover_sigkill_sigstop_sigterm_without_double_writes() {
    let audit = tempfile::tempdir().unwrap();
    let policy = audit.path().join("policy.yaml");
    let audit_log = audit.path().join("audit.log");
    std::fs::write(&policy, AUDIT_POLICY).unwrap();
    let Some(control_plane) = start_or_skip(
        "e2e_operator_failover_sigkill_sigstop_sigterm_without_double_writes",
        Options {
            apiserver_flags: vec![
                format!("--audit-policy-file={}", policy.display()),
                format!("--audit-log-path={}", audit_log.display()),
            ],
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let redis = RedisServer::start();
    install_scaled_deployment(
        &control_plane,
        "default",
        "consumer",
        &queue_scaler(&redis.address()),
    )
    .await;
    let kubeconfig = control_plane.kubeconfig.display().to_string();

    // Two replicas; one leads and scales, the other stands by, healthy.
    let a = operator("operator-a", &kubeconfig);
    let b = operator("operator-b", &kubeconfig);
    let start = Instant::now();
    redis.push("padok", 40);
    wait_for_replicas(&control_plane, 2, start, Duration::from_secs(30)).await;
    let first = holder(&control_plane).await.expect("a leader");
    let (mut leader, standby) = if first == "operator-a" {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(leader_gauge(&leader).await, "1");
    assert_eq!(leader_gauge(&standby).await, "0");
    assert_eq!(get(&standby.url("/healthz")).await.0, 200);

    // SIGKILL: the standby scales within 15 s.
    let killed_name = leader.name.clone();
    leader.signal("KILL");
    leader.wait_for_exit();
    let killed_at = Instant::now();
    let killed_at_text = rfc3339_now();
    redis.push("padok", 20);
    let sigkill_takeover =
        wait_for_replicas(&control_plane, 3, killed_at, Duration::from_secs(30)).await;
    println!(
        "takeover after SIGKILL: {sigkill_takeover:?} (load {})",
        loadavg()
    );
    assert!(sigkill_takeover < TAKEOVER_LIMIT, "{sigkill_takeover:?}");
    drop(leader);
    let second = standby;
    assert_eq!(
        holder(&control_plane).await.as_deref(),
        Some(second.name.as_str())
    );
    assert_eq!(leader_gauge(&second).await, "1");

    // A new standby; then SIGSTOP the leader: the standby takes over within 15 s.
    let third = operator("operator-c", &kubeconfig);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(leader_gauge(&third).await, "0");
    second.signal("STOP");
    let stopped_at = Instant::now();
    let stopped_at_text = rfc3339_now();
    redis.push("padok", 20);
    let sigstop_takeover =
        wait_for_replicas(&control_plane, 4, stopped_at, Duration::from_secs(30)).await;
    println!(
        "takeover after SIGSTOP: {sigstop_takeover:?} (load {})",
        loadavg()
    );
    assert!(sigstop_takeover < TAKEOVER_LIMIT, "{sigstop_takeover:?}");
    assert_eq!(holder(&control_plane).await.as_deref(), Some("operator-c"));

    // The frozen leader resumes into a changed queue: it must not write, the new one does.
    redis.push("padok", 20);
    second.signal("CONT");
    let resumed_at_text = rfc3339_now();
    wait_for_replicas(&control_plane, 5, Instant::now(), Duration::from_secs(15)).await;
    // Another change while both are running: a resumed leader still acting would race the
    // new one to this write.
    redis.push("padok", 20);
    wait_for_replicas(&control_plane, 6, Instant::now(), Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(leader_gauge(&second).await, "0");
    assert_eq!(leader_gauge(&third).await, "1");

    // SIGTERM: the leader releases its Lease on the way out; the other leads at once.
    let terminated_at_text = rfc3339_now();
    let terminated_at = Instant::now();
    third.signal("TERM");
    let sigterm_takeover = wait_for_holder(&control_plane, &second.name, terminated_at).await;
    println!(
        "takeover after SIGTERM: {sigterm_takeover:?} (load {})",
        loadavg()
    );
    assert!(
        sigterm_takeover < Duration::from_secs(2),
        "{sigterm_takeover:?}"
    );
    redis.push("padok", 20);
    wait_for_replicas(&control_plane, 7, terminated_at, Duration::from_secs(15)).await;
    let mut third = third;
    assert!(third.wait_for_exit().success());

    // The audit log: each replica wrote in its own term only, in the order of the handovers.
    let writes = scale_writes(&audit_log);
    for write in &writes {
        println!("scale write {} by {}", write.received, write.replica);
    }
    assert_eq!(
        terms(&writes),
        [
            killed_name.as_str(),
            second.name.as_str(),
            "operator-c",
            second.name.as_str()
        ],
        "{writes:#?}"
    );
    for write in &writes {
        let when = write.received.as_str();
        match write.replica.as_str() {
            name if name == killed_name => assert!(when < killed_at_text.as_str(), "{write:?}"),
            "operator-c" => assert!(
                stopped_at_text.as_str() < when && when < terminated_at_text.as_str(),
                "{write:?}"
            ),
            _ => assert!(
                when < stopped_at_text.as_str() || terminated_at_text.as_str() < when,
                "the resumed leader wrote between {resumed_at_text} and the SIGTERM: {write:?}"
            ),
        }
    }
}

fn loadavg() -> String {
    ebb_testkit::load_averages().join(" ")
}
