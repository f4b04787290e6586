//! What `ebb up` shows while it runs: a live view redrawn in place on a terminal, plain log
//! lines otherwise (a pipe, a file, CI).
//!
//! ```text
//!  Status (control loop) ─┐
//!  ReplicaCounts ─────────┼─▶ Frame ─▶ render ─▶ terminal (redrawn) | log line per change
//!  Drain (backlog peak) ──┘
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use ebb_autoscaler::Status;
use tokio::sync::watch;

use crate::output;
use crate::supervisor::ReplicaCounts;

/// Everything one frame shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub status: Status,
    pub replicas: ReplicaCounts,
    pub drain: Option<DrainProgress>,
    /// `ebb up`'s latest log lines (live view only).
    pub events: Vec<String>,
}

/// How far the current backlog has drained since it peaked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrainProgress {
    pub peak: u64,
    pub left: u64,
    pub eta: Option<Duration>,
}

impl DrainProgress {
    pub fn fraction_done(&self) -> f64 {
        if self.peak == 0 {
            1.0
        } else {
            1.0 - self.left as f64 / self.peak as f64
        }
    }
}

/// Follows the backlog: its peak since the queue was last empty, for the progress bar.
#[derive(Debug, Default)]
pub struct Drain {
    peak: u64,
}

impl Drain {
    pub fn observe(&mut self, status: &Status) -> Option<DrainProgress> {
        // `ebb up` reads the ebb queue, which always knows what is in flight; were it
        // unknown, what is left would be what waits (a display, not a decision).
        let left = status.waiting + status.in_flight.unwrap_or(0);
        if left == 0 {
            self.peak = 0;
            return None;
        }
        self.peak = self.peak.max(left);
        let eta = status
            .processed_per_sec
            .filter(|rate| *rate > 0.0)
            .map(|rate| Duration::from_secs_f64(left as f64 / rate));
        Some(DrainProgress {
            peak: self.peak,
            left,
            eta,
        })
    }
}

const BAR_WIDTH: usize = 30;

/// The live view's lines, top to bottom.
pub fn render(frame: &Frame) -> Vec<String> {
    let status = &frame.status;
    let replicas = &frame.replicas;
    let mut lines = Vec::with_capacity(5);
    let rate = status
        .processed_per_sec
        .map_or("-".to_owned(), |rate| format!("{rate:.1}/s"));
    lines.push(format!(
        "waiting {:>7}   in flight {:>4}   processed {rate}",
        status.waiting,
        shown(status.in_flight)
    ));
    let mut line = format!(
        "replicas {:>3} → {}",
        replicas.running, status.desired_replicas
    );
    let mut notes = Vec::new();
    if replicas.stopping > 0 {
        notes.push(format!("{} finishing their item", replicas.stopping));
    }
    if replicas.restarts > 0 {
        notes.push(format!("{} replaced after a crash", replicas.restarts));
    }
    if !notes.is_empty() {
        let _ = write!(line, "   ({})", notes.join(", "));
    }
    lines.push(line);
    lines.push(match &status.last_decision {
        Some(decision) => format!("decision {}", decision.reason),
        None => "decision (first reading pending)".to_owned(),
    });
    lines.push(match &frame.drain {
        Some(drain) => {
            let done = drain.fraction_done();
            let filled = (done * BAR_WIDTH as f64).round() as usize;
            let eta = drain
                .eta
                .map_or(String::new(), |eta| format!(" · ~{}s", eta.as_secs()));
            format!(
                "draining [{}{}] {:>3.0}% · {} left{eta}",
                "█".repeat(filled),
                "░".repeat(BAR_WIDTH - filled),
                done * 100.0,
                drain.left
            )
        }
        None => "idle     queue empty".to_owned(),
    });
    if let Some(error) = &status.last_error {
        lines.push(format!("error    {error}"));
    }
    if !frame.events.is_empty() {
        lines.push(String::new());
        lines.extend(frame.events.iter().map(|event| format!("  {event}")));
    }
    lines
}

/// `line`, cut to `width - 1` columns (one column per char: the view prints no wide glyphs),
/// so that it never reaches the last column, where some terminals wrap.
fn fit(line: &str, width: usize) -> &str {
    match line.char_indices().nth(width.saturating_sub(1)) {
        Some((cut, _)) => &line[..cut],
        None => line,
    }
}

/// A count as shown: `?` when the source cannot tell.
fn shown(count: Option<u64>) -> String {
    count.map_or_else(|| "?".to_owned(), |count| count.to_string())
}

/// One plain log line: printed when something a reader cares about changed.
pub fn log_line(frame: &Frame) -> String {
    let status = &frame.status;
    let mut line = format!(
        "waiting={} in_flight={} replicas={} desired={} running={}",
        status.waiting,
        shown(status.in_flight),
        frame.replicas.desired,
        status.desired_replicas,
        frame.replicas.running
    );
    if let Some(rate) = status.processed_per_sec {
        let _ = write!(line, " processed_per_sec={rate:.1}");
    }
    if let Some(decision) = &status.last_decision {
        let _ = write!(line, " reason=\"{}\"", decision.reason);
    }
    if let Some(error) = &status.last_error {
        let _ = write!(line, " error=\"{error}\"");
    }
    line
}

/// Whether two frames differ in what a plain log reader cares about (not every count tick).
fn worth_logging(previous: &Frame, next: &Frame) -> bool {
    previous.replicas.desired != next.replicas.desired
        || previous.replicas.running != next.replicas.running
        || previous.status.desired_replicas != next.status.desired_replicas
        || previous.status.last_error != next.status.last_error
        || (previous.drain.is_some() != next.drain.is_some())
}

pub enum Mode {
    /// Redrawn in place, with the process's log events shown below.
    Live(crate::event_log::EventLog),
    Plain,
}

/// Shows frames until the replica counts stop (the consumers' supervisor is done): the view
/// keeps following the stop after the control loop has ended.
pub async fn show(
    mode: Mode,
    header: String,
    mut status: watch::Receiver<Status>,
    mut replicas: watch::Receiver<ReplicaCounts>,
) {
    let mut drain = Drain::default();
    let mut drawn_lines = 0;
    let mut last_logged: Option<Frame> = None;
    let mut heartbeat = tokio::time::interval(match mode {
        Mode::Live(_) => Duration::from_millis(500),
        Mode::Plain => Duration::from_secs(5),
    });
    output::line(header);
    let mut loop_ended = false;
    loop {
        // The heartbeat also redraws the live view, for log events that came in between.
        let periodic = tokio::select! {
            changed = status.changed(), if !loop_ended => { loop_ended = changed.is_err(); false }
            changed = replicas.changed() => { if changed.is_err() { break; } false }
            _ = heartbeat.tick() => true,
        };
        if !periodic {
            // A scale shows up in the replica counts a moment before the loop's status:
            // let both land so one frame shows them together.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let current = status.borrow_and_update().clone();
        let frame = Frame {
            drain: drain.observe(&current),
            status: current,
            replicas: *replicas.borrow_and_update(),
            events: match &mode {
                Mode::Live(events) => events.recent(),
                Mode::Plain => Vec::new(),
            },
        };
        match mode {
            Mode::Live(_) => {
                let mut out = String::new();
                if drawn_lines > 0 {
                    let _ = write!(out, "\x1b[{drawn_lines}A");
                }
                let lines = render(&frame);
                // A wrapped line would throw the cursor arithmetic off: cut at the width.
                let width = terminal_size::terminal_size().map_or(80, |(width, _)| width.0);
                for line in &lines {
                    let _ = writeln!(out, "\x1b[2K{}", fit(line, usize::from(width)));
                }
                // A shorter frame than the last leaves stale lines below: clear them.
                let _ = write!(out, "\x1b[J");
                drawn_lines = lines.len();
                output::raw(out);
            }
            Mode::Plain => {
                let busy = frame.drain.is_some();
                let changed = last_logged
                    .as_ref()
                    .is_none_or(|previous| worth_logging(previous, &frame));
                if changed || (periodic && busy) {
                    output::line(log_line(&frame));
                    last_logged = Some(frame);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ebb_autoscaler::DecisionStatus;

    use super::*;

    fn status(waiting: u64, in_flight: u64, rate: Option<f64>) -> Status {
        Status {
            waiting,
            in_flight: Some(in_flight),
            replicas: 10,
            desired_replicas: 10,
            processed_per_sec: rate,
            last_decision: Some(DecisionStatus {
                reason: "200 waiting / 20 per replica = 10".into(),
                recommendation: 10,
                average_per_replica: Some(20.0),
                at_seconds: 1.0,
            }),
            ..Status::default()
        }
    }

    #[test]
    fn progress_follows_the_backlog_from_its_peak_and_resets_when_empty() {
        let mut drain = Drain::default();
        assert_eq!(
            drain
                .observe(&status(190, 10, None))
                .unwrap()
                .fraction_done(),
            0.0
        );
        let half = drain.observe(&status(90, 10, Some(10.0))).unwrap();
        assert_eq!(half.fraction_done(), 0.5);
        assert_eq!(half.eta, Some(Duration::from_secs(10)));
        assert_eq!(drain.observe(&status(0, 0, Some(10.0))), None);
        let fresh = drain.observe(&status(5, 0, None)).unwrap();
        assert_eq!((fresh.peak, fresh.fraction_done()), (5, 0.0));
    }

    #[test]
    fn live_view_shows_counts_replicas_reason_and_a_bar() {
        let mut drain = Drain::default();
        drain.observe(&status(190, 10, None));
        let status = status(90, 10, Some(10.0));
        let frame = Frame {
            drain: drain.observe(&status),
            status,
            events: Vec::new(),
            replicas: ReplicaCounts {
                desired: 10,
                running: 10,
                stopping: 0,
                restarts: 1,
            },
        };
        let lines = render(&frame);
        assert_eq!(
            lines[0],
            "waiting      90   in flight   10   processed 10.0/s"
        );
        assert_eq!(lines[1], "replicas  10 → 10   (1 replaced after a crash)");
        assert_eq!(lines[2], "decision 200 waiting / 20 per replica = 10");
        assert!(
            lines[3]
                .starts_with("draining [███████████████░░░░░░░░░░░░░░░]  50% · 100 left · ~10s")
        );
    }

    #[test]
    fn lines_are_cut_to_the_terminal_width() {
        assert_eq!(fit("draining [██░░]", 12), "draining [█");
        assert_eq!(fit("short", 80), "short");
        assert_eq!(fit("", 0), "");
    }

    #[test]
    fn plain_lines_carry_every_figure() {
        let frame = Frame {
            status: status(3, 1, Some(2.5)),
            ..Frame::default()
        };
        assert_eq!(
            log_line(&frame),
            "waiting=3 in_flight=1 replicas=0 desired=10 running=0 processed_per_sec=2.5 reason=\"200 waiting / 20 per replica = 10\""
        );
    }
}
