//! How long a client may take, and how many may be connected at once: the `--http-…` flags
//! every ebb server takes (producer, consumer, `ebb up`'s admin server, the metrics API's two
//! ports, the operator's probes and metrics), so that a slow or silent client costs a bounded
//! time and one connection slot, never the process.

use std::time::Duration;

use ebb_units::parse_duration;

/// `--http-header-timeout` … `--http-max-connections`; each also reads its `EBB_HTTP_…`
/// variable. Flatten it into a server's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "HTTP server")]
pub struct HttpLimits {
    /// Time a client has to send a request's line and headers, counted from the connection's
    /// start (TLS handshake included) or from its first byte after an idle keep-alive; a
    /// client still sending them then is disconnected.
    #[arg(long, env = "EBB_HTTP_HEADER_TIMEOUT", default_value = "10s",
          value_parser = positive_duration, allow_hyphen_values = true, value_name = "DURATION")]
    pub http_header_timeout: Duration,

    /// Time a client has to send a request's whole body once its headers arrived: past it the
    /// request is answered 408.
    #[arg(long, env = "EBB_HTTP_BODY_TIMEOUT", default_value = "30s",
          value_parser = positive_duration, allow_hyphen_values = true, value_name = "DURATION")]
    pub http_body_timeout: Duration,

    /// Time one request may take from its headers to the last byte of its answer (body read,
    /// work, and a client slow to read the answer): past it the request is answered 503, or
    /// its connection closed if the answer had started.
    #[arg(long, env = "EBB_HTTP_REQUEST_TIMEOUT", default_value = "60s",
          value_parser = positive_duration, allow_hyphen_values = true, value_name = "DURATION")]
    pub http_request_timeout: Duration,

    /// Time a keep-alive connection may sit with no request before it is closed.
    #[arg(long, env = "EBB_HTTP_IDLE_TIMEOUT", default_value = "90s",
          value_parser = positive_duration, allow_hyphen_values = true, value_name = "DURATION")]
    pub http_idle_timeout: Duration,

    /// Connections open at once, at most: one more is answered 503 (closed, on a TLS port)
    /// at once, instead of the process running out of file descriptors.
    #[arg(long, env = "EBB_HTTP_MAX_CONNECTIONS", default_value = "1024",
          value_parser = max_connections, allow_hyphen_values = true, value_name = "COUNT")]
    pub http_max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            http_header_timeout: Duration::from_secs(10),
            http_body_timeout: Duration::from_secs(30),
            http_request_timeout: Duration::from_secs(60),
            http_idle_timeout: Duration::from_secs(90),
            http_max_connections: 1024,
        }
    }
}

/// The most connections a server may be allowed: far above what one process can hold.
const MOST_CONNECTIONS: usize = 1 << 20;

/// A duration above zero: a timeout of zero would close every connection at once.
fn positive_duration(given: &str) -> Result<Duration, String> {
    match parse_duration(given) {
        Err(error) => Err(error.to_string()),
        Ok(Duration::ZERO) => Err(format!(
            "{given:?} is not above zero: a timeout of zero would refuse every request"
        )),
        Ok(duration) => Ok(duration),
    }
}

fn max_connections(given: &str) -> Result<usize, String> {
    match ebb_units::parse_positive::<usize>(given) {
        Err(reason) => Err(format!("{given:?} {reason}")),
        Ok(count) if count > MOST_CONNECTIONS => Err(format!(
            "{count} is above the largest accepted, {MOST_CONNECTIONS}"
        )),
        Ok(count) => Ok(count),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        limits: HttpLimits,
    }

    fn parse(args: &[&str]) -> Result<HttpLimits, String> {
        Cli::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
            .map(|cli| cli.limits)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        assert_eq!(parse(&[]).unwrap(), HttpLimits::default());
        assert!(HttpLimits::default().http_header_timeout <= Duration::from_secs(30));
    }

    #[test]
    fn each_flag_is_read_and_bad_values_name_the_flag() {
        let limits = parse(&[
            "--http-header-timeout=1s",
            "--http-body-timeout=2s",
            "--http-request-timeout=3s",
            "--http-idle-timeout=4s",
            "--http-max-connections=5",
        ])
        .unwrap();
        assert_eq!(limits.http_header_timeout, Duration::from_secs(1));
        assert_eq!(limits.http_body_timeout, Duration::from_secs(2));
        assert_eq!(limits.http_request_timeout, Duration::from_secs(3));
        assert_eq!(limits.http_idle_timeout, Duration::from_secs(4));
        assert_eq!(limits.http_max_connections, 5);
        for (arg, flag, reason) in [
            (
                "--http-header-timeout=0",
                "--http-header-timeout",
                "not above zero",
            ),
            ("--http-body-timeout=-1s", "--http-body-timeout", "negative"),
            (
                "--http-request-timeout=soon",
                "--http-request-timeout",
                "soon",
            ),
            (
                "--http-idle-timeout=0s",
                "--http-idle-timeout",
                "not above zero",
            ),
            (
                "--http-max-connections=0",
                "--http-max-connections",
                "positive",
            ),
            (
                "--http-max-connections=99999999",
                "--http-max-connections",
                "largest",
            ),
        ] {
            let error = parse(&[arg]).unwrap_err();
            assert!(
                error.contains(flag) && error.contains(reason),
                "{arg}: {error}"
            );
        }
    }
}
