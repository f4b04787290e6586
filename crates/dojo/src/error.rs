//! The one error type of `ebb dojo check`: what keeps a check from running at all (as opposed
//! to a step that is not done, which is a [`crate::report::Report`] with wrong findings).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command line the check cannot use (exit code 2).
    #[error("{0}")]
    Usage(String),
    #[error("cannot load the kubeconfig (KUBECONFIG or ~/.kube/config): {0}")]
    KubeConfig(#[from] kube::config::InferConfigError),
    #[error("cannot build a Kubernetes client from the kubeconfig: {0}")]
    KubeClient(#[source] kube::Error),
    #[error("the Kubernetes API server did not answer GET {path}: {source}")]
    Kube {
        path: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "Prometheus at {url} did not answer: {source} — is it deployed (step 4), and is --prometheus-url right?"
    )]
    Prometheus {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Prometheus at {url} answered {what} with something unexpected: {detail}")]
    PrometheusAnswer {
        url: String,
        what: String,
        detail: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
