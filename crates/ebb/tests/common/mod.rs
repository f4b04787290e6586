//! Runs the real `ebb` binary as child processes and watches their logs.

#![allow(dead_code)] // each test file uses a different part

pub mod dojo;
pub mod node;
pub mod operator;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `ebb <subcommand>`, its log lines collected as they come.
pub struct Ebb {
    pub name: String,
    pub http_port: u16,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Ebb {
    /// Starts `ebb <args…> --http 127.0.0.1:<free port>`.
    pub fn start(name: &str, args: &[&str]) -> Ebb {
        Ebb::start_with_env(name, args, &[])
    }

    /// [`Ebb::start`] with extra environment variables.
    pub fn start_with_env(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Ebb {
        let http_port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ebb"))
            .args(args)
            .envs(envs.iter().copied())
            .args(["--http", &format!("127.0.0.1:{http_port}")])
            .env("EBB_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the ebb binary runs");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&lines);
        let prefix = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[{prefix}] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        let ebb = Ebb {
            name: name.to_owned(),
            http_port,
            child,
            lines,
        };
        ebb.wait_for_log("Listening on");
        ebb
    }

    /// The process id (for `ebb probe --pid`, or its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn logs(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (up to 30 s) for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        wait_until(&format!("{} to log {needle:?}", self.name), || {
            self.logs().iter().any(|line| line.contains(needle))
        });
    }

    /// Ids this consumer logged as received / processed, in order.
    pub fn ids_logged(&self, event: &str) -> Vec<String> {
        self.logs()
            .iter()
            .filter(|line| line.contains(event))
            .filter_map(|line| logged_id(line))
            .collect()
    }

    pub fn received(&self) -> Vec<String> {
        self.ids_logged("Received a message")
    }

    pub fn processed(&self) -> Vec<String> {
        self.ids_logged("Message processed.")
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -s {signal} {}", self.name);
    }

    /// Waits (up to 30 s) for the process to exit.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ebb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `id="…"` field of a log line.
fn logged_id(line: &str) -> Option<String> {
    let start = line.find("id=\"")? + 4;
    let end = start + line[start..].find('"')?;
    Some(line[start..end].to_owned())
}

pub use ebb_testkit::free_port;

/// Polls `done` every 50 ms for up to 30 s.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many times each id occurs.
pub fn tally<'a>(ids: impl IntoIterator<Item = &'a String>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id.clone()).or_default() += 1;
    }
    counts
}

/// A blocking HTTP call; returns status and body.
pub fn http(method: &str, url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let request = match method {
            "POST" => client.post(url),
            _ => client.get(url),
        };
        match request.send().await {
            Ok(response) => (response.status().as_u16(), response.text().await.unwrap()),
            Err(error) => (0, error.to_string()),
        }
    })
}
