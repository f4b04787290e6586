//! Parsing `--redis-server`: the dojo's `host:port`, or a `redis://` / `rediss://` URL carrying
//! a password, a database number or TLS. Anything else is refused up front so a typo fails at
//! start-up with one clear line instead of as a connection error later.
//!
//! TLS: `rediss://` checks the server's certificate against the public web roots, or against
//! the CA given with [`RedisAddress::trusting`]; `rediss://…#insecure` checks nothing (tests,
//! self-signed set-ups). rustls' crypto provider (`ring`) is installed before the first client.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Once};

use redis::IntoConnectionInfo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::{Error, Result};

/// Where Redis is, as given on the command line. [`fmt::Display`] shows it without the password,
/// so it is safe to log and to put in error messages.
#[derive(Clone)]
pub struct RedisAddress {
    url: String,
    shown: String,
    /// PEM certificates of the CAs trusted for a `rediss://` server, when not the public roots.
    trusted_ca: Option<Arc<Vec<u8>>>,
}

impl RedisAddress {
    /// The full URL, password included: for handing on to a child process through its
    /// environment (never its command line, which `ps` shows), not for logs.
    pub fn url_with_secrets(&self) -> &str {
        &self.url
    }

    /// Trusts the CA certificates in the PEM file `ca_file` (instead of the public roots) for
    /// this `rediss://` server. Fails, with one line, when the file cannot be read, holds no
    /// certificate, or the address is not `rediss://`.
    pub fn trusting(mut self, ca_file: &Path) -> Result<RedisAddress> {
        let file = || ca_file.display().to_string();
        let invalid = |reason: String| Error::InvalidCa {
            file: file(),
            reason,
        };
        if !self.is_tls() {
            return Err(invalid(format!("{self} is not a rediss:// (TLS) address")));
        }
        let pem = std::fs::read(ca_file).map_err(|source| Error::UnreadableCa {
            file: file(),
            source,
        })?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::CaNotPem {
                file: file(),
                source,
            })?;
        if certificates.is_empty() {
            return Err(invalid("no PEM certificate in it".to_owned()));
        }
        self.trusted_ca = Some(Arc::new(pem));
        // Builds once so that a certificate rustls refuses is reported now, not on each call.
        self.open_client().map_err(|source| Error::CaRefused {
            file: file(),
            source,
        })?;
        Ok(self)
    }

    fn is_tls(&self) -> bool {
        self.url.starts_with("rediss://")
    }

    pub(crate) fn client(&self) -> Result<redis::Client> {
        self.open_client()
            .map_err(|source| self.redis_error(source))
    }

    fn open_client(&self) -> redis::RedisResult<redis::Client> {
        install_crypto_provider();
        match &self.trusted_ca {
            None => redis::Client::open(self.url.as_str()),
            Some(pem) => redis::Client::build_with_tls(
                self.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.to_vec()),
                },
            ),
        }
    }

    pub(crate) fn redis_error(&self, source: redis::RedisError) -> Error {
        Error::Redis {
            address: self.shown.clone(),
            source,
        }
    }
}

impl FromStr for RedisAddress {
    type Err = Error;

    fn from_str(given: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidAddress {
            given: given.to_owned(),
            reason: reason.to_owned(),
        };
        let url = match given.split_once("://") {
            Some(("redis" | "rediss", _)) => given.to_owned(),
            Some((scheme, _)) => return Err(invalid(&format!("unsupported scheme {scheme:?}"))),
            None => {
                let (host, port) = given
                    .rsplit_once(':')
                    .ok_or_else(|| invalid("missing :port"))?;
                if host.is_empty() {
                    return Err(invalid("missing host"));
                }
                match port.parse::<u16>() {
                    Ok(port) if port > 0 => {}
                    _ => {
                        return Err(invalid(&format!(
                            "port {port:?} is not a number from 1 to 65535"
                        )));
                    }
                }
                format!("redis://{given}")
            }
        };
        let info =
            url.as_str()
                .into_connection_info()
                .map_err(|source| Error::UnreadableAddress {
                    given: given.to_owned(),
                    source,
                })?;
        let shown = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            redis::ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
            _ => return Err(invalid("not a TCP address")),
        };
        Ok(RedisAddress {
            url,
            shown,
            trusted_ca: None,
        })
    }
}

/// rustls needs a process-wide crypto provider; `#insecure` connections even look it up without
/// installing one. Installing fails only when one is already there, which is just as good.
fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl fmt::Display for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisAddress({})", self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(given: &str) -> Result<String> {
        given
            .parse::<RedisAddress>()
            .map(|address| address.to_string())
    }

    #[test]
    fn accepts_the_dojo_form_and_urls() {
        assert_eq!(parse("redis-master:6379").unwrap(), "redis-master:6379");
        assert_eq!(parse("127.0.0.1:7000").unwrap(), "127.0.0.1:7000");
        assert_eq!(
            parse("redis://:secret@localhost:6380/2").unwrap(),
            "localhost:6380"
        );
        assert_eq!(
            parse("rediss://cache.example:6379").unwrap(),
            "rediss://cache.example:6379"
        );
    }

    #[test]
    fn never_shows_the_password() {
        let address: RedisAddress = "redis://:hunter2@localhost:6380".parse().unwrap();
        assert!(!format!("{address} {address:?}").contains("hunter2"));
    }

    #[test]
    fn refuses_everything_else_with_one_line() {
        for (given, reason) in [
            ("redis-master", "missing :port"),
            (":6379", "missing host"),
            ("localhost:http", "port \"http\" is not a number"),
            ("localhost:0", "port \"0\" is not a number"),
            ("localhost:70000", "port \"70000\" is not a number"),
            ("http://localhost:6379", "unsupported scheme \"http\""),
            ("unix:///tmp/redis.sock", "unsupported scheme \"unix\""),
        ] {
            let message = parse(given).unwrap_err().to_string();
            assert!(message.contains(reason), "{given}: {message}");
            assert!(!message.contains('\n'), "{given}: {message}");
        }
    }
}
