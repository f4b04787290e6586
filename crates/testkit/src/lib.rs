//! Test harness: the real services ebb's tests run against, started on free loopback ports
//! and stopped when dropped, so two test runs can coexist and nothing is left behind.
//!
//! - [`redis`]: a throwaway `redis-server` (plain or TLS; can be killed, frozen, restarted).
//! - [`redis_cluster`]: a throwaway three-master Redis Cluster (slots can be moved).
//! - [`prometheus`]: a throwaway Prometheus scraping nothing, for PromQL queries.
//! - [`control_plane`]: etcd, kube-apiserver and kube-controller-manager.
//! - [`free_port`]: a loopback port for anything else a test starts.

pub mod control_plane;
pub mod prometheus;
pub mod redis;
pub mod redis_cluster;

/// A free loopback port for a server a test starts (see [`ebb_runtime::free_loopback_port`]).
pub fn free_port() -> u16 {
    ebb_runtime::free_loopback_port().expect("a free loopback port")
}
