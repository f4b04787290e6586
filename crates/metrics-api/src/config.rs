//! The configuration file: which metrics are served, what each one reads, which objects and
//! namespaces it is attached to, which Redis keys it may read, and the poller's bounds.
//! Format and defaults: `default-config.yaml` (the built-in configuration, commented) and the
//! crate's README. Everything is checked at start; an error names the file, the line and the
//! reason (`config.yaml:12: metrics[0].keys: …`).
//!
//! This file is the checked model; the file as written and its checks are in `check.rs`, a
//! metric's source as the catalogue's spec in `source.rs` (the one mapping), and the
//! Kubernetes name rules in `names.rs`.

use std::path::Path;
use std::time::Duration;

use ebb_sources::template::verbatim;
use ebb_sources::{Count, SourceSpec, Template};

use crate::{Error, Result};

mod check;
mod names;
mod source;
mod source_file;

pub use names::is_label_key;

/// The built-in configuration: the dojo's metric.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.yaml");

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub interval: Duration,
    pub max_age: Duration,
    pub first_read_wait: Duration,
    pub learned_keys_max: usize,
    pub learned_keys_expire_after: Duration,
    pub metrics: Vec<MetricRule>,
}

/// One served metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRule {
    pub name: String,
    /// What it reads, as the catalogue's spec: a Redis source's key is the template
    /// `{{key}}` (the label's value), a PromQL query a template of the request's object;
    /// [`SourceSpec::resolve`] fills them in for one read.
    pub source: SourceSpec,
    /// Which count of the reading it serves.
    pub count: Count,
    /// The metric label whose value names the Redis key (or fills `{{key}}`); `None` for a
    /// PromQL metric without keys.
    pub label: Option<String>,
    pub keys: Vec<KeyPattern>,
    /// Objects it is attached to in custom.metrics.k8s.io.
    pub objects: Vec<ObjectRef>,
    /// Namespaces it is served in by external.metrics.k8s.io (`*`: all).
    pub external_namespaces: Vec<String>,
}

/// An object a custom metric is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// Plural resource, with its group when not core: `services`, `deployments.apps`.
    pub resource: String,
    /// `None`: a cluster-scoped object.
    pub namespace: Option<String>,
    /// The object's name, or a pattern where `*` matches any run of characters: the names it
    /// is served for, and the objects `*` with a `labelSelector` may answer for (those are
    /// listed from the API server, see `objects.rs`).
    pub name: String,
    /// The key of this object's value, `{{name}}` and `{{namespace}}` filled in (`jobs-{{name}}`):
    /// one key per object, which `keys` must allow. `None`: the metric's keys, as for every object.
    pub key: Option<Template>,
}

impl ObjectRef {
    /// Whether this entry serves the object named `name`.
    pub fn allows_name(&self, name: &str) -> bool {
        KeyPattern(self.name.clone()).matches(name)
    }

    /// Whether `name` is a pattern rather than one object's name.
    pub fn is_pattern(&self) -> bool {
        self.name.contains('*')
    }

    /// This entry, for the object named `name` (which it allows).
    pub fn named(&self, name: &str) -> ObjectRef {
        ObjectRef {
            name: name.to_owned(),
            ..self.clone()
        }
    }

    /// The key this object's value is read from, when the entry maps objects to keys.
    pub fn own_key(&self) -> Option<String> {
        self.key.as_ref().map(|template| {
            template.render(
                &[
                    ("name", &self.name),
                    ("namespace", self.namespace.as_deref().unwrap_or_default()),
                ],
                verbatim,
            )
        })
    }
}

/// An allowed Redis key: exact, or with `*` matching any run of characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPattern(pub(crate) String);

impl KeyPattern {
    /// The key itself when the pattern is exact.
    pub fn literal(&self) -> Option<&str> {
        (!self.0.contains('*')).then_some(self.0.as_str())
    }

    pub fn matches(&self, key: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = key.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty();
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl MetricRule {
    /// Whether the configuration lets this metric read `key`.
    pub fn allows_key(&self, key: &str) -> bool {
        self.keys.iter().any(|pattern| pattern.matches(key))
    }

    /// The keys read without being asked for.
    pub fn literal_keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(KeyPattern::literal)
    }

    pub fn serves_external_in(&self, namespace: &str) -> bool {
        self.external_namespaces
            .iter()
            .any(|allowed| allowed == "*" || allowed == namespace)
    }
}

impl Config {
    /// The built-in configuration.
    pub fn builtin() -> Config {
        Config::parse(DEFAULT_CONFIG, "<built-in configuration>")
            .expect("the built-in configuration is valid (tested)")
    }

    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and checks `text`, naming `file` in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config> {
        let raw: check::ConfigFile =
            serde_saphyr::from_str(text).map_err(|source| match source.location() {
                Some(location) => Error::Config {
                    file: file.to_owned(),
                    line: location.line(),
                    reason: check::first_line(&source.to_string()),
                },
                None => Error::ConfigYaml {
                    file: file.to_owned(),
                    source: Box::new(source),
                },
            })?;
        check::Checker { file }.check(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_configuration_is_the_dojo_and_its_busy_safe_twin() {
        let config = Config::builtin();
        assert_eq!(config.interval, Duration::from_secs(1));
        let [metric, total] = config.metrics.as_slice() else {
            panic!("two metrics: {config:?}")
        };
        // The twin: the same key and objects, waiting plus in flight of the ebb queue.
        assert_eq!(total.name, "ebb_queue_items");
        assert_eq!(total.source.kind(), "ebbQueue");
        assert_eq!(total.count, Count::Total);
        assert_eq!(total.objects, metric.objects);
        assert_eq!(
            total.literal_keys().collect::<Vec<_>>(),
            metric.literal_keys().collect::<Vec<_>>()
        );
        assert_eq!(metric.name, "redis_items_in_queue");
        assert_eq!(metric.source.kind(), "redisList");
        assert_eq!(metric.count, Count::Waiting);
        assert_eq!(metric.label.as_deref(), Some("key"));
        assert_eq!(metric.literal_keys().collect::<Vec<_>>(), ["padok"]);
        assert_eq!(
            metric.objects,
            [ObjectRef {
                resource: "services".into(),
                namespace: Some("default".into()),
                name: "prometheus-redis-exporter".into(),
                key: None,
            }]
        );
        assert!(metric.serves_external_in("default"));
        assert!(!metric.serves_external_in("kube-system"));
    }

    #[test]
    fn key_patterns() {
        let pattern = |text: &str| KeyPattern(text.to_owned());
        assert!(pattern("padok").matches("padok"));
        assert!(!pattern("padok").matches("padok2"));
        assert!(pattern("jobs-*").matches("jobs-"));
        assert!(pattern("jobs-*").matches("jobs-a"));
        assert!(!pattern("jobs-*").matches("job-a"));
        assert!(pattern("*-high").matches("x-high"));
        assert!(!pattern("*-high").matches("x-low"));
        assert!(pattern("a*b*c").matches("abc"));
        assert!(pattern("a*b*c").matches("axxbyyc"));
        assert!(!pattern("a*b*c").matches("axxcyyb"));
        assert!(!pattern("ab*ba").matches("aba"));
        assert!(pattern("*").matches("anything"));
    }
}
