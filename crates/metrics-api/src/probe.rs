//! A probe: one concrete read the poller makes and the cache holds (a list's length, a queue's
//! counts, a stream group's backlog, one rendered PromQL query): the catalogue's spec with
//! its templates filled in for one object and key. Two requests that need the same read
//! share one probe; the catalogue builds and reads it (`ebb_sources::Source`).

use std::collections::BTreeMap;

use ebb_sources::SourceSpec;

use crate::config::{Config, MetricRule};

/// A metric's source with its key and query filled in.
pub type Probe = SourceSpec;

/// The probe for one object and key, and the item's metric labels.
pub fn probe(
    rule: &MetricRule,
    key: Option<&str>,
    fields: &[(&str, &str)],
) -> (Probe, BTreeMap<String, String>) {
    let labels = match (&rule.label, key) {
        (Some(label), Some(key)) => BTreeMap::from([(label.clone(), key.to_owned())]),
        _ => BTreeMap::new(),
    };
    (rule.source.resolve(fields), labels)
}

/// The probes the configuration names outright: exact keys of every object and namespace it
/// lists, read from the start.
pub fn configured_probes(config: &Config) -> Vec<Probe> {
    let mut probes = Vec::new();
    for rule in &config.metrics {
        let keys: Vec<Option<&str>> = match &rule.label {
            Some(_) => rule.literal_keys().map(Some).collect(),
            None => vec![None],
        };
        for key in &keys {
            for object in rule
                .objects
                .iter()
                // A pattern's objects are known once listed; only a PromQL probe depends on them.
                .filter(|object| {
                    object.key.is_none() && (rule.source.reads_redis() || !object.is_pattern())
                })
            {
                let fields = [
                    ("namespace", object.namespace.as_deref().unwrap_or_default()),
                    ("name", object.name.as_str()),
                    ("resource", object.resource.as_str()),
                    ("key", key.unwrap_or_default()),
                ];
                probes.push(probe(rule, *key, &fields).0);
            }
            for namespace in rule
                .external_namespaces
                .iter()
                .filter(|namespace| *namespace != "*")
            {
                let fields = [
                    ("namespace", namespace.as_str()),
                    ("name", ""),
                    ("resource", ""),
                    ("key", key.unwrap_or_default()),
                ];
                probes.push(probe(rule, *key, &fields).0);
            }
        }
        for object in rule.objects.iter().filter(|object| !object.is_pattern()) {
            if let Some(key) = object.own_key().filter(|key| rule.allows_key(key)) {
                let fields = [
                    ("namespace", object.namespace.as_deref().unwrap_or_default()),
                    ("name", object.name.as_str()),
                    ("resource", object.resource.as_str()),
                    ("key", key.as_str()),
                ];
                probes.push(probe(rule, Some(&key), &fields).0);
            }
        }
    }
    probes.sort();
    probes.dedup();
    probes
}
