//! A throwaway `redis-server` on a free loopback port, with its own temporary directory.
//!
//! Data is written with `appendfsync always`, so [`RedisServer::restart`] (even after a
//! SIGKILL) brings back exactly what was acknowledged: tests of "Redis went away and came
//! back" then check recovery, not data loss. The process is killed and the directory removed
//! on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const READY_WITHIN: Duration = Duration::from_secs(10);

/// A running `redis-server` owned by a test.
pub struct RedisServer {
    port: u16,
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
        let port = free_port();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("ebb-redis-{}-{port}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
        let mut server = RedisServer {
            port,
            dir,
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            child: None,
        };
        server.start_process();
        server
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

    /// [`stop`](Self::stop) then [`resume`](Self::resume).
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    /// Runs one command with `redis-cli` and returns its raw output, trimmed, e.g.
    /// `server.cli(&["LLEN", "padok"]) == "3"`. Panics when the command fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
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

/// A port the kernel just handed out on loopback; free unless someone races us for it.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("cannot bind a loopback port")
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
