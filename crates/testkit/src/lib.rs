//! Test harness: the real services ebb's tests run against, started on free loopback ports
//! and stopped when dropped, so two test runs can coexist and nothing is left behind.
//!
//! - [`redis`]: a throwaway `redis-server`.
//! - [`control_plane`]: etcd, kube-apiserver and kube-controller-manager.

pub mod control_plane;
pub mod redis;
