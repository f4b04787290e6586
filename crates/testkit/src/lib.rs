//! Test harness: the real services ebb's tests run against, started on free loopback ports
//! and stopped when dropped, so two test runs can coexist and nothing is left behind.
//!
//! - [`redis`]: a throwaway `redis-server` (plain or TLS; can be killed, frozen, restarted).
//! - [`control_plane`]: etcd, kube-apiserver and kube-controller-manager.
//! - [`free_port`]: a loopback port for anything else a test starts.

pub mod control_plane;
pub mod redis;

use std::net::{Ipv4Addr, TcpListener};

/// A port the kernel just handed out on loopback; free unless someone races us for it.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("cannot bind a loopback port")
}
