//! `helm/charts/operator` and the consumer chart's QueueScaler mode, through the pinned helm:
//! `helm lint --strict`, what the templates render, the Grafana dashboard, and — on a real
//! kube-apiserver — releases in every RBAC mode whose ServiceAccount may make each call the
//! operator makes and nothing more (`kubectl auth can-i --as=…`), and the consumer chart's
//! QueueScaler accepted by the CRD's validation.

use std::path::PathBuf;

use ebb_e2e::charts::{self, find, identities};
use ebb_e2e::daemon::temp_dir;
use ebb_testkit::control_plane::{self, ControlPlane, Options, start_or_skip};
use serde_json::Value;

/// The Lease the operator's replicas elect their leader with (crates/operator).
const LEASE: &str = "ebb-operator";

/// The operator's metrics, as the dashboard queries them.
const OPERATOR_METRICS: [&str; 7] = [
    "ebb_operator_waiting_items",
    "ebb_operator_in_flight_items",
    "ebb_operator_replicas",
    "ebb_operator_desired_replicas",
    "ebb_operator_decisions_total",
    "ebb_operator_read_duration_seconds",
    "ebb_operator_errors_total",
];

const SERVICE_MONITOR_API: &str = "monitoring.coreos.com/v1/ServiceMonitor";

fn dashboard_path() -> PathBuf {
    charts::chart_path("operator").join("dashboards/ebb-operator.json")
}

/// The committed dashboard, parsed.
fn dashboard() -> Value {
    let path = dashboard_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn has_kind(objects: &[Value], kind: &str) -> bool {
    objects.iter().any(|object| object["kind"] == kind)
}

#[test]
fn charts_lint_strict_in_every_mode_and_refuse_bad_values_naming_them() {
    let Some(bin) = control_plane::require(
        "charts_lint_strict_in_every_mode_and_refuse_bad_values_naming_them",
    ) else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    let lints: [(&str, &[&str]); 9] = [
        ("operator", &[]),
        ("operator", &["secrets.clusterWide=true"]),
        (
            "operator",
            &["allowedAddresses=redis-master:6379\\,*.cache.svc:6379"],
        ),
        ("operator", &["watchNamespace=team-a"]),
        ("operator", &["secrets.namespaces={team-a,team-b}"]),
        (
            "operator",
            &[
                "serviceMonitor.enabled=false",
                "dashboard.enabled=false",
                "podDisruptionBudget.enabled=false",
            ],
        ),
        ("consumer", &[]),
        ("consumer", &["autoscaler=queueScaler"]),
        ("consumer", &["autoscaler=metricsApi"]),
    ];
    for (chart, set) in lints {
        charts::lint_with(&bin, home.path(), chart, set)
            .unwrap_or_else(|error| panic!("{chart} {set:?}: {error}"));
    }

    let refusals: [(&str, &[&str], &str); 7] = [
        (
            "operator",
            &["secrets.clusterWide=true", "secrets.namespaces={team-b}"],
            "secrets.clusterWide: true grants the Secrets of every namespace; leave secrets.namespaces empty",
        ),
        (
            "operator",
            &["secrets.clusterWide=true", "watchNamespace=team-a"],
            "secrets.clusterWide: true grants the Secrets of every namespace",
        ),
        (
            "operator",
            &["secrets.clusterWide=yes"],
            "at '/secrets/clusterWide'",
        ),
        (
            "consumer",
            &["autoscaler=keda"],
            r#"autoscaler: "keda" is not one of hpa, metricsApi, queueScaler"#,
        ),
        (
            "operator",
            &["watchNamespace=team-a", "secrets.namespaces={team-b}"],
            r#"secrets.namespaces: with watchNamespace "team-a" set, Secrets are read in "team-a" only"#,
        ),
        (
            "operator",
            &["watchNamespaces=team-a"],
            "additional properties 'watchNamespaces' not allowed",
        ),
        (
            "operator",
            &["scaleTargets[0].apiGroup=example.com"],
            "at '/scaleTargets/0': missing property 'resources'",
        ),
    ];
    for (chart, set, expected) in refusals {
        charts::assert_refused(&bin, home.path(), chart, "default", set, expected);
    }
}

#[test]
fn operator_chart_renders_a_hardened_two_replica_deployment_its_service_and_dashboard() {
    let Some(bin) = control_plane::require(
        "operator_chart_renders_a_hardened_two_replica_deployment_its_service_and_dashboard",
    ) else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    let render = |api_versions: &[&str], set: &[&str]| {
        charts::render(
            &bin,
            home.path(),
            "operator",
            "ebb-system",
            api_versions,
            set,
        )
        .unwrap_or_else(|error| panic!("{set:?}: {error}"))
    };

    let objects = render(&[], &[]);
    let deployment = find(&objects, "Deployment", "operator");
    assert_eq!(deployment["spec"]["replicas"], 2, "{deployment}");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "operator", "{pod}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{pod}");
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{pod}"
    );
    let container = &pod["containers"][0];
    assert_eq!(
        container["args"],
        serde_json::json!(["operator", "run", "--http", ":8080"]),
        "{container}"
    );
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true, "{security}");
    assert_eq!(security["allowPrivilegeEscalation"], false, "{security}");
    assert_eq!(
        security["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{security}"
    );
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let env = container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|env| env["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {container}"));
        assert_eq!(env["valueFrom"]["fieldRef"]["fieldPath"], field, "{env}");
    }
    assert!(
        !container.to_string().contains("EBB_WATCH_NAMESPACE"),
        "every namespace is watched by default: {container}"
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            container[probe]["httpGet"],
            serde_json::json!({"path": "/healthz", "port": "http"}),
            "{probe}: {container}"
        );
    }
    assert_eq!(
        container["ports"],
        serde_json::json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        container["resources"]["requests"]["memory"], "64Mi",
        "{container}"
    );
    assert!(
        container["resources"]["limits"]["memory"].is_string(),
        "{container}"
    );

    let service = find(&objects, "Service", "operator");
    assert_eq!(
        service["spec"]["ports"],
        serde_json::json!([{"name": "metrics", "port": 8080, "targetPort": "http", "protocol": "TCP"}])
    );

    // The ServiceMonitor needs the prometheus-operator's API, and can be switched off.
    assert!(!has_kind(&objects, "ServiceMonitor"));
    let monitored = render(&[SERVICE_MONITOR_API], &[]);
    let monitor = find(&monitored, "ServiceMonitor", "operator");
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"], "metrics",
        "{monitor}"
    );
    assert!(!has_kind(
        &render(&[SERVICE_MONITOR_API], &["serviceMonitor.enabled=false"]),
        "ServiceMonitor"
    ));

    // The dashboard, for Grafana's sidecar: its label, and the committed JSON unchanged.
    let config_map = find(&objects, "ConfigMap", "operator-dashboard");
    assert_eq!(
        config_map["metadata"]["labels"]["grafana_dashboard"], "1",
        "{config_map}"
    );
    let embedded: Value = serde_json::from_str(
        config_map["data"]["ebb-operator.json"]
            .as_str()
            .expect("the dashboard's key"),
    )
    .unwrap();
    assert_eq!(embedded, dashboard());
    assert!(!has_kind(
        &render(&[], &["dashboard.enabled=false"]),
        "ConfigMap"
    ));

    // RBAC kinds per mode (what they allow is checked on the API server below).
    let by_default = identities(&objects);
    for expected in [
        ("ClusterRole", "", "operator"),
        ("Role", "ebb-system", "operator-secrets"),
        ("RoleBinding", "ebb-system", "operator-secrets"),
        ("Role", "ebb-system", "operator-leader-election"),
    ] {
        let expected = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.to_owned(),
        );
        assert!(by_default.contains(&expected), "{by_default:?}");
    }
    assert!(
        !by_default.contains(&(
            "ClusterRole".into(),
            String::new(),
            "operator-secrets".into()
        )),
        "Secrets cluster-wide by default: {by_default:?}"
    );
    let cluster_wide = identities(&render(&[], &["secrets.clusterWide=true"]));
    for expected in [
        ("ClusterRole", "", "operator"),
        ("ClusterRole", "", "operator-secrets"),
        ("ClusterRoleBinding", "", "operator-secrets"),
        ("Role", "ebb-system", "operator-leader-election"),
    ] {
        let expected = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.to_owned(),
        );
        assert!(cluster_wide.contains(&expected), "{cluster_wide:?}");
    }
    // The allow-list reaches the operator as its flag's variable; unset, no variable.
    let env_of = |objects: &[Value]| {
        find(objects, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]["env"]
            .clone()
    };
    let allowing = render(
        &[],
        &["allowedAddresses=redis-master:6379\\,*.cache.svc:6379"],
    );
    assert!(
        env_of(&allowing).as_array().into_iter().flatten().any(|env| env
            == &serde_json::json!({"name": "EBB_ALLOWED_ADDRESSES", "value": "redis-master:6379,*.cache.svc:6379"})),
        "{}",
        env_of(&allowing)
    );
    assert!(
        !env_of(&objects)
            .to_string()
            .contains("EBB_ALLOWED_ADDRESSES"),
        "{}",
        env_of(&objects)
    );

    // A custom resource added to the scalable kinds: watched, and scaled through /scale.
    let custom = render(
        &[],
        &[
            "scaleTargets[0].apiGroup=example.com",
            "scaleTargets[0].resources={workers}",
        ],
    );
    let rules = &find(&custom, "ClusterRole", "operator")["rules"];
    for expected in [
        serde_json::json!({"apiGroups": ["example.com"], "resources": ["workers"], "verbs": ["get", "list", "watch"]}),
        serde_json::json!({"apiGroups": ["example.com"], "resources": ["workers/scale"], "verbs": ["get", "patch"]}),
    ] {
        assert!(
            rules
                .as_array()
                .into_iter()
                .flatten()
                .any(|rule| rule == &expected),
            "no {expected} in {rules}"
        );
    }

    let single = render(&[], &["watchNamespace=team-a"]);
    let kinds: Vec<_> = identities(&single);
    assert!(
        !has_kind(&single, "ClusterRole") && !has_kind(&single, "ClusterRoleBinding"),
        "single-namespace mode needs no ClusterRole: {kinds:?}"
    );
    let container =
        &find(&single, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container["env"].as_array().into_iter().flatten().any(
            |env| env == &serde_json::json!({"name": "EBB_WATCH_NAMESPACE", "value": "team-a"})
        ),
        "{container}"
    );
}

#[test]
fn dashboard_parses_and_every_panel_queries_the_operator_metrics_per_scaler() {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty(), "{dashboard}");
    let mut used = Vec::new();
    for panel in panels {
        let title = &panel["title"];
        let targets = panel["targets"].as_array().into_iter().flatten();
        let expressions: Vec<&str> = targets.filter_map(|t| t["expr"].as_str()).collect();
        assert!(!expressions.is_empty(), "panel {title} has no query");
        for expression in expressions {
            let metrics: Vec<&str> = OPERATOR_METRICS
                .into_iter()
                .filter(|metric| expression.contains(metric))
                .collect();
            assert!(
                !metrics.is_empty(),
                "panel {title}: `{expression}` queries none of {OPERATOR_METRICS:?}"
            );
            assert!(
                expression.contains("by (namespace, queuescaler"),
                "panel {title}: `{expression}` is not per scaler"
            );
            used.extend(metrics);
        }
    }
    for metric in OPERATOR_METRICS {
        assert!(used.contains(&metric), "no panel shows {metric}");
    }
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|variable| variable["name"].as_str())
        .collect();
    assert_eq!(variables, ["datasource", "namespace", "queuescaler"]);
}

/// Every check's answer against the expected one, as one report of the mismatches.
async fn mismatches(
    control_plane: &ControlPlane,
    user: &str,
    allowed: &[String],
    denied: &[String],
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (checks, expected) in [(allowed, true), (denied, false)] {
        for check in checks {
            if control_plane.can_i(user, check).await.unwrap() != expected {
                let verdict = if expected { "denied" } else { "allowed" };
                wrong.push(format!("{user}: `{check}` is {verdict}"));
            }
        }
    }
    wrong
}

/// What the operator calls in a QueueScaler's namespace (`scope`: `-n <ns>` or `-A`).
fn needed_in(scope: &str) -> Vec<String> {
    let mut checks = Vec::new();
    for resource in [
        "queuescalers.ebb.dev",
        "deployments.apps",
        "statefulsets.apps",
        "horizontalpodautoscalers.autoscaling",
        "secrets",
    ] {
        for verb in ["get", "list", "watch"] {
            checks.push(format!("{verb} {resource} {scope}"));
        }
    }
    for target in ["deployments.apps", "statefulsets.apps"] {
        for verb in ["get", "patch"] {
            checks.push(format!("{verb} {target} --subresource=scale {scope}"));
        }
    }
    checks.push(format!(
        "patch queuescalers.ebb.dev --subresource=status {scope}"
    ));
    // A scale-in's choice: the target's pods listed, the chosen ones marked.
    for verb in ["list", "patch"] {
        checks.push(format!("{verb} pods {scope}"));
    }
    for verb in ["create", "patch"] {
        checks.push(format!("{verb} events.events.k8s.io {scope}"));
    }
    checks
}

/// Its Lease, in the release's namespace.
fn needed_for_the_lease(release_namespace: &str) -> Vec<String> {
    vec![
        format!("create leases.coordination.k8s.io -n {release_namespace}"),
        format!("get leases.coordination.k8s.io/{LEASE} -n {release_namespace}"),
        format!("patch leases.coordination.k8s.io/{LEASE} -n {release_namespace}"),
    ]
}

/// Calls the operator never makes, in a namespace it works in and around its Lease.
fn never_needed(namespace: &str, release_namespace: &str) -> Vec<String> {
    let mut checks = Vec::new();
    for verb in ["create", "update", "patch", "delete"] {
        checks.push(format!("{verb} secrets -n {namespace}"));
        checks.push(format!("{verb} deployments.apps -n {namespace}"));
        checks.push(format!("{verb} queuescalers.ebb.dev -n {namespace}"));
        checks.push(format!(
            "{verb} horizontalpodautoscalers.autoscaling -n {namespace}"
        ));
    }
    checks.extend([
        format!("update deployments.apps --subresource=scale -n {namespace}"),
        format!("update queuescalers.ebb.dev --subresource=status -n {namespace}"),
        format!("delete events.events.k8s.io -n {namespace}"),
        format!("create events -n {namespace}"),
        format!("get pods -n {namespace}"),
        format!("watch pods -n {namespace}"),
        format!("delete pods -n {namespace}"),
        format!("list configmaps -n {namespace}"),
        format!("create leases.coordination.k8s.io -n {namespace}"),
        format!("get leases.coordination.k8s.io/{LEASE} -n {namespace}"),
        format!("patch leases.coordination.k8s.io/kube-controller-manager -n {release_namespace}"),
        format!("delete leases.coordination.k8s.io/{LEASE} -n {release_namespace}"),
        format!("list leases.coordination.k8s.io -n {release_namespace}"),
    ]);
    checks
}

fn service_account(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_operator_chart_installs_in_every_rbac_mode_with_only_the_rights_it_uses() {
    let test = "e2e_operator_chart_installs_in_every_rbac_mode_with_only_the_rights_it_uses";
    let Some(control_plane) = start_or_skip(test, Options::default()).await else {
        return;
    };
    charts::install_monitoring_crds(&control_plane)
        .await
        .unwrap();
    for namespace in [
        "ebb-system",
        "ebb-team",
        "ebb-limited",
        "ebb-plain",
        "team-a",
        "team-b",
    ] {
        control_plane
            .kubectl(&["create", "namespace", namespace])
            .await
            .unwrap();
    }

    // Four releases: every namespace with Secrets cluster-wide (opted in); only team-a;
    // every namespace but Secrets in team-b only; the defaults (Secrets of its own namespace).
    let releases: [(&str, &str, &[&str]); 4] = [
        ("ebb-operator", "ebb-system", &["secrets.clusterWide=true"]),
        ("ebb-operator", "ebb-team", &["watchNamespace=team-a"]),
        ("limited", "ebb-limited", &["secrets.namespaces={team-b}"]),
        ("plain", "ebb-plain", &[]),
    ];
    for (release, namespace, set) in releases {
        charts::install_as(&control_plane, release, "operator", namespace, set)
            .await
            .unwrap_or_else(|error| panic!("{release} in {namespace}: {error}"));
    }
    control_plane
        .wait_established("queuescalers.ebb.dev")
        .await
        .unwrap();

    // Every object is stored (the pods stay Pending: there is no node).
    for (resource, namespace, name) in [
        ("deployment", "ebb-system", "ebb-operator"),
        ("service", "ebb-system", "ebb-operator"),
        ("serviceaccount", "ebb-system", "ebb-operator"),
        ("servicemonitor", "ebb-system", "ebb-operator"),
        ("configmap", "ebb-system", "ebb-operator-dashboard"),
        ("poddisruptionbudget", "ebb-system", "ebb-operator"),
        ("role", "ebb-system", "ebb-operator-leader-election"),
        ("rolebinding", "ebb-system", "ebb-operator-leader-election"),
        ("deployment", "ebb-team", "ebb-operator"),
        ("role", "team-a", "ebb-operator"),
        ("rolebinding", "team-a", "ebb-operator"),
        ("role", "team-a", "ebb-operator-secrets"),
        ("role", "ebb-team", "ebb-operator-leader-election"),
        ("role", "team-b", "limited-operator-secrets"),
        ("rolebinding", "team-b", "limited-operator-secrets"),
        ("role", "ebb-plain", "plain-operator-secrets"),
        ("rolebinding", "ebb-plain", "plain-operator-secrets"),
    ] {
        control_plane
            .get(resource, namespace, name)
            .await
            .unwrap_or_else(|error| panic!("{resource} {namespace}/{name}: {error}"));
    }
    for name in [
        "ebb-operator",
        "ebb-operator-secrets",
        "limited-operator",
        "plain-operator",
    ] {
        control_plane
            .kubectl(&["get", "clusterrole", name])
            .await
            .unwrap();
    }
    let deployment = control_plane
        .get("deployment", "ebb-system", "ebb-operator")
        .await
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);

    let mut wrong = Vec::new();

    // Every namespace.
    let everywhere = service_account("ebb-system", "ebb-operator");
    let mut allowed = needed_in("-A");
    allowed.extend(needed_in("-n team-a"));
    allowed.extend(needed_for_the_lease("ebb-system"));
    let denied = never_needed("team-a", "ebb-system");
    wrong.extend(mismatches(&control_plane, &everywhere, &allowed, &denied).await);

    // One namespace: team-a, nothing elsewhere, nothing cluster-wide.
    let single = service_account("ebb-team", "ebb-operator");
    let mut allowed = needed_in("-n team-a");
    allowed.extend(needed_for_the_lease("ebb-team"));
    let mut denied = never_needed("team-a", "ebb-team");
    for scope in ["-n team-b", "-A"] {
        denied.extend(needed_in(scope));
    }
    wrong.extend(mismatches(&control_plane, &single, &allowed, &denied).await);

    // Secrets in team-b only; the rest everywhere.
    let limited = service_account("ebb-limited", "limited-operator");
    let mut allowed: Vec<String> = needed_in("-A")
        .into_iter()
        .filter(|check| !check.contains(" secrets "))
        .collect();
    allowed.extend(["get", "list", "watch"].map(|verb| format!("{verb} secrets -n team-b")));
    allowed.extend(needed_for_the_lease("ebb-limited"));
    let mut denied = never_needed("team-b", "ebb-limited");
    denied.extend(["get", "list", "watch"].map(|verb| format!("{verb} secrets -n team-a")));
    denied.extend(["list", "watch"].map(|verb| format!("{verb} secrets -A")));
    wrong.extend(mismatches(&control_plane, &limited, &allowed, &denied).await);

    // The defaults: Secrets of the release's own namespace only; the rest everywhere.
    let plain = service_account("ebb-plain", "plain-operator");
    let mut allowed: Vec<String> = needed_in("-A")
        .into_iter()
        .filter(|check| !check.contains(" secrets "))
        .collect();
    allowed.extend(["get", "list", "watch"].map(|verb| format!("{verb} secrets -n ebb-plain")));
    allowed.extend(needed_for_the_lease("ebb-plain"));
    let mut denied = never_needed("team-a", "ebb-plain");
    for namespace in ["team-a", "team-b", "ebb-system"] {
        denied
            .extend(["get", "list", "watch"].map(|verb| format!("{verb} secrets -n {namespace}")));
    }
    denied.extend(["get", "list", "watch"].map(|verb| format!("{verb} secrets -A")));
    wrong.extend(mismatches(&control_plane, &plain, &allowed, &denied).await);

    assert!(wrong.is_empty(), "RBAC:\n{}", wrong.join("\n"));

    // The consumer chart with a QueueScaler instead of the HPA: the CRD's schema and CEL rules
    // accept it, and its defaults are filled in.
    charts::install_as(
        &control_plane,
        "consumer",
        "consumer",
        "team-a",
        &["autoscaler=queueScaler"],
    )
    .await
    .unwrap();
    let scaler = control_plane
        .get("queuescalers.ebb.dev", "team-a", "consumer")
        .await
        .unwrap();
    let spec = &scaler["spec"];
    assert_eq!(
        spec["scaleTargetRef"],
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "consumer"})
    );
    assert_eq!(spec["minReplicas"], 0, "{spec}");
    assert_eq!(spec["maxReplicas"], 20, "{spec}");
    assert_eq!(spec["targetPerReplica"], 20, "{spec}");
    assert_eq!(
        spec["source"],
        serde_json::json!({"ebbQueue": {"queue": "padok", "redis": {"address": "redis-master:6379"}}})
    );
    assert_eq!(spec["pollingIntervalSeconds"], 1, "defaulted: {spec}");
    control_plane
        .get("deployment", "team-a", "consumer")
        .await
        .unwrap();
    let autoscalers = control_plane
        .kubectl(&["get", "hpa,prometheusrules", "-n", "team-a", "-o", "name"])
        .await
        .unwrap();
    assert_eq!(autoscalers.trim(), "", "no HPA, no recording rule");
    assert!(
        control_plane
            .can_i(&single, "get queuescalers.ebb.dev/consumer -n team-a")
            .await
            .unwrap()
    );
}
