//! Parsing `--redis-server`: the dojo's `host:port`, a `redis://` / `rediss://` URL carrying
//! a password, a database number or TLS, or a Redis Cluster named by its seed nodes. Anything
//! else is refused up front so a typo fails at start-up with one clear line instead of as a
//! connection error later.
//!
//! A cluster is named explicitly, by scheme: `redis+cluster://[:password@]host:port[,host:port…]`
//! (`rediss+cluster://…` for TLS). One reachable seed is enough: the client learns the other
//! nodes and the slot map from it, and follows `MOVED`/`ASK` when slots move. An explicit
//! scheme rather than detection (`CLUSTER INFO`) because the two need different clients from
//! the first command on, and a managed endpoint may hide which kind it is until then.
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
    /// What was given (normalised to a URL for `host:port`), password included.
    url: String,
    pub(crate) target: Target,
    shown: String,
    /// PEM certificates of the CAs trusted for a `rediss://` server, when not the public roots.
    pub(crate) trusted_ca: Option<Arc<Vec<u8>>>,
}

/// A standalone server or a cluster, each as the URLs the `redis` crate's clients take.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Server(String),
    /// The seed nodes, each a `redis://` or `rediss://` URL with the shared password.
    Cluster(Vec<String>),
}

impl RedisAddress {
    /// The full URL, password included: for handing on to a child process through its
    /// environment (never its command line, which `ps` shows), not for logs.
    pub fn url_with_secrets(&self) -> &str {
        &self.url
    }

    /// True for a Redis Cluster (`redis+cluster://`, `rediss+cluster://`).
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// Trusts the CA certificates in the PEM file `ca_file` (instead of the public roots) for
    /// this `rediss://` server. Fails, with one line, when the file cannot be read, holds no
    /// certificate, or the address is not `rediss://`.
    pub fn trusting(self, ca_file: &Path) -> Result<RedisAddress> {
        // The address first: a CA for a plain address is wrong whatever the file holds.
        if !self.is_tls() {
            return Err(Error::InvalidCa {
                file: ca_file.display().to_string(),
                reason: format!("{self} is not a rediss:// (TLS) address"),
            });
        }
        let pem = std::fs::read(ca_file).map_err(|source| Error::UnreadableCa {
            file: ca_file.display().to_string(),
            source,
        })?;
        self.trusting_pem(pem, &ca_file.display().to_string())
    }

    /// [`RedisAddress::trusting`] with the PEM text itself (from a Kubernetes Secret, say);
    /// `origin` names where it came from in errors.
    pub fn trusting_pem(mut self, pem: Vec<u8>, origin: &str) -> Result<RedisAddress> {
        let file = || origin.to_owned();
        let invalid = |reason: String| Error::InvalidCa {
            file: file(),
            reason,
        };
        if !self.is_tls() {
            return Err(invalid(format!("{self} is not a rediss:// (TLS) address")));
        }
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
        self.check_client().map_err(|error| match error {
            Error::Redis { source, .. } => Error::CaRefused {
                file: file(),
                source,
            },
            other => other,
        })?;
        Ok(self)
    }

    /// This address with `password` added (percent-encoded), for a password kept apart from
    /// the address (a Kubernetes Secret). The address is the one already checked, so nothing
    /// secret is ever part of a string that may fail to parse. Refuses an address that already
    /// carries credentials: the password is given in one place.
    pub fn with_password(self, password: &str) -> Result<RedisAddress> {
        let refuse = |reason: &str| Error::InvalidAddress {
            given: self.shown.clone(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = self
            .url
            .split_once("://")
            .ok_or_else(|| refuse("not a URL"))?;
        if self.carries_credentials() {
            return Err(refuse(
                "the address already carries credentials; give the password in one place",
            ));
        }
        let encoded: String = password
            .bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (byte as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        let trusted_ca = self.trusted_ca.clone();
        let mut with: RedisAddress = format!("{scheme}://:{encoded}@{rest}")
            .parse()
            // Unreachable in practice (only unreserved and %XX characters were added); the
            // error names the address as shown, never the password.
            .map_err(|_| refuse("the password cannot be added to it"))?;
        with.trusted_ca = trusted_ca;
        Ok(with)
    }

    /// True when the address itself carries credentials (`redis://user:password@…`).
    pub fn carries_credentials(&self) -> bool {
        self.url.split_once("://").is_some_and(|(_, rest)| {
            rest.split(['/', '#'])
                .next()
                .unwrap_or_default()
                .contains('@')
        })
    }

    /// The host (or cluster seed hosts) and port of each server this address reaches, for
    /// checking against an allow-list before any credential is sent.
    pub fn host_ports(&self) -> Vec<(String, u16)> {
        let urls = match &self.target {
            Target::Server(url) => std::slice::from_ref(url),
            Target::Cluster(seeds) => seeds.as_slice(),
        };
        urls.iter()
            .filter_map(
                |url| match url.as_str().into_connection_info().ok()?.addr() {
                    redis::ConnectionAddr::Tcp(host, port)
                    | redis::ConnectionAddr::TcpTls { host, port, .. } => {
                        Some((host.clone(), *port))
                    }
                    _ => None,
                },
            )
            .collect()
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.url.starts_with("rediss://") || self.url.starts_with("rediss+cluster://")
    }

    pub(crate) fn tls_certificates(&self) -> Option<redis::TlsCertificates> {
        self.trusted_ca.as_ref().map(|pem| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.to_vec()),
        })
    }

    /// The cluster node `host:port` as a standalone address, with the credentials, TLS
    /// settings and trusted CA of `seed` (one of this cluster's seed URLs): keyspace
    /// notifications and `CONFIG` are per node.
    pub(crate) fn cluster_node(&self, seed: &str, host: &str, port: u16) -> RedisAddress {
        let (scheme, rest) = seed.split_once("://").unwrap_or(("redis", seed));
        let (credentials, node_and_tail) = match rest.rsplit_once('@') {
            Some((credentials, after)) => (format!("{credentials}@"), after),
            None => (String::new(), rest),
        };
        let tail = node_and_tail
            .find('/')
            .map_or("", |at| &node_and_tail[at..]);
        let url = format!("{scheme}://{credentials}{host}:{port}{tail}");
        let shown = if scheme == "rediss" {
            format!("rediss://{host}:{port}")
        } else {
            format!("{host}:{port}")
        };
        RedisAddress {
            target: Target::Server(url.clone()),
            url,
            shown,
            trusted_ca: self.trusted_ca.clone(),
        }
    }

    pub(crate) fn redis_error(&self, source: redis::RedisError) -> Error {
        Error::Redis {
            address: self.shown.clone(),
            kind: Box::new(crate::kind::classify(&source, self.is_tls())),
            source,
        }
    }
}

/// Checks the dojo's `host:port` form.
fn check_host_port(given: &str) -> std::result::Result<(), String> {
    // Credentials outside a URL: the reason must not quote what follows (the password).
    if given.contains('@') {
        return Err("credentials need a URL: redis://:password@host:port".to_owned());
    }
    let (host, port) = given
        .rsplit_once(':')
        .ok_or_else(|| "missing :port".to_owned())?;
    if host.is_empty() {
        return Err("missing host".to_owned());
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(()),
        _ => Err(format!("port {port:?} is not a number from 1 to 65535")),
    }
}

/// Splits `redis+cluster://[user:password@]host:port[,host:port…][/0][#insecure]` (after the
/// `://`) into one URL per seed node. Returns the seeds and the nodes as shown.
fn cluster_seeds(
    tls: bool,
    after_scheme: &str,
) -> std::result::Result<(Vec<String>, String), String> {
    let (rest, fragment) = match after_scheme.split_once('#') {
        Some((rest, fragment)) => (rest, format!("#{fragment}")),
        None => (after_scheme, String::new()),
    };
    let (authority, database) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if !matches!(database, "" | "/" | "/0") {
        return Err(format!(
            "database {:?}: a Redis Cluster has only database 0",
            &database[1..]
        ));
    }
    let (credentials, nodes) = match authority.rsplit_once('@') {
        Some((credentials, nodes)) => (format!("{credentials}@"), nodes),
        None => (String::new(), authority),
    };
    let scheme = if tls { "rediss" } else { "redis" };
    let seeds = nodes
        .split(',')
        .map(|node| {
            check_host_port(node).map_err(|reason| format!("node {node:?}: {reason}"))?;
            Ok(format!("{scheme}://{credentials}{node}/{fragment}"))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok((seeds, format!("{scheme}+cluster://{nodes}")))
}

impl FromStr for RedisAddress {
    type Err = Error;

    fn from_str(given: &str) -> Result<Self> {
        // The value may carry a password (`redis://:pw@host:70000`): errors quote it redacted.
        let invalid = |reason: &str| Error::InvalidAddress {
            given: ebb_units::redact_address(given),
            reason: reason.to_owned(),
        };
        let url = match given.split_once("://") {
            Some(("redis" | "rediss", _)) => given.to_owned(),
            Some((scheme @ ("redis+cluster" | "rediss+cluster"), after_scheme)) => {
                let (seeds, shown) = cluster_seeds(scheme.starts_with("rediss"), after_scheme)
                    .map_err(|reason| invalid(&reason))?;
                for seed in &seeds {
                    seed.as_str()
                        .into_connection_info()
                        .map_err(|error| invalid(&error.to_string()))?;
                }
                return Ok(RedisAddress {
                    url: given.to_owned(),
                    target: Target::Cluster(seeds),
                    shown,
                    trusted_ca: None,
                });
            }
            Some((scheme, _)) => return Err(invalid(&format!("unsupported scheme {scheme:?}"))),
            None => {
                check_host_port(given).map_err(|reason| invalid(&reason))?;
                format!("redis://{given}")
            }
        };
        let info =
            url.as_str()
                .into_connection_info()
                .map_err(|source| Error::UnreadableAddress {
                    given: ebb_units::redact_address(given),
                    source,
                })?;
        let shown = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            redis::ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
            _ => return Err(invalid("not a TCP address")),
        };
        Ok(RedisAddress {
            target: Target::Server(url.clone()),
            url,
            shown,
            trusted_ca: None,
        })
    }
}

/// rustls needs a process-wide crypto provider; `#insecure` connections even look it up without
/// installing one. Installing fails only when one is already there, which is just as good.
pub(crate) fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Two addresses are the same when they reach the same servers the same way: same URL
/// (credentials included) and same trusted CA. Callers sharing one connection per server
/// (a pool of [`crate::RedisReader`]s) key on this.
impl PartialEq for RedisAddress {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.trusted_ca == other.trusted_ca
    }
}

impl Eq for RedisAddress {}

impl std::hash::Hash for RedisAddress {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.url.hash(state);
        self.trusted_ca.hash(state);
    }
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
    fn a_cluster_is_named_by_its_seeds() {
        let address: RedisAddress = "redis+cluster://:s3cret@10.0.0.1:7000,node-b:7001/"
            .parse()
            .unwrap();
        assert!(address.is_cluster());
        assert_eq!(
            address.to_string(),
            "redis+cluster://10.0.0.1:7000,node-b:7001"
        );
        let Target::Cluster(seeds) = &address.target else {
            panic!("not a cluster: {address}");
        };
        assert_eq!(
            seeds,
            &[
                "redis://:s3cret@10.0.0.1:7000/",
                "redis://:s3cret@node-b:7001/"
            ]
        );
        assert!(!format!("{address} {address:?}").contains("s3cret"));

        let tls: RedisAddress = "rediss+cluster://cache:6379#insecure".parse().unwrap();
        assert_eq!(tls.to_string(), "rediss+cluster://cache:6379");
        let Target::Cluster(seeds) = &tls.target else {
            panic!("not a cluster: {tls}");
        };
        assert_eq!(seeds, &["rediss://cache:6379/#insecure"]);
        assert!(tls.is_tls());
        assert!(!parse_standalone("127.0.0.1:6379").is_cluster());
    }

    fn parse_standalone(given: &str) -> RedisAddress {
        given.parse().unwrap()
    }

    #[test]
    fn a_password_is_added_encoded_once() {
        let with = |given: &str, password: &str| {
            given
                .parse::<RedisAddress>()
                .unwrap()
                .with_password(password)
                .map(|address| address.url_with_secrets().to_owned())
        };
        assert_eq!(
            with("redis:6379", "p@ss word").unwrap(),
            "redis://:p%40ss%20word@redis:6379"
        );
        assert_eq!(
            with("rediss://redis:6380/0", "x").unwrap(),
            "rediss://:x@redis:6380/0"
        );
        let cluster: RedisAddress = "redis+cluster://a:1,b:2".parse().unwrap();
        let cluster = cluster.with_password("x").unwrap();
        let Target::Cluster(seeds) = &cluster.target else {
            panic!("not a cluster");
        };
        assert_eq!(seeds, &["redis://:x@a:1/", "redis://:x@b:2/"]);
        let refused = with("redis://:old@redis:6379", "n3w")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("already carries credentials"), "{refused}");
        assert!(
            !refused.contains("old") && !refused.contains("n3w"),
            "{refused}"
        );
    }

    #[test]
    fn host_ports_name_every_server() {
        let hosts = |given: &str| given.parse::<RedisAddress>().unwrap().host_ports();
        assert_eq!(hosts("redis-master:6379"), [("redis-master".into(), 6379)]);
        assert_eq!(
            hosts("rediss+cluster://:pw@a:1,b.svc:2"),
            [("a".into(), 1), ("b.svc".into(), 2)]
        );
    }

    #[test]
    fn a_bad_address_never_shows_its_password() {
        for given in [
            "redis://:s3cret@redis-master:70000",
            "redis://:s3cret@",
            "ftp://:s3cret@host:1",
            "redis+cluster://:s3cret@a:1,b",
            "user:s3cret@host",
        ] {
            let message = parse(given).unwrap_err().to_string();
            assert!(!message.contains("s3cret"), "{given}: {message}");
        }
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
            ("redis+cluster://", "node \"\": missing :port"),
            ("redis+cluster://a:7000,,b:7001", "node \"\": missing :port"),
            ("redis+cluster://a:7000,b", "node \"b\": missing :port"),
            (
                "redis+cluster://a:7000/2",
                "a Redis Cluster has only database 0",
            ),
        ] {
            let message = parse(given).unwrap_err().to_string();
            assert!(message.contains(reason), "{given}: {message}");
            assert!(!message.contains('\n'), "{given}: {message}");
        }
    }
}
