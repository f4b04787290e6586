//! The test kit's one error type: what can go wrong starting a server, running a tool, or
//! waiting for something to become true.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The binaries cannot be built here (no Go toolchain): tests skip, loudly.
    #[error("Kubernetes control plane unavailable: {0}")]
    Unavailable(String),
    #[error("building the control plane failed: {0}")]
    Build(String),
    #[error("scripts/control-plane.sh {verb} failed ({status}):\n{output}")]
    Script {
        verb: &'static str,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` did not print JSON: {source}")]
    Json {
        command: String,
        source: serde_json::Error,
    },
    /// This machine cannot run a node (not root, no overlayfs, no runc, …): tests that need
    /// one skip, loudly, or fail under CI.
    #[error("this machine cannot run a Kubernetes node: {0}")]
    NoNode(String),
    #[error("building the ebb image failed: {0}")]
    Image(String),
    #[error("cannot create a temporary folder: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("scripts/control-plane.sh env did not print {0}")]
    MissingEnv(&'static str),
    /// What [`poll::until`](crate::poll::until) gives up with: what it waited for, and what
    /// the last look saw.
    #[error("timed out after {timeout:?} waiting for {what}; last seen: {last}")]
    Timeout {
        what: String,
        timeout: Duration,
        last: String,
    },
    /// A [`Process`](crate::process::Process) that was expected to run has exited.
    #[error("{name} exited ({status}); its output ends with:\n{tail}")]
    Exited {
        name: String,
        status: std::process::ExitStatus,
        tail: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
