//! Field paths: those a CRD version's schema declares under `spec`, and those an object sets.
//! An array's items are written `[]` (`spec.behavior.scaleUp.policies[].type`).

use std::collections::BTreeSet;
use std::path::PathBuf;

/// The CRD as committed under the operator's chart.
pub fn committed_crd() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../helm/charts/operator/crds/queuescalers.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The openAPIV3Schema of `version` in `crd`.
pub fn version_schema<'a>(crd: &'a serde_json::Value, version: &str) -> &'a serde_json::Value {
    let versions = crd["spec"]["versions"].as_array().expect("spec.versions");
    let found = versions
        .iter()
        .find(|served| served["name"] == version)
        .unwrap_or_else(|| panic!("the committed CRD has no version {version}"));
    &found["schema"]["openAPIV3Schema"]
}

/// Every field path `schema` declares below `path`, objects and their leaves alike.
pub fn declared(schema: &serde_json::Value, path: &str, into: &mut BTreeSet<String>) {
    into.insert(path.to_owned());
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            declared(property, &format!("{path}.{name}"), into);
        }
    } else if schema["type"] == "array" {
        declared(&schema["items"], &format!("{path}[]"), into);
    }
}

/// Every field path `value` sets below `path`.
pub fn set(value: &serde_json::Value, path: &str, into: &mut BTreeSet<String>) {
    into.insert(path.to_owned());
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields {
                set(field, &format!("{path}.{name}"), into);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                set(item, &format!("{path}[]"), into);
            }
        }
        _ => {}
    }
}
