//! Every way `ebb metrics-api` fails, in one enum.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file that cannot be used: where, and why.
    #[error("{file}:{line}: {reason}")]
    Config {
        file: String,
        line: u64,
        reason: String,
    },

    #[error("{file}: {source}")]
    ConfigYaml {
        file: String,
        #[source]
        source: Box<serde_saphyr::Error>,
    },

    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {reason}")]
    Pem { path: String, reason: String },

    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),

    #[error("self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),

    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("the SubjectAccessReview failed: {0}")]
    Review(#[source] kube::Error),

    /// The task asking a SubjectAccessReview ended without an answer (it panicked).
    #[error("the SubjectAccessReview was abandoned before it was answered")]
    ReviewAbandoned,

    #[error("Kubernetes client configuration ({origin}): {source}")]
    KubeConfig {
        origin: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("ConfigMap kube-system/extension-apiserver-authentication: {0}")]
    AuthenticationConfigMap(String),

    /// The API server failed or refused to list the objects `*` answers for.
    #[error("listing {resource} from the API server: {source}")]
    ListObjects {
        resource: String,
        namespace: Option<String>,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("listing {resource}: the API server did not answer within {timeout:?}")]
    ListTimeout {
        resource: String,
        timeout: std::time::Duration,
    },

    #[error("discovering the resource {resource} on the API server: {source}")]
    Discovery {
        resource: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error(
        "the API server serves no resource {resource}: the API group {group:?} has no {plural:?}"
    )]
    UnknownResource {
        resource: String,
        group: String,
        plural: String,
    },

    #[error("cannot listen on {address} ({flag}): {source}")]
    Bind {
        flag: &'static str,
        address: String,
        #[source]
        source: std::io::Error,
    },

    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),

    #[error(transparent)]
    Queue(#[from] ebb_queue::Error),

    #[error(transparent)]
    Source(#[from] ebb_sources::Error),

    #[error(transparent)]
    Runtime(#[from] ebb_runtime::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
