//! What a run amounts to: the summary per policy, and the timeline as CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::engine::Run;

/// The figures compared between policies.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub policy: String,
    /// Items processed.
    pub items: u64,
    /// From the last arrival to the last completion; `None` if the run never drained.
    pub drain_seconds: Option<f64>,
    /// Item latencies (arrival → completion); `None` when nothing was processed.
    pub latency_p50_seconds: Option<f64>,
    pub latency_p95_seconds: Option<f64>,
    pub latency_max_seconds: Option<f64>,
    /// Pods × seconds: what the run cost.
    pub replica_seconds: f64,
    pub scale_events: u32,
    pub peak_replicas: u32,
}

impl Summary {
    pub fn of(run: &Run) -> Summary {
        let latencies = &run.latency_counts_ms;
        let drain_seconds = run.drained.then(|| {
            let last = run.last_completion_ms.unwrap_or(run.last_arrival_ms);
            last.saturating_sub(run.last_arrival_ms) as f64 / 1000.0
        });
        Summary {
            policy: run.policy.clone(),
            items: latencies.values().sum(),
            drain_seconds,
            latency_p50_seconds: percentile(latencies, 50.0),
            latency_p95_seconds: percentile(latencies, 95.0),
            latency_max_seconds: latencies.keys().next_back().map(|&ms| seconds(ms)),
            replica_seconds: run.pod_ms as f64 / 1000.0,
            scale_events: run.scale_events,
            peak_replicas: run.peak_replicas,
        }
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Nearest-rank percentile of the latency counts, in seconds; `None` without any item.
fn percentile(counts_ms: &BTreeMap<u64, u64>, percent: f64) -> Option<f64> {
    let total: u64 = counts_ms.values().sum();
    let rank = ((percent / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut below = 0;
    counts_ms.iter().find_map(|(&ms, &count)| {
        below += count;
        (below >= rank).then(|| seconds(ms))
    })
}

impl Summary {
    /// The summary's figures as text, in [`SUMMARY_COLUMNS`] order after the workload;
    /// `missing` stands for a latency of no item, `not_drained` for a drain that never was.
    fn cells(&self, missing: &str, not_drained: &str) -> [String; 9] {
        let figure = |value: Option<f64>, absent: &str| {
            value.map_or(absent.to_owned(), |seconds| format!("{seconds:.1}"))
        };
        [
            self.policy.clone(),
            self.items.to_string(),
            figure(self.drain_seconds, not_drained),
            figure(self.latency_p50_seconds, missing),
            figure(self.latency_p95_seconds, missing),
            figure(self.latency_max_seconds, missing),
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

/// `summary.csv`: a `scenario` column, then [`SUMMARY_COLUMNS`]. Latencies are empty when
/// nothing was processed; the drain time reads `not drained` when the run gave up.
pub fn summary_csv(workload: &str, summaries: &[Summary]) -> String {
    let mut csv = format!("scenario,{}\n", SUMMARY_COLUMNS.join(","));
    for summary in summaries {
        let _ = writeln!(
            csv,
            "{workload},{}",
            summary.cells("", "not drained").join(",")
        );
    }
    csv
}

/// A table for people, one row per policy; `-` where there is no figure.
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
        table += &row(&summary.cells("-", "-"));
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
