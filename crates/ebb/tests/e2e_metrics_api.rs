//! `ebb metrics-api` on a real kube-apiserver, installed from `helm/charts/metrics-api`: the
//! APIServices become Available with the chart's caBundle; discovery and every route answer
//! in the upstream shapes, decoded by the HPA's own Go client library (`tools/metrics-check`)
//! and strictly by the upstream types; the dojo's `kubectl get --raw` commands; Status errors;
//! and the aggregated server's security, straight (401 without the front proxy's certificate,
//! 403 for a user the SubjectAccessReview denies) and through the kube-apiserver (its own RBAC
//! refuses first). The HPA driven by it is `e2e_metrics_api_hpa.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ebb_e2e::daemon::temp_dir;
use ebb_e2e::load::{Tls, fetch};
use ebb_e2e::metrics_api::{
    API_SERVICES, MetricsApi, MetricsCheck, SERVICE_ACCOUNT, SERVICE_DNS_NAME,
};
use ebb_testkit::control_plane::{Options, start_or_skip};
use ebb_testkit::redis::RedisServer;
use serde_json::Value;

const DOJO_PATH: &str = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue";
const HPA: &str = "system:serviceaccount:kube-system:horizontal-pod-autoscaler";

/// The dojo's metric, on three Services (`*` lists them), a namespace and a node (root-scoped),
/// with an exact key and a pattern, served as an external metric in `default`.
const CONFIG: &str = r#"
interval: 1s
metrics:
  - name: redis_items_in_queue
    source: {redisList: {}}
    label: key
    keys: [padok, "jobs-*"]
    objects:
      - {resource: services, namespace: default, name: prometheus-redis-exporter}
      - {resource: services, namespace: default, name: other-exporter}
      - {resource: services, namespace: default, name: unrelated}
      - {resource: namespaces, name: default}
      - {resource: nodes, name: node-a}
    external:
      namespaces: [default]
"#;

/// The oracle's items (v1beta2 shape: the client converts v1beta1 answers) of a custom query.
async fn custom(check: &MetricsCheck<'_>, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--content-type=application/json", "custom"];
    all.extend_from_slice(args);
    let checked = check.run(&all).await.unwrap();
    let items = checked.result()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for response in checked.document["responses"].as_array().unwrap() {
        assert_eq!(response["strict"], "ok", "{all:?}: {response}");
    }
    items
}

fn values(items: &[Value]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|item| {
            (
                item["describedObject"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                item["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A client certificate signed by the front proxy's CA, for a CN it does not allow.
fn intruder_certificate(pki: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("intruder.key");
    let csr = dir.join("intruder.csr");
    let cert = dir.join("intruder.crt");
    // Extensions make it an X.509 v3 client certificate, like the front proxy's own.
    let extensions = dir.join("intruder.ext");
    std::fs::write(
        &extensions,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let output = Command::new("openssl").args(args).output().unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let s = |path: &Path| path.display().to_string();
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &s(&key),
    ]);
    run(&[
        "req",
        "-new",
        "-key",
        &s(&key),
        "-subj",
        "/CN=intruder",
        "-out",
        &s(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&pki.join("front-proxy-ca.crt")),
        "-CAkey",
        &s(&pki.join("front-proxy-ca.key")),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &s(&extensions),
        "-out",
        &s(&cert),
    ]);
    (cert, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_metrics_api_serves_every_route_in_upstream_shapes_behind_front_proxy_auth() {
    let test = "e2e_metrics_api_serves_every_route_in_upstream_shapes_behind_front_proxy_auth";
    let Some(control_plane) = start_or_skip(test, Options::default()).await else {
        return;
    };
    let dir = temp_dir("ebb-metrics-api").unwrap();
    let redis = RedisServer::start();
    let config = dir.path().join("metrics-api.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let server = MetricsApi::start(
        &control_plane,
        Path::new(env!("CARGO_BIN_EXE_ebb")),
        &redis.address(),
        &[],
        &[&format!("--config={}", config.display())],
        false,
        dir.path(),
    )
    .await
    .unwrap();
    for name in API_SERVICES {
        let condition = ebb_e2e::metrics_api::available_condition(&control_plane, name)
            .await
            .unwrap();
        assert_eq!(condition["status"], "True", "{name}: {condition}");
    }

    // The kube-apiserver downloads the server's OpenAPI and aggregates its discovery for itself,
    // as `system:aggregator` with no X-Remote-Group (so only the group every authenticated
    // user is in lets the SubjectAccessReview allow it): the server's own request counts show
    // those requests answered 200, and nothing refused (no request of this test so far is one
    // the server should refuse).
    let answered = control_plane
        .wait_for(
            "the kube-apiserver's OpenAPI and discovery requests answered 200",
            std::time::Duration::from_secs(30),
            || async {
                let counts = server
                    .requests_by_route_and_code()
                    .await
                    .map_err(|error| error.to_string())?;
                let ok = |route: &str| counts.get(&(route.to_owned(), 200)).copied().unwrap_or(0);
                if ok("openapi") > 0 && ok("discovery") > 0 {
                    Ok(Some(counts))
                } else {
                    Err(format!("requests by (route, code): {counts:?}"))
                }
            },
        )
        .await;
    let counts = answered.unwrap_or_else(|error| panic!("{error}\n{}", server.log()));
    let refused: Vec<_> = counts
        .iter()
        .filter(|((_, code), _)| *code >= 400)
        .collect();
    assert!(
        refused.is_empty(),
        "the server refused requests nobody should be refused: {refused:?}\n{}",
        server.log()
    );
    // And the kube-apiserver logs no error about the groups in a quiet moment.
    let log = control_plane.dir().join("logs/kube-apiserver.log");
    let errors_about_us = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.starts_with('E') && line.contains(".metrics.k8s.io"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let before = errors_about_us().len();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let errors = errors_about_us();
    assert!(
        errors.len() == before,
        "the kube-apiserver still logs errors about the metrics APIs:\n{}",
        errors[before..].join("\n")
    );

    // The chart's RBAC is enough for the server (it runs with the ServiceAccount's token) and
    // no more than it needs; the HPA may read both groups.
    for (check, expected) in [
        // Cluster-scoped: asked of no namespace (in one, kubectl warns that the namespace
        // means nothing, and ControlPlane::can_i takes no answer that comes with a warning).
        (
            "create subjectaccessreviews.authorization.k8s.io --all-namespaces",
            true,
        ),
        (
            "get configmap/extension-apiserver-authentication -n kube-system",
            true,
        ),
        ("get secrets -n kube-system", false),
        // `*` with a labelSelector lists the configured resource where it is configured.
        ("list services -n default", true),
        ("list services -n kube-system", false),
        ("patch deployments.apps -n default", false),
    ] {
        assert_eq!(
            control_plane.can_i(SERVICE_ACCOUNT, check).await.unwrap(),
            expected,
            "{check}"
        );
    }
    redis.cli(&["RPUSH", "padok", "a", "b", "c", "d", "e", "f", "g"]);
    redis.cli(&["RPUSH", "jobs-a", "1", "2", "3"]);
    let check = MetricsCheck::new(&control_plane);

    // Discovery, as the HPA's client reads it (protobuf asked for, JSON accepted) and in JSON,
    // every body strictly decoded.
    let hpa_like = check.run(&["discovery"]).await.unwrap();
    assert_eq!(
        hpa_like.result()["preferredCustomVersion"],
        "custom.metrics.k8s.io/v1beta2"
    );
    let discovery = check
        .run(&["--content-type=application/json", "discovery"])
        .await
        .unwrap();
    let result = discovery.result();
    for response in discovery.document["responses"].as_array().unwrap() {
        assert_eq!(response["strict"], "ok", "{response}");
    }
    for version in ["v1beta1", "v1beta2"] {
        let list = &result["resources"][format!("custom.metrics.k8s.io/{version}")];
        let resources = list["resources"]
            .as_array()
            .unwrap_or_else(|| panic!("{result}"));
        let mut entries: Vec<(String, bool, String, String)> = resources
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_owned(),
                    r["namespaced"].as_bool().unwrap(),
                    r["kind"].as_str().unwrap().to_owned(),
                    r["verbs"].to_string(),
                )
            })
            .collect();
        entries.sort();
        let entry = |name: &str, namespaced| {
            (
                name.to_owned(),
                namespaced,
                "MetricValueList".to_owned(),
                r#"["get"]"#.to_owned(),
            )
        };
        assert_eq!(
            entries,
            [
                entry("namespaces/redis_items_in_queue", false),
                entry("nodes/redis_items_in_queue", false),
                entry("services/redis_items_in_queue", true),
            ],
            "{version}: {list}"
        );
    }
    let external = &result["resources"]["external.metrics.k8s.io/v1beta1"]["resources"];
    assert_eq!(external[0]["name"], "redis_items_in_queue", "{external}");
    assert_eq!(external[0]["kind"], "ExternalMetricValueList", "{external}");

    // Values are read once per second: wait for the pushes to show, then every route agrees.
    control_plane
        .wait_for(
            "the pushed items to be read",
            std::time::Duration::from_secs(10),
            || async {
                let answer = control_plane
                    .raw(&format!("{DOJO_PATH}?metricLabelSelector=key%3Djobs-a"))
                    .await
                    .map_err(|e| e.to_string())?;
                let padok = control_plane
                    .raw(DOJO_PATH)
                    .await
                    .map_err(|e| e.to_string())?;
                if answer["items"][0]["value"] == "3" && padok["items"][0]["value"] == "7" {
                    Ok(Some(()))
                } else {
                    Err(format!("{answer} {padok}"))
                }
            },
        )
        .await
        .unwrap();

    // A named object, both versions, with metricLabelSelector; the exact key and a key the
    // pattern allows (polled once asked for); a missing key is 0.
    for version in ["--version=v1beta1", "--version=v1beta2"] {
        for (selector, expected) in [
            ("key=padok", "7"),
            ("key=jobs-a", "3"),
            ("key=jobs-none", "0"),
        ] {
            let items = custom(
                &check,
                &[
                    version,
                    "--kind=Service",
                    "--namespace=default",
                    "--name=prometheus-redis-exporter",
                    "--metric=redis_items_in_queue",
                    &format!("--metric-selector={selector}"),
                ],
            )
            .await;
            assert_eq!(items.len(), 1, "{version} {selector}: {items:?}");
            let item = &items[0];
            assert_eq!(item["value"], expected, "{version} {selector}: {item}");
            assert_eq!(item["metric"]["name"], "redis_items_in_queue", "{item}");
            let key = selector.trim_start_matches("key=");
            assert_eq!(
                item["metric"]["selector"]["matchLabels"]["key"], key,
                "{version}: {item}"
            );
            assert_eq!(item["describedObject"]["kind"], "Service", "{item}");
            assert_eq!(item["describedObject"]["namespace"], "default", "{item}");
            assert_eq!(item["describedObject"]["apiVersion"], "v1", "{item}");
        }
    }

    // `*` with a labelSelector: the Services the API server lists with it, those configured.
    let service = |name: &str, app: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "spec": {"ports": [{"port": 80}]}})
    };
    control_plane
        .apply(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
                service("prometheus-redis-exporter", "exporter"),
                service("other-exporter", "exporter"),
                service("unrelated", "web"),
                service("unconfigured", "exporter"),
            ]})
            .to_string(),
        )
        .await
        .unwrap();
    for version in ["--version=v1beta1", "--version=v1beta2"] {
        let items = custom(
            &check,
            &[
                version,
                "--kind=Service",
                "--namespace=default",
                "--selector=app=exporter",
                "--metric=redis_items_in_queue",
                "--metric-selector=key=padok",
            ],
        )
        .await;
        let mut seen = values(&items);
        seen.sort();
        assert_eq!(
            seen,
            [
                ("other-exporter".to_owned(), "7".to_owned()),
                ("prometheus-redis-exporter".to_owned(), "7".to_owned())
            ],
            "{version}: {items:?}"
        );
    }

    // Root-scoped: a namespace itself, and a cluster-scoped object.
    for (kind, name) in [
        ("--kind=Namespace", "--name=default"),
        ("--kind=Node", "--name=node-a"),
    ] {
        for version in ["--version=v1beta1", "--version=v1beta2"] {
            let items = custom(
                &check,
                &[
                    version,
                    kind,
                    name,
                    "--metric=redis_items_in_queue",
                    "--metric-selector=key=padok",
                ],
            )
            .await;
            assert_eq!(values(&items)[0].1, "7", "{kind} {version}: {items:?}");
            assert_eq!(
                items[0]["describedObject"]["namespace"],
                Value::Null,
                "{items:?}"
            );
        }
    }

    // External: metricLabels carry the key.
    let external = check
        .run(&[
            "--content-type=application/json",
            "external",
            "--namespace=default",
            "--metric=redis_items_in_queue",
            "--selector=key=padok",
        ])
        .await
        .unwrap();
    let items = external.result()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["metricName"], "redis_items_in_queue");
    assert_eq!(
        items[0]["metricLabels"],
        serde_json::json!({"key": "padok"})
    );
    assert_eq!(items[0]["value"], "7");
    assert_eq!(
        external.document["responses"][0]["strict"], "ok",
        "{}",
        external.document
    );

    // Errors as Status objects, decoded by the client: unknown metric, object not configured,
    // key the configuration does not allow, namespace not served externally.
    for (args, code) in [
        (
            vec![
                "custom",
                "--kind=Service",
                "--namespace=default",
                "--name=prometheus-redis-exporter",
                "--metric=nope",
            ],
            404,
        ),
        (
            vec![
                "custom",
                "--kind=Service",
                "--namespace=default",
                "--name=redis-master",
                "--metric=redis_items_in_queue",
            ],
            404,
        ),
        (
            vec![
                "custom",
                "--kind=Service",
                "--namespace=default",
                "--name=prometheus-redis-exporter",
                "--metric=redis_items_in_queue",
                "--metric-selector=key=secrets",
            ],
            404,
        ),
        (
            vec![
                "external",
                "--namespace=kube-system",
                "--metric=redis_items_in_queue",
            ],
            404,
        ),
    ] {
        let mut all = vec!["--content-type=application/json"];
        all.extend(args.iter().copied());
        let checked = check.run(&all).await.unwrap();
        assert!(!checked.ok, "{args:?}: {}", checked.document);
        assert_eq!(checked.code(), code, "{args:?}: {}", checked.document);
        assert_eq!(
            checked.document["responses"][0]["strict"], "ok",
            "{}",
            checked.document
        );
    }

    // The dojo's own commands: with the HPA's metricLabelSelector, and the seed's selector-less
    // one (one item per configured exact key); a missing list is 0.
    let with_selector = format!("{DOJO_PATH}?metricLabelSelector=key%3Dpadok");
    let answer = control_plane.raw(&with_selector).await.unwrap();
    assert_eq!(answer["kind"], "MetricValueList", "{answer}");
    assert_eq!(
        answer["apiVersion"], "custom.metrics.k8s.io/v1beta1",
        "{answer}"
    );
    assert_eq!(
        answer["items"][0]["metricName"], "redis_items_in_queue",
        "{answer}"
    );
    assert_eq!(answer["items"][0]["value"], "7", "{answer}");
    let seed = control_plane.raw(DOJO_PATH).await.unwrap();
    assert_eq!(seed["items"].as_array().map(Vec::len), Some(1), "{seed}");
    assert_eq!(seed["items"][0]["value"], "7", "{seed}");
    redis.cli(&["DEL", "padok"]);
    control_plane
        .wait_for(
            "the emptied list to read 0",
            std::time::Duration::from_secs(10),
            || async {
                let answer = control_plane
                    .raw(&with_selector)
                    .await
                    .map_err(|e| e.to_string())?;
                if answer["items"][0]["value"] == "0" {
                    Ok(Some(()))
                } else {
                    Err(answer.to_string())
                }
            },
        )
        .await
        .unwrap();
    let malformed = control_plane
        .kubectl(&[
            "get",
            "--raw",
            &format!("{DOJO_PATH}?metricLabelSelector=key%3D%3D%3D"),
        ])
        .await
        .unwrap_err()
        .to_string();
    assert!(malformed.contains("BadRequest"), "{malformed}");

    // The HPA's ServiceAccount may read both groups (the chart's reader role), through the
    // kube-apiserver and the server's SubjectAccessReview alike.
    for path in [
        with_selector.as_str(),
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/redis_items_in_queue?labelSelector=key%3Dpadok",
    ] {
        let answer = control_plane
            .kubectl(&["get", "--raw", path, &format!("--as={HPA}")])
            .await
            .unwrap();
        assert!(answer.contains(r#""value":"0""#), "{path}: {answer}");
    }

    // Through the kube-apiserver, a user without RBAC is refused there, before the server.
    let refused = control_plane
        .kubectl(&["get", "--raw", &with_selector, "--as=nobody"])
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("Forbidden"), "{refused}");
    assert!(refused.contains("custom.metrics.k8s.io"), "{refused}");

    // Straight to the server: probes need no certificate; the API does.
    let trust = |client_cert: Option<(PathBuf, PathBuf)>| Tls {
        ca: Some(server.ca_file.clone()),
        server_name: Some(SERVICE_DNS_NAME.into()),
        client_cert,
    };
    for probe in ["/healthz", "/livez", "/readyz"] {
        let (status, body) = fetch(&server.url(probe), &trust(None), &[]).await.unwrap();
        assert_eq!(status, 200, "{probe}: {body}");
    }
    let api = server.url(&with_selector);
    let (status, body) = fetch(&api, &trust(None), &[("X-Remote-User", HPA)])
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    let status_object: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status_object["kind"], "Status", "{body}");
    assert_eq!(status_object["code"], 401, "{body}");
    // Signed by the front proxy's CA, but not a name the ConfigMap allows.
    let intruder = intruder_certificate(&control_plane.pki, dir.path());
    let (status, body) = fetch(&api, &trust(Some(intruder)), &[("X-Remote-User", HPA)])
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    // The front proxy's own certificate: the user is whoever X-Remote-User says, and the
    // SubjectAccessReview decides.
    let front_proxy = Some((
        control_plane.pki.join("front-proxy-client.crt"),
        control_plane.pki.join("front-proxy-client.key"),
    ));
    let (status, body) = fetch(
        &api,
        &trust(front_proxy.clone()),
        &[("X-Remote-User", "nobody")],
    )
    .await
    .unwrap();
    assert_eq!(status, 403, "{body}");
    let status_object: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status_object["reason"], "Forbidden", "{body}");
    let (status, body) = fetch(
        &api,
        &trust(front_proxy.clone()),
        &[
            ("X-Remote-User", HPA),
            ("X-Remote-Group", "system:serviceaccounts"),
            ("X-Remote-Group", "system:authenticated"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");

    // Its own metrics, on the plain port.
    let metrics = reqwest::get(server.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for family in [
        "ebb_metrics_api_requests_total",
        "ebb_metrics_api_request_duration_seconds",
        "ebb_metrics_api_cache_age_seconds",
    ] {
        assert!(metrics.contains(family), "no {family} in:\n{metrics}");
    }
    drop(server);
}
