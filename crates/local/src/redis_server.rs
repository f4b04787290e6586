//! The Redis of `ebb up` when none is given: a `redis-server` child on a free loopback port,
//! in a temporary folder, gone with `ebb up`.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::error::{Error, Result};

const READY_WITHIN: Duration = Duration::from_secs(10);

/// A `redis-server` owned by `ebb up`.
pub struct LocalRedis {
    port: u16,
    child: Child,
}

impl LocalRedis {
    /// Starts `redis-server` on a free `127.0.0.1` port, its files in `dir`, and waits until
    /// it answers. Without the program, the error says how to get it.
    pub async fn start(dir: &Path) -> Result<Self> {
        let port = free_loopback_port()?;
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        crate::orphan::die_with_parent(&mut command);
        let child = command.spawn().map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Error::RedisNotInstalled,
            _ => Error::Spawn {
                program: "redis-server".into(),
                source,
            },
        })?;
        let mut redis = LocalRedis { port, child };
        redis.wait_until_ready().await?;
        Ok(redis)
    }

    /// `127.0.0.1:<port>`, for `--redis-server`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, then SIGKILL after a second) and waits for it.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(1), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    async fn wait_until_ready(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if answers_ping(self.port).await {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::RedisExited(status.to_string()));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::RedisNotReady(READY_WITHIN));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A port the kernel just handed out on loopback; free unless someone races for it.
pub fn free_loopback_port() -> Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|source| Error::Io {
            what: "finding a free loopback port".into(),
            source,
        })
}

async fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
        return false;
    };
    let mut reply = [0u8; 5];
    stream.write_all(b"PING\r\n").await.is_ok()
        && tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut reply))
            .await
            .is_ok_and(|read| read.is_ok() && &reply == b"+PONG")
}

/// This run's files (Redis data, replica logs): a folder removed when dropped. A run that was
/// killed cannot remove its own; the next run sweeps those whose process is gone.
pub struct RunDir(PathBuf);

const RUN_DIR_PREFIX: &str = "ebb-up-";

impl RunDir {
    pub fn create() -> Result<Self> {
        sweep_abandoned_run_dirs();
        let dir = std::env::temp_dir().join(format!("{RUN_DIR_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        Ok(RunDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sweep_abandoned_run_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(RUN_DIR_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
