//! Prometheus' HTTP API, as the dojo's steps use it: instant queries and the loaded
//! configuration.

use std::time::Duration;

use serde_json::Value;

use crate::{Error, Result};

pub struct Prometheus {
    url: String,
    client: reqwest::Client,
}

/// One sample of an instant query.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: serde_json::Map<String, Value>,
    pub value: f64,
}

impl Prometheus {
    pub fn new(url: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client with a timeout builds");
        Self {
            url: url.trim_end_matches('/').to_owned(),
            client,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let failed = |source| Error::Prometheus {
            url: self.url.clone(),
            source,
        };
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.url)).map_err(|error| {
            Error::Usage(format!(
                "--prometheus-url {:?} is not a URL: {error}",
                self.url
            ))
        })?;
        url.query_pairs_mut().extend_pairs(query);
        let body: Value = self
            .client
            .get(url)
            .send()
            .await
            .map_err(failed)?
            .json()
            .await
            .map_err(failed)?;
        if body["status"] != "success" {
            return Err(Error::PrometheusAnswer {
                url: self.url.clone(),
                what: path.into(),
                detail: body.to_string(),
            });
        }
        Ok(body["data"].clone())
    }

    /// An instant query.
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>> {
        let data = self.get("/api/v1/query", &[("query", promql)]).await?;
        let results = data["result"].as_array().cloned().unwrap_or_default();
        Ok(results
            .iter()
            .map(|result| Sample {
                labels: result["metric"].as_object().cloned().unwrap_or_default(),
                value: result["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN),
            })
            .collect())
    }

    /// `global.scrape_interval` of the loaded configuration (`/api/v1/status/config`).
    pub async fn scrape_interval(&self) -> Result<String> {
        let data = self.get("/api/v1/status/config", &[]).await?;
        let yaml = data["yaml"].as_str().unwrap_or("");
        let config: Value =
            serde_saphyr::from_str(yaml).map_err(|error| Error::PrometheusAnswer {
                url: self.url.clone(),
                what: "/api/v1/status/config".into(),
                detail: error.to_string(),
            })?;
        Ok(config["global"]["scrape_interval"]
            .as_str()
            .unwrap_or("1m")
            .to_owned())
    }
}
