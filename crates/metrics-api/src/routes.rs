//! What each path answers, once the request is authenticated and authorized: discovery, the
//! values of custom and external metrics, and the Kubernetes `Status` errors (404 for a metric
//! or object the configuration does not serve, 400 for a malformed selector, 503 while a
//! value is missing or too old). Always JSON: the HPA asks for protobuf and accepts JSON.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIGroupList, GroupVersionForDiscovery, ListMeta,
};
use serde::Serialize;

use crate::cache::{Cache, Lookup};
use crate::config::{Config, MetricRule, ObjectRef};
use crate::objects::ObjectLister;
use crate::probe::{Probe, probe};
use crate::selector::Selector;
use crate::shapes::{self, CUSTOM_GROUP, EXTERNAL_GROUP};

pub const CUSTOM_VERSIONS: [&str; 2] = ["v1beta2", "v1beta1"];

/// A finished answer.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(code: u16, value: &impl Serialize) -> Reply {
        Reply {
            code,
            body: serde_json::to_vec(value).expect("the API's types always serialize"),
        }
    }

    pub fn failure(code: u16, reason: &str, message: String) -> Reply {
        Reply::json(code, &shapes::status(code, reason, message))
    }

    fn not_found(message: String) -> Reply {
        Reply::failure(404, "NotFound", message)
    }

    fn bad_request(message: String) -> Reply {
        Reply::failure(400, "BadRequest", message)
    }
}

/// A request's path, split at `/` into percent-decoded segments, as Go's `net/http` decodes
/// `URL.Path` before any handler sees it: clients escape characters such as the `*` of
/// "every object" (`%2A`, as client-go's custom metrics client sends it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    /// As received, for messages.
    pub raw: String,
    /// Decoded, for non-resource authorization (Kubernetes reviews the decoded path).
    pub decoded: String,
    segments: Vec<String>,
}

impl RequestPath {
    /// Decodes `raw`; an escape that is not `%` and two hex digits, or that decodes to
    /// something other than UTF-8, is a 400 as Go's server answers it.
    pub fn parse(raw: &str) -> Result<RequestPath, Reply> {
        let invalid =
            |reason: String| Reply::bad_request(format!("invalid URL path {raw:?}: {reason}"));
        let decode = |text: &str| -> Result<String, Reply> {
            let bytes = text.as_bytes();
            for (at, _) in text.match_indices('%') {
                let escape = bytes.get(at + 1..at + 3).unwrap_or(&bytes[at + 1..]);
                if escape.len() != 2 || !escape.iter().all(u8::is_ascii_hexdigit) {
                    return Err(invalid(format!(
                        "invalid escape {:?}",
                        String::from_utf8_lossy(&bytes[at..(at + 3).min(bytes.len())])
                    )));
                }
            }
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(std::borrow::Cow::into_owned)
                .map_err(|error| invalid(format!("not UTF-8 once decoded: {error}")))
        };
        let segments = raw
            .split('/')
            .filter(|part| !part.is_empty())
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RequestPath {
            raw: raw.to_owned(),
            decoded: decode(raw)?,
            segments,
        })
    }

    /// The decoded segments, empty ones (from `//` or a trailing `/`) left out.
    pub fn segments(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }
}

/// The route a path belongs to, for metrics and for deciding what needs authentication.
pub fn route_of(path: &RequestPath) -> &'static str {
    match path.raw.as_str() {
        "/healthz" | "/livez" | "/readyz" => "probe",
        raw if raw.starts_with("/openapi/") => "openapi",
        _ => match path.segments().as_slice() {
            ["apis"] | ["apis", _] | ["apis", _, _] => "discovery",
            ["apis", CUSTOM_GROUP, ..] => "custom_value",
            ["apis", EXTERNAL_GROUP, ..] => "external_value",
            _ => "other",
        },
    }
}

pub struct Api {
    pub config: Config,
    pub cache: Arc<Cache>,
    pub lister: ObjectLister,
}

/// The query parameters the API reads.
#[derive(Default)]
struct Params {
    label_selector: Option<String>,
    metric_label_selector: Option<String>,
}

fn params(query: Option<&str>) -> Params {
    let mut params = Params::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "labelSelector" => params.label_selector = Some(value.into_owned()),
            "metricLabelSelector" => params.metric_label_selector = Some(value.into_owned()),
            _ => {}
        }
    }
    params
}

fn selector(given: Option<&str>, parameter: &str) -> Result<Selector, Reply> {
    Selector::parse(given.unwrap_or_default())
        .map_err(|reason| Reply::bad_request(format!("invalid {parameter}: {reason}")))
}

impl Api {
    pub async fn answer(&self, path: &RequestPath, query: Option<&str>) -> Reply {
        match path.segments().as_slice() {
            ["apis"] => Reply::json(200, &self.groups()),
            ["apis", group] if self.group(group).is_some() => {
                Reply::json(200, &self.group(group).expect("just checked"))
            }
            ["apis", CUSTOM_GROUP, version] if CUSTOM_VERSIONS.contains(version) => {
                Reply::json(200, &self.custom_discovery(version))
            }
            ["apis", EXTERNAL_GROUP, "v1beta1"] => Reply::json(200, &self.external_discovery()),
            ["apis", CUSTOM_GROUP, version, rest @ ..] if CUSTOM_VERSIONS.contains(version) => self
                .custom_values(version, rest, &params(query))
                .await
                .unwrap_or_else(|reply| reply),
            [
                "apis",
                EXTERNAL_GROUP,
                "v1beta1",
                "namespaces",
                namespace,
                metric,
            ] => self
                .external_values(namespace, metric, &params(query))
                .await
                .unwrap_or_else(|reply| reply),
            _ => Reply::not_found(format!(
                "the server could not find the requested resource {}",
                path.raw
            )),
        }
    }

    fn groups(&self) -> APIGroupList {
        APIGroupList {
            groups: [CUSTOM_GROUP, EXTERNAL_GROUP]
                .into_iter()
                .filter_map(|group| self.group(group))
                .collect(),
        }
    }

    fn group(&self, group: &str) -> Option<APIGroup> {
        let versions: &[&str] = match group {
            CUSTOM_GROUP => &CUSTOM_VERSIONS,
            EXTERNAL_GROUP => &["v1beta1"],
            _ => return None,
        };
        let version = |version: &&str| GroupVersionForDiscovery {
            group_version: format!("{group}/{version}"),
            version: (*version).to_owned(),
        };
        Some(APIGroup {
            name: group.to_owned(),
            preferred_version: versions.first().map(version),
            versions: versions.iter().map(version).collect(),
            server_address_by_client_cidrs: None,
        })
    }

    fn custom_discovery(
        &self,
        version: &str,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList {
        let mut entries = BTreeMap::new();
        for rule in &self.config.metrics {
            for object in &rule.objects {
                let namespaced = entries
                    .entry(format!("{}/{}", object.resource, rule.name))
                    .or_insert(false);
                *namespaced |= object.namespace.is_some();
            }
        }
        shapes::resource_list(
            &format!("{CUSTOM_GROUP}/{version}"),
            "MetricValueList",
            entries,
        )
    }

    fn external_discovery(
        &self,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList {
        shapes::resource_list(
            &format!("{EXTERNAL_GROUP}/v1beta1"),
            "ExternalMetricValueList",
            self.config
                .metrics
                .iter()
                .filter(|rule| !rule.external_namespaces.is_empty())
                .map(|rule| (rule.name.clone(), true)),
        )
    }

    async fn custom_values(
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

    async fn external_values(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_decoded_and_bad_escapes_refused() {
        let path = RequestPath::parse("/apis/custom.metrics.k8s.io/v1beta2//services/%2A/a%2fb/")
            .expect("a valid path");
        assert_eq!(
            path.segments(),
            [
                "apis",
                "custom.metrics.k8s.io",
                "v1beta2",
                "services",
                "*",
                "a/b"
            ]
        );
        assert_eq!(
            path.decoded,
            "/apis/custom.metrics.k8s.io/v1beta2//services/*/a/b/"
        );
        for (raw, reason) in [
            ("/apis/%zz", r#"invalid escape "%zz""#),
            ("/apis/%2", r#"invalid escape "%2""#),
            ("/apis/x%", r#"invalid escape "%""#),
            ("/apis/%C3%28", "not UTF-8 once decoded"),
        ] {
            let reply = RequestPath::parse(raw).expect_err(raw);
            let status: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!((reply.code, &status["reason"]), (400, &"BadRequest".into()));
            let message = status["message"].as_str().unwrap();
            assert!(message.contains(reason), "{raw}: {message}");
        }
    }
}
