//! The one wrapper of a child process a test starts (an `ebb` subcommand, Prometheus, an
//! adapter, …): its stdout and stderr are kept line by line, for the test to wait on and to
//! show when something fails, and it is killed when dropped, so nothing outlives its test.
//!
//! Each line is also echoed to the test's output as `[name] line` (unless started
//! [`quiet`](Process::spawn_quiet)): the test harness shows it only when the test fails, which
//! is when it is wanted.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::{Error, Result, poll};

/// How many of the last lines an error shows.
const TAIL: usize = 30;

/// A running child process owned by a test.
#[derive(Debug)]
pub struct Process {
    name: String,
    pid: u32,
    child: Mutex<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    /// The threads reading its stdout and stderr: done once both pipes are closed.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `command` (stdin closed), keeping and echoing what it prints.
    pub fn spawn(name: &str, command: &mut Command) -> Result<Process> {
        Process::start(name, command, true)
    }

    /// [`spawn`](Self::spawn) without the echo: for chatty servers whose lines matter only
    /// in an error.
    pub fn spawn_quiet(name: &str, command: &mut Command) -> Result<Process> {
        Process::start(name, command, false)
    }

    fn start(name: &str, command: &mut Command, echo: bool) -> Result<Process> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: format!("{name} ({})", command.get_program().to_string_lossy()),
                source,
            })?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let outputs: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|out| Box::new(out) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|err| Box::new(err) as Box<dyn Read + Send>),
        ];
        let mut readers = Vec::new();
        for output in outputs.into_iter().flatten() {
            let sink = Arc::clone(&lines);
            let prefix = name.to_owned();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    if echo {
                        eprintln!("[{prefix}] {line}");
                    }
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            }));
        }
        Ok(Process {
            name: name.to_owned(),
            pid: child.id(),
            child: Mutex::new(child),
            lines,
            readers,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id (for a signal, or its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Every line it printed so far, stdout and stderr interleaved as they came.
    pub fn logs(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The last `count` lines it printed, one string.
    pub fn tail(&self, count: usize) -> String {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines[lines.len().saturating_sub(count)..].join("\n")
    }

    /// `Err(Exited)`, with the end of its output, once the process has exited.
    pub fn check_running(&self) -> Result<()> {
        let status = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_wait();
        match status {
            Ok(Some(status)) => Err(self.exited(status)),
            _ => Ok(()),
        }
    }

    fn exited(&self, status: ExitStatus) -> Error {
        // Its last lines may still be in the pipes: let the readers drain them (a second at
        // most: a process it left behind may hold the pipes open).
        let _ = poll::until_blocking("its output to be read", Duration::from_secs(1), || {
            self.readers
                .iter()
                .all(std::thread::JoinHandle::is_finished)
        });
        Error::Exited {
            name: self.name.clone(),
            status,
            tail: self.tail(TAIL),
        }
    }

    /// Waits until a line containing `needle` is printed; fails early when the process
    /// exits, and after `timeout` with the end of its output.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        // An exit ends the wait as a look that is done, with the exit as its value.
        poll::until_blocking(
            &format!("{} to print {needle:?}", self.name),
            timeout,
            || {
                if self.logs().iter().any(|line| line.contains(needle)) {
                    return Ok(Some(Ok(())));
                }
                if let Err(exited) = self.check_running() {
                    return Ok(Some(Err(exited)));
                }
                Err(format!("its output ends with:\n{}", self.tail(TAIL)))
            },
        )?
    }

    /// Sends `signal` (a name `kill -s` knows: `TERM`, `STOP`, …).
    pub fn signal(&self, signal: &str) -> Result<()> {
        let command = format!("kill -s {signal} {}", self.pid);
        let output = Command::new("kill")
            .args(["-s", signal, &self.pid.to_string()])
            .output()
            .map_err(|source| Error::Spawn {
                program: command.clone(),
                source,
            })?;
        if output.status.success() {
            return Ok(());
        }
        Err(Error::Command {
            command,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }

    /// Waits up to `timeout` for the process to exit, and says how it did.
    pub fn wait_for_exit(&self, timeout: Duration) -> Result<ExitStatus> {
        poll::until_blocking(&format!("{} to exit", self.name), timeout, || {
            let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
            match child.try_wait() {
                Ok(status) => Ok(status),
                Err(error) => Err(error.to_string()),
            }
        })
    }

    /// Kills it (SIGKILL) and reaps it; what it printed stays readable.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn both_streams_are_kept_and_a_printed_line_is_waited_for() {
        let process = Process::spawn("sh", &mut shell("echo out; echo err >&2; sleep 30")).unwrap();
        process
            .wait_for_log("err", Duration::from_secs(10))
            .unwrap();
        process
            .wait_for_log("out", Duration::from_secs(10))
            .unwrap();
        assert!(process.check_running().is_ok());
    }

    #[test]
    fn an_exit_ends_the_wait_for_a_line_at_once_with_the_last_lines() {
        let process = Process::spawn_quiet("sh", &mut shell("echo bye; exit 3")).unwrap();
        let error = process
            .wait_for_log("never printed", Duration::from_secs(30))
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("sh exited (exit status: 3)"), "{message}");
        assert!(message.contains("bye"), "{message}");
    }

    #[test]
    fn a_dropped_process_is_killed() {
        let process = Process::spawn_quiet("sleep", Command::new("sleep").arg("300")).unwrap();
        let pid = process.pid();
        drop(process);
        // Reaped by the drop: the pid is gone (or reused by something that is not our sleep).
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!cmdline.starts_with("sleep"), "{cmdline:?}");
    }

    #[test]
    fn a_signal_is_delivered_and_the_exit_is_waited_for() {
        let process = Process::spawn_quiet("sleep", Command::new("sleep").arg("300")).unwrap();
        process.signal("TERM").unwrap();
        let status = process.wait_for_exit(Duration::from_secs(10)).unwrap();
        assert!(!status.success(), "{status}");
        assert!(process.check_running().is_err());
    }
}
