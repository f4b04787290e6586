//! What a run amounts to: the summary per policy, and the timeline as CSV.

use std::fmt::Write as _;

use crate::engine::Run;

/// The figures compared between policies.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub policy: String,
    pub items: usize,
    /// From the last arrival to the last completion; `None` if the run never drained.
    pub drain_seconds: Option<f64>,
    pub latency_p50_seconds: f64,
    pub latency_p95_seconds: f64,
    pub latency_max_seconds: f64,
    /// Pods × seconds: what the run cost.
    pub replica_seconds: f64,
    pub scale_events: u32,
    pub peak_replicas: u32,
}

impl Summary {
    pub fn of(run: &Run) -> Summary {
        let mut latencies = run.latencies_ms.clone();
        latencies.sort_unstable();
        let drain_seconds = run.drained.then(|| {
            let last = run.last_completion_ms.unwrap_or(run.last_arrival_ms);
            last.saturating_sub(run.last_arrival_ms) as f64 / 1000.0
        });
        Summary {
            policy: run.policy.clone(),
            items: latencies.len(),
            drain_seconds,
            latency_p50_seconds: percentile(&latencies, 50.0),
            latency_p95_seconds: percentile(&latencies, 95.0),
            latency_max_seconds: latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
            replica_seconds: run.pod_ms as f64 / 1000.0,
            scale_events: run.scale_events,
            peak_replicas: run.peak_replicas,
        }
    }
}

/// Nearest-rank percentile of sorted milliseconds, in seconds.
fn percentile(sorted_ms: &[u64], percent: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let rank = ((percent / 100.0) * sorted_ms.len() as f64).ceil() as usize;
    sorted_ms[rank.clamp(1, sorted_ms.len()) - 1] as f64 / 1000.0
}

impl Summary {
    /// The summary's figures as text, in [`SUMMARY_COLUMNS`] order after the workload.
    fn cells(&self, not_drained: &str) -> [String; 9] {
        [
            self.policy.clone(),
            self.items.to_string(),
            self.drain_seconds
                .map_or(not_drained.to_owned(), |seconds| format!("{seconds:.1}")),
            format!("{:.1}", self.latency_p50_seconds),
            format!("{:.1}", self.latency_p95_seconds),
            format!("{:.1}", self.latency_max_seconds),
            format!("{:.0}", self.replica_seconds),
            self.scale_events.to_string(),
            self.peak_replicas.to_string(),
        ]
    }
}

pub const SUMMARY_COLUMNS: [&str; 9] = [
    "policy",
    "items",
    "drain_seconds",
    "latency_p50_seconds",
    "latency_p95_seconds",
    "latency_max_seconds",
    "replica_seconds",
    "scale_events",
    "peak_replicas",
];

/// `summary.csv`: a `scenario` column, then [`SUMMARY_COLUMNS`].
pub fn summary_csv(workload: &str, summaries: &[Summary]) -> String {
    let mut csv = format!("scenario,{}\n", SUMMARY_COLUMNS.join(","));
    for summary in summaries {
        let _ = writeln!(csv, "{workload},{}", summary.cells("not drained").join(","));
    }
    csv
}

/// A table for people, one row per policy.
pub fn summary_table(workload: &str, summaries: &[Summary]) -> String {
    const HEADINGS: [&str; 9] = [
        "policy",
        "items",
        "drain s",
        "p50 s",
        "p95 s",
        "max s",
        "replica·s",
        "events",
        "peak",
    ];
    const WIDTHS: [usize; 9] = [14, 6, 9, 8, 8, 8, 11, 7, 5];
    let row = |cells: &[String]| {
        let mut line = format!("{:<width$}", cells[0], width = WIDTHS[0]);
        for (cell, width) in cells.iter().zip(WIDTHS).skip(1) {
            let _ = write!(line, " {cell:>width$}");
        }
        line + "\n"
    };
    let mut table = format!("workload {workload}\n");
    table += &row(&HEADINGS.map(str::to_owned));
    for summary in summaries {
        table += &row(&summary.cells("—"));
    }
    table
}

/// The timeline in long format: one row per sample per policy.
pub fn timeline_csv(runs: &[Run]) -> String {
    let mut csv = String::from("t_seconds,policy,waiting,in_flight,pods,replicas\n");
    for run in runs {
        for s in &run.samples {
            let _ = writeln!(
                csv,
                "{:.1},{},{},{},{},{}",
                s.at_ms as f64 / 1000.0,
                run.policy,
                s.waiting,
                s.in_flight,
                s.pods,
                s.replicas
            );
        }
    }
    csv
}
