use std::net::SocketAddr;

/// Errors of the shared process plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid listen address {given:?}: expected :port or host:port")]
    InvalidListenAddress { given: String },

    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },

    #[error("HTTP server on {address} failed: {source}")]
    Serve {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot install the signal handler: {0}")]
    Signal(#[source] std::io::Error),

    #[error("cannot start the async runtime: {0}")]
    AsyncRuntime(#[source] std::io::Error),

    #[error("probe: cannot read {path}: {source}")]
    ProbeProc {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("probe: process {pid} listens on no TCP port")]
    ProbeNoListener { pid: u32 },

    #[error("probe: request to {address} failed: {source}")]
    ProbeRequest {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// `reason`: the answer's first body line (the server's reason, for the kubelet's event).
    #[error("probe: GET {path} on {address} answered {status_line:?}: {reason}")]
    ProbeStatus {
        address: SocketAddr,
        path: String,
        status_line: String,
        reason: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
