//! The Debian `prometheus-redis-exporter`, configured like the dojo's chart values: the same
//! environment (`REDIS_EXPORTER_CHECK_SINGLE_KEYS=padok`), pointed at the test's Redis.

use std::process::Command;

use crate::Result;
use crate::daemon::{Process, free_port, wait_http_ok};
use crate::values::Values;

#[derive(Debug)]
pub struct RedisExporter {
    daemon: Process,
    port: u16,
}

impl RedisExporter {
    /// Starts it on a free loopback port for the Redis at `redis_url`; ready when it answers
    /// `/metrics`.
    pub async fn start(redis_url: &str) -> Result<Self> {
        let values = Values::dojo("prometheus-redis-exporter")?;
        let port = free_port();
        let mut command = Command::new("prometheus-redis-exporter");
        command
            .arg(format!("-redis.addr={redis_url}"))
            .arg(format!("-web.listen-address=127.0.0.1:{port}"))
            .envs(values.env_list("env")?);
        let daemon = Process::spawn_quiet("prometheus-redis-exporter", &mut command)?;
        wait_http_ok(&daemon, &format!("http://127.0.0.1:{port}/metrics")).await?;
        Ok(Self { daemon, port })
    }

    /// `127.0.0.1:<port>`: the scrape target.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn daemon(&mut self) -> &mut Process {
        &mut self.daemon
    }
}
