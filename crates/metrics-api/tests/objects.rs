//! `ebb metrics-api` against a real kube-apiserver for what it reads there: the objects `*`
//! with a `labelSelector` answers for (listed with the server's own account, which first lacks
//! the permission and then gets it), and the requestheader CA re-read from the
//! `kube-system/extension-apiserver-authentication` ConfigMap when it changes. One control
//! plane per test binary: every step runs in this one test, in order.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Client, HPA_HEADERS, RunningServer, TestCa, insecure_client};
use ebb_metrics_api::Config;
use ebb_testkit::control_plane::{self, ControlPlane};
use ebb_testkit::poll;
use ebb_testkit::redis::RedisServer;
use serde_json::json;

const CONFIG: &str = r#"
interval: 200ms
maxAge: 3s
firstReadWait: 2s
metrics:
  - name: redis_items_in_queue
    source: {redisList: {}}
    label: key
    keys: [padok, "jobs-*"]
    objects:
      - {resource: services, namespace: default, name: prometheus-redis-exporter}
      - {resource: services, namespace: default, name: "exporter-*"}
      - {resource: deployments.apps, namespace: default, name: "worker-*", key: "jobs-{{name}}"}
"#;

const OBJECTS: &str = r#"
apiVersion: v1
kind: List
items:
"#;

fn service(name: &str, app: &str) -> String {
    format!(
        r#"  - {{apiVersion: v1, kind: Service, metadata: {{name: {name}, namespace: default, labels: {{app: {app}}}}}, spec: {{ports: [{{port: 80}}]}}}}
"#
    )
}

fn deployment(name: &str, app: &str) -> String {
    format!(
        r#"  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: {name}, namespace: default, labels: {{app: {app}}}}}
    spec:
      replicas: 0
      selector: {{matchLabels: {{run: {name}}}}}
      template:
        metadata: {{labels: {{run: {name}}}}}
        spec: {{containers: [{{name: c, image: busybox}}]}}
"#
    )
}

/// A kubeconfig for the ServiceAccount `default/metrics-api` (a token), with no RBAC rights.
async fn service_account_kubeconfig(cp: &ControlPlane, dir: &Path) -> std::path::PathBuf {
    cp.kubectl(&["create", "serviceaccount", "metrics-api", "-n", "default"])
        .await
        .unwrap();
    let token = cp
        .kubectl(&[
            "create",
            "token",
            "metrics-api",
            "-n",
            "default",
            "--duration=1h",
        ])
        .await
        .unwrap();
    let mut config = cp
        .kubectl_json(&["config", "view", "--raw", "--minify", "--flatten"])
        .await
        .unwrap();
    config["users"][0]["user"] = json!({"token": token.trim()});
    let path = dir.join("metrics-api.kubeconfig");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Asks `path` until `check` accepts the answer or `timeout` passes (the test kit's
/// [`poll::until`]); the last answer either way, for the caller's assertion to show.
async fn eventually(
    client: &Client,
    path: &str,
    timeout: Duration,
    check: impl Fn(&common::Answer) -> bool,
) -> common::Answer {
    let last = std::cell::RefCell::new(None);
    let (seen, check) = (&last, &check);
    let accepted = poll::until(
        &format!("{path} to answer as expected"),
        timeout,
        || async move {
            let answer = client.get(path, &HPA_HEADERS).await;
            if check(&answer) {
                return Some(answer);
            }
            seen.replace(Some(answer));
            None
        },
    )
    .await;
    accepted.unwrap_or_else(|_| last.take().expect("at least one answer"))
}

/// `(name, key, value)` of each item of a MetricValueList.
fn items(answer: &common::Answer) -> Vec<(String, String, String)> {
    answer.json()["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {}", answer.body))
        .iter()
        .map(|item| {
            (
                item["describedObject"]["name"].as_str().unwrap().to_owned(),
                item["selector"]["matchLabels"]["key"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                item["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn owned(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect()
}

/// Sets the requestheader CA of the extension-apiserver-authentication ConfigMap to `pem`
/// (the kube-apiserver adds its own front-proxy CA back, which these clients do not use).
async fn set_requestheader_ca(cp: &ControlPlane, pem: &str) {
    let patch = json!({"data": {"requestheader-client-ca-file": pem}}).to_string();
    cp.kubectl(&[
        "patch",
        "configmap",
        "extension-apiserver-authentication",
        "-n",
        "kube-system",
        "--type=merge",
        "-p",
        &patch,
    ])
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_api_lists_the_objects_and_reloads_the_authentication_config_map() {
    let Some(cp) = control_plane::start_or_skip(
        "metrics_api_lists_the_objects_and_reloads_the_authentication_config_map",
        control_plane::Options::default(),
    )
    .await
    else {
        return;
    };
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config.yaml");
    std::fs::write(&config_file, CONFIG).unwrap();
    let mut objects = OBJECTS.to_owned();
    for (name, app) in [
        ("prometheus-redis-exporter", "exporter"),
        ("exporter-a", "exporter"),
        ("exporter-b", "exporter"),
        ("exporter-c", "other"),
        ("unlisted", "exporter"),
    ] {
        objects.push_str(&service(name, app));
    }
    for (name, app) in [
        ("worker-a", "worker"),
        ("worker-b", "worker"),
        ("other", "worker"),
    ] {
        objects.push_str(&deployment(name, app));
    }
    cp.apply(&objects).await.unwrap();
    let lister_kubeconfig = service_account_kubeconfig(&cp, dir.path()).await;
    redis.cli(&["RPUSH", "padok", "a", "b", "c"]);
    redis.cli(&["RPUSH", "jobs-worker-a", "a", "b"]);
    redis.cli(&["RPUSH", "jobs-other", "a"]);

    // Listing with the ServiceAccount's kubeconfig; authentication from the ConfigMap and
    // authorization with the admin's.
    let admin = cp.kubeconfig.display().to_string();
    let server = RunningServer::start(
        &[
            "--config",
            config_file.to_str().unwrap(),
            "--kubeconfig",
            lister_kubeconfig.to_str().unwrap(),
            "--authentication-kubeconfig",
            &admin,
            "--authorization-kubeconfig",
            &admin,
            "--redis-server",
            &redis.address(),
        ],
        Config::load(&config_file).unwrap(),
    )
    .await;
    let proxy = insecure_client(
        server.secure,
        Some((
            &cp.pki.join("front-proxy-client.crt"),
            &cp.pki.join("front-proxy-client.key"),
        )),
    );
    let services =
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/*/redis_items_in_queue";
    let exporters =
        format!("{services}?labelSelector=app%3Dexporter&metricLabelSelector=key%3Dpadok");

    // Without `list` on services, a clear refusal naming the permission.
    let answer = eventually(&proxy, &exporters, Duration::from_secs(10), |a| {
        a.code != 401
    })
    .await;
    assert_eq!(answer.code, 500, "{}", answer.body);
    eprintln!("refused list: {}", answer.body);
    assert_eq!(answer.json()["reason"], "InternalError");
    let message = answer.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(
            r#"grant its service account the RBAC permission list on "services" in API group "" in the namespace "default""#
        ),
        "{message}"
    );

    // Granted that (and the same on deployments.apps): the real objects the selector matches,
    // those the configuration allows (`unlisted` is not, `exporter-c` does not match).
    cp.apply(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: metrics-api-lister, namespace: default}
rules:
  - {apiGroups: [""], resources: [services], verbs: [list]}
  - {apiGroups: [apps], resources: [deployments], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: metrics-api-lister, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: metrics-api-lister}
subjects: [{kind: ServiceAccount, name: metrics-api, namespace: default}]
"#,
    )
    .await
    .unwrap();
    let answer = eventually(&proxy, &exporters, Duration::from_secs(10), |a| {
        a.code == 200
    })
    .await;
    assert_eq!(
        items(&answer),
        owned(&[
            ("exporter-a", "padok", "3"),
            ("exporter-b", "padok", "3"),
            ("prometheus-redis-exporter", "padok", "3")
        ]),
        "{}",
        answer.body
    );
    // A label added on the API server is seen by the next request.
    cp.kubectl(&[
        "label",
        "service",
        "exporter-c",
        "app=exporter",
        "--overwrite",
    ])
    .await
    .unwrap();
    let answer = proxy.get(&exporters, &HPA_HEADERS).await;
    assert_eq!(
        items(&answer).len(),
        4,
        "exporter-c now matches: {}",
        answer.body
    );
    // The same list asked as client-go's custom metrics client asks it: `*` escaped as `%2A`.
    let escaped = proxy
        .get(&exporters.replace("/*/", "/%2A/"), &HPA_HEADERS)
        .await;
    assert_eq!(
        (escaped.code, items(&escaped)),
        (200, items(&answer)),
        "{}",
        escaped.body
    );
    // A selector that matches nothing: an empty list. A malformed one: 400.
    let answer = proxy
        .get(
            &format!("{services}?labelSelector=app%3Dnone"),
            &HPA_HEADERS,
        )
        .await;
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.json()["items"], json!([]));
    let answer = proxy
        .get(&format!("{services}?labelSelector=app+in+(a"), &HPA_HEADERS)
        .await;
    assert_eq!(answer.code, 400, "{}", answer.body);
    assert_eq!(
        answer.json()["message"],
        r#"invalid labelSelector: "app in (a": a `(` is not closed"#
    );

    // One key per object, as the configuration maps it (`jobs-{{name}}`): worker-a and
    // worker-b, not `other` (its name is not allowed, though its key has items).
    let workers = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/deployments.apps/*/redis_items_in_queue?labelSelector=app%3Dworker";
    let answer = eventually(&proxy, workers, Duration::from_secs(5), |a| {
        a.body.contains(r#""value":"2""#)
    })
    .await;
    let listed: Vec<_> = answer.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["describedObject"].clone(),
                item["metric"]["selector"]["matchLabels"]["key"].clone(),
                item["value"].clone(),
            )
        })
        .collect();
    let worker = |name: &str| json!({"kind": "Deployment", "namespace": "default", "name": name, "apiVersion": "apps/v1"});
    assert_eq!(
        listed,
        [
            (worker("worker-a"), json!("jobs-worker-a"), json!("2")),
            (worker("worker-b"), json!("jobs-worker-b"), json!("0")),
        ],
        "{}",
        answer.body
    );
    let answer = proxy
        .get(
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/deployments.apps/worker-a/redis_items_in_queue",
            &HPA_HEADERS,
        )
        .await;
    assert_eq!(
        items(&answer),
        owned(&[("worker-a", "jobs-worker-a", "2")]),
        "a pattern's object by name: {}",
        answer.body
    );

    // The requestheader CA changed in the ConfigMap: the new one accepted, the old refused,
    // within the reload period (10 s) and without a restart.
    let first_ca = TestCa::new(dir.path(), "proxy-ca-1");
    let (cert, key) = first_ca.issue("front-proxy-client", &[]);
    let first = insecure_client(server.secure, Some((&cert, &key)));
    let second_ca = TestCa::new(dir.path(), "proxy-ca-2");
    let (cert, key) = second_ca.issue("front-proxy-client", &[]);
    let second = insecure_client(server.secure, Some((&cert, &key)));
    let seed = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue";
    assert_eq!(first.get(seed, &HPA_HEADERS).await.code, 401);
    for (ca, new, old) in [
        (&first_ca, &first, None),
        (&second_ca, &second, Some(&first)),
    ] {
        let pem = std::fs::read_to_string(ca.cert_file()).unwrap();
        let changed = Instant::now();
        set_requestheader_ca(&cp, &pem).await;
        let answer = eventually(new, seed, Duration::from_secs(15), |a| a.code == 200).await;
        let took = changed.elapsed();
        assert_eq!(answer.code, 200, "the new CA's client: {}", answer.body);
        eprintln!(
            "{} accepted {took:?} after the ConfigMap changed",
            ca.cert_file().display()
        );
        assert!(
            took < Duration::from_secs(12),
            "accepted {took:?} after the change"
        );
        if let Some(old) = old {
            let answer = old.get(seed, &HPA_HEADERS).await;
            assert_eq!(answer.code, 401, "the old CA's client: {}", answer.body);
        }
    }

    // An API server that never answers the list: 503 after the bound (3 s), no longer.
    let unanswered = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut hanging = cp
        .kubectl_json(&["config", "view", "--raw", "--minify", "--flatten"])
        .await
        .unwrap();
    hanging["clusters"][0]["cluster"]["server"] =
        json!(format!("https://{}", unanswered.local_addr().unwrap()));
    let hanging_kubeconfig = dir.path().join("hanging.kubeconfig");
    std::fs::write(&hanging_kubeconfig, hanging.to_string()).unwrap();
    let hanging_server = RunningServer::start(
        &[
            "--config",
            config_file.to_str().unwrap(),
            "--kubeconfig",
            hanging_kubeconfig.to_str().unwrap(),
            "--authentication-kubeconfig",
            &admin,
            "--authorization-kubeconfig",
            &admin,
            "--redis-server",
            &redis.address(),
        ],
        Config::load(&config_file).unwrap(),
    )
    .await;
    let started = Instant::now();
    let answer = insecure_client(
        hanging_server.secure,
        Some((
            &dir.path().join("proxy-ca-2-front-proxy-client.crt"),
            &dir.path().join("proxy-ca-2-front-proxy-client.key"),
        )),
    )
    .get(&exporters, &HPA_HEADERS)
    .await;
    let waited = started.elapsed();
    assert_eq!(answer.code, 503, "{}", answer.body);
    assert!(
        answer
            .body
            .contains("the API server did not answer within 3s"),
        "{}",
        answer.body
    );
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(4)).contains(&waited),
        "waited {waited:?}"
    );
    hanging_server.stop().await.unwrap();
    drop(unanswered);

    // Stopping: a request in flight is answered (a new key's first read, Redis frozen: it
    // waits firstReadWait, 2 s, then says 503), and an idle HTTP/2 client that does not read
    // (no GOAWAY exchange) holds nothing up once no request is in flight.
    assert!(
        second
            .readyz_h2_then_go_silent(Duration::from_secs(30))
            .await
    );
    redis.pause();
    let in_flight = tokio::spawn({
        let second = second.clone();
        async move {
            second
                .get(
                    &format!("{seed}?metricLabelSelector=key%3Djobs-slow"),
                    &HPA_HEADERS,
                )
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    server.stop().await.unwrap();
    let stopped_after = stopping.elapsed();
    let answer = in_flight.await.unwrap();
    redis.unpause();
    eprintln!("stopped {stopped_after:?} after the request to stop");
    assert_eq!(
        answer.code, 503,
        "the in-flight request is answered: {}",
        answer.body
    );
    assert!(
        answer.body.contains("jobs-slow: not read yet"),
        "{}",
        answer.body
    );
    assert!(
        (Duration::from_millis(1500)..Duration::from_millis(2500)).contains(&stopped_after),
        "stopped {stopped_after:?} after the request: once the in-flight answer is sent, not when the idle client goes"
    );
}
