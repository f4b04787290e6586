//! Picking a free loopback port for a server that starts a moment later.
//!
//! A port from `bind(0)` comes out of the kernel's ephemeral range, the same range outgoing
//! connections take their local ports from: between picking it and the server binding it, a
//! busy machine (an API server dialling etcd, a test suite) can take it for a connection.
//! Picking below that range leaves only other pickers to race with.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};

/// The lowest port handed out here.
const LOWEST: u16 = 10_000;

/// A loopback port nothing listens on, below the kernel's ephemeral range.
pub fn free_loopback_port() -> std::io::Result<u16> {
    let ceiling = ephemeral_range_start().max(LOWEST + 1_000);
    let random = RandomState::new();
    for attempt in 0..1_000u32 {
        let mut hasher = random.build_hasher();
        hasher.write_u32(attempt);
        let port = LOWEST + (hasher.finish() % u64::from(ceiling - LOWEST)) as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::other(format!(
        "no free loopback port between {LOWEST} and {ceiling}"
    )))
}

/// The first port of `net.ipv4.ip_local_port_range` (32768 when it cannot be read).
fn ephemeral_range_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_below_the_ephemeral_range() {
        for _ in 0..20 {
            let port = free_loopback_port().unwrap();
            assert!((LOWEST..ephemeral_range_start().max(LOWEST + 1_000)).contains(&port));
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("still free");
        }
    }
}
