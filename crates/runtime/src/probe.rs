//! `ebb probe`: a Kubernetes exec probe for a server whose port is not known in advance.
//!
//! On one host-network node every replica of a Deployment shares the host's ports, so each
//! binds its own free one (`--http=127.0.0.1:0`) and no `httpGet` probe can name it. Run
//! inside the container, this finds the TCP ports the container's main process (PID 1 of its
//! PID namespace) listens on, from `/proc`, and asks `GET /livez` on them (`--ready`:
//! `GET /readyz`): healthy when one answers 2xx. One command for both probes of a pod, as
//! the HTTP probes have two paths: liveness restarts, readiness only holds traffic back.
//!
//! ```text
//!   /proc/1/fd/* ── socket:[inode] ─┐
//!   /proc/1/net/tcp{,6} ── LISTEN ──┴─▶ port ──▶ GET http://127.0.0.1:<port>/livez (or /readyz)
//! ```

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// `ebb probe`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub struct ProbeArgs {
    /// The process whose listening port is probed (1: the container's main process).
    #[arg(long, default_value_t = 1)]
    pub pid: u32,
    /// Readiness: ask `/readyz` (can the process do its job?) instead of `/livez` (does it
    /// serve at all?).
    #[arg(long)]
    pub ready: bool,
    /// The path asked for, instead of the one `--ready` picks.
    #[arg(long)]
    pub path: Option<String>,
    /// Connect, write and read timeout, each.
    #[arg(long, default_value = "1s", value_parser = crate::parse_duration)]
    pub timeout: Duration,
}

/// Healthy (`Ok`) when `GET <path>` on a port `pid` listens on answers 2xx.
pub fn probe(args: &ProbeArgs) -> Result<()> {
    let path = args
        .path
        .as_deref()
        .unwrap_or(if args.ready { "/readyz" } else { "/livez" });
    let addresses = listening_addresses(args.pid)?;
    let mut last = Error::ProbeNoListener { pid: args.pid };
    for address in addresses {
        match get(address, path, args.timeout) {
            Ok(()) => return Ok(()),
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// Where to dial each TCP socket `pid` listens on: loopback for wildcard binds.
fn listening_addresses(pid: u32) -> Result<Vec<SocketAddr>> {
    let inodes = socket_inodes(pid)?;
    let mut addresses = Vec::new();
    for table in ["tcp", "tcp6"] {
        let path = PathBuf::from(format!("/proc/{pid}/net/{table}"));
        let text = std::fs::read_to_string(&path).map_err(|source| Error::ProbeProc {
            path: path.clone(),
            source,
        })?;
        addresses.extend(
            parse_listeners(&text)
                .into_iter()
                .filter(|(_, inode)| inodes.contains(inode))
                .map(|(address, _)| dialable(address)),
        );
    }
    Ok(addresses)
}

/// The inodes of `pid`'s sockets (`/proc/<pid>/fd/*` → `socket:[inode]`).
fn socket_inodes(pid: u32) -> Result<HashSet<u64>> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let entries = std::fs::read_dir(&dir).map_err(|source| Error::ProbeProc {
        path: dir.clone(),
        source,
    })?;
    Ok(entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect())
}

/// The listening sockets of a `/proc/net/tcp{,6}` table: (address, inode).
fn parse_listeners(table: &str) -> Vec<(SocketAddr, u64)> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&LISTEN) {
                return None;
            }
            let (ip, port) = fields.get(1)?.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            Some((
                SocketAddr::new(parse_ip(ip)?, port),
                fields.get(9)?.parse().ok()?,
            ))
        })
        .collect()
}

/// `/proc/net/tcp` addresses: 32-bit words in hex, each in the host's (little-endian) order.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let words = (0..hex.len() / 8)
        .map(|index| u32::from_str_radix(&hex[index * 8..index * 8 + 8], 16).ok())
        .collect::<Option<Vec<u32>>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(bytes).ok()?,
        ))),
        _ => None,
    }
}

/// A wildcard bind is reached on loopback; any other address as it is.
fn dialable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, address.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, address.port()).into(),
        _ => address,
    }
}

/// `GET <path>` over HTTP/1.0: `Ok` on a 2xx status.
fn get(address: SocketAddr, path: &str, timeout: Duration) -> Result<()> {
    let request_error = |source| Error::ProbeRequest { address, source };
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(request_error)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(request_error)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(request_error)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(request_error)?;
    let mut response = Vec::new();
    stream
        .take(4096)
        .read_to_end(&mut response)
        .map_err(request_error)?;
    let response = String::from_utf8_lossy(&response);
    let status_line = response.lines().next().unwrap_or_default();
    match status_line.split_whitespace().nth(1) {
        Some(status) if status.starts_with('2') => Ok(()),
        _ => Err(Error::ProbeStatus {
            address,
            path: path.to_owned(),
            status_line: status_line.to_owned(),
            reason: response
                .split_once("\r\n\r\n")
                .and_then(|(_, body)| body.lines().next())
                .unwrap_or_default()
                .to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_read_from_the_proc_table_format() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  65534        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  65534        0 4243 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000      0        0 99 1 0000000000000000 100 0 0 10 0
";
        assert_eq!(
            parse_listeners(table),
            vec![
                ("127.0.0.1:8080".parse().unwrap(), 4242),
                ("0.0.0.0:80".parse().unwrap(), 99)
            ]
        );
        assert_eq!(
            parse_ip("00000000000000000000000001000000"),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(
            dialable("0.0.0.0:80".parse().unwrap()),
            "127.0.0.1:80".parse().unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn this_process_is_probed_on_the_port_it_listens_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let health = crate::Health::new();
        let (_stop, shutdown) = crate::Shutdown::new();
        let metrics = crate::Metrics::new(prometheus_client::registry::Registry::default());
        let router = crate::http::ops_router(health.clone(), metrics);
        tokio::spawn(crate::http::serve(
            listener,
            router,
            crate::http::HttpLimits::default(),
            shutdown,
        ));
        let probe_now = move |ready: bool| {
            let args = ProbeArgs {
                pid: std::process::id(),
                ready,
                path: None,
                timeout: Duration::from_secs(1),
            };
            std::thread::spawn(move || probe(&args)).join().unwrap()
        };
        probe_now(false).expect("alive");
        probe_now(true).expect("ready");
        health.set_unhealthy("Redis at 127.0.0.1:6379: wrong password: …");
        probe_now(false).expect("still alive: a restart would not fix the password");
        let error = probe_now(true).expect_err("unready");
        assert!(error.to_string().contains("503"), "{error}");
        assert!(error.to_string().contains("wrong password"), "{error}");
    }
}
