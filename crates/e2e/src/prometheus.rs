//! The Debian Prometheus, configured as kube-prometheus-stack would be from the dojo's values:
//! the scrape interval from `helm/values/kube-prometheus-stack.yaml`, and the rule groups of a
//! PrometheusRule object. No operator runs here, so the scrape job carries the target labels a
//! ServiceMonitor would add (`namespace`, `service`, `pod`, …); without them the adapter could
//! not attach the series to the exporter's Service.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::daemon::{Process, free_port, wait_http_ok};
use crate::values::Values;
use crate::{Error, Result};

/// What a ServiceMonitor selecting a Service adds to the scraped series.
#[derive(Debug, Clone)]
pub struct ServiceTarget {
    pub address: String,
    pub namespace: String,
    pub service: String,
    /// The Service's port name.
    pub endpoint: String,
}

impl ServiceTarget {
    /// The ServiceMonitor's job name, and its relabelled target labels.
    fn scrape_job(&self) -> Value {
        json!({
            "job_name": format!("serviceMonitor/{}/{}/0", self.namespace, self.service),
            "static_configs": [{
                "targets": [self.address],
                "labels": {
                    "namespace": self.namespace,
                    "service": self.service,
                    "endpoint": self.endpoint,
                    "job": self.service,
                    "pod": format!("{}-0", self.service),
                    "container": self.service,
                },
            }],
        })
    }
}

#[derive(Debug)]
pub struct Prometheus {
    daemon: Process,
    port: u16,
    client: reqwest::Client,
}

/// One sample of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: serde_json::Map<String, Value>,
    pub value: f64,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` and evaluating `rule_groups` (a PrometheusRule's
    /// `spec.groups`), with its data and config in `dir`.
    pub async fn start(dir: &Path, target: &ServiceTarget, rule_groups: &Value) -> Result<Self> {
        let stack = Values::dojo("kube-prometheus-stack")?;
        let scrape_interval = stack.string("prometheus.prometheusSpec.scrapeInterval")?;
        // JSON is YAML: Prometheus reads both files as they are.
        let rules = dir.join("rules.json");
        write(&rules, &json!({ "groups": rule_groups }))?;
        let config = dir.join("prometheus.json");
        write(
            &config,
            &json!({
                "global": { "scrape_interval": scrape_interval, "evaluation_interval": scrape_interval },
                "rule_files": [rules],
                "scrape_configs": [target.scrape_job()],
            }),
        )?;
        let port = free_port();
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let daemon = Process::spawn_quiet("prometheus", &mut command)?;
        wait_http_ok(&daemon, &format!("http://127.0.0.1:{port}/-/ready")).await?;
        Ok(Self {
            daemon,
            port,
            client: reqwest::Client::new(),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An instant query.
    pub async fn query(&self, query: &str) -> Result<Vec<Sample>> {
        let failed = |message: String| Error::Prometheus {
            query: query.into(),
            message,
        };
        let request_failed = |source| Error::PrometheusRequest {
            query: query.into(),
            source,
        };
        let mut url: reqwest::Url = format!("{}/api/v1/query", self.url())
            .parse()
            .expect("http://127.0.0.1:<port>/api/v1/query is a URL");
        url.query_pairs_mut().append_pair("query", query);
        let body: Value = self
            .client
            .get(url)
            .send()
            .await
            .map_err(request_failed)?
            .json()
            .await
            .map_err(request_failed)?;
        if body["status"] != "success" {
            return Err(failed(body.to_string()));
        }
        let results = body["data"]["result"]
            .as_array()
            .ok_or_else(|| failed(format!("no data.result in {body}")))?;
        results
            .iter()
            .map(|result| {
                let value = result["value"][1]
                    .as_str()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| failed(format!("no number in {result}")))?;
                let labels = result["metric"].as_object().cloned().unwrap_or_default();
                Ok(Sample { labels, value })
            })
            .collect()
    }

    pub fn daemon(&mut self) -> &mut Process {
        &mut self.daemon
    }
}

fn write(path: &Path, value: &Value) -> Result<()> {
    std::fs::write(path, value.to_string()).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })
}
