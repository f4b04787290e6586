//! The configuration file is checked at start: each mistake is one line naming the file, the
//! line and the field, and the built-in configuration is the dojo's.

use ebb_metrics_api::{Config, DEFAULT_CONFIG, Error};

fn refused(text: &str) -> String {
    match Config::parse(text, "config.yaml") {
        Err(error @ Error::Config { .. }) => error.to_string(),
        other => panic!("expected a located error, got {other:?}"),
    }
}

const GOOD_METRIC: &str = "metrics:
  - name: m
    source: {redisList: {}}
    label: key
    keys: [padok]
    objects: [{resource: services, namespace: default, name: s}]
";

#[test]
fn the_builtin_configuration_parses_and_a_written_copy_is_the_same() {
    let builtin = Config::builtin();
    assert_eq!(Config::parse(DEFAULT_CONFIG, "copy.yaml").unwrap(), builtin);
    assert_eq!(builtin.metrics[0].name, "redis_items_in_queue");
}

#[test]
fn mistakes_name_file_line_and_field() {
    for (text, expected) in [
        (
            format!("interval: soon\n{GOOD_METRIC}"),
            "config.yaml:1: interval: ",
        ),
        (
            format!("maxAge: 0s\n{GOOD_METRIC}"),
            "config.yaml:1: maxAge: must be above 0",
        ),
        (
            GOOD_METRIC.replace("keys: [padok]", "keys: []"),
            "config.yaml:3: metrics[0].keys: no key allowed",
        ),
        (
            GOOD_METRIC.replace("name: m", "name: a/b"),
            "config.yaml:2: metrics[0].name: \"a/b\" is not a metric name",
        ),
        (
            GOOD_METRIC.replace("namespace: default", "namespace: Default"),
            "config.yaml:6: metrics[0].objects[0].namespace: \"Default\" is not a namespace name",
        ),
        (
            GOOD_METRIC.replace("resource: services", "resource: Services"),
            "config.yaml:6: metrics[0].objects[0].resource: \"Services\" is not a plural resource",
        ),
        (
            GOOD_METRIC.replace("name: s}", "name: \"s/*\"}"),
            "config.yaml:6: metrics[0].objects[0].name: \"s/*\" is not an object name or a pattern",
        ),
        (
            GOOD_METRIC.replace("name: s}", "name: \"w-*\", key: \"jobs-{{kind}}\"}"),
            "config.yaml:6: metrics[0].objects[0].key: unknown template field {{kind}} (known: {{name}}, {{namespace}})",
        ),
        (
            GOOD_METRIC.replace("    label: key\n", ""),
            "config.yaml:3: metrics[0].label: a Redis source needs `label`",
        ),
        (
            GOOD_METRIC.replace(
                "{redisList: {}}",
                "{prometheus: {server: \"http://p:9090\", query: \"x{a=\\\"{{nme}}\\\"}\", emptyResult: zero}}",
            ),
            "config.yaml:3: metrics[0].source.prometheus.query: unknown template field {{nme}}",
        ),
        (
            GOOD_METRIC.replace(
                "{redisList: {}}",
                "{prometheus: {query: \"x\", emptyResult: zero}}",
            ),
            "config.yaml:3: metrics[0].source.prometheus: no server, and no top-level `prometheus` to default to",
        ),
        (
            GOOD_METRIC.replace(
                "{redisList: {}}",
                "{prometheus: {server: \"https://p\", query: \"x\", emptyResult: zero}}",
            ),
            "config.yaml:3: metrics[0].source.prometheus.server: \"https://p\" is not an http:// URL",
        ),
        (
            GOOD_METRIC.replace(
                "    objects: [{resource: services, namespace: default, name: s}]\n",
                "",
            ),
            "config.yaml:2: metrics[0].name: served nowhere",
        ),
        (
            format!("{GOOD_METRIC}{}", &GOOD_METRIC["metrics:\n".len()..]),
            "config.yaml:7: metrics[1].name: \"m\" is configured twice",
        ),
        (
            GOOD_METRIC.replace("label: key", "lable: key"),
            "config.yaml:4: unknown field `lable`",
        ),
        (
            GOOD_METRIC.replace("{redisList: {}}", "{redisHash: {}}"),
            "config.yaml:3: unknown variant `redisHash`",
        ),
    ] {
        let error = refused(&text);
        assert!(
            error.starts_with(expected),
            "for:\n{text}\nexpected {expected:?}…, got {error:?}"
        );
        assert!(!error.contains('\n'), "one line: {error:?}");
    }
}

#[test]
fn a_missing_file_names_it() {
    let error = Config::load(std::path::Path::new("/nonexistent/metrics-api.yaml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot read /nonexistent/metrics-api.yaml: "),
        "{error}"
    );
}
