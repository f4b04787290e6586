//! A metric's `source` as the catalogue's spec ([`Checker::source`], the one mapping), and
//! the count it serves. What is the metrics API's own: the Redis server is the process's
//! `--redis-server`, so a Redis source's key is `{{key}}`, the value of the metric's label;
//! a PromQL query is a template of the request's object; a Prometheus server may default to
//! the file's top-level `prometheus`. The kinds are the catalogue's names (`ebbQueue`);
//! `queue` and `stream` are still read, as files written before the catalogue said them.

use ebb_sources::bullmq::BullmqSpec;
use ebb_sources::celery::CelerySpec;
use ebb_sources::dramatiq::DramatiqSpec;
use ebb_sources::prometheus::PrometheusSpec;
use ebb_sources::queue::EbbQueueSpec;
use ebb_sources::redis_list::RedisListSpec;
use ebb_sources::redis_stream::RedisStreamSpec;
use ebb_sources::rq::RqSpec;
use ebb_sources::sidekiq::SidekiqSpec;
use ebb_sources::{Count, SourceSpec, Template, Text};
use serde_saphyr::{Location, Spanned};

use super::check::Checker;
use super::source_file::SourceFile;
use crate::Result;

/// The template fields a PromQL query may use.
pub const QUERY_FIELDS: [&str; 4] = ["namespace", "name", "resource", "key"];

/// A Redis source's key: the label's value, filled in per request.
fn label_key() -> Text {
    Text::Template(Template::parse("{{key}}", &["key"]).expect("a valid template"))
}

impl Checker<'_> {
    /// The catalogue's spec for metric `index`'s source written at `at`, and the count it
    /// serves. `has_label`: the metric names its keys by a label (`{{key}}` is known).
    pub(super) fn source(
        &self,
        raw: SourceFile,
        at: Location,
        index: usize,
        has_label: bool,
        default_prometheus: Option<&Spanned<String>>,
    ) -> Result<(SourceSpec, Count)> {
        let field = |kind: &str| format!("metrics[{index}].source.{kind}");
        let (spec, count) = match raw {
            SourceFile::RedisList {} => (
                SourceSpec::RedisList(RedisListSpec { key: label_key() }),
                None,
            ),
            SourceFile::EbbQueue { count } => (
                SourceSpec::EbbQueue(EbbQueueSpec { queue: label_key() }),
                Some(count),
            ),
            SourceFile::RedisStream { group, count } => (
                SourceSpec::RedisStream(RedisStreamSpec {
                    stream: label_key(),
                    group,
                }),
                Some(count),
            ),
            SourceFile::Celery {
                priority_steps,
                separator,
                key_prefix,
                acks_late,
                visibility_timeout_seconds,
                count,
            } => (
                SourceSpec::Celery(CelerySpec {
                    queues: vec![label_key()],
                    priority_steps,
                    separator,
                    key_prefix,
                    acks_late,
                    visibility_timeout_seconds,
                }),
                Some(count),
            ),
            SourceFile::Rq { count } => {
                (SourceSpec::Rq(RqSpec { queue: label_key() }), Some(count))
            }
            SourceFile::Dramatiq {
                namespace,
                heartbeat_timeout_ms,
                count,
            } => (
                SourceSpec::Dramatiq(DramatiqSpec {
                    queue: label_key(),
                    namespace,
                    heartbeat_timeout_ms,
                }),
                Some(count),
            ),
            SourceFile::Sidekiq {
                namespace,
                heartbeat_timeout_seconds,
                count,
            } => (
                SourceSpec::Sidekiq(SidekiqSpec {
                    queues: vec![label_key()],
                    namespace,
                    heartbeat_timeout_seconds,
                }),
                Some(count),
            ),
            SourceFile::Bullmq { prefix, count } => (
                SourceSpec::Bullmq(BullmqSpec {
                    queue: label_key(),
                    prefix,
                }),
                Some(count),
            ),
            SourceFile::Prometheus {
                server,
                query,
                empty_result,
            } => {
                let server = match (server, default_prometheus) {
                    (Some(server), _) => {
                        let spanned = Spanned::new(server, at, at);
                        self.prometheus_url(&spanned, &format!("{}.server", field("prometheus")))?;
                        spanned.value
                    }
                    (None, Some(default)) => default.value.clone(),
                    (None, None) => {
                        return self.error(
                            &at,
                            format!(
                                "{}: no server, and no top-level `prometheus` to default to",
                                field("prometheus")
                            ),
                        );
                    }
                };
                let query_field = format!("{}.query", field("prometheus"));
                if query.trim().is_empty() {
                    return self.error(&at, format!("{query_field}: the query is empty"));
                }
                let query = match Template::parse(&query, &QUERY_FIELDS) {
                    Ok(query) => query,
                    Err(reason) => return self.error(&at, format!("{query_field}: {reason}")),
                };
                if !has_label && query.fields().any(|field| field == "key") {
                    return self.error(
                        &at,
                        format!("{query_field}: {{{{key}}}} needs `label` and `keys`"),
                    );
                }
                (
                    SourceSpec::Prometheus(PrometheusSpec {
                        server,
                        query: Text::Template(query),
                        empty_result,
                    }),
                    None,
                )
            }
        };
        let kind_field = field(spec.kind());
        if let Err(error) = spec.check(&kind_field) {
            return self.error(&at, error.to_string());
        }
        let info = spec.info();
        let Some(count) = info.count(count.as_deref()) else {
            return self.error(
                &at,
                format!(
                    "{kind_field}.count: {:?} is not one of {}",
                    count.unwrap_or_default(),
                    info.counts
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        };
        Ok((spec, count))
    }
}
