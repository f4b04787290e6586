//! The value of a PromQL instant query (`GET <server>/api/v1/query`), as the number of items
//! waiting: for queues only a Prometheus sees (a broker's exporter, a recording rule), and to
//! stand in for prometheus-adapter's rules.
//!
//! The answer must be one sample (one series, or a scalar) holding a count: the value is rounded
//! up, and a negative, NaN or infinite value is an error, as is a result of several series
//! (which one would count?). A query that matches nothing is a per-source choice,
//! [`EmptyResult`]: 0, or an error (which the metrics API answers with 404); never a silent
//! gap. What is in flight Prometheus cannot tell (unknown, not 0), and no completion counter
//! is read. A server of the value itself gets the sample unrounded ([`MetricSource::measure`]).
//!
//! The server is whatever the QueueScaler's author wrote, so it is spoken to through the one
//! guarded client ([`crate::http_client`]): no redirects, a capped reply, a timeout. What a
//! reply holds reaches errors only as the query API's own refusal (`errorType`, `error`,
//! shortened), never as raw body text: a status must not become a way to read another
//! service's answers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalogue::fixed;
use crate::http_client::{self, Reply};
use crate::{Count, Error, Kind, Measured, MetricSource, Reading, Redis, Result, Text};

/// How long one query may take, connection and reply included.
pub const QUERY_TIMEOUT: Duration = http_client::TIMEOUT;

/// At most this much of a text the server sent (a refusal's message, a value) is quoted.
const QUOTED_CHARS: usize = 200;

/// What a query that returns no sample means: the one encoding of the rule, written
/// `emptyResult` by both sides. `Zero`: nothing waits, for queries whose series vanish when
/// the queue is empty. `Error`: a failed read, for queries that must always answer, where
/// silence means a broken exporter or a wrong label; the metrics API answers it with 404
/// (its configuration also spells it `notFound`).
// No `///` on the variants: the CRD's schema stays a plain enum of two names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum EmptyResult {
    #[default]
    #[serde(alias = "zero")]
    Zero,
    #[serde(alias = "error", alias = "notFound", alias = "NotFound")]
    Error,
}

/// A PromQL instant query: `prometheus` in a QueueScaler and in the metrics API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrometheusSpec {
    /// Base URL of the Prometheus HTTP API (each side says where it comes from).
    pub server: String,
    /// The query whose single value is the number of items waiting; in the metrics API a
    /// template of the request's object and key.
    pub query: Text,
    pub empty_result: EmptyResult,
}

impl Kind for PrometheusSpec {
    const KIND: &'static str = "prometheus";
    const REDIS_KEY: Option<&'static str> = None;
    const FIELDS: &'static [&'static str] = &["query", "emptyResult"];
    const COUNTS: &'static [(&'static str, Count)] = &[("value", Count::Waiting)];
    type Source = PrometheusSource;

    fn check(&self, field: &str) -> Result<()> {
        if self.query.as_str().trim().is_empty() {
            return Err(Error::Invalid {
                field: format!("{field}.query"),
                reason: "the query is empty".to_owned(),
            });
        }
        Ok(())
    }

    /// Each value filled in is escaped for a PromQL string literal.
    fn resolve(&self, fields: &[(&str, &str)]) -> Self {
        PrometheusSpec {
            query: self
                .query
                .resolve(fields, |c| matches!(c, '"' | '\\' | '\'')),
            ..self.clone()
        }
    }

    fn build(&self, _redis: Option<&Redis>) -> Result<PrometheusSource> {
        let query = fixed(&self.query, Self::KIND, "query")?;
        PrometheusSource::new(&self.server, query, self.empty_result)
    }
}

pub struct PrometheusSource {
    /// As shown in errors: without credentials.
    server: String,
    url: reqwest::Url,
    query: String,
    empty_result: EmptyResult,
}

impl PrometheusSource {
    /// A source querying the Prometheus HTTP API at `server` (`http://prometheus:9090`, maybe
    /// with a path prefix). Fails when `server` is not an http URL.
    pub fn new(server: &str, query: &str, empty_result: EmptyResult) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidPrometheusAddress {
            given: ebb_units::redact_address(server),
            reason,
        };
        let base = reqwest::Url::parse(server).map_err(|error| invalid(error.to_string()))?;
        // The workspace's reqwest is built without TLS: an https server would only fail at
        // the first read, so it is refused here, where the address is given.
        match base.scheme() {
            "http" => {}
            "https" => return Err(invalid("https is not supported yet: use http".to_owned())),
            other => return Err(invalid(format!("scheme {other:?} is not http"))),
        }
        let mut url = base
            .join(&format!(
                "{}/api/v1/query",
                base.path().trim_end_matches('/')
            ))
            .map_err(|error| invalid(error.to_string()))?;
        url.query_pairs_mut().append_pair("query", query);
        // Built once per process; a failure to build it shows here, where the source is made.
        http_client::shared()?;
        Ok(PrometheusSource {
            server: ebb_units::redact_address(server.trim_end_matches('/')),
            url,
            query: query.to_owned(),
            empty_result,
        })
    }

    /// True when the server address carries credentials (`http://user:password@…`): the
    /// operator then checks it against its allow-list before the first request.
    pub fn carries_credentials(&self) -> bool {
        !self.url.username().is_empty() || self.url.password().is_some()
    }

    /// The host and port this source sends requests to.
    pub fn host_port(&self) -> (String, u16) {
        (
            self.url.host_str().unwrap_or_default().to_owned(),
            self.url.port_or_known_default().unwrap_or(80),
        )
    }

    fn request_failed(&self, error: Error) -> Error {
        match error {
            Error::Http { reason, .. } => Error::PrometheusRequest {
                server: self.server.clone(),
                query: self.query.clone(),
                reason,
            },
            other => other,
        }
    }

    /// The reply, within the shared client's rules.
    async fn reply(&self) -> Result<Reply> {
        http_client::shared()?
            .get(self.url.clone(), &self.server)
            .await
            .map_err(|error| self.request_failed(error))
    }

    fn unusable(&self, reason: String) -> Error {
        Error::PrometheusResult {
            server: self.server.clone(),
            query: self.query.clone(),
            reason,
        }
    }

    /// The single sample's value as a number (NaN and infinities included).
    fn number(&self, value: &str) -> Result<f64> {
        value
            .parse()
            .map_err(|_| self.unusable(format!("the value {:?} is not a number", shortened(value))))
    }

    /// The single sample's value as a count of items.
    fn count(&self, value: &str) -> Result<u64> {
        let number = self.number(value)?;
        // `as` saturates, so the upper bound is checked explicitly.
        if !number.is_finite() || number < 0.0 || number.ceil() > u64::MAX as f64 {
            return Err(self.unusable(format!(
                "the value {} is not a count of items (it must be a finite number ≥ 0)",
                shortened(value)
            )));
        }
        Ok(number.ceil() as u64)
    }

    /// The one sample's value, as text.
    async fn sample_text(&self) -> Result<String> {
        // Prometheus answers errors (a PromQL syntax error is 400) with the same JSON body as
        // results: read the body whatever the HTTP status, and say the status when it is no JSON.
        let Reply { status, body, .. } = self.reply().await?;
        // Neither the body nor serde's message (which quotes what it read) goes into the
        // error: only its size.
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            self.unusable(format!(
                "HTTP {status}: reply was not the query API's JSON ({} bytes)",
                body.len()
            ))
        })?;
        let data = match answer {
            Answer::Success { data } => data,
            Answer::Error { error_type, error } => {
                return Err(Error::PrometheusRefused {
                    server: self.server.clone(),
                    query: self.query.clone(),
                    error_type: shortened(&error_type),
                    error: shortened(&error),
                });
            }
        };
        let value = match data {
            Data::Scalar((_, value)) => value,
            Data::Vector(mut series) => match series.len() {
                1 => series.remove(0).value.1,
                0 => match self.empty_result {
                    EmptyResult::Zero => "0".to_owned(),
                    EmptyResult::Error => {
                        return Err(Error::PrometheusEmpty {
                            server: self.server.clone(),
                            query: self.query.clone(),
                        });
                    }
                },
                several => {
                    return Err(self.unusable(format!(
                        "the query returned {several} series, it must return one (aggregate them, e.g. with sum)"
                    )));
                }
            },
            Data::Matrix(_) | Data::String(_) => {
                return Err(self.unusable(
                    "the result is not a number (an instant vector or a scalar is needed)"
                        .to_owned(),
                ));
            }
        };
        Ok(value)
    }

    /// The query's one sample as PromQL gave it (`0.5` stays 0.5), for servers of the
    /// value itself (the metrics API); [`read`](MetricSource::read) rounds it up to a count.
    pub async fn sample(&self) -> Result<f64> {
        let value = self.sample_text().await?;
        let number = self.number(&value)?;
        if !number.is_finite() {
            return Err(self.unusable(format!("the value {value} is not a finite number")));
        }
        Ok(number)
    }
}

/// At most [`QUOTED_CHARS`] characters of `text`, on one line.
fn shortened(text: &str) -> String {
    let mut shown: String = text
        .chars()
        .take(QUOTED_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > QUOTED_CHARS {
        shown.push('…');
    }
    shown
}

impl MetricSource for PrometheusSource {
    fn describe(&self) -> String {
        format!("prometheus {} query {}", self.server, self.query)
    }

    async fn read(&self) -> Result<Reading> {
        let value = self.sample_text().await?;
        Ok(Reading::waiting(self.count(&value)?))
    }

    async fn measure(&self) -> Result<Measured> {
        self.sample().await.map(Measured::Sample)
    }
}

/// The query API's envelope (`/api/v1/query`), as documented by Prometheus.
#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Answer {
    Success {
        data: Data,
    },
    Error {
        #[serde(rename = "errorType")]
        error_type: String,
        error: String,
    },
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Series>),
    /// `[unix time, "value"]`.
    Scalar((f64, String)),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Series {
    /// `[unix time, "value"]`.
    value: (f64, String),
}
