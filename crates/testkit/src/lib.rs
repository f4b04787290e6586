//! Test harness: the real services ebb's tests run against, started on free loopback ports
//! and stopped when dropped, so two test runs can coexist and nothing is left behind.
//!
//! - [`redis`]: a throwaway `redis-server` (plain or TLS; can be killed, frozen, restarted;
//!   counts the commands it ran).
//! - [`redis_cluster`]: a throwaway three-master Redis Cluster (slots can be moved).
//! - [`prometheus`]: a throwaway Prometheus scraping nothing, for PromQL queries.
//! - [`control_plane`]: etcd, kube-apiserver, kube-controller-manager and kube-scheduler, one
//!   per test or one per test binary ([`control_plane::shared_or_skip`]).
//! - [`peers`]: the Python peers' venvs (a real Celery worker, …), built by install-deps.sh.
//! - [`poll`]: the one way a test waits for something to become true.
//! - [`process`]: the one wrapper of a child process a test starts (output kept, killed on
//!   drop).
//! - [`scenario`]: one operator test's namespace on the shared control plane, its pod-less
//!   Deployments and its looks at replicas, statuses and Events.
//! - [`tls`]: a TLS client verifier that trusts any server, for self-signed test servers.
//! - [`free_port`]: a loopback port for anything else a test starts.
//! - [`load_averages`]: the load average, printed beside every figure a test or benchmark measures.
//! - [`under_ci`]: whether a missing tool fails the test (CI) or skips it loudly (elsewhere).

pub mod control_plane;
mod error;
pub mod peers;
mod pod_report;
pub mod poll;
pub mod process;
pub mod prometheus;
pub mod redis;
pub mod redis_cluster;
pub mod scenario;
pub mod tls;

pub use error::{Error, Result};

/// Whether this run is CI: `CI` set to anything but empty, `0` or `false` (`.ci/run` exports
/// `CI=true`). There a test that lacks a tool it needs fails instead of skipping, so that a
/// broken install step cannot pass as a green run. `scripts/control-plane.sh` (`under_ci`)
/// reads the variable the same way.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// A free loopback port for a server a test starts (see [`ebb_runtime::free_loopback_port`]).
pub fn free_port() -> u16 {
    ebb_runtime::free_loopback_port().expect("a free loopback port")
}

/// The 1, 5 and 15 minute load averages as `/proc/loadavg` writes them (none where there is
/// no `/proc`). Every measured figure is printed with them, since a timing taken on a busy
/// machine says little on its own; callers join them as their output's format wants.
pub fn load_averages() -> Vec<String> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn load_averages_are_the_three_numbers_of_proc_loadavg() {
        let averages = super::load_averages();
        assert_eq!(averages.len(), 3, "{averages:?}");
        for average in averages {
            average
                .parse::<f64>()
                .unwrap_or_else(|error| panic!("{average}: {error}"));
        }
    }
}
