//! `helm/charts/metrics-api` through the pinned helm: `helm lint --strict` in every mode, bad
//! values refused naming the field, and what the templates render — the APIServices (each
//! switchable, priorities, caBundle = the CA that signed the serving certificate), the hardened
//! two-replica Deployment with its PDB, RBAC, and the optional ServiceMonitor. The release on a
//! real kube-apiserver, serving for real, is `crates/ebb/tests/e2e_metrics_api.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ebb_e2e::charts::{self, find};
use ebb_e2e::daemon::temp_dir;
use ebb_testkit::control_plane;
use serde_json::{Value, json};

const CHART: &str = "metrics-api";
const NAMESPACE: &str = "monitoring";
const SERVICE_MONITOR_API: &str = "monitoring.coreos.com/v1/ServiceMonitor";

/// The folder of the pinned helm, or `None` after a loud skip (a failure under CI).
fn helm_or_skip(test: &str) -> Option<PathBuf> {
    control_plane::require(test)
}

fn names_of_kind(objects: &[Value], kind: &str) -> Vec<String> {
    objects
        .iter()
        .filter(|object| object["kind"] == kind)
        .filter_map(|object| object["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

fn render(bin: &Path, home: &Path, api_versions: &[&str], set: &[&str]) -> Vec<Value> {
    charts::render(bin, home, CHART, NAMESPACE, api_versions, set)
        .unwrap_or_else(|error| panic!("{set:?}: {error}"))
}

fn base64_decode(text: &str) -> Vec<u8> {
    let output = run_with_stdin("base64", &["-d"], text.as_bytes());
    output.into_bytes()
}

/// Runs a system tool (base64, openssl) with `stdin`, returning its stdout; panics naming it.
fn run_with_stdin(program: &str, args: &[&str], stdin: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn metrics_api_chart_lints_strict_in_every_mode_and_refuses_bad_values_naming_them() {
    let Some(bin) = helm_or_skip(
        "metrics_api_chart_lints_strict_in_every_mode_and_refuses_bad_values_naming_them",
    ) else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    let modes: [&[&str]; 7] = [
        &[],
        &["tls.mode=certManager"],
        &[
            "tls.mode=certManager",
            "tls.certManager.issuerRef.name=cluster-ca",
            "tls.certManager.issuerRef.kind=ClusterIssuer",
        ],
        &[
            "tls.mode=secret",
            "tls.secretName=serving",
            "tls.caBundle=PEM",
        ],
        &[
            "apiServices.externalV1beta1.enabled=false",
            "serviceMonitor.enabled=true",
            "podDisruptionBudget.enabled=false",
            "rbac.hpaReader=false",
        ],
        &["redis.caSecret.name=redis-ca", "config.interval=2s"],
        &[
            "hostNetwork.enabled=true",
            "replicaCount=1",
            "service.clusterIP=127.64.0.10",
        ],
    ];
    for set in modes {
        charts::lint_with(&bin, home.path(), CHART, set)
            .unwrap_or_else(|error| panic!("{set:?}: {error}"));
    }

    let refusals: [(&[&str], &str); 7] = [
        (
            &["tls.mode=selfSigned"],
            "at '/tls/mode': value must be one of 'generated', 'certManager', 'secret'",
        ),
        (
            &["tls.mode=secret"],
            "tls.secretName: set it when tls.mode is secret",
        ),
        (
            &["tls.mode=secret", "tls.secretName=serving"],
            "tls.caBundle: the PEM CA of tls.secretName's certificate",
        ),
        (
            &["apiServices.customV1beta2.versionPriority=0"],
            "at '/apiServices/customV1beta2/versionPriority'",
        ),
        (
            &["replicas=2"],
            "additional properties 'replicas' not allowed",
        ),
        (
            &["hostNetwork.enabled=true", "service.clusterIP=127.64.0.10"],
            "replicaCount: set it to 1 with hostNetwork.enabled",
        ),
        (
            &["hostNetwork.enabled=true", "replicaCount=1"],
            "service.clusterIP: set it with hostNetwork.enabled",
        ),
    ];
    for (set, expected) in refusals {
        charts::assert_refused(&bin, home.path(), CHART, NAMESPACE, set, expected);
    }
}

#[test]
fn metrics_api_chart_renders_switchable_apiservices_trusting_the_ca_of_its_serving_certificate() {
    let Some(bin) = helm_or_skip(
        "metrics_api_chart_renders_switchable_apiservices_trusting_the_ca_of_its_serving_certificate",
    ) else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    let objects = render(&bin, home.path(), &[], &[]);

    assert_eq!(
        names_of_kind(&objects, "APIService"),
        [
            "v1beta1.custom.metrics.k8s.io",
            "v1beta2.custom.metrics.k8s.io",
            "v1beta1.external.metrics.k8s.io"
        ]
    );
    let secret = find(&objects, "Secret", "metrics-api-tls");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let ca = base64_decode(secret["data"]["ca.crt"].as_str().unwrap());
    let cert = base64_decode(secret["data"]["tls.crt"].as_str().unwrap());
    for (name, group, version, version_priority) in [
        (
            "v1beta1.custom.metrics.k8s.io",
            "custom.metrics.k8s.io",
            "v1beta1",
            100,
        ),
        (
            "v1beta2.custom.metrics.k8s.io",
            "custom.metrics.k8s.io",
            "v1beta2",
            200,
        ),
        (
            "v1beta1.external.metrics.k8s.io",
            "external.metrics.k8s.io",
            "v1beta1",
            100,
        ),
    ] {
        let api_service = find(&objects, "APIService", name);
        let spec = &api_service["spec"];
        assert_eq!(spec["group"], group, "{api_service}");
        assert_eq!(spec["version"], version, "{api_service}");
        assert_eq!(spec["groupPriorityMinimum"], 100, "{api_service}");
        assert_eq!(spec["versionPriority"], version_priority, "{api_service}");
        assert_eq!(
            spec["service"],
            json!({"name": "metrics-api", "namespace": NAMESPACE, "port": 443}),
            "{api_service}"
        );
        assert!(spec.get("insecureSkipTLSVerify").is_none(), "{api_service}");
        let ca_bundle = base64_decode(spec["caBundle"].as_str().unwrap());
        assert_eq!(ca_bundle, ca, "{name}: caBundle is not the Secret's ca.crt");
    }
    // The serving certificate is signed by that CA, for the Service's DNS name (what the
    // kube-apiserver checks when it dials the Service).
    let dir = temp_dir("ebb-chart-tls").unwrap();
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, &ca).unwrap();
    let verified = run_with_stdin(
        "openssl",
        &[
            "verify",
            "-CAfile",
            ca_path.to_str().unwrap(),
            "-verify_hostname",
            "metrics-api.monitoring.svc",
        ],
        &cert,
    );
    assert!(verified.contains("OK"), "{verified}");

    // Each APIService can be left out (KEDA may own external.metrics.k8s.io).
    let without_external = render(
        &bin,
        home.path(),
        &[],
        &["apiServices.externalV1beta1.enabled=false"],
    );
    assert_eq!(
        names_of_kind(&without_external, "APIService"),
        [
            "v1beta1.custom.metrics.k8s.io",
            "v1beta2.custom.metrics.k8s.io"
        ]
    );

    // cert-manager: a Certificate for the Service, and the cainjector fills every caBundle.
    let cert_manager = render(&bin, home.path(), &[], &["tls.mode=certManager"]);
    assert!(names_of_kind(&cert_manager, "Secret").is_empty());
    let certificate = find(&cert_manager, "Certificate", "metrics-api");
    assert_eq!(certificate["spec"]["secretName"], "metrics-api-tls");
    assert_eq!(
        certificate["spec"]["issuerRef"],
        json!({"kind": "Issuer", "name": "metrics-api-selfsigned"})
    );
    find(&cert_manager, "Issuer", "metrics-api-selfsigned");
    for api_service in cert_manager.iter().filter(|o| o["kind"] == "APIService") {
        assert_eq!(
            api_service["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "monitoring/metrics-api",
            "{api_service}"
        );
        assert!(
            api_service["spec"].get("caBundle").is_none(),
            "{api_service}"
        );
    }
    let cluster_issuer = render(
        &bin,
        home.path(),
        &[],
        &[
            "tls.mode=certManager",
            "tls.certManager.issuerRef.name=cluster-ca",
            "tls.certManager.issuerRef.kind=ClusterIssuer",
        ],
    );
    assert!(names_of_kind(&cluster_issuer, "Issuer").is_empty());
}

#[test]
fn metrics_api_chart_renders_a_hardened_two_replica_deployment_with_its_pdb_and_rbac() {
    let Some(bin) = helm_or_skip(
        "metrics_api_chart_renders_a_hardened_two_replica_deployment_with_its_pdb_and_rbac",
    ) else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    let objects = render(&bin, home.path(), &[], &[]);

    let deployment = find(&objects, "Deployment", "metrics-api");
    assert_eq!(deployment["spec"]["replicas"], 2, "{deployment}");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "metrics-api", "{pod}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{pod}");
    let container = &pod["containers"][0];
    assert_eq!(
        container["args"],
        json!([
            "metrics-api",
            "--secure-port=6443",
            "--metrics-port=8080",
            "--tls-cert-file=/var/run/serving-cert/tls.crt",
            "--tls-private-key-file=/var/run/serving-cert/tls.key",
        ]),
        "the built-in configuration by default: {container}"
    );
    assert_eq!(
        container["env"],
        json!([{"name": "EBB_REDIS_SERVER", "value": "redis-master:6379"}])
    );
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true, "{security}");
    assert_eq!(security["allowPrivilegeEscalation"], false, "{security}");
    assert_eq!(
        security["capabilities"]["drop"],
        json!(["ALL"]),
        "{security}"
    );
    for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")] {
        assert_eq!(
            container[probe]["httpGet"],
            json!({"path": path, "port": "https", "scheme": "HTTPS"}),
            "{probe}: {container}"
        );
    }
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        pod["volumes"][0],
        json!({"name": "serving-cert", "secret": {"secretName": "metrics-api-tls"}})
    );

    let pdb = find(&objects, "PodDisruptionBudget", "metrics-api");
    assert_eq!(pdb["spec"]["minAvailable"], 1, "{pdb}");
    let service = find(&objects, "Service", "metrics-api");
    assert_eq!(
        service["spec"]["ports"][0],
        json!({"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"})
    );

    // Delegated authentication and authorization, the front proxy's CA; nothing else.
    let delegator = find(
        &objects,
        "ClusterRoleBinding",
        "metrics-api:system:auth-delegator",
    );
    assert_eq!(delegator["roleRef"]["name"], "system:auth-delegator");
    let reader = find(&objects, "RoleBinding", "metrics-api-auth-reader");
    assert_eq!(reader["metadata"]["namespace"], "kube-system");
    assert_eq!(
        reader["roleRef"]["name"],
        "extension-apiserver-authentication-reader"
    );
    // `list` on the configured objects' resource (`*` with a labelSelector lists them), bound
    // only in the namespace the configuration names; rbac.listObjects=false drops it.
    assert_eq!(
        names_of_kind(&objects, "ClusterRole"),
        ["metrics-api-object-lister", "metrics-api-metrics-reader"],
    );
    assert_eq!(
        find(&objects, "ClusterRole", "metrics-api-object-lister")["rules"],
        json!([{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}])
    );
    let lister = find(&objects, "RoleBinding", "metrics-api-object-lister");
    assert_eq!(lister["metadata"]["namespace"], "default", "{lister}");
    assert_eq!(
        lister["subjects"],
        json!([{"kind": "ServiceAccount", "name": "metrics-api", "namespace": NAMESPACE}])
    );
    assert_eq!(
        names_of_kind(
            &render(&bin, home.path(), &[], &["rbac.listObjects=false"]),
            "ClusterRole"
        ),
        ["metrics-api-metrics-reader"]
    );
    let hpa = find(
        &objects,
        "ClusterRoleBinding",
        "metrics-api-hpa-metrics-reader",
    );
    assert_eq!(
        hpa["subjects"],
        json!([{"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}])
    );

    // A configuration file: a ConfigMap, mounted, --config, and a rollout when it changes.
    let configured = render(&bin, home.path(), &[], &["config.interval=2s"]);
    let config_map = find(&configured, "ConfigMap", "metrics-api");
    assert_eq!(
        config_map["data"]["metrics-api.yaml"]
            .as_str()
            .unwrap()
            .trim(),
        "interval: 2s"
    );
    let template = &find(&configured, "Deployment", "metrics-api")["spec"]["template"];
    let args = template["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    assert!(args.contains(&json!("--config=/etc/ebb/metrics-api.yaml")));
    assert_ne!(
        template["metadata"]["annotations"]["checksum/config"],
        deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    );

    // The ServiceMonitor: off by default, and only where the prometheus-operator API exists.
    assert!(names_of_kind(&objects, "ServiceMonitor").is_empty());
    let monitored = render(
        &bin,
        home.path(),
        &[SERVICE_MONITOR_API],
        &["serviceMonitor.enabled=true"],
    );
    let monitor = find(&monitored, "ServiceMonitor", "metrics-api");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert!(
        names_of_kind(
            &render(&bin, home.path(), &[], &["serviceMonitor.enabled=true"]),
            "ServiceMonitor"
        )
        .is_empty()
    );
}
