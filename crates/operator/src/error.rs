#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("Kubernetes client configuration: {0}")]
    KubeConfig(#[from] kube::config::InferConfigError),

    #[error("leader election: {0}")]
    Election(#[from] kube_lease_manager::LeaseManagerError),

    #[error(transparent)]
    NotLeading(#[from] NotLeading),

    #[error("spec: {0}")]
    InvalidSpec(#[source] ebb_scaling::Error),

    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },

    #[error(transparent)]
    Queue(#[from] ebb_queue::Error),

    #[error(transparent)]
    Autoscaler(#[from] ebb_autoscaler::Error),

    #[error(transparent)]
    Source(#[from] ebb_sources::Error),

    #[error(transparent)]
    Scaling(#[from] ebb_scaling::Error),

    #[error(transparent)]
    Runtime(#[from] ebb_runtime::Error),

    #[error("reading Secret {namespace}/{name}: {source}")]
    Secret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },

    #[error("Secret {namespace}/{name} has no key {key:?}")]
    SecretKeyMissing {
        namespace: String,
        name: String,
        key: String,
    },

    /// A credential would go to a destination the installer did not allow.
    #[error(
        "{address_field}: {destination} is not on the operator's {flag} ({allowed}), so the credential from {credential_field} is not sent to it and nothing connects; ask whoever installs the operator to add it (chart value allowedAddresses), or give host and password together in one Secret with urlFrom"
    )]
    NotAllowed {
        /// The operator's flag that holds the allow-list.
        flag: &'static str,
        address_field: String,
        credential_field: String,
        destination: String,
        allowed: String,
    },

    #[error("the workload has no spec.selector to find its pods by")]
    NoSelector,

    #[error("pod {pod}: the API server did not keep the scale-in mark")]
    MarkNotStored { pod: String },

    #[error("the control loop stopped")]
    LoopStopped,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A write refused because this replica does not lead (any more).
#[derive(Debug, thiserror::Error)]
#[error("not the leader: writes stopped before the Lease could pass to another replica")]
pub struct NotLeading;
