//! What went wrong talking to Redis, in words an operator can act on. Every failure of a Redis
//! call is classified once, here, and every component shows the class the same way (the
//! producer's answers, the consumer's logs, the scalers' statuses, readiness reasons): a wrong
//! password must not read like a network outage, nor a key of the wrong type like a crash.
//!
//! | kind | Redis says | shown as |
//! |---|---|---|
//! | [`WrongPassword`](RedisErrorKind::WrongPassword) | `WRONGPASS`, `NOAUTH`, refused `AUTH` | wrong password |
//! | [`NoPermission`](RedisErrorKind::NoPermission) | `NOPERM` | ACL permission denied |
//! | [`UnknownDb`](RedisErrorKind::UnknownDb) | `SELECT`: DB index is out of range | unknown DB |
//! | [`WrongType`](RedisErrorKind::WrongType) | `WRONGTYPE` (then `TYPE` names the key) | WRONGTYPE |
//! | [`OutOfMemory`](RedisErrorKind::OutOfMemory) | `OOM` | out of memory |
//! | [`ReadOnly`](RedisErrorKind::ReadOnly) | `READONLY` | read-only replica |
//! | [`TlsMismatch`](RedisErrorKind::TlsMismatch) | TLS to a plain port, or plain to a TLS port | TLS mismatch |
//! | [`Tls`](RedisErrorKind::Tls) | a certificate or handshake refused | TLS handshake failed |
//! | [`Refused`](RedisErrorKind::Refused), [`Timeout`](RedisErrorKind::Timeout) | nothing listens, or nothing answers | unreachable |
//!
//! Only the last two, and a connection lost on the way, read "unreachable": those are the
//! outages that waiting may cure; the others need a fix in the configuration or in Redis.

use std::fmt;
use std::io;
use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// The class of a Redis failure, with what is needed to say it in one line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisErrorKind {
    /// The password (or the user and password) was refused, or Redis wants one and none was
    /// given (`WRONGPASS`, `NOAUTH`).
    WrongPassword {
        /// Redis' own words.
        detail: String,
    },
    /// The ACL user may not run a command or touch a key (`NOPERM`).
    NoPermission { detail: String },
    /// The database number of the address does not exist on this server.
    UnknownDb { detail: String },
    /// A key holds another type than the queue needs (`WRONGTYPE`); `key` and `actual` name it
    /// when a `TYPE` lookup found it.
    WrongType {
        key: Option<String>,
        actual: Option<String>,
        expected: Option<&'static str>,
    },
    /// `maxmemory` is reached and the policy refuses writes (`OOM`).
    OutOfMemory,
    /// The server is a read-only replica (`READONLY`).
    ReadOnly,
    /// The client speaks TLS and the port does not, or the other way round.
    TlsMismatch { detail: String },
    /// The TLS handshake failed: a certificate not trusted, a name mismatch…
    Tls { detail: String },
    /// Nothing listens there (connection refused), or the host cannot be resolved.
    Refused { detail: String },
    /// Redis did not answer in time.
    Timeout { detail: String },
    /// An established connection broke (Redis restarted, a network cut).
    ConnectionLost { detail: String },
    /// Anything else Redis or the client reported.
    Other { detail: String },
}

impl RedisErrorKind {
    /// A short name of the kind, the first words of its message: `wrong password`,
    /// `unreachable`, `WRONGTYPE`…
    pub fn label(&self) -> &'static str {
        match self {
            RedisErrorKind::WrongPassword { .. } => "wrong password",
            RedisErrorKind::NoPermission { .. } => "ACL permission denied",
            RedisErrorKind::UnknownDb { .. } => "unknown DB",
            RedisErrorKind::WrongType { .. } => "WRONGTYPE",
            RedisErrorKind::OutOfMemory => "out of memory",
            RedisErrorKind::ReadOnly => "read-only replica",
            RedisErrorKind::TlsMismatch { .. } => "TLS mismatch",
            RedisErrorKind::Tls { .. } => "TLS handshake failed",
            RedisErrorKind::Refused { .. }
            | RedisErrorKind::Timeout { .. }
            | RedisErrorKind::ConnectionLost { .. } => "unreachable",
            RedisErrorKind::Other { .. } => "error",
        }
    }

    /// True for the outages that may pass by themselves (nothing listens, nothing answers, a
    /// connection broke); false for a configuration or server state to fix.
    pub fn is_unreachable(&self) -> bool {
        self.label() == "unreachable"
    }

    pub(crate) fn timeout(within: Duration) -> RedisErrorKind {
        RedisErrorKind::Timeout {
            detail: format!("no answer within {within:?}"),
        }
    }
}

impl RedisErrorKind {
    /// The WRONGTYPE that names `key`, when its type as `TYPE` gave it (`actual`) is neither
    /// the `expected` one nor `none` (a missing key is no conflict). One rule for every caller,
    /// whichever connection it asked `TYPE` on.
    pub(crate) fn wrong_type_of(
        key: &str,
        actual: String,
        expected: &'static str,
    ) -> Option<RedisErrorKind> {
        (actual != expected && actual != "none").then(|| RedisErrorKind::WrongType {
            key: Some(key.to_owned()),
            actual: Some(actual),
            expected: Some(expected),
        })
    }
}

impl fmt::Display for RedisErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.label();
        match self {
            RedisErrorKind::WrongPassword { detail } => write!(f, "{label}: {detail}"),
            RedisErrorKind::NoPermission { detail } => {
                write!(f, "{label}: the user may not do this ({detail})")
            }
            RedisErrorKind::UnknownDb { detail } => {
                write!(
                    f,
                    "{label}: the address's /db number is not below this server's `databases` ({detail})"
                )
            }
            RedisErrorKind::WrongType {
                key,
                actual,
                expected,
            } => match (key, actual) {
                (Some(key), Some(actual)) => {
                    write!(f, "{label}: key {key:?} holds a {actual}")?;
                    if let Some(expected) = expected {
                        write!(f, ", not a {expected}")?;
                    }
                    write!(f, " (delete or rename it, or choose another queue name)")
                }
                _ => write!(f, "{label}: a key holds the wrong kind of value"),
            },
            RedisErrorKind::OutOfMemory => write!(
                f,
                "{label}: Redis refuses writes, its maxmemory is reached (OOM)"
            ),
            RedisErrorKind::ReadOnly => write!(
                f,
                "{label}: this server only serves reads (READONLY); give the master's address"
            ),
            RedisErrorKind::TlsMismatch { detail } => write!(f, "{label}: {detail}"),
            RedisErrorKind::Tls { detail } => write!(f, "{label}: {detail}"),
            RedisErrorKind::Refused { detail }
            | RedisErrorKind::Timeout { detail }
            | RedisErrorKind::ConnectionLost { detail }
            | RedisErrorKind::Other { detail } => write!(f, "{label}: {detail}"),
        }
    }
}

/// Makes a kind from Redis' message.
type Classifier = fn(String) -> RedisErrorKind;

/// Classifies `error` from a connection that speaks TLS (`tls`) or not. A `WRONGTYPE` comes
/// back without its key; [`crate::Queue`] and [`crate::RedisReader`] look the key up.
pub(crate) fn classify(error: &RedisError, tls: bool) -> RedisErrorKind {
    let detail = one_line(error);
    let code = error.code().unwrap_or_default();
    let lower = detail.to_ascii_lowercase();
    match error.kind() {
        ErrorKind::AuthenticationFailed => {
            return RedisErrorKind::WrongPassword {
                detail: "the password, or the user and password, do not match".to_owned(),
            };
        }
        ErrorKind::Server(ServerErrorKind::NoPerm) => {
            return RedisErrorKind::NoPermission { detail };
        }
        ErrorKind::Server(ServerErrorKind::ReadOnly) => return RedisErrorKind::ReadOnly,
        _ => {}
    }
    let wrong_type = |_: String| RedisErrorKind::WrongType {
        key: None,
        actual: None,
        expected: None,
    };
    match code {
        "NOAUTH" => {
            return RedisErrorKind::WrongPassword {
                detail: "none was given and this server requires one (NOAUTH)".to_owned(),
            };
        }
        "WRONGPASS" => return RedisErrorKind::WrongPassword { detail },
        "NOPERM" => return RedisErrorKind::NoPermission { detail },
        "WRONGTYPE" => return wrong_type(detail),
        "OOM" => return RedisErrorKind::OutOfMemory,
        "READONLY" => return RedisErrorKind::ReadOnly,
        _ => {}
    }
    // Inside a script or a transaction, or at connection set-up, the code comes inside the
    // message.
    let by_message: [(&str, Classifier); 11] = [
        // A cluster client reports a node's refusal inside an I/O error of its own.
        ("password authentication failed", |_| {
            RedisErrorKind::WrongPassword {
                detail: "the password, or the user and password, do not match".to_owned(),
            }
        }),
        ("wrongpass", |detail| RedisErrorKind::WrongPassword {
            detail,
        }),
        ("noauth", |detail| RedisErrorKind::WrongPassword { detail }),
        ("invalid password", |detail| RedisErrorKind::WrongPassword {
            detail,
        }),
        ("without any password configured", |detail| {
            RedisErrorKind::WrongPassword { detail }
        }),
        ("noperm", |detail| RedisErrorKind::NoPermission { detail }),
        ("wrongtype", wrong_type),
        ("oom command not allowed", |_| RedisErrorKind::OutOfMemory),
        ("you can't write against a read only", |_| {
            RedisErrorKind::ReadOnly
        }),
        ("db index is out of range", |detail| {
            RedisErrorKind::UnknownDb { detail }
        }),
        ("refused to switch database", |detail| {
            RedisErrorKind::UnknownDb { detail }
        }),
    ];
    if let Some((_, kind)) = by_message.iter().find(|(needle, _)| lower.contains(needle)) {
        return kind(detail);
    }
    if tls && is_tls_protocol_error(&lower) {
        return RedisErrorKind::TlsMismatch {
            detail: format!(
                "the server does not speak TLS on this port: use redis:// for a plain port ({detail})"
            ),
        };
    }
    if tls && (lower.contains("certificate") || lower.contains("handshake")) {
        return RedisErrorKind::Tls { detail };
    }
    if error.is_connection_refusal() {
        return RedisErrorKind::Refused {
            detail: "connection refused".to_owned(),
        };
    }
    if error.is_timeout() || lower.contains("timed out") || lower.contains("timeout") {
        return RedisErrorKind::Timeout { detail };
    }
    if is_unresolved_host(&lower) {
        return RedisErrorKind::Refused { detail };
    }
    if lower.contains("connection refused") {
        return RedisErrorKind::Refused {
            detail: "connection refused".to_owned(),
        };
    }
    if error.is_io_error() || error.is_connection_dropped() || error.kind() == ErrorKind::Io {
        return RedisErrorKind::ConnectionLost { detail };
    }
    RedisErrorKind::Other { detail }
}

/// rustls' words for bytes that are not TLS records: what a plain Redis answers a
/// `ClientHello` with.
fn is_tls_protocol_error(lower: &str) -> bool {
    [
        "corrupt message",
        "invalidcontenttype",
        "invalid content type",
        "invalidmessage",
        "received plaintext",
        "tls record",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

fn is_unresolved_host(lower: &str) -> bool {
    lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no such host")
        || lower.contains("temporary failure in name resolution")
}

/// `error` on one line: the client's own text, newlines folded.
fn one_line(error: &RedisError) -> String {
    let mut text = error.to_string();
    if let Some(io) = io_source(error)
        && !text.contains(&io.to_string())
    {
        text = format!("{text}: {io}");
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn io_source(error: &RedisError) -> Option<&io::Error> {
    std::error::Error::source(error).and_then(|source| source.downcast_ref::<io::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code_and_message: &str) -> RedisError {
        let (code, message) = code_and_message.split_once(' ').unwrap();
        redis::make_extension_error(code.to_owned(), Some(message.to_owned()))
    }

    #[test]
    fn server_codes_are_classified() {
        let cases = [
            ("WRONGPASS invalid username-password pair", "wrong password"),
            ("NOAUTH Authentication required.", "wrong password"),
            (
                "NOPERM this user has no permissions",
                "ACL permission denied",
            ),
            ("WRONGTYPE Operation against a key", "WRONGTYPE"),
            ("OOM command not allowed when used memory", "out of memory"),
            (
                "READONLY You can't write against a read only replica.",
                "read-only replica",
            ),
        ];
        for (given, label) in cases {
            let kind = classify(&server(given), false);
            assert_eq!(kind.label(), label, "{given}: {kind}");
            assert!(!kind.is_unreachable(), "{given}");
            assert!(!kind.to_string().contains('\n'), "{kind}");
        }
        let refused = RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        let kind = classify(&refused, false);
        assert_eq!(kind.to_string(), "unreachable: connection refused");
        assert!(kind.is_unreachable());
    }

    #[test]
    fn a_wrongtype_with_its_key_says_which_and_what_it_holds() {
        let kind = RedisErrorKind::WrongType {
            key: Some("padok".into()),
            actual: Some("hash".into()),
            expected: Some("list"),
        };
        assert_eq!(
            kind.to_string(),
            "WRONGTYPE: key \"padok\" holds a hash, not a list (delete or rename it, or choose another queue name)"
        );
    }
}
