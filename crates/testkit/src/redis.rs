//! A throwaway `redis-server` on a free loopback port, with its own temporary directory: the
//! product's launcher ([`ebb_redis_server`]) with the conveniences tests want on top.
//!
//! Data is written with `appendfsync always`, so [`RedisServer::restart`] (even after a
//! SIGKILL) brings back exactly what was acknowledged: tests of "Redis went away and came
//! back" then check recovery, not data loss. The process is killed and the directory removed
//! on drop.
//!
//! [`RedisServer::start_tls`] adds a TLS port with a certificate from a throwaway CA made with
//! `openssl` in that directory; the plain port stays open for [`RedisServer::cli`] and the
//! readiness check. [`RedisServer::pause`] freezes the process (SIGSTOP): connections stay open
//! but nothing answers, the outage a timeout has to catch.
//!
//! The methods are synchronous, for `#[test]` and `#[tokio::test]` alike: the launcher runs on
//! the test kit's own runtime thread, never on the caller's runtime (which would panic from a
//! test's `block_on`, or be blocked by it). The caller waits the few milliseconds a start or a
//! stop takes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;

use ebb_redis_server::{Launch, Signal, TlsFiles};
use tempfile::TempDir;

/// The runtime every test server is started, awaited and stopped on: one thread for the
/// whole test binary, alive as long as it (a child's reaping is tied to its runtime).
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ebb-testkit-redis")
        .enable_all()
        .build()
        .expect("the test kit's Redis runtime")
});

/// Runs `future` on the test kit's runtime and waits for its result.
fn on_testkit_runtime<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::sync_channel(1);
    RUNTIME.spawn(async move {
        let _ = done.send(future.await);
    });
    result
        .recv()
        .expect("the test kit's Redis runtime dropped a task")
}

/// A running `redis-server` owned by a test.
pub struct RedisServer {
    launch: Launch,
    password: Option<String>,
    port: u16,
    tls_port: Option<u16>,
    server: Option<ebb_redis_server::RedisServer>,
    // Last: the folder goes once the server is gone.
    dir: TempDir,
}

impl RedisServer {
    /// Starts a fresh server on a free `127.0.0.1` port. Panics (the test fails) with the reason
    /// when `redis-server` is missing or does not come up.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Like [`start`](Self::start) with extra `redis-server` arguments, e.g.
    /// `["--requirepass", "secret"]`.
    pub fn start_with(extra_args: &[&str]) -> RedisServer {
        let dir = temporary_dir();
        let launch = Launch::new(dir.path());
        RedisServer::launch(launch, dir, extra_args)
    }

    /// Like [`start_with`](Self::start_with), plus a TLS port ([`tls_url`](Self::tls_url))
    /// serving a certificate for `127.0.0.1` and `localhost` signed by a fresh CA
    /// ([`ca_file`](Self::ca_file)). Clients need no certificate of their own.
    pub fn start_tls(extra_args: &[&str]) -> RedisServer {
        let dir = temporary_dir();
        make_certificates(dir.path());
        let launch = Launch::new(dir.path()).tls(TlsFiles {
            certificate: dir.path().join("server.crt"),
            key: dir.path().join("server.key"),
            ca: dir.path().join("ca.crt"),
        });
        RedisServer::launch(launch, dir, extra_args)
    }

    /// Starts a durable server; `--requirepass` among `extra_args` becomes the launcher's
    /// password (it needs it to recognise its server) and [`cli`](Self::cli)'s.
    fn launch(launch: Launch, dir: TempDir, extra_args: &[&str]) -> RedisServer {
        let mut launch = launch.durable();
        let mut password = None;
        let mut args = extra_args.iter();
        while let Some(&arg) = args.next() {
            match (arg, args.clone().next()) {
                ("--requirepass", Some(&given)) => {
                    args.next();
                    launch = launch.password(given);
                    password = Some(given.to_owned());
                }
                _ => launch = launch.args([arg]),
            }
        }
        let server = start(launch.clone());
        // A restart comes back where the clients look for it.
        let mut launch = launch.port(server.port());
        if let Some(tls_port) = server.tls_port() {
            launch = launch.tls_port(tls_port);
        }
        RedisServer {
            launch,
            password,
            port: server.port(),
            tls_port: server.tls_port(),
            server: Some(server),
            dir,
        }
    }

    /// `rediss://127.0.0.1:<TLS port>`. Panics unless started with [`start_tls`](Self::start_tls).
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("started without TLS: use start_tls");
        format!("rediss://127.0.0.1:{port}")
    }

    /// The PEM file of the CA that signed the server's certificate (TLS servers only).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`: the dojo's `--redis-server` form.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: the harshest outage) and waits until it is gone. Its data
    /// stays on disk.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            on_testkit_runtime(server.kill());
        }
    }

    /// Starts the server again on the same port and data directory; no-op when running.
    pub fn resume(&mut self) {
        if self.server.is_none() {
            self.server = Some(start(self.launch.clone()));
        }
    }

    /// Freezes the server (SIGSTOP): it keeps its connections but answers nothing until
    /// [`unpause`](Self::unpause).
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// Lets a [`pause`](Self::pause)d server run again (SIGCONT).
    pub fn unpause(&self) {
        self.signal(Signal::SIGCONT);
    }

    fn signal(&self, signal: Signal) {
        let server = self.server.as_ref().expect("redis-server is not running");
        server
            .signal(signal)
            .unwrap_or_else(|error| panic!("{error}"));
    }

    /// [`stop`](Self::stop) then [`resume`](Self::resume).
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    /// Waits (up to 10 s) until `key` no longer exists: a lease's heartbeat running out is
    /// Redis expiring its key, which is the sign to wait for rather than a guessed sleep.
    pub fn wait_until_gone(&self, key: &str) {
        crate::poll::until_blocking(
            &format!("{key} to expire"),
            std::time::Duration::from_secs(10),
            || self.cli(&["EXISTS", key]) == "0",
        )
        .unwrap_or_else(|error| panic!("{error}"));
    }

    /// `RPUSH key 0 1 … count-1`: `count` items for a scaler to count.
    pub fn push(&self, key: &str, count: usize) {
        let items: Vec<String> = (0..count).map(|i| i.to_string()).collect();
        let mut command = vec!["RPUSH", key];
        command.extend(items.iter().map(String::as_str));
        self.cli(&command);
    }

    /// Runs one command with `redis-cli` and returns its raw output, trimmed, e.g.
    /// `server.cli(&["LLEN", "padok"]) == "3"`; authenticated when started with
    /// `--requirepass`. Panics when the command fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"]);
        if let Some(password) = &self.password {
            command.args(["--no-auth-warning", "-a", password]);
        }
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run redis-cli (is redis-tools installed?): {error}")
            });
        let stdout = String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned();
        assert!(
            output.status.success() && !stdout.starts_with("ERR"),
            "redis-cli {args:?} failed: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

/// Counting the commands a server ran: how tests prove how many round trips (or scripts, or
/// blocking pops) some code cost, from the server's own count rather than the client's.
impl RedisServer {
    /// How many times the server ran `command` (lower case: `"blmove"`, `"evalsha"`)
    /// successfully since it started or since [`reset_stats`](Self::reset_stats), calls made
    /// by scripts included (`INFO commandstats`). Failed and rejected calls are left out: the
    /// client's first `EVALSHA`, refused with `NOSCRIPT` before it loads the script, did
    /// nothing.
    pub fn calls(&self, command: &str) -> u64 {
        successful_calls(&self.cli(&["INFO", "commandstats"]), command)
    }

    /// `CONFIG RESETSTAT`: [`calls`](Self::calls) counts from zero again.
    pub fn reset_stats(&self) {
        self.cli(&["CONFIG", "RESETSTAT"]);
    }
}

/// `command`'s successful calls in the text of `INFO commandstats`
/// (`cmdstat_lmove:calls=50,usec=…,rejected_calls=0,failed_calls=1`); 0 when it never ran.
fn successful_calls(stats: &str, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:");
    let Some(fields) = stats
        .lines()
        .find_map(|line| line.trim().strip_prefix(&prefix))
    else {
        return 0;
    };
    let field = |name: &str| -> u64 {
        fields
            .split(',')
            .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
            .map_or(0, |value| {
                value
                    .parse()
                    .unwrap_or_else(|_| panic!("{command}: {name}={value} in {fields}"))
            })
    };
    field("calls") - field("failed_calls") - field("rejected_calls")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `launch` on the test kit's runtime, or panics with the launcher's reason.
fn start(launch: Launch) -> ebb_redis_server::RedisServer {
    on_testkit_runtime(async move { launch.start().await })
        .unwrap_or_else(|error| panic!("{error}"))
}

/// A private folder for one server's files (its data, its certificates).
fn temporary_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("ebb-redis-")
        .tempdir()
        .unwrap_or_else(|error| panic!("cannot create a temporary folder: {error}"))
}

/// A CA (`ca.crt`) and a server certificate it signed (`server.crt`, `server.key`) for
/// `127.0.0.1` and `localhost`, written into `dir`. P-256 keys: quick to make.
pub(crate) fn make_certificates(dir: &Path) {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap_or_else(|error| panic!("cannot write in {}: {error}", dir.display()));
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for args in [
        &[
            &["req", "-x509"][..],
            &new_key,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=ebb test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
        &[
            &["req"][..],
            &new_key,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ][..]
            .to_vec(),
    ] {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run openssl (is it installed?): {error}"));
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::successful_calls;

    #[test]
    fn successful_calls_leave_out_failed_and_rejected_ones() {
        let stats = "# Commandstats\r\n\
            cmdstat_evalsha:calls=51,usec=900,usec_per_call=17.6,rejected_calls=0,failed_calls=1\r\n\
            cmdstat_lmove:calls=50,usec=80,usec_per_call=1.6,rejected_calls=2,failed_calls=0\r\n\
            cmdstat_blmove:calls=1,usec=3,usec_per_call=3.0,rejected_calls=0,failed_calls=0\r\n";
        assert_eq!(successful_calls(stats, "evalsha"), 50);
        assert_eq!(successful_calls(stats, "lmove"), 48);
        assert_eq!(successful_calls(stats, "blmove"), 1);
        assert_eq!(successful_calls(stats, "rpush"), 0);
    }
}
