//! A `redis-server` child on loopback: the one launcher behind the Redis `ebb up` starts when
//! given none, and behind the test kit's.
//!
//! - **Ours, not a neighbour's.** A port is free when picked, yet another process may bind it
//!   before the server does. So the server counts as ready only once the one answering on the
//!   port reports *our child's* pid (`INFO server`'s `process_id`) and has loaded its data (a
//!   restarted durable server refuses commands with `-LOADING` until then); a server that lost
//!   the race for its port exits, and [`Launch::start`] tries again on fresh ports (when it
//!   picked them).
//! - **Async throughout** (`tokio::process`, `tokio::time`): starting, waiting for and stopping
//!   the server never blocks a runtime worker, so it can be called from any task.
//! - **Its files go in a folder the caller owns** (and removes): a run folder for `ebb up`, a
//!   temporary one per test server.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

pub use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long a fresh server has to answer before [`Launch::start`] gives up.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// How long [`RedisServer::stop`] waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// Starts tried on freshly picked ports before the last failure is returned.
const ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "redis-server is not installed: install it (Debian: `sudo apt-get install redis-server`)"
    )]
    NotInstalled(#[source] std::io::Error),

    #[error("cannot start redis-server: {0}")]
    Spawn(#[source] std::io::Error),

    #[error("no free loopback port for redis-server: {0}")]
    NoFreePort(#[source] std::io::Error),

    #[error("redis-server on port {port} exited at start-up ({status})")]
    Exited { port: u16, status: ExitStatus },

    #[error("redis-server on port {port} did not answer within {within:?}")]
    NotReady { port: u16, within: Duration },

    #[error("cannot send {signal} to redis-server (pid {pid}): {source}")]
    Signal {
        signal: Signal,
        pid: u32,
        #[source]
        source: nix::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The certificate files of a TLS port: the server's certificate and key, and the CA it trusts.
/// Clients need no certificate of their own (`--tls-auth-clients no`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// How to start a server; reusable, so a stopped server can be started again the same way
/// (pin its ports with [`port`](Self::port) and [`tls_port`](Self::tls_port) to get it back
/// where its clients look for it).
#[derive(Debug, Clone)]
pub struct Launch {
    dir: PathBuf,
    port: Option<u16>,
    tls: Option<(TlsFiles, Option<u16>)>,
    password: Option<String>,
    durable: bool,
    args: Vec<OsString>,
    prepare: Option<fn(&mut Command)>,
}

impl Launch {
    /// A server bound to `127.0.0.1` on a free port, its files in `dir`, no persistence.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Launch {
            dir: dir.into(),
            port: None,
            tls: None,
            password: None,
            durable: false,
            args: Vec::new(),
            prepare: None,
        }
    }

    /// Listens on `port` instead of a free one: a start that fails is then not retried.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Also serves TLS, on a free port unless [`tls_port`](Self::tls_port) pins one. The plain
    /// port stays open: the readiness check uses it.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some((files, None));
        self
    }

    /// The TLS port, for a launch that has [`tls`](Self::tls).
    pub fn tls_port(mut self, port: u16) -> Self {
        if let Some((_, pinned)) = &mut self.tls {
            *pinned = Some(port);
        }
        self
    }

    /// Requires this password (`--requirepass`; it shows in `ps`, so for tests).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Writes every command to the append-only file before answering (`appendfsync always`):
    /// a restart, even after SIGKILL, brings back exactly what was acknowledged.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// More `redis-server` arguments, after (so overriding) the launcher's own.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs `prepare` on the command just before it is spawned (for example to tie the
    /// server's life to its parent's).
    pub fn prepare(mut self, prepare: fn(&mut Command)) -> Self {
        self.prepare = Some(prepare);
        self
    }

    /// Starts the server and returns once it answers as ours. Without `redis-server` on the
    /// `PATH`, the error says how to get it.
    pub async fn start(&self) -> Result<RedisServer> {
        let picks_a_port = self.port.is_none() || matches!(self.tls, Some((_, None)));
        let mut attempts = if picks_a_port { ATTEMPTS } else { 1 };
        loop {
            let port = self.port.map_or_else(free_port, Ok)?;
            let tls_port = match &self.tls {
                None => None,
                Some((_, pinned)) => Some(pinned.map_or_else(free_port, Ok)?),
            };
            match self.start_on(port, tls_port).await {
                Err(Error::Exited { .. }) if attempts > 1 => attempts -= 1,
                result => return result,
            }
        }
    }

    async fn start_on(&self, port: u16, tls_port: Option<u16>) -> Result<RedisServer> {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""]);
        if self.durable {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        if let (Some((files, _)), Some(tls_port)) = (&self.tls, tls_port) {
            command
                .args(["--tls-port", &tls_port.to_string()])
                .arg("--tls-cert-file")
                .arg(&files.certificate)
                .arg("--tls-key-file")
                .arg(&files.key)
                .arg("--tls-ca-cert-file")
                .arg(&files.ca)
                .args(["--tls-auth-clients", "no"]);
        }
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(prepare) = self.prepare {
            prepare(&mut command);
        }
        let child = command.spawn().map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Error::NotInstalled(source),
            _ => Error::Spawn(source),
        })?;
        let mut server = RedisServer {
            port,
            tls_port,
            child,
        };
        server.wait_until_ready(self.password.as_deref()).await?;
        Ok(server)
    }
}

/// A running `redis-server` child. Dropping it kills the server without waiting for it; use
/// [`stop`](Self::stop) or [`kill`](Self::kill) to know it is gone (its port free again).
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    tls_port: Option<u16>,
    child: Child,
}

impl RedisServer {
    /// The plain port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port, for a server launched with [`Launch::tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends `signal` to the server: SIGSTOP freezes it (connections stay open, nothing
    /// answers), SIGCONT lets it run again.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let pid = self.child.id().unwrap_or(0);
        nix::sys::signal::kill(Pid::from_raw(pid as i32), signal).map_err(|source| Error::Signal {
            signal,
            pid,
            source,
        })
    }

    /// Stops the server (SIGTERM, then SIGKILL after a second) and waits until it is gone.
    pub async fn stop(mut self) {
        if self.signal(Signal::SIGTERM).is_ok()
            && tokio::time::timeout(STOP_GRACE, self.child.wait())
                .await
                .is_ok()
        {
            return;
        }
        let _ = self.child.kill().await;
    }

    /// Kills the server (SIGKILL: the harshest outage) and waits until it is gone.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits until *our* child answers on its port: authenticated when it has a password,
    /// since `INFO` needs it.
    async fn wait_until_ready(&mut self, password: Option<&str>) -> Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        let ours = self.child.id();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Exited {
                    port: self.port,
                    status,
                });
            }
            if let Some(answer) = who_answers(self.port, password).await
                && Some(answer.pid) == ours
                && !answer.loading
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::NotReady {
                    port: self.port,
                    within: READY_WITHIN,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn free_port() -> Result<u16> {
    ebb_runtime::free_loopback_port().map_err(Error::NoFreePort)
}

/// What the Redis answering on a port says of itself.
struct Answer {
    /// `INFO server`'s `process_id`.
    pid: u32,
    /// `INFO persistence`'s `loading`: still reading its data from disk, it answers INFO but
    /// refuses other commands (`-LOADING`).
    loading: bool,
}

async fn who_answers(port: u16, password: Option<&str>) -> Option<Answer> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.ok()?;
    let mut request = Vec::new();
    if let Some(password) = password {
        request.extend_from_slice(&resp_command(&["AUTH", password]));
    }
    request.extend_from_slice(&resp_command(&["INFO", "server"]));
    request.extend_from_slice(&resp_command(&["INFO", "persistence"]));
    stream.write_all(&request).await.ok()?;
    let mut reply = Vec::with_capacity(8192);
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&reply);
            let field = |name: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|value| value.trim().to_owned())
            };
            if let (Some(pid), Some(loading)) = (field("process_id:"), field("loading:")) {
                return Some(Answer {
                    pid: pid.parse().ok()?,
                    loading: loading != "0",
                });
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), read)
        .await
        .ok()?
}

/// One command in RESP, Redis' wire format: any bytes (a password with spaces) pass intact.
fn resp_command(words: &[&str]) -> Vec<u8> {
    let mut command = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        command.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
        command.extend_from_slice(word.as_bytes());
        command.extend_from_slice(b"\r\n");
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_length_prefixed() {
        assert_eq!(
            resp_command(&["AUTH", "a b"]),
            b"*2\r\n$4\r\nAUTH\r\n$3\r\na b\r\n"
        );
    }
}
