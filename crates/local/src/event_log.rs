//! Log lines kept in memory for the live view: on a terminal the view owns the screen, so
//! `ebb up`'s own log events are shown as its last lines instead of scrolling through it.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The most recent log lines, newest last.
#[derive(Clone, Debug)]
pub struct EventLog {
    lines: Arc<Mutex<VecDeque<String>>>,
    keep: usize,
    /// Set once the view is gone: events then go to stderr as they come.
    released: Arc<AtomicBool>,
}

impl EventLog {
    pub fn new(keep: usize) -> Self {
        EventLog {
            lines: Arc::new(Mutex::new(VecDeque::with_capacity(keep))),
            keep,
            released: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn recent(&self) -> Vec<String> {
        self.lines
            .lock()
            .expect("event log lock")
            .iter()
            .cloned()
            .collect()
    }

    /// The view is gone: from now on events are printed to stderr as they come.
    pub fn release(&self) {
        self.released.store(true, Ordering::Relaxed);
    }

    fn push(&self, line: &str) {
        if self.released.load(Ordering::Relaxed) {
            eprintln!("{line}");
            return;
        }
        let mut lines = self.lines.lock().expect("event log lock");
        if lines.len() == self.keep {
            lines.pop_front();
        }
        lines.push_back(line.to_owned());
    }

    /// Sends this process's log events here instead of stderr (same `EBB_LOG` filter).
    pub fn install(&self) {
        let filter = EnvFilter::try_from_env("EBB_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(self.clone())
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .try_init();
    }
}

/// One formatted event; its lines enter the log when it is dropped.
pub struct EventWriter {
    log: EventLog,
    buffer: Vec<u8>,
}

impl io::Write for EventWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        for line in String::from_utf8_lossy(&self.buffer).lines() {
            if !line.trim().is_empty() {
                self.log.push(line.trim());
            }
        }
    }
}

impl<'a> MakeWriter<'a> for EventLog {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter {
            log: self.clone(),
            buffer: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_released_log_keeps_nothing() {
        let log = EventLog::new(2);
        log.release();
        log.make_writer().write_all(b"to stderr\n").unwrap();
        assert!(log.recent().is_empty());
    }

    #[test]
    fn keeps_the_last_lines_of_each_event() {
        let log = EventLog::new(2);
        for text in ["one\n", "two\nthree\n", "four"] {
            let mut writer = log.make_writer();
            writer.write_all(text.as_bytes()).unwrap();
        }
        assert_eq!(log.recent(), ["three", "four"]);
    }
}
