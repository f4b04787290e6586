//! Where the operator may send credentials: `--allowed-addresses`, set by whoever installs
//! the operator (the chart's `allowedAddresses`).
//!
//! A QueueScaler's author names the server in free text, and the operator reads the Secrets
//! the scaler references with its own rights. Without a check, writing a QueueScaler would be
//! worth reading every Secret the operator may read: point `address` at a host of one's own,
//! reference a password with `passwordFrom`, and the operator sends it in `AUTH`. So a
//! credential taken from a Secret joins an address only if the address is on this list; an
//! address without credentials may be anything (it reveals nothing). `urlFrom` alone binds a
//! host to its password inside one Secret, written by someone who may write Secrets, and stays
//! allowed.
//!
//! Every source checks its destinations through [`AllowedAddresses::check`] before it connects,
//! with the field that named the destination and the field that brought the credential, so a
//! new source (RabbitMQ's management API, say) gets the same rule by calling it.

use std::fmt;

use crate::{Error, Result};

/// The flag, as named in errors and in the status.
pub const FLAG: &str = "--allowed-addresses";

/// One `host[:port]` pattern: `redis-master:6379`, `*.cache.svc:6379`, `redis-master` (any
/// port).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    host: Host,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    /// This host exactly (case-insensitive, as DNS).
    Exact(String),
    /// Any host ending in `.suffix` (one label or more before it), never `suffix` itself.
    Suffix(String),
}

/// The parsed `--allowed-addresses`. Empty (the default): no address may receive a
/// credential from a Secret; `urlFrom` and credential-free addresses still work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedAddresses {
    patterns: Vec<Pattern>,
}

impl AllowedAddresses {
    /// True when `host:port` matches a pattern.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.patterns.iter().any(|pattern| {
            let host_matches = match &pattern.host {
                Host::Exact(exact) => *exact == host,
                Host::Suffix(suffix) => host
                    .strip_suffix(suffix.as_str())
                    .is_some_and(|before| before.len() > 1 && before.ends_with('.')),
            };
            host_matches && pattern.port.is_none_or(|allowed| allowed == port)
        })
    }

    /// Checks that every one of `destinations` (host, port) may receive the credential that
    /// `credential_field` brings, for the destination named by `address_field`. The error
    /// names both fields and the flag, and says which destination is not on the list; it is
    /// what the QueueScaler's Ready condition shows, and nothing has been sent when it is
    /// returned.
    pub fn check(
        &self,
        address_field: &str,
        credential_field: &str,
        destinations: &[(String, u16)],
    ) -> Result<()> {
        for (host, port) in destinations {
            if !self.allows(host, *port) {
                return Err(Error::NotAllowed {
                    flag: FLAG,
                    address_field: address_field.to_owned(),
                    credential_field: credential_field.to_owned(),
                    destination: format!("{host}:{port}"),
                    allowed: self.to_string(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for AllowedAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patterns.is_empty() {
            return f.write_str("empty");
        }
        let shown: Vec<String> = self
            .patterns
            .iter()
            .map(|pattern| {
                let host = match &pattern.host {
                    Host::Exact(host) => host.clone(),
                    Host::Suffix(suffix) => format!("*.{suffix}"),
                };
                match pattern.port {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                }
            })
            .collect();
        f.write_str(&shown.join(","))
    }
}

/// Parses `--allowed-addresses`: comma-separated `host[:port]` patterns, a host being exact or
/// `*.suffix`. Spaces around commas are ignored; an empty value is an empty list.
pub fn parse_allowed_addresses(given: &str) -> std::result::Result<AllowedAddresses, String> {
    let mut patterns = Vec::new();
    for item in given
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        patterns.push(parse_pattern(item).map_err(|reason| format!("{item:?}: {reason}"))?);
    }
    Ok(AllowedAddresses { patterns })
}

const WILDCARD: &str = "a wildcard is `*.` followed by a domain, e.g. *.cache.svc";

fn parse_pattern(item: &str) -> std::result::Result<Pattern, String> {
    if item.contains("://") || item.contains('/') || item.contains('@') {
        return Err("give host[:port], not a URL".into());
    }
    let (host, port) = match item.rsplit_once(':') {
        Some((host, port)) => {
            let port = match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(format!("port {port:?} is not a number from 1 to 65535")),
            };
            (host, Some(port))
        }
        None => (item, None),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = |name: &str| {
        !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    let host = match host.strip_prefix("*.") {
        Some(suffix) if valid(suffix) => Host::Suffix(suffix.to_owned()),
        Some(_) => return Err(WILDCARD.into()),
        None if host.starts_with('*') => return Err(WILDCARD.into()),
        None if host.contains('*') => {
            return Err("`*` is allowed only as the first label (*.cache.svc)".into());
        }
        None if valid(&host) => Host::Exact(host),
        None => {
            return Err(
                "missing host, or a host with characters other than letters, digits, - and ."
                    .into(),
            );
        }
    };
    Ok(Pattern { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_suffix_patterns_match_as_written() {
        let allowed =
            parse_allowed_addresses("redis-master:6379, *.cache.svc:6379,Prom.Monitoring").unwrap();
        assert!(allowed.allows("redis-master", 6379));
        assert!(allowed.allows("REDIS-MASTER.", 6379));
        assert!(!allowed.allows("redis-master", 6380));
        assert!(!allowed.allows("redis-master.evil.example", 6379));
        assert!(allowed.allows("a.cache.svc", 6379));
        assert!(allowed.allows("a.b.cache.svc", 6379));
        assert!(!allowed.allows("cache.svc", 6379));
        assert!(!allowed.allows("evilcache.svc", 6379));
        assert!(!allowed.allows("a.cache.svc.evil", 6379));
        assert!(allowed.allows("prom.monitoring", 9090));
        assert!(allowed.allows("prom.monitoring", 1));
        assert_eq!(
            allowed.to_string(),
            "redis-master:6379,*.cache.svc:6379,prom.monitoring"
        );
        assert_eq!(
            parse_allowed_addresses("").unwrap(),
            AllowedAddresses::default()
        );
        assert!(!AllowedAddresses::default().allows("redis-master", 6379));
    }

    #[test]
    fn a_bad_pattern_says_what_is_wrong() {
        for (given, reason) in [
            ("redis://h:1", "not a URL"),
            ("h:0", "port \"0\""),
            ("h:http", "port \"http\""),
            ("*:6379", "a wildcard is"),
            ("a.*.svc", "only as the first label"),
            (":6379", "missing host"),
            ("a,,b_c", "\"b_c\""),
        ] {
            let message = parse_allowed_addresses(given).unwrap_err();
            assert!(message.contains(reason), "{given}: {message}");
        }
    }

    #[test]
    fn check_names_both_fields_and_the_flag() {
        let allowed = parse_allowed_addresses("redis-master:6379").unwrap();
        assert!(
            allowed
                .check("a", "b", &[("redis-master".into(), 6379)])
                .is_ok()
        );
        let message = allowed
            .check(
                "spec.source.ebbQueue.redis.address",
                "spec.source.ebbQueue.redis.passwordFrom",
                &[("redis-master".into(), 6379), ("evil".into(), 1)],
            )
            .unwrap_err()
            .to_string();
        for part in [
            "spec.source.ebbQueue.redis.address",
            "spec.source.ebbQueue.redis.passwordFrom",
            "evil:1",
            FLAG,
            "redis-master:6379",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
    }
}
