//! The metrics' values: which objects and keys a request names, the probes they need, the
//! cache's answers, and the value lists in upstream's shapes.

use std::collections::BTreeMap;
use std::time::SystemTime;

use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;

use super::request::{Params, selector};
use super::{Api, Reply};
use crate::cache::Lookup;
use crate::config::{MetricRule, ObjectRef};
use crate::probe::{Probe, probe};
use crate::selector::Selector;
use crate::shapes::{self, CUSTOM_GROUP, EXTERNAL_GROUP};

impl Api {
    pub(super) async fn custom_values(
        &self,
        version: &str,
        rest: &[&str],
        params: &Params,
    ) -> Result<Reply, Reply> {
        // Paths as the reference server (custom-metrics-apiserver) installs them.
        let (namespace, resource, name, metric) = match rest {
            ["namespaces", namespace, "metrics", metric] => {
                (None, "namespaces", *namespace, *metric)
            }
            ["namespaces", namespace, resource, name, metric] => {
                (Some(*namespace), *resource, *name, *metric)
            }
            [resource, name, metric] => (None, *resource, *name, *metric),
            _ => {
                return Err(Reply::not_found(format!(
                    "no such path under {CUSTOM_GROUP}/{version}"
                )));
            }
        };
        let Some(rule) = self.config.metrics.iter().find(|rule| {
            rule.name == metric
                && rule
                    .objects
                    .iter()
                    .any(|object| object.resource == resource)
        }) else {
            return Err(Reply::not_found(format!(
                "the server could not find the metric {metric} for {resource}"
            )));
        };
        let metric_selector = selector(
            params.metric_label_selector.as_deref(),
            "metricLabelSelector",
        )?;
        // Checked here for a clear 400; the API server applies it when listing.
        selector(params.label_selector.as_deref(), "labelSelector")?;
        let entries: Vec<&ObjectRef> = rule
            .objects
            .iter()
            .filter(|object| {
                object.resource == resource && object.namespace.as_deref() == namespace
            })
            .collect();
        let place = match namespace {
            Some(namespace) => format!("{resource} {namespace}/{name}"),
            None => format!("{resource} {name}"),
        };
        let every = name == "*";
        let allowed = |name: &str| {
            entries
                .iter()
                .find(|entry| entry.allows_name(name))
                .map(|entry| entry.named(name))
        };
        let objects: Vec<ObjectRef> = if every && !entries.is_empty() {
            self.lister
                .names(
                    resource,
                    namespace,
                    params.label_selector.as_deref().unwrap_or_default(),
                )
                .await
                .map_err(|error| list_failure(&error, resource, namespace))?
                .iter()
                .filter_map(|listed| allowed(listed))
                .collect()
        } else {
            allowed(name).into_iter().collect()
        };
        if objects.is_empty() && !every {
            return Err(Reply::not_found(format!(
                "the server could not find the metric {metric} for {place}"
            )));
        }
        let mut wanted = Vec::new();
        let mut shared_keys = None;
        for object in &objects {
            let keys = match object.own_key() {
                Some(key) => own_key(rule, key, &metric_selector, every)?,
                None => match &shared_keys {
                    Some(keys) => Vec::clone(keys),
                    None => shared_keys
                        .insert(keys_for(rule, &metric_selector)?)
                        .clone(),
                },
            };
            for key in &keys {
                let fields = [
                    ("namespace", object.namespace.as_deref().unwrap_or_default()),
                    ("name", object.name.as_str()),
                    ("resource", object.resource.as_str()),
                    ("key", key.as_deref().unwrap_or_default()),
                ];
                wanted.push(Wanted::new(object, probe(rule, key.as_deref(), &fields)));
            }
        }
        let samples = self.read_all(rule, wanted).await?;
        // `*` matching nothing is an empty list, as `kubectl get -l` would say.
        if samples.is_empty() && !every {
            return Err(Reply::not_found(format!(
                "the server could not find the metric {metric} for {place}: the query matched nothing"
            )));
        }
        let list = |items| {
            Reply::json(
                200,
                &shapes::ValueList {
                    kind: "MetricValueList",
                    api_version: format!("{CUSTOM_GROUP}/{version}"),
                    metadata: ListMeta::default(),
                    items,
                },
            )
        };
        let described = |object: &ObjectRef| {
            let (kind, api_version) = shapes::described_kind(&object.resource);
            shapes::DescribedObject {
                kind,
                namespace: object.namespace.clone().unwrap_or_default(),
                name: object.name.clone(),
                api_version,
            }
        };
        Ok(if version == "v1beta1" {
            list(
                samples
                    .into_iter()
                    .map(|(object, labels, read_at, value)| {
                        serde_json::to_value(shapes::MetricValueV1Beta1 {
                            described_object: described(object),
                            metric_name: rule.name.clone(),
                            timestamp: shapes::timestamp(read_at),
                            value: shapes::quantity(value),
                            selector: shapes::label_selector(&labels),
                        })
                        .expect("serializable")
                    })
                    .collect::<Vec<_>>(),
            )
        } else {
            list(
                samples
                    .into_iter()
                    .map(|(object, labels, read_at, value)| {
                        serde_json::to_value(shapes::MetricValueV1Beta2 {
                            described_object: described(object),
                            metric: shapes::MetricIdentifier {
                                name: rule.name.clone(),
                                selector: shapes::label_selector(&labels),
                            },
                            timestamp: shapes::timestamp(read_at),
                            value: shapes::quantity(value),
                        })
                        .expect("serializable")
                    })
                    .collect::<Vec<_>>(),
            )
        })
    }

    pub(super) async fn external_values(
        &self,
        namespace: &str,
        metric: &str,
        params: &Params,
    ) -> Result<Reply, Reply> {
        let Some(rule) = self
            .config
            .metrics
            .iter()
            .find(|rule| rule.name == metric && rule.serves_external_in(namespace))
        else {
            return Err(Reply::not_found(format!(
                "the server could not find the external metric {metric} in namespace {namespace}"
            )));
        };
        let metric_selector = selector(params.label_selector.as_deref(), "labelSelector")?;
        let keys = keys_for(rule, &metric_selector)?;
        let namespace_object = ObjectRef {
            resource: String::new(),
            namespace: Some(namespace.to_owned()),
            name: String::new(),
            key: None,
        };
        let wanted = keys
            .iter()
            .map(|key| {
                let fields = [
                    ("namespace", namespace),
                    ("name", ""),
                    ("resource", ""),
                    ("key", key.as_deref().unwrap_or_default()),
                ];
                Wanted::new(&namespace_object, probe(rule, key.as_deref(), &fields))
            })
            .collect();
        let samples = self.read_all(rule, wanted).await?;
        if samples.is_empty() {
            return Err(Reply::not_found(format!(
                "the server could not find the external metric {metric} in namespace {namespace}: the query matched nothing"
            )));
        }
        Ok(Reply::json(
            200,
            &shapes::ValueList {
                kind: "ExternalMetricValueList",
                api_version: format!("{EXTERNAL_GROUP}/v1beta1"),
                metadata: ListMeta::default(),
                items: samples
                    .into_iter()
                    .map(|(_, labels, read_at, value)| shapes::ExternalMetricValue {
                        metric_name: rule.name.clone(),
                        metric_labels: labels,
                        timestamp: shapes::timestamp(read_at),
                        value: shapes::quantity(value),
                    })
                    .collect(),
            },
        ))
    }

    /// Every wanted probe looked up at once; a missing or stale value fails the whole answer
    /// (503: never a partial list), a PromQL "not found" leaves its item out.
    async fn read_all<'o>(
        &self,
        rule: &MetricRule,
        wanted: Vec<Wanted<'o>>,
    ) -> Result<Vec<(&'o ObjectRef, Labels, SystemTime, f64)>, Reply> {
        let lookups = join_all(wanted.iter().map(|one| self.cache.lookup(&one.probe))).await;
        let mut samples = Vec::new();
        for (Wanted { object, labels, .. }, lookup) in wanted.into_iter().zip(lookups) {
            match lookup {
                Lookup::Value(sample) => {
                    // A count the source cannot tell is a 503, never a 0.
                    let value = rule
                        .count
                        .value(&sample.reading, &format!("metric {}", rule.name))
                        .map_err(|error| {
                            Reply::failure(503, "ServiceUnavailable", error.to_string())
                        })?;
                    samples.push((object, labels, sample.read_at, value));
                }
                Lookup::NotFound => {}
                Lookup::Unavailable(reason) => {
                    return Err(Reply::failure(503, "ServiceUnavailable", reason));
                }
            }
        }
        Ok(samples)
    }
}

type Labels = BTreeMap<String, String>;

/// One item a request needs: the object it describes, and the read and labels of its value.
struct Wanted<'o> {
    object: &'o ObjectRef,
    probe: Probe,
    labels: Labels,
}

impl<'o> Wanted<'o> {
    fn new(object: &'o ObjectRef, (probe, labels): (Probe, Labels)) -> Wanted<'o> {
        Wanted {
            object,
            probe,
            labels,
        }
    }
}

/// The keys (as metric label values) a request reads: without a selector naming the label,
/// the configuration's exact keys; keys it names by equality or `in` when a pattern allows
/// them; in every case only those the selector matches. `[None]` for a metric without keys.
fn keys_for(rule: &MetricRule, selector: &Selector) -> Result<Vec<Option<String>>, Reply> {
    let Some(label) = &rule.label else {
        return if selector.matches(&BTreeMap::new()) {
            Ok(vec![None])
        } else {
            Err(Reply::not_found(format!(
                "the metric {} has no labels: no series match the selector",
                rule.name
            )))
        };
    };
    let mut keys: Vec<String> = rule.literal_keys().map(str::to_owned).collect();
    let named = selector.named_values(label).unwrap_or_default();
    for key in &named {
        if rule.allows_key(key) && !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys.retain(|key| selector.matches(&BTreeMap::from([(label.clone(), key.clone())])));
    if keys.is_empty() {
        let refused: Vec<&String> = named.iter().filter(|key| !rule.allows_key(key)).collect();
        return Err(Reply::not_found(if refused.is_empty() {
            format!("no series of the metric {} match the selector", rule.name)
        } else {
            format!(
                "the metric {} does not serve {label}={} (not among its configured keys)",
                rule.name,
                refused
                    .iter()
                    .map(|key| key.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }));
    }
    Ok(keys.into_iter().map(Some).collect())
}

/// The key of an object whose configuration maps it to one (`key: jobs-{{name}}`), as a
/// one-key list: the metric must allow it and the selector match it. Left out of a `*` answer
/// otherwise (`every`); for a named object, 404.
fn own_key(
    rule: &MetricRule,
    key: String,
    selector: &Selector,
    every: bool,
) -> Result<Vec<Option<String>>, Reply> {
    let label = rule
        .label
        .clone()
        .expect("an object key needs a label (checked at load)");
    if !rule.allows_key(&key) {
        return if every {
            Ok(Vec::new())
        } else {
            Err(Reply::not_found(format!(
                "the metric {} does not serve {label}={key} (not among its configured keys)",
                rule.name
            )))
        };
    }
    if !selector.matches(&BTreeMap::from([(label, key.clone())])) {
        return if every {
            Ok(Vec::new())
        } else {
            Err(Reply::not_found(format!(
                "no series of the metric {} match the selector",
                rule.name
            )))
        };
    }
    Ok(vec![Some(key)])
}

/// The answer when listing the objects for `*` failed: a refused list names the permission
/// the server's account lacks.
fn list_failure(error: &crate::Error, resource: &str, namespace: Option<&str>) -> Reply {
    let refusal = match error {
        crate::Error::ListObjects { source, .. } => match source.as_ref() {
            kube::Error::Api(status) => Some(status),
            _ => None,
        },
        _ => None,
    };
    match refusal {
        Some(status) if status.code == 403 => {
            let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
            let scope = match namespace {
                Some(namespace) => format!("in the namespace {namespace:?}"),
                None => "cluster-wide".to_owned(),
            };
            Reply::failure(
                500,
                "InternalError",
                format!(
                    "`*` with a labelSelector lists the objects, and this server may not: grant its service account the RBAC permission list on {plural:?} in API group {group:?} {scope} (the API server said: {})",
                    status.message
                ),
            )
        }
        Some(status) if status.code == 400 => {
            Reply::bad_request(format!("invalid labelSelector: {}", status.message))
        }
        _ if matches!(error, crate::Error::UnknownResource { .. }) => {
            Reply::not_found(error.to_string())
        }
        _ => Reply::failure(503, "ServiceUnavailable", error.to_string()),
    }
}
