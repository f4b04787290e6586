//! A long-running child process owned by a test: its output goes to a log file (shown when it
//! dies early), and it is killed when dropped, so nothing outlives the test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use crate::{Error, Result};

#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Spawns `command`, stdout and stderr to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, command: &mut Command, log_dir: &Path) -> Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let file = File::create(&log).map_err(|source| Error::Io {
            path: log.clone(),
            source,
        })?;
        let stderr = file.try_clone().map_err(|source| Error::Io {
            path: log.clone(),
            source,
        })?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: format!("{name} ({:?})", command.get_program()),
                source,
            })?;
        Ok(Self {
            name: name.into(),
            child,
            log,
        })
    }

    /// `Err` with the end of its log when the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(Error::Exited {
                name: self.name.clone(),
                status,
                log: self.log.clone(),
                tail: self.log_tail(30),
            }),
            _ => Ok(()),
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Its process id (for reading its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub use ebb_testkit::free_port;

/// A fresh private folder under the system temp dir for one test's files, removed when the
/// returned [`TempDir`] is dropped.
pub fn temp_dir(prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir()
        .map_err(|source| Error::Io {
            path: tempfile::env::temp_dir(),
            source,
        })
}

/// Waits until `url` answers 2xx, failing early with the daemon's log if it exits.
pub async fn wait_http_ok(daemon: &mut Daemon, url: &str) -> Result<()> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        daemon.check_running()?;
        let answer = client.get(url).send().await;
        if answer
            .as_ref()
            .is_ok_and(|response| response.status().is_success())
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::NotReady {
                what: url.into(),
                last: format!("{answer:?}"),
                tail: daemon.log_tail(20),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
