//! The one error type of the e2e harness.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The test kit's: a control plane, a process that exited, a wait that timed out.
    #[error(transparent)]
    Testkit(#[from] ebb_testkit::Error),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid YAML: {source}")]
    Yaml {
        path: PathBuf,
        // Boxed: serde-saphyr's error is large (a snippet of the file), and every Result
        // here would carry its size.
        source: Box<serde_saphyr::Error>,
    },
    #[error("{path}: expected {what}")]
    MissingValue { path: PathBuf, what: String },
    #[error("{what} not ready: {last}; its log ends with:\n{tail}")]
    NotReady {
        what: String,
        last: String,
        tail: String,
    },
    #[error(
        "{} is missing (scripts/control-plane.sh build could not build it): under CI the adapter → HPA hop is required",
        .0.display()
    )]
    AdapterMissing(PathBuf),
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("Prometheus query `{query}` failed: {message}")]
    Prometheus { query: String, message: String },
    #[error("reading {url} failed: {source}")]
    Scrape {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Prometheus query `{query}` failed: {source}")]
    PrometheusRequest {
        query: String,
        #[source]
        source: reqwest::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
