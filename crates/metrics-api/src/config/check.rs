//! The configuration file as written, and its checks: each refusal names the file, the line
//! and the field. A metric's source is mapped to the catalogue's spec in `source.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ebb_sources::Template;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::names::{is_dns_label, is_label_key, is_path_segment};
use super::source_file::SourceFile;
use super::{Config, KeyPattern, MetricRule, ObjectRef};
use crate::{Error, Result};

// The file as written; `Spanned` keeps the line of what a later check may refuse.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ConfigFile {
    interval: Option<Spanned<String>>,
    max_age: Option<Spanned<String>>,
    first_read_wait: Option<Spanned<String>>,
    learned_keys: Option<LearnedKeysFile>,
    /// Default server of PromQL sources.
    prometheus: Option<Spanned<String>>,
    metrics: Spanned<Vec<Spanned<MetricFile>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LearnedKeysFile {
    max: Option<usize>,
    expire_after: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetricFile {
    name: Spanned<String>,
    source: Spanned<SourceFile>,
    label: Option<Spanned<String>>,
    #[serde(default)]
    keys: Vec<Spanned<String>>,
    #[serde(default)]
    objects: Vec<Spanned<ObjectFile>>,
    external: Option<ExternalFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ObjectFile {
    resource: Spanned<String>,
    namespace: Option<Spanned<String>>,
    name: Spanned<String>,
    key: Option<Spanned<String>>,
    /// Accepted for configurations written before objects were listed; ignored (warned).
    labels: Option<Spanned<BTreeMap<String, String>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExternalFile {
    namespaces: Spanned<Vec<String>>,
}

/// serde-saphyr's message without what the error already says elsewhere: its `error: line N
/// column M:` prefix (the line is in front already) and the snippet on the following lines.
pub(super) fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message);
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.split_once(": ") {
        Some((place, rest)) if place.starts_with("line ") => rest.to_owned(),
        _ => line.to_owned(),
    }
}

pub(super) struct Checker<'a> {
    pub(super) file: &'a str,
}

impl Checker<'_> {
    pub(super) fn error<T>(&self, at: &serde_saphyr::Location, reason: String) -> Result<T> {
        Err(Error::Config {
            file: self.file.to_owned(),
            line: at.line(),
            reason,
        })
    }

    fn duration(
        &self,
        given: Option<Spanned<String>>,
        field: &str,
        default: Duration,
    ) -> Result<Duration> {
        let Some(given) = given else {
            return Ok(default);
        };
        match ebb_runtime::parse_duration(&given.value) {
            Ok(duration) if !duration.is_zero() => Ok(duration),
            Ok(_) => self.error(&given.referenced, format!("{field}: must be above 0")),
            Err(error) => self.error(&given.referenced, format!("{field}: {error}")),
        }
    }

    pub(super) fn check(&self, raw: ConfigFile) -> Result<Config> {
        let interval = self.duration(raw.interval, "interval", Duration::from_secs(1))?;
        let max_age = self.duration(raw.max_age, "maxAge", Duration::from_secs(5))?;
        let first_read_wait =
            self.duration(raw.first_read_wait, "firstReadWait", Duration::from_secs(2))?;
        let (learned_keys_max, learned_keys_expire_after) = match raw.learned_keys {
            Some(learned) => (
                learned.max.unwrap_or(100),
                self.duration(
                    learned.expire_after,
                    "learnedKeys.expireAfter",
                    Duration::from_secs(600),
                )?,
            ),
            None => (100, Duration::from_secs(600)),
        };
        if let Some(prometheus) = &raw.prometheus {
            self.prometheus_url(prometheus, "prometheus")?;
        }
        if raw.metrics.value.is_empty() {
            return self.error(
                &raw.metrics.referenced,
                "metrics: at least one metric is needed".to_owned(),
            );
        }
        let mut names = BTreeSet::new();
        let mut metrics = Vec::new();
        for (index, metric) in raw.metrics.value.into_iter().enumerate() {
            let at = metric.referenced;
            let rule = self.metric(metric.value, index, raw.prometheus.as_ref())?;
            if !names.insert(rule.name.clone()) {
                return self.error(
                    &at,
                    format!("metrics[{index}].name: {:?} is configured twice", rule.name),
                );
            }
            metrics.push(rule);
        }
        Ok(Config {
            interval,
            max_age,
            first_read_wait,
            learned_keys_max,
            learned_keys_expire_after,
            metrics,
        })
    }

    pub(super) fn prometheus_url(&self, given: &Spanned<String>, field: &str) -> Result<()> {
        match given.value.split_once("://") {
            Some(("http", rest)) if !rest.is_empty() => Ok(()),
            _ => self.error(
                &given.referenced,
                format!("{field}: {:?} is not an http:// URL", given.value),
            ),
        }
    }

    fn metric(
        &self,
        raw: MetricFile,
        index: usize,
        default_prometheus: Option<&Spanned<String>>,
    ) -> Result<MetricRule> {
        let field = |name: &str| format!("metrics[{index}].{name}");
        let name = raw.name.value.clone();
        if !is_path_segment(&name) {
            return self.error(
                &raw.name.referenced,
                format!(
                    "{}: {name:?} is not a metric name (letters, digits, `_`, `-`, `.`, `:`)",
                    field("name")
                ),
            );
        }
        let label = match raw.label {
            Some(label) if !is_label_key(&label.value) => {
                return self.error(
                    &label.referenced,
                    format!("{}: {:?} is not a label name", field("label"), label.value),
                );
            }
            Some(label) => Some(label.value),
            None => None,
        };
        let source_at = raw.source.referenced;
        let (source, count) = self.source(
            raw.source.value,
            source_at,
            index,
            label.is_some(),
            default_prometheus,
        )?;
        if source.reads_redis() && label.is_none() {
            return self.error(
                &source_at,
                format!(
                    "{}: a Redis source needs `label`, the metric label whose value is the key",
                    field("label")
                ),
            );
        }
        let mut keys = Vec::new();
        for (key_index, key) in raw.keys.into_iter().enumerate() {
            if key.value.is_empty() {
                return self.error(
                    &key.referenced,
                    format!("{}[{key_index}]: an empty key", field("keys")),
                );
            }
            keys.push(KeyPattern(key.value));
        }
        if label.is_some() && keys.is_empty() {
            return self.error(
                &source_at,
                format!(
                    "{}: no key allowed: list the keys (or patterns) this metric may read",
                    field("keys")
                ),
            );
        }
        if label.is_none() && !keys.is_empty() {
            return self.error(
                &source_at,
                format!("{}: keys need a `label` naming them", field("keys")),
            );
        }
        let mut objects = Vec::new();
        for (object_index, object) in raw.objects.into_iter().enumerate() {
            objects.push(self.object(
                object,
                &format!("{}[{object_index}]", field("objects")),
                label.is_some(),
            )?);
        }
        let external_namespaces = match raw.external {
            Some(external) => {
                if let Some(bad) = external
                    .namespaces
                    .value
                    .iter()
                    .find(|namespace| *namespace != "*" && !is_dns_label(namespace))
                {
                    return self.error(
                        &external.namespaces.referenced,
                        format!(
                            "{}: {bad:?} is not a namespace name",
                            field("external.namespaces")
                        ),
                    );
                }
                external.namespaces.value
            }
            None => Vec::new(),
        };
        if objects.is_empty() && external_namespaces.is_empty() {
            return self.error(
                &raw.name.referenced,
                format!(
                    "{}: served nowhere: give `objects` (custom metric) or `external.namespaces`",
                    field("name")
                ),
            );
        }
        Ok(MetricRule {
            name,
            source,
            count,
            label,
            keys,
            objects,
            external_namespaces,
        })
    }

    fn object(&self, raw: Spanned<ObjectFile>, field: &str, has_label: bool) -> Result<ObjectRef> {
        let object = raw.value;
        let resource = &object.resource;
        if !resource.value.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }) {
            return self.error(
                &resource.referenced,
                format!(
                    "{field}.resource: {:?} is not a plural resource (`services`, `deployments.apps`)",
                    resource.value
                ),
            );
        }
        if let Some(namespace) = &object.namespace
            && !is_dns_label(&namespace.value)
        {
            return self.error(
                &namespace.referenced,
                format!(
                    "{field}.namespace: {:?} is not a namespace name",
                    namespace.value
                ),
            );
        }
        if !is_path_segment(&object.name.value.replace('*', "x")) {
            return self.error(
                &object.name.referenced,
                format!(
                    "{field}.name: {:?} is not an object name or a pattern (`*` matches any run)",
                    object.name.value
                ),
            );
        }
        if let Some(labels) = &object.labels {
            tracing::warn!(
                "{}:{}: {field}.labels is ignored: `*` with a labelSelector lists the objects from the API server and matches their own labels",
                self.file,
                labels.referenced.line()
            );
        }
        let key = match object.key {
            Some(key) => {
                if !has_label {
                    return self.error(
                        &key.referenced,
                        format!("{field}.key: needs the metric's `label` naming the key"),
                    );
                }
                if key.value.is_empty() {
                    return self.error(&key.referenced, format!("{field}.key: an empty key"));
                }
                match Template::parse(&key.value, &["name", "namespace"]) {
                    Ok(template) => Some(template),
                    Err(reason) => {
                        return self.error(&key.referenced, format!("{field}.key: {reason}"));
                    }
                }
            }
            None => None,
        };
        Ok(ObjectRef {
            resource: object.resource.value,
            namespace: object.namespace.map(|namespace| namespace.value),
            name: object.name.value,
            key,
        })
    }
}
