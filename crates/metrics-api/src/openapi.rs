//! `/openapi/v2` and `/openapi/v3`: the kube-apiserver's aggregator downloads both from every
//! APIService and logs an error for each it cannot read. The documents describe this server's
//! GET routes and the list types they return.

use serde_json::{Value, json};

use crate::routes::{CUSTOM_VERSIONS, Reply};
use crate::shapes::{CUSTOM_GROUP, EXTERNAL_GROUP};

/// The answer for an `/openapi/…` path.
pub fn answer(path: &str) -> Reply {
    match path {
        "/openapi/v2" => Reply::json(200, &v2()),
        "/openapi/v3" => Reply::json(200, &v3_index()),
        _ => match path
            .strip_prefix("/openapi/v3/apis/")
            .and_then(|rest| rest.split_once('/'))
        {
            Some((group, version)) if group_versions().contains(&(group, version)) => {
                Reply::json(200, &v3(group, version))
            }
            _ => Reply::failure(404, "NotFound", format!("no OpenAPI document at {path}")),
        },
    }
}

fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<_> = CUSTOM_VERSIONS
        .iter()
        .map(|version| (CUSTOM_GROUP, *version))
        .collect();
    all.push((EXTERNAL_GROUP, "v1beta1"));
    all
}

/// The list type a group-version returns, and its schema name.
fn list_type(group: &str, version: &str) -> (String, &'static str) {
    match group {
        EXTERNAL_GROUP => (
            format!("io.k8s.metrics.pkg.apis.external_metrics.{version}.ExternalMetricValueList"),
            "ExternalMetricValueList",
        ),
        _ => (
            format!("io.k8s.metrics.pkg.apis.custom_metrics.{version}.MetricValueList"),
            "MetricValueList",
        ),
    }
}

fn list_schema(reference: &str) -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "items": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
        },
        "description": reference,
    })
}

/// The `{name}` parameters of a path template (`openapi3`: in the version 3 form).
fn path_parameters(path: &str, openapi3: bool) -> Vec<Value> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            if openapi3 {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            } else {
                json!({"name": name, "in": "path", "required": true, "type": "string"})
            }
        })
        .collect()
}

fn paths(group: &str, version: &str, reference: &str) -> Vec<(String, Value)> {
    let openapi3 = reference.starts_with("#/components/");
    let get = |path: String, id: String| {
        let operation = json!({
            "get": {
                "operationId": id,
                "produces": ["application/json"],
                "responses": {"200": {"description": "OK", "schema": {"$ref": reference}}},
            },
            "parameters": path_parameters(&path, openapi3),
        });
        (path, operation)
    };
    let base = format!("/apis/{group}/{version}");
    let (group_name, version_name) = (camel(group), camel(version));
    match group {
        EXTERNAL_GROUP => vec![get(
            format!("{base}/namespaces/{{namespace}}/{{metric}}"),
            format!("list{group_name}{version_name}ExternalMetricValue"),
        )],
        _ => vec![
            get(
                format!("{base}/namespaces/{{namespace}}/{{resource}}/{{name}}/{{metric}}"),
                format!("readNamespaced{group_name}{version_name}MetricValue"),
            ),
            get(
                format!("{base}/{{resource}}/{{name}}/{{metric}}"),
                format!("read{group_name}{version_name}MetricValue"),
            ),
        ],
    }
}

fn camel(text: &str) -> String {
    text.split(['.', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn info() -> Value {
    json!({"title": "ebb metrics-api", "version": env!("CARGO_PKG_VERSION")})
}

fn v2() -> Value {
    let mut paths_json = serde_json::Map::new();
    let mut definitions = serde_json::Map::new();
    for (group, version) in group_versions() {
        let (name, _) = list_type(group, version);
        for (path, operation) in paths(group, version, &format!("#/definitions/{name}")) {
            paths_json.insert(path, operation);
        }
        definitions.insert(name.clone(), list_schema(&name));
    }
    json!({"swagger": "2.0", "info": info(), "paths": paths_json, "definitions": definitions})
}

fn v3_index() -> Value {
    let mut paths = serde_json::Map::new();
    for (group, version) in group_versions() {
        paths.insert(
            format!("apis/{group}/{version}"),
            json!({"serverRelativeURL": format!("/openapi/v3/apis/{group}/{version}?hash={}", env!("CARGO_PKG_VERSION"))}),
        );
    }
    json!({"paths": paths})
}

fn v3(group: &str, version: &str) -> Value {
    let (name, _) = list_type(group, version);
    let mut paths_json = serde_json::Map::new();
    for (path, mut operation) in paths(group, version, &format!("#/components/schemas/{name}")) {
        // OpenAPI 3 puts the schema under content.
        let schema = operation["get"]["responses"]["200"]["schema"].take();
        operation["get"]["responses"]["200"] = json!({
            "description": "OK",
            "content": {"application/json": {"schema": schema}},
        });
        if let Some(get) = operation["get"].as_object_mut() {
            get.remove("produces");
        }
        paths_json.insert(path, operation);
    }
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths_json,
        "components": {"schemas": {name.clone(): list_schema(&name)}},
    })
}
