//! A throwaway `redis-server` on a free loopback port, with its own temporary directory.
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

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::free_port;

const READY_WITHIN: Duration = Duration::from_secs(10);

/// A running `redis-server` owned by a test.
pub struct RedisServer {
    port: u16,
    tls_port: Option<u16>,
    dir: PathBuf,
    extra_args: Vec<String>,
    child: Option<Child>,
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
        let mut server = RedisServer::prepare(extra_args);
        server.start_process();
        server
    }

    /// Like [`start_with`](Self::start_with), plus a TLS port ([`tls_url`](Self::tls_url))
    /// serving a certificate for `127.0.0.1` and `localhost` signed by a fresh CA
    /// ([`ca_file`](Self::ca_file)). Clients need no certificate of their own.
    pub fn start_tls(extra_args: &[&str]) -> RedisServer {
        let mut server = RedisServer::prepare(extra_args);
        make_certificates(&server.dir);
        let tls_port = free_port();
        let dir = &server.dir;
        let file = |name: &str| dir.join(name).display().to_string();
        let tls_args = [
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            file("server.crt"),
            "--tls-key-file".to_owned(),
            file("server.key"),
            "--tls-ca-cert-file".to_owned(),
            file("ca.crt"),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        server.extra_args.extend(tls_args);
        server.tls_port = Some(tls_port);
        server.start_process();
        server
    }

    fn prepare(extra_args: &[&str]) -> RedisServer {
        let port = free_port();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("ebb-redis-{}-{port}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
        RedisServer {
            port,
            tls_port: None,
            dir,
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            child: None,
        }
    }

    /// `rediss://127.0.0.1:<TLS port>`. Panics unless started with [`start_tls`](Self::start_tls).
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("started without TLS: use start_tls");
        format!("rediss://127.0.0.1:{port}")
    }

    /// The PEM file of the CA that signed the server's certificate (TLS servers only).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
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

    /// Kills the server (SIGKILL: the harshest outage). Its data stays on disk.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory; no-op when running.
    pub fn resume(&mut self) {
        if self.child.is_none() {
            self.start_process();
        }
    }

    /// Freezes the server (SIGSTOP): it keeps its connections but answers nothing until
    /// [`unpause`](Self::unpause).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](Self::pause)d server run again (SIGCONT).
    pub fn unpause(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is not running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap_or_else(|error| panic!("cannot run kill: {error}"));
        assert!(status.success(), "kill {signal} redis-server failed");
    }

    /// [`stop`](Self::stop) then [`resume`](Self::resume).
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    /// The `--requirepass` it was started with, if any.
    fn password(&self) -> Option<&str> {
        let at = self
            .extra_args
            .iter()
            .position(|arg| arg == "--requirepass")?;
        self.extra_args.get(at + 1).map(String::as_str)
    }

    /// Runs one command with `redis-cli` and returns its raw output, trimmed, e.g.
    /// `server.cli(&["LLEN", "padok"]) == "3"`; authenticated when started with
    /// `--requirepass`. Panics when the command fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"]);
        if let Some(password) = self.password() {
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

    fn start_process(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start redis-server (is the redis-server package installed?): {error}"
                )
            });
        self.child = Some(child);
        self.wait_until_ready();
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if answers_ping(self.port) {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "redis-server on port {} exited at start-up: {status}",
                    self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within {READY_WITHIN:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

/// True once the server answers PING (`-NOAUTH` counts: it is up, just password-protected).
fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read(&mut reply).is_ok_and(|read| {
            reply[..read].starts_with(b"+PONG") || reply[..read].starts_with(b"-NOAUTH")
        })
}
