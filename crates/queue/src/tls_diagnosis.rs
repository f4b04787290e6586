//! Telling a TLS mismatch from an outage. Neither side of a mismatch says so, so after a
//! failure that a mismatch could explain one plain `PING` settles it. Apart from the
//! classification ([`crate::kind`]) because it dials Redis, which the classification must not.

use std::io;
use std::time::Duration;

use redis::{IntoConnectionInfo, RedisError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::address::Target;
use crate::{Error, RedisAddress, RedisErrorKind};

/// How long the plain `PING` of [`with_tls_diagnosis`] may take: it runs only after a failure.
const PLAIN_PING_TIMEOUT: Duration = Duration::from_millis(500);

/// `error` again, as a TLS mismatch when one explains it. Neither side of a mismatch says so:
/// a plain Redis waits for the end of a line that a TLS `ClientHello` never sends (a
/// timeout), and a TLS port resets a plain connection (a lost connection). So after such a
/// failure one plain `PING` settles it: a Redis answer means a plain port, a reset or a close
/// without a byte means a port that wants TLS.
pub(crate) async fn with_tls_diagnosis(address: &RedisAddress, error: Error) -> Error {
    let suspicious = match &error {
        Error::NoAnswer { .. } => true,
        Error::Redis { kind, .. } => matches!(
            **kind,
            RedisErrorKind::Timeout { .. }
                | RedisErrorKind::ConnectionLost { .. }
                | RedisErrorKind::Tls { .. }
                | RedisErrorKind::Other { .. }
        ),
        _ => false,
    };
    if !suspicious {
        return error;
    }
    let Some((host, port)) = first_node(address) else {
        return error;
    };
    let tls = address.is_tls();
    let detail = match (tls, plain_ping(&host, port).await) {
        (true, PlainPing::Answered) => {
            format!("{host}:{port} speaks plain Redis, not TLS: use redis:// instead of rediss://")
        }
        (false, PlainPing::ClosedSilently) => format!(
            "{host}:{port} closed a plain connection without an answer, as a TLS port does: use rediss:// instead of redis://"
        ),
        _ => return error,
    };
    let kind = Box::new(RedisErrorKind::TlsMismatch { detail });
    match error {
        Error::Redis {
            address, source, ..
        } => Error::Redis {
            address,
            kind,
            source,
        },
        Error::NoAnswer { within, .. } => Error::Redis {
            address: address.to_string(),
            kind,
            source: RedisError::from(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {within:?}"),
            )),
        },
        other => other,
    }
}

enum PlainPing {
    /// A Redis reply came (`+PONG`, `-NOAUTH`…): the port speaks plain RESP.
    Answered,
    /// The connection was reset or closed before any byte came back.
    ClosedSilently,
    /// Refused, silent, or something else: no conclusion.
    Unknown,
}

async fn plain_ping(host: &str, port: u16) -> PlainPing {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut first = [0u8; 1];
        Some(match stream.read(&mut first).await {
            Ok(0) => PlainPing::ClosedSilently,
            Ok(_) if matches!(first[0], b'+' | b'-') => PlainPing::Answered,
            Ok(_) => PlainPing::Unknown,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                PlainPing::ClosedSilently
            }
            Err(_) => PlainPing::Unknown,
        })
    };
    tokio::time::timeout(PLAIN_PING_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(PlainPing::Unknown)
}

/// The host and port of a standalone server, or of a cluster's first seed.
fn first_node(address: &RedisAddress) -> Option<(String, u16)> {
    let url = match &address.target {
        Target::Server(url) => url.as_str(),
        Target::Cluster(seeds) => seeds.first()?.as_str(),
    };
    match url.into_connection_info().ok()?.addr() {
        redis::ConnectionAddr::Tcp(host, port)
        | redis::ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
        _ => None,
    }
}
