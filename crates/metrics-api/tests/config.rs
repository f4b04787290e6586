//! The configuration file is checked at start: each mistake is one line naming the file, the
//! line and the field, and the built-in configuration is the dojo's.

use ebb_metrics_api::{Config, DEFAULT_CONFIG, Error};
use ebb_sources::Count;

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
    assert_eq!(builtin.metrics[0].count, Count::Waiting);
    // The HPA's metric that counts the item a busy consumer holds.
    assert_eq!(builtin.metrics[1].name, "ebb_queue_items");
    assert_eq!(builtin.metrics[1].count, Count::Total);
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

/// A value for each field of the catalogue; a new field needs one here.
fn example(kind: &str, field: &str) -> &'static str {
    match field {
        "group" => "workers",
        "query" => "\"vector(1)\"",
        "emptyResult" => "zero",
        "prioritySteps" => "[0, 1, 5]",
        "separator" => "\":\"",
        "keyPrefix" => "\"app1:\"",
        "acksLate" => "true",
        "visibilityTimeoutSeconds" => "600",
        "namespace" => "app1",
        "heartbeatTimeoutMs" => "5000",
        "heartbeatTimeoutSeconds" => "20",
        "prefix" => "shop",
        other => panic!("no example value for {kind}.{other}: add one to this test"),
    }
}

/// What the metrics API adds to a kind's fields: where the Prometheus server is (each side
/// finds its servers its own way; Redis is the process's --redis-server).
fn own_fields(kind: &str) -> Vec<String> {
    match kind {
        "prometheus" => vec!["server: \"http://127.0.0.1:9090\"".to_owned()],
        _ => Vec::new(),
    }
}

#[test]
fn every_catalogue_kind_is_a_metric_source_with_the_catalogue_fields_and_counts() {
    for info in ebb_sources::CATALOGUE {
        let mut fields: Vec<String> = info
            .fields
            .iter()
            .map(|field| format!("{field}: {}", example(info.kind, field)))
            .collect();
        fields.extend(own_fields(info.kind));
        // A kind serving one count takes no `count`; one serving several must name it.
        let counts: Vec<Option<&str>> = match info.counts {
            [_] => vec![None],
            several => several.iter().map(|(name, _)| Some(*name)).collect(),
        };
        // A Redis source's key is the label's value.
        let keyed = match info.redis_key {
            Some(_) => "    label: key\n    keys: [padok]\n",
            None => "",
        };
        for count in counts {
            let mut fields = fields.clone();
            fields.extend(count.map(|count| format!("count: {count}")));
            let text = format!(
                "metrics:\n  - name: m\n    source: {{{}: {{{}}}}}\n{keyed}    objects: [{{resource: services, namespace: default, name: s}}]\n",
                info.kind,
                fields.join(", ")
            );
            let config = Config::parse(&text, "config.yaml")
                .unwrap_or_else(|error| panic!("{}: {error}\n{text}", info.kind));
            let rule = &config.metrics[0];
            assert_eq!(rule.source.kind(), info.kind, "{text}");
            assert_eq!(Some(rule.count), info.count(count), "{text}");
            assert_eq!(rule.source.reads_redis(), info.redis_key.is_some());
        }
    }
}

#[test]
fn the_empty_result_rule_has_one_encoding_whatever_the_spelling() {
    use ebb_sources::SourceSpec;
    use ebb_sources::prometheus::EmptyResult;
    for (written, meant) in [
        ("zero", EmptyResult::Zero),
        ("Zero", EmptyResult::Zero),
        ("notFound", EmptyResult::Error),
        ("Error", EmptyResult::Error),
    ] {
        let text = GOOD_METRIC.replace(
            "{redisList: {}}",
            &format!("{{prometheus: {{server: \"http://p:9090\", query: \"x\", emptyResult: {written}}}}}"),
        );
        let config = Config::parse(&text, "config.yaml").unwrap();
        let SourceSpec::Prometheus(spec) = &config.metrics[0].source else {
            panic!("a PromQL source: {text}")
        };
        assert_eq!(spec.empty_result, meant, "{written}");
    }
}

#[test]
fn the_names_before_the_catalogue_are_still_read() {
    for (written, kind) in [
        ("{queue: {count: inFlight}}", "ebbQueue"),
        ("{stream: {group: g, count: lag}}", "redisStream"),
    ] {
        let text = GOOD_METRIC.replace("{redisList: {}}", written);
        let config = Config::parse(&text, "config.yaml").unwrap();
        assert_eq!(config.metrics[0].source.kind(), kind, "{written}");
    }
    assert!(
        refused(&GOOD_METRIC.replace("{redisList: {}}", "{ebbQueue: {count: done}}"))
            .starts_with("config.yaml:3: metrics[0].source.ebbQueue.count: \"done\" is not one of waiting, inFlight"),
    );
}
