//! Test harness: the real services ebb's tests run against, started on free loopback ports
//! and stopped when dropped, so two test runs can coexist and nothing is left behind.
//!
//! - [`redis`]: a throwaway `redis-server` (plain or TLS; can be killed, frozen, restarted).
//! - [`redis_cluster`]: a throwaway three-master Redis Cluster (slots can be moved).
//! - [`prometheus`]: a throwaway Prometheus scraping nothing, for PromQL queries.
//! - [`control_plane`]: etcd, kube-apiserver and kube-controller-manager.
//! - [`tls`]: a TLS client verifier that trusts any server, for self-signed test servers.
//! - [`free_port`]: a loopback port for anything else a test starts.
//! - [`under_ci`]: whether a missing tool fails the test (CI) or skips it loudly (elsewhere).

pub mod control_plane;
pub mod prometheus;
pub mod redis;
pub mod redis_cluster;
pub mod tls;

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
