//! The QueueScaler's `spec.source` follows the source catalogue (`ebb_sources::CATALOGUE`):
//! one field per kind, named as the catalogue names it, holding the catalogue's fields, in
//! the generated CRD and in the copy the chart installs; and the operator's one mapping turns
//! each kind into the catalogue's spec of that kind. A source added to the catalogue and not
//! to the CRD (or the other way round) fails here.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ebb_operator::crd::Source;
use ebb_operator::{crd_yaml, source_spec};
use ebb_sources::CATALOGUE;
use ebb_sources::prometheus::EmptyResult;
use serde_json::{Value, json};

/// `spec.source`'s schema in `yaml`.
fn source_schema(yaml: &str) -> Value {
    let crd: Value = serde_saphyr::from_str(yaml).expect("the CRD is YAML");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["source"]
        .clone()
}

fn keys(object: &Value) -> BTreeSet<String> {
    object
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default()
}

/// A value for each field a kind may require; a new required field needs one here.
fn example(kind: &str, field: &str) -> Value {
    match field {
        "redis" => json!({"address": "127.0.0.1:6379"}),
        "key" | "queue" | "stream" => json!("jobs"),
        "group" => json!("workers"),
        "queues" => json!(["jobs"]),
        "query" => json!("vector(1)"),
        "serverAddress" => json!("http://127.0.0.1:9090"),
        other => panic!("no example value for {kind}.{other}: add one to this test"),
    }
}

#[test]
fn the_crd_source_follows_the_catalogue() {
    let committed_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../helm/charts/operator/crds/queuescalers.yaml");
    let committed = std::fs::read_to_string(&committed_path).unwrap();
    for (origin, yaml) in [("generated", crd_yaml()), ("committed", committed)] {
        let schema = source_schema(&yaml);
        let kinds: BTreeSet<String> = CATALOGUE.iter().map(|info| info.kind.into()).collect();
        assert_eq!(
            keys(&schema["properties"]),
            kinds,
            "{origin} CRD: spec.source's fields are the catalogue's kinds"
        );
        let rule = schema["x-kubernetes-validations"][0]["rule"]
            .as_str()
            .unwrap();
        for info in CATALOGUE {
            assert!(
                rule.contains(&format!("has(self.{})", info.kind)),
                "{origin} CRD: the exactly-one rule names {}: {rule}",
                info.kind
            );
            let fields = keys(&schema["properties"][info.kind]["properties"]);
            for field in info.fields.iter().chain(info.redis_key.iter()) {
                assert!(
                    fields.contains(*field),
                    "{origin} CRD: {}.{field} is the catalogue's field: {fields:?}",
                    info.kind
                );
            }
            assert_eq!(
                fields.contains("redis"),
                info.redis_key.is_some(),
                "{origin} CRD: {} has a Redis server exactly when it reads Redis",
                info.kind
            );
        }
        // The empty-result rule: the CRD's names are the catalogue's one encoding.
        let names: Vec<Value> = [EmptyResult::Zero, EmptyResult::Error]
            .iter()
            .map(|variant| serde_json::to_value(variant).unwrap())
            .collect();
        assert_eq!(
            schema["properties"]["prometheus"]["properties"]["emptyResult"]["enum"],
            Value::Array(names),
            "{origin} CRD"
        );
    }
}

#[test]
fn the_operator_maps_every_catalogue_kind_to_its_spec() {
    let schema = source_schema(&crd_yaml());
    for info in CATALOGUE {
        let required = schema["properties"][info.kind]["required"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let fields: serde_json::Map<String, Value> = required
            .iter()
            .map(|field| {
                let field = field.as_str().unwrap();
                (field.to_owned(), example(info.kind, field))
            })
            .collect();
        let source: Source = serde_json::from_value(json!({ info.kind: fields }))
            .unwrap_or_else(|error| panic!("{}: {error}", info.kind));
        let (spec, redis) = source_spec(&source).unwrap();
        assert_eq!(spec.kind(), info.kind);
        assert_eq!(
            redis.map(|(_, field)| field),
            info.redis_key
                .map(|_| format!("spec.source.{}.redis", info.kind)),
        );
    }
}
