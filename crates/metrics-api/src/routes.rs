//! What each path answers, once the request is authenticated and authorized: discovery, the
//! values of custom and external metrics, and the Kubernetes `Status` errors (404 for a metric
//! or object the configuration does not serve, 400 for a malformed selector, 503 while a
//! value is missing or too old). Always JSON: the HPA asks for protobuf and accepts JSON.
//!
//! This file is the answer's shape and the dispatch by path; the request's path and
//! parameters are read in `request.rs`, discovery is answered in `discovery.rs`, the metrics'
//! values in `values.rs`.

use std::sync::Arc;

use serde::Serialize;

use crate::cache::Cache;
use crate::config::Config;
use crate::objects::ObjectLister;
use crate::shapes::{self, CUSTOM_GROUP, EXTERNAL_GROUP};

mod discovery;
mod request;
mod values;

pub use request::{RequestPath, route_of};

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

    pub(crate) fn not_found(message: String) -> Reply {
        Reply::failure(404, "NotFound", message)
    }

    pub(crate) fn bad_request(message: String) -> Reply {
        Reply::failure(400, "BadRequest", message)
    }
}

pub struct Api {
    pub config: Config,
    pub cache: Arc<Cache>,
    pub lister: ObjectLister,
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
                .custom_values(version, rest, &request::params(query))
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
                .external_values(namespace, metric, &request::params(query))
                .await
                .unwrap_or_else(|reply| reply),
            _ => Reply::not_found(format!(
                "the server could not find the requested resource {}",
                path.raw
            )),
        }
    }
}
