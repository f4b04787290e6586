//! The cluster of the current kubeconfig, read with plain GETs: every check reads objects as
//! JSON, as `kubectl get -o json` shows them, so that the messages can quote them.

use std::time::Duration;

use serde_json::Value;

use crate::{Error, Result};

pub struct Cluster {
    client: kube::Client,
}

impl Cluster {
    /// A client for the current context of the kubeconfig (`KUBECONFIG`, else `~/.kube/config`,
    /// else in-cluster), with short timeouts: a check must not hang on a dead API server.
    pub async fn from_kubeconfig() -> Result<Self> {
        let mut config = kube::Config::infer().await?;
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(15));
        let client = kube::Client::try_from(config).map_err(Error::KubeClient)?;
        Ok(Self { client })
    }

    /// `GET path` as JSON; `None` when the API server answers 404 (no such object or API).
    pub async fn get(&self, path: &str) -> Result<Option<Value>> {
        let request = http::Request::get(path)
            .body(Vec::new())
            .expect("a GET with an absolute path is a valid request");
        match self.client.request::<Value>(request).await {
            Ok(value) => Ok(Some(value)),
            // By code, not by reason: an API group nobody serves answers a plain-text
            // `404 page not found`, with no Status reason to match.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(source) => Err(Error::Kube {
                path: path.into(),
                source,
            }),
        }
    }

    /// `GET path`, where an API error (not found, 503 from an aggregated server, …) is an
    /// answer to report, not a reason to stop: `Err(message)`.
    pub async fn get_answer(&self, path: &str) -> Result<Result<Value, String>> {
        let request = http::Request::get(path)
            .body(Vec::new())
            .expect("a GET with an absolute path is a valid request");
        match self.client.request::<Value>(request).await {
            Ok(value) => Ok(Ok(value)),
            Err(kube::Error::Api(status)) => Ok(Err(
                if status.message.starts_with(&status.code.to_string()) {
                    // A plain-text answer such as `404 page not found` already says its code.
                    status.message.clone()
                } else {
                    format!("{} {}", status.code, status.message)
                },
            )),
            Err(source) => Err(Error::Kube {
                path: path.into(),
                source,
            }),
        }
    }

    /// The API server's `gitVersion` (`v1.37.2`).
    pub async fn version(&self) -> Result<String> {
        Ok(
            self.get("/version").await?.unwrap_or_default()["gitVersion"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned(),
        )
    }

    /// Whether the API server serves `group/version` (e.g. `monitoring.coreos.com/v1`).
    pub async fn serves(&self, group_version: &str) -> Result<bool> {
        Ok(self.get(&format!("/apis/{group_version}")).await?.is_some())
    }

    /// The items of a list at `path`; empty when the API is not served.
    pub async fn list(&self, path: &str) -> Result<Vec<Value>> {
        Ok(self
            .get(path)
            .await?
            .and_then(|list| list["items"].as_array().cloned())
            .unwrap_or_default())
    }
}

/// The condition `kind` of an object's status: `(status == "True", reason, message)`.
pub fn condition(object: &Value, kind: &str) -> Option<(bool, String, String)> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            (
                c["status"] == "True",
                c["reason"].as_str().unwrap_or("").to_owned(),
                c["message"].as_str().unwrap_or("").to_owned(),
            )
        })
}
