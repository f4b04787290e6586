//! The producer, consumer and Redis charts as rendered: resource requests and limits by
//! default, no service-account token in pods that never call the API, an optional
//! NetworkPolicy each, and for Redis a password from a Secret, persistence on a claim and a
//! `maxmemory` that never evicts. Each new value also passes `helm lint --strict`.

use ebb_e2e::charts;
use ebb_e2e::daemon::temp_dir;
use ebb_testkit::control_plane;
use serde_json::{Value, json};

fn find<'a>(objects: &'a [Value], kind: &str) -> Option<&'a Value> {
    objects.iter().find(|object| object["kind"] == kind)
}

fn pod(objects: &[Value]) -> &Value {
    let deployment = find(objects, "Deployment")
        .unwrap_or_else(|| panic!("no Deployment in {:?}", charts::identities(objects)));
    &deployment["spec"]["template"]["spec"]
}

#[test]
fn producer_consumer_and_redis_charts_set_resources_no_token_and_an_optional_network_policy() {
    let Some(bin) = control_plane::require(
        "producer_consumer_and_redis_charts_set_resources_no_token_and_an_optional_network_policy",
    ) else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    for chart in ["producer", "consumer", "redis"] {
        let objects = charts::render(&bin, home.path(), chart, "default", &[], &[]).unwrap();
        let spec = pod(&objects);
        assert_eq!(
            spec["automountServiceAccountToken"],
            json!(false),
            "{chart}"
        );
        let resources = &spec["containers"][0]["resources"];
        for field in ["/requests/cpu", "/requests/memory", "/limits/memory"] {
            assert!(
                resources.pointer(field).is_some_and(Value::is_string),
                "{chart}: no {field} in {resources}"
            );
        }
        assert!(
            find(&objects, "NetworkPolicy").is_none(),
            "{chart}: off by default"
        );

        let set = ["networkPolicy.enabled=true"];
        charts::lint_with(&bin, home.path(), chart, &set).unwrap();
        let objects = charts::render(&bin, home.path(), chart, "default", &[], &set).unwrap();
        let policy = find(&objects, "NetworkPolicy").expect("a NetworkPolicy when enabled");
        let selector = &find(&objects, "Deployment").unwrap()["spec"]["selector"]["matchLabels"];
        assert_eq!(
            &policy["spec"]["podSelector"]["matchLabels"], selector,
            "{chart}"
        );
        assert_eq!(
            policy["spec"]["ingress"][0]["from"],
            json!([{"podSelector": {}}]),
            "{chart}: the release's namespace by default"
        );
        if chart != "redis" {
            assert_eq!(
                policy["spec"]["egress"][0]["ports"],
                json!([{"port": 6379, "protocol": "TCP"}]),
                "{chart}: Redis only, and DNS"
            );
        }
    }
}

#[test]
fn the_redis_chart_takes_its_password_from_a_secret_and_can_persist() {
    let Some(bin) =
        control_plane::require("the_redis_chart_takes_its_password_from_a_secret_and_can_persist")
    else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    let plain = charts::render(&bin, home.path(), "redis", "default", &[], &[]).unwrap();
    let container = &pod(&plain)["containers"][0];
    let args = container["args"].as_array().unwrap();
    assert!(args.contains(&json!("noeviction")), "{args:?}");
    assert!(!args.contains(&json!("--requirepass")), "{args:?}");
    assert_eq!(pod(&plain)["volumes"][0]["emptyDir"], json!({}));
    assert!(find(&plain, "PersistentVolumeClaim").is_none());

    let set = [
        "auth.enabled=true",
        "auth.existingSecret=redis-auth",
        "persistence.enabled=true",
        "persistence.storageClass=fast",
    ];
    charts::lint_with(&bin, home.path(), "redis", &set).unwrap();
    let secured = charts::render(&bin, home.path(), "redis", "default", &[], &set).unwrap();
    let spec = pod(&secured);
    let container = &spec["containers"][0];
    assert_eq!(
        container["env"],
        json!([{"name": "REDISCLI_AUTH", "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "password"}}}]),
        "the password comes from the Secret, for Redis and its probe's redis-cli"
    );
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        args.windows(2)
            .any(|pair| pair == ["--requirepass", "$(REDISCLI_AUTH)"]),
        "{args:?}"
    );
    assert!(
        args.windows(2).any(|pair| pair == ["--appendonly", "yes"]),
        "{args:?}"
    );
    let claim = find(&secured, "PersistentVolumeClaim").expect("a claim when persistent");
    assert_eq!(claim["spec"]["storageClassName"], "fast");
    assert_eq!(
        spec["volumes"][0]["persistentVolumeClaim"]["claimName"],
        claim["metadata"]["name"]
    );

    // Auth without a Secret's name is refused, naming the value.
    let error = charts::render(
        &bin,
        home.path(),
        "redis",
        "default",
        &[],
        &["auth.enabled=true"],
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("auth.existingSecret"), "{error}");
}

#[test]
fn producer_and_consumer_read_the_redis_address_from_a_secret_when_given() {
    let Some(bin) = control_plane::require(
        "producer_and_consumer_read_the_redis_address_from_a_secret_when_given",
    ) else {
        return;
    };
    let home = temp_dir("ebb-helm").unwrap();
    let set = [
        "redis.serverSecret.name=queue",
        "redis.serverSecret.key=url",
    ];
    for chart in ["producer", "consumer"] {
        charts::lint_with(&bin, home.path(), chart, &set).unwrap();
        let objects = charts::render(&bin, home.path(), chart, "default", &[], &set).unwrap();
        let container = &pod(&objects)["containers"][0];
        // The consumer's env also names it after its pod (chart_probes.rs checks that).
        let redis_server: Vec<&Value> = container["env"]
            .as_array()
            .unwrap_or_else(|| panic!("{chart}: no env in {container}"))
            .iter()
            .filter(|variable| variable["name"] == "EBB_REDIS_SERVER")
            .collect();
        assert_eq!(
            redis_server,
            [
                &json!({"name": "EBB_REDIS_SERVER", "valueFrom": {"secretKeyRef": {"name": "queue", "key": "url"}}})
            ],
            "{chart}"
        );
        let args = container["args"].as_array().unwrap();
        assert!(
            !args.iter().any(|arg| arg
                .as_str()
                .is_some_and(|arg| arg.starts_with("--redis-server"))),
            "{chart}: the flag would win over the variable: {args:?}"
        );
    }
}
