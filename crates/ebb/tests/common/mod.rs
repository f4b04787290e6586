//! Runs the real `ebb` binary as child processes and watches their logs.

#![allow(dead_code)] // each test file uses a different part

pub mod dojo;
pub mod node;
pub mod operator;
pub mod ready_pods;

use std::collections::HashMap;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use ebb_testkit::process::Process;

/// How long a start, a log line or an exit is waited for.
const WITHIN: Duration = Duration::from_secs(30);

/// A running `ebb <subcommand>` (the test kit's [`Process`]), listening on a port of its own.
pub struct Ebb {
    pub name: String,
    pub http_port: u16,
    process: Process,
}

impl Ebb {
    /// Starts `ebb <args…> --http 127.0.0.1:<free port>`.
    pub fn start(name: &str, args: &[&str]) -> Ebb {
        Ebb::start_with_env(name, args, &[])
    }

    /// [`Ebb::start`] with extra environment variables.
    pub fn start_with_env(name: &str, args: &[&str], envs: &[(&str, &str)]) -> Ebb {
        let http_port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_ebb"));
        command
            .args(args)
            .envs(envs.iter().copied())
            .args(["--http", &format!("127.0.0.1:{http_port}")])
            .env("EBB_LOG", "info");
        let process = Process::spawn(name, &mut command).unwrap_or_else(|error| panic!("{error}"));
        let ebb = Ebb {
            name: name.to_owned(),
            http_port,
            process,
        };
        ebb.wait_for_log("Listening on");
        ebb
    }

    /// The process id (for `ebb probe --pid`, or its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn logs(&self) -> Vec<String> {
        self.process.logs()
    }

    /// Waits (up to 30 s) for a log line containing `needle`; fails at once if it exits.
    pub fn wait_for_log(&self, needle: &str) {
        self.process
            .wait_for_log(needle, WITHIN)
            .unwrap_or_else(|error| panic!("{error}"));
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
        self.process
            .signal(signal)
            .unwrap_or_else(|error| panic!("{}: {error}", self.name));
    }

    /// Waits (up to 30 s) for the process to exit.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        self.process
            .wait_for_exit(WITHIN)
            .unwrap_or_else(|error| panic!("{error}"))
    }
}

/// The `id="…"` field of a log line.
fn logged_id(line: &str) -> Option<String> {
    let start = line.find("id=\"")? + 4;
    let end = start + line[start..].find('"')?;
    Some(line[start..end].to_owned())
}

pub use ebb_testkit::free_port;

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
