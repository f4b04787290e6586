//! The value of a PromQL instant query (`GET <server>/api/v1/query`), as the number of items
//! waiting: for queues only a Prometheus sees (a broker's exporter, a recording rule), and to
//! stand in for prometheus-adapter's rules.
//!
//! The answer must be one sample (one series, or a scalar) holding a count: the value is rounded
//! up, and a negative, NaN or infinite value is an error, as is a result of several series
//! (which one would count?). A query that matches nothing is a per-source choice,
//! [`EmptyResult`]: 0, or an error; never a silent gap. Nothing is in flight as far as
//! Prometheus can tell, and no completion counter is read.

use std::time::Duration;

use serde::Deserialize;

use crate::{Error, MetricSource, Reading, Result};

/// How long one query may take, connection included.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a query that returns no sample means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyResult {
    /// Nothing waits: for queries whose series vanish when the queue is empty.
    #[default]
    Zero,
    /// A failed read: for queries that must always answer, where silence means a broken
    /// exporter or a wrong label, not an empty queue.
    Error,
}

pub struct PrometheusSource {
    client: reqwest::Client,
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
            given: server.to_owned(),
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
        let client = reqwest::Client::builder()
            .timeout(QUERY_TIMEOUT)
            .build()
            .map_err(|source| Error::PrometheusRequest {
                server: server.to_owned(),
                query: query.to_owned(),
                source,
            })?;
        Ok(PrometheusSource {
            client,
            server: server.trim_end_matches('/').to_owned(),
            url,
            query: query.to_owned(),
            empty_result,
        })
    }

    fn request_failed(&self, source: reqwest::Error) -> Error {
        Error::PrometheusRequest {
            server: self.server.clone(),
            query: self.query.clone(),
            source,
        }
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
            .map_err(|_| self.unusable(format!("the value {value:?} is not a number")))
    }

    /// The single sample's value as a count of items.
    fn count(&self, value: &str) -> Result<u64> {
        let number = self.number(value)?;
        // `as` saturates, so the upper bound is checked explicitly.
        if !number.is_finite() || number < 0.0 || number.ceil() > u64::MAX as f64 {
            return Err(self.unusable(format!(
                "the value {value} is not a count of items (it must be a finite number ≥ 0)"
            )));
        }
        Ok(number.ceil() as u64)
    }

    /// The one sample's value, as text.
    async fn sample_text(&self) -> Result<String> {
        // Prometheus answers errors (a PromQL syntax error is 400) with the same JSON body as
        // results: read the body whatever the HTTP status, and say the status when it is no JSON.
        let response = self
            .client
            .get(self.url.clone())
            .send()
            .await
            .map_err(|error| self.request_failed(error))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| self.request_failed(error))?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|error| {
            let start = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            self.unusable(format!(
                "HTTP {status} with a body that is not the query API's JSON ({error}): {start:?}"
            ))
        })?;
        let data = match answer {
            Answer::Success { data } => data,
            Answer::Error { error_type, error } => {
                return Err(Error::PrometheusRefused {
                    server: self.server.clone(),
                    query: self.query.clone(),
                    error_type,
                    error,
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

impl MetricSource for PrometheusSource {
    fn describe(&self) -> String {
        format!("prometheus {} query {}", self.server, self.query)
    }

    async fn read(&self) -> Result<Reading> {
        let value = self.sample_text().await?;
        Ok(Reading {
            waiting: self.count(&value)?,
            in_flight: 0,
            completed_total: None,
        })
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
