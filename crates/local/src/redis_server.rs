//! The Redis of `ebb up` when none is given: a `redis-server` child on a free loopback port,
//! in a temporary folder, gone with `ebb up`.

use std::net::Ipv4Addr;
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
    /// it answers. Without the program, the error says how to get it. The port is free when
    /// picked but may be taken before the server binds it: then it tries another one.
    pub async fn start(dir: &Path) -> Result<Self> {
        let mut attempts = 3;
        loop {
            match Self::start_on(free_loopback_port()?, dir).await {
                Err(Error::RedisExited(_)) if attempts > 1 => attempts -= 1,
                result => return result,
            }
        }
    }

    async fn start_on(port: u16, dir: &Path) -> Result<Self> {
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

    /// Waits until *our* server answers: another process that won the race for the port
    /// answers too, so the reply must carry our child's pid.
    async fn wait_until_ready(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::RedisExited(status.to_string()));
            }
            let ours = self.child.id();
            if ours.is_some() && serving_pid(self.port).await == ours {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::RedisNotReady(READY_WITHIN));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn free_loopback_port() -> Result<u16> {
    ebb_runtime::free_loopback_port().map_err(|source| Error::Io {
        what: "finding a free loopback port".into(),
        source,
    })
}

/// The `process_id` of the Redis answering on `port`, from `INFO server`.
async fn serving_pid(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.ok()?;
    stream.write_all(b"INFO server\r\n").await.ok()?;
    let mut reply = Vec::with_capacity(4096);
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&reply);
            if let Some(line) = text
                .lines()
                .find_map(|line| line.strip_prefix("process_id:"))
            {
                return line.trim().parse().ok();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), read)
        .await
        .ok()?
}

/// This run's files (Redis data, replica logs): a folder removed when dropped. A run that was
/// killed cannot remove its own; the next run sweeps those whose process is gone.
pub struct RunDir(PathBuf);

const RUN_DIR_PREFIX: &str = "ebb-up-";

impl RunDir {
    /// A new private folder (mode 0700, a name nobody can guess and take first).
    pub fn create() -> Result<Self> {
        sweep_abandoned_run_dirs();
        let template =
            std::env::temp_dir().join(format!("{RUN_DIR_PREFIX}{}-XXXXXX", std::process::id()));
        nix::unistd::mkdtemp(&template)
            .map(RunDir)
            .map_err(|errno| Error::Io {
                what: format!("creating {}", template.display()),
                source: errno.into(),
            })
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
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
