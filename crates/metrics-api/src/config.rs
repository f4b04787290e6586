//! The configuration file: which metrics are served, what each one reads, which objects and
//! namespaces it is attached to, which Redis keys it may read, and the poller's bounds.
//! Format and defaults: `default-config.yaml` (the built-in configuration, commented) and the
//! crate's README. Everything is checked at start; an error names the file, the line and the
//! reason (`config.yaml:12: metrics[0].keys: …`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::{Error, Result};

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
    pub source: SourceKind,
    /// The metric label whose value names the Redis key (or fills `{{key}}`); `None` for a
    /// PromQL metric without keys.
    pub label: Option<String>,
    pub keys: Vec<KeyPattern>,
    /// Objects it is attached to in custom.metrics.k8s.io.
    pub objects: Vec<ObjectRef>,
    /// Namespaces it is served in by external.metrics.k8s.io (`*`: all).
    pub external_namespaces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// `LLEN <key>`, 0 when missing.
    RedisList,
    /// The ebb leased queue named by the key: its waiting or in-flight count.
    Queue { count: QueueCount },
    /// The Redis stream named by the key, for one consumer group: its lag or pending count.
    Stream { group: String, count: StreamCount },
    /// A PromQL instant query, `{{namespace}}`, `{{name}}`, `{{resource}}`, `{{key}}` filled in.
    Prometheus {
        server: String,
        query: String,
        empty_result: EmptyResult,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum QueueCount {
    Waiting,
    InFlight,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StreamCount {
    Lag,
    Pending,
}

/// What a PromQL query with no sample answers: 0, or 404 (not found). Never a silent gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EmptyResult {
    Zero,
    NotFound,
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
    pub key: Option<String>,
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
        self.key.as_deref().map(|template| {
            render_template(
                template,
                &[
                    ("name", &self.name),
                    ("namespace", self.namespace.as_deref().unwrap_or_default()),
                ],
            )
        })
    }
}

/// An allowed Redis key: exact, or with `*` matching any run of characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPattern(String);

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

// The file as written; `Spanned` keeps the line of what a later check may refuse.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
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
enum SourceFile {
    RedisList {},
    Queue {
        count: QueueCount,
    },
    Stream {
        group: String,
        count: StreamCount,
    },
    #[serde(rename_all = "camelCase")]
    Prometheus {
        server: Option<String>,
        query: String,
        empty_result: EmptyResult,
    },
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

/// The template fields a PromQL query may use.
const QUERY_FIELDS: [&str; 4] = ["namespace", "name", "resource", "key"];

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
        let raw: ConfigFile =
            serde_saphyr::from_str(text).map_err(|source| match source.location() {
                Some(location) => Error::Config {
                    file: file.to_owned(),
                    line: location.line(),
                    reason: first_line(&source.to_string()),
                },
                None => Error::ConfigYaml {
                    file: file.to_owned(),
                    source: Box::new(source),
                },
            })?;
        Checker { file }.check(raw)
    }
}

/// serde-saphyr's message without what the error already says elsewhere: its `error: line N
/// column M:` prefix (the line is in front already) and the snippet on the following lines.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message);
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.split_once(": ") {
        Some((place, rest)) if place.starts_with("line ") => rest.to_owned(),
        _ => line.to_owned(),
    }
}

struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    fn error<T>(&self, at: &serde_saphyr::Location, reason: String) -> Result<T> {
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

    fn check(&self, raw: ConfigFile) -> Result<Config> {
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

    fn prometheus_url(&self, given: &Spanned<String>, field: &str) -> Result<()> {
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
        let source = match raw.source.value {
            SourceFile::RedisList {} => SourceKind::RedisList,
            SourceFile::Queue { count } => SourceKind::Queue { count },
            SourceFile::Stream { group, count } => {
                if group.is_empty() {
                    return self.error(
                        &source_at,
                        format!("{}: group is empty", field("source.stream")),
                    );
                }
                SourceKind::Stream { group, count }
            }
            SourceFile::Prometheus {
                server,
                query,
                empty_result,
            } => {
                let server = match (server, default_prometheus) {
                    (Some(server), _) => {
                        let spanned = Spanned::new(server, source_at, source_at);
                        self.prometheus_url(&spanned, &field("source.prometheus.server"))?;
                        spanned.value
                    }
                    (None, Some(default)) => default.value.clone(),
                    (None, None) => {
                        return self.error(
                            &source_at,
                            format!(
                                "{}: no server, and no top-level `prometheus` to default to",
                                field("source.prometheus")
                            ),
                        );
                    }
                };
                if let Err(reason) = check_template(&query, label.is_some()) {
                    return self.error(
                        &source_at,
                        format!("{}: {reason}", field("source.prometheus.query")),
                    );
                }
                SourceKind::Prometheus {
                    server,
                    query,
                    empty_result,
                }
            }
        };
        let reads_redis = !matches!(source, SourceKind::Prometheus { .. });
        if reads_redis && label.is_none() {
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
                if let Err(reason) = check_key_template(&key.value) {
                    return self.error(&key.referenced, format!("{field}.key: {reason}"));
                }
                Some(key.value)
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

/// An object's key template: not empty, `{{name}}` and `{{namespace}}` only.
fn check_key_template(template: &str) -> Result<(), String> {
    if template.is_empty() {
        return Err("an empty key".to_owned());
    }
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("a `{{` is not closed by `}}`".to_owned());
        };
        let field = after[..end].trim();
        if !["name", "namespace"].contains(&field) {
            return Err(format!(
                "unknown template field {{{{{field}}}}} (known: {{{{name}}}}, {{{{namespace}}}})"
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// Every `{{…}}` in `query` names a known field, `{{key}}` only when the metric has keys.
fn check_template(query: &str, has_keys: bool) -> Result<(), String> {
    if query.trim().is_empty() {
        return Err("the query is empty".to_owned());
    }
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("a `{{` is not closed by `}}`".to_owned());
        };
        let field = after[..end].trim();
        if !QUERY_FIELDS.contains(&field) {
            return Err(format!(
                "unknown template field {{{{{field}}}}} (known: {})",
                QUERY_FIELDS
                    .map(|name| format!("{{{{{name}}}}}"))
                    .join(", ")
            ));
        }
        if field == "key" && !has_keys {
            return Err("{{key}} needs `label` and `keys`".to_owned());
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// The query with its fields filled in, each value escaped for a PromQL string literal.
pub fn render_template(query: &str, fields: &[(&str, &str)]) -> String {
    let mut rendered = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        rendered.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("templates are checked at load");
        let field = after[..end].trim();
        let value = fields
            .iter()
            .find(|(name, _)| *name == field)
            .map_or("", |(_, value)| value);
        for char in value.chars() {
            if matches!(char, '"' | '\\' | '\'') {
                rendered.push('\\');
            }
            rendered.push(char);
        }
        rest = &after[end + 2..];
    }
    rendered.push_str(rest);
    rendered
}

fn is_dns_label(given: &str) -> bool {
    !given.is_empty()
        && given.len() <= 63
        && given
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !given.starts_with('-')
        && !given.ends_with('-')
}

/// A name usable as one URL path segment of the API.
fn is_path_segment(given: &str) -> bool {
    !given.is_empty()
        && given != "*"
        && given
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// A Kubernetes label key: `[prefix/]name`.
pub fn is_label_key(given: &str) -> bool {
    let name = given.rsplit_once('/').map_or(given, |(_, name)| name);
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_configuration_is_the_dojo() {
        let config = Config::builtin();
        assert_eq!(config.interval, Duration::from_secs(1));
        let [metric] = config.metrics.as_slice() else {
            panic!("one metric: {config:?}")
        };
        assert_eq!(metric.name, "redis_items_in_queue");
        assert_eq!(metric.source, SourceKind::RedisList);
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

    #[test]
    fn templates_are_filled_and_escaped() {
        assert_eq!(
            render_template(
                r#"sum(x{namespace="{{namespace}}",service="{{ name }}",key="{{key}}"})"#,
                &[("namespace", "default"), ("name", "svc"), ("key", r#"a"b"#)]
            ),
            r#"sum(x{namespace="default",service="svc",key="a\"b"})"#
        );
    }
}
