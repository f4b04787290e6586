//! A throwaway Debian `prometheus` on a free loopback port. Scraping nothing
//! ([`PrometheusServer::start_or_skip`]): for tests of PromQL queries that need a real query
//! engine (`vector(42)`, syntax errors, empty results), not data. Scraping given `/metrics`
//! endpoints ([`PrometheusServer::start_scraping_or_skip`]): for tests of queries against what a
//! process really exports. Killed and its directory removed on drop.
//!
//! Missing binary: both fail the test under CI (`CI` set), where the package is installed and a
//! skip would hide a broken install, and skip loudly elsewhere.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::process::Process;
use crate::{free_port, poll};

const READY_WITHIN: Duration = Duration::from_secs(30);
const BINARY: &str = "prometheus";

/// A running `prometheus` owned by a test.
pub struct PrometheusServer {
    port: u16,
    dir: PathBuf,
    process: Process,
}

impl PrometheusServer {
    /// Starts Prometheus, or returns `None` after a loud message when the binary is missing
    /// (outside CI). Panics, failing the test, when it is missing under CI or does not come up.
    pub fn start_or_skip(test: &str) -> Option<PrometheusServer> {
        PrometheusServer::start_with_config_or_skip(test, "global:\n  scrape_interval: 15s\n")
    }

    /// [`start_or_skip`](Self::start_or_skip), scraping `/metrics` of each `(job, "host:port")`
    /// target every `interval` (the scrape timeout too, which may not exceed it).
    pub fn start_scraping_or_skip(
        test: &str,
        targets: &[(&str, &str)],
        interval: Duration,
    ) -> Option<PrometheusServer> {
        PrometheusServer::start_with_config_or_skip(test, &scrape_config(targets, interval))
    }

    fn start_with_config_or_skip(test: &str, config_yaml: &str) -> Option<PrometheusServer> {
        let port = free_port();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "ebb-prometheus-{}-{port}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, config_yaml)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", config.display()));
        let mut command = Command::new(BINARY);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let process = match Process::spawn_quiet(BINARY, &mut command) {
            Ok(process) => process,
            Err(crate::Error::Spawn { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let _ = std::fs::remove_dir_all(&dir);
                let reason = format!("{BINARY} is not installed (Debian package prometheus)");
                if crate::under_ci() {
                    panic!("{test}: {reason}, under CI");
                }
                eprintln!("\n!!!!!!!! SKIPPED {test}: {reason}\n");
                return None;
            }
            Err(error) => panic!("{test}: {error}"),
        };
        let server = PrometheusServer { port, dir, process };
        server.wait_until_ready();
        Some(server)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_until_ready(&self) {
        let ready = poll::until_blocking(
            &format!("prometheus on port {} to be ready", self.port),
            READY_WITHIN,
            || {
                if answers_ready(self.port) {
                    return Ok(Some(Ok(())));
                }
                if let Err(exited) = self.process.check_running() {
                    return Ok(Some(Err(exited)));
                }
                Err("/-/ready does not answer 200".to_owned())
            },
        );
        if let Err(error) = ready.and_then(|ready| ready) {
            panic!("{error}");
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.process.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A configuration scraping each `(job, "host:port")` every `interval`, which also bounds the
/// scrape's timeout (Prometheus refuses a timeout above the interval).
fn scrape_config(targets: &[(&str, &str)], interval: Duration) -> String {
    let every = format!("{}ms", interval.as_millis());
    let mut config = format!(
        "global:\n  scrape_interval: {every}\n  scrape_timeout: {every}\n  evaluation_interval: {every}\nscrape_configs:\n"
    );
    for (job, address) in targets {
        config.push_str(&format!(
            "  - job_name: {job:?}\n    static_configs:\n      - targets: [{address:?}]\n"
        ));
    }
    config
}

/// Whether `GET /-/ready` answers 200.
fn answers_ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}
