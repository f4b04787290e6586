//! The simulator end to end: workloads, the world's arithmetic, each policy's delays,
//! determinism, and the files it writes.

use std::time::Duration;

use clap::Parser;
use ebb_scaling::{Instant, ScalerConfig, ScalerSettings};
use ebb_simulate::{
    Ebb, Error, Observation, Policy, PolicyName, Scenario, SimulateArgs, Summary, Workload,
    compare, parse_arrivals, summary_csv, summary_table, write_outputs,
};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SimulateArgs,
}

fn args(flags: &[&str]) -> SimulateArgs {
    let argv = std::iter::once("simulate").chain(flags.iter().copied());
    Cli::try_parse_from(argv).unwrap().args
}

fn summary<'a>(summaries: &'a [Summary], policy: &str) -> &'a Summary {
    summaries.iter().find(|s| s.policy == policy).unwrap()
}

#[test]
fn arrivals_file_errors_name_the_file_line_and_problem() {
    let cases = [
        (
            "0,10\n5\n",
            "in.csv:2: expected 2 fields `t_seconds,count`, got 1: `5`",
        ),
        (
            "t_seconds,count\n1,ten\n",
            "in.csv:2: count `ten` is not a whole number from 0 to 100000000",
        ),
        (
            "# c\n\n-1,3\n",
            "in.csv:3: time `-1` is not a number of seconds ≥ 0",
        ),
        (
            "4,1\n3,1\n",
            "in.csv:2: time 3 s is before the previous line's 4 s (lines must be in time order)",
        ),
        (
            "# nothing\n",
            "in.csv: no arrivals (expected lines `t_seconds,count`)",
        ),
    ];
    for (text, message) in cases {
        let error = parse_arrivals(text, "in.csv").unwrap_err();
        assert_eq!(error.to_string(), message);
    }
    let arrivals = parse_arrivals("t_seconds,count\n0,200\n12.5, 40\n", "in.csv").unwrap();
    assert_eq!(arrivals.len(), 2);
    assert_eq!((arrivals[1].at_ms, arrivals[1].count), (12_500, 40));
}

#[test]
fn a_missing_arrivals_file_is_a_one_line_error() {
    let error = compare(&args(&["--arrivals", "/nonexistent/arrivals.csv"]))
        .err()
        .unwrap();
    assert!(matches!(error, Error::Read { .. }));
    assert!(
        error
            .to_string()
            .starts_with("cannot read /nonexistent/arrivals.csv: ")
    );
}

#[test]
fn bad_flags_are_rejected_with_what_is_wrong() {
    let unit = Cli::try_parse_from(["simulate", "--step", "5parsecs"])
        .err()
        .unwrap();
    assert!(
        unit.to_string().contains("unknown unit \"parsecs\""),
        "{unit}"
    );
    let error = compare(&args(&["--sample-every", "150ms"])).err().unwrap();
    assert_eq!(
        error.to_string(),
        "--sample-every (150ms) must be a multiple of --step (100ms): give a --step that divides it"
    );
    let error = compare(&args(&["--min-replicas", "5", "--max-replicas", "2"]))
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "--min-replicas: min replicas (5) is above max replicas (2)"
    );
    let cli = Cli::try_parse_from(["simulate", "--scenario", "tsunami"]);
    assert!(cli.is_err());
}

#[test]
fn scenarios_are_deterministic_for_a_seed_and_differ_across_seeds() {
    for scenario in Scenario::ALL {
        assert_eq!(
            Workload::scenario(scenario, 7),
            Workload::scenario(scenario, 7)
        );
    }
    assert_ne!(
        Workload::scenario(Scenario::Ramp, 1),
        Workload::scenario(Scenario::Ramp, 2)
    );
    // The ramp's mean is ∫ 16 t / 120 dt over 120 s = 960 items.
    let total = Workload::scenario(Scenario::Ramp, 1).total_items();
    assert!((860..1060).contains(&total), "{total}");

    let first = compare(&args(&["--scenario", "spiky", "--seed", "3"])).unwrap();
    let second = compare(&args(&["--scenario", "spiky", "--seed", "3"])).unwrap();
    assert_eq!(first.summaries, second.summaries);
    assert_eq!(first.runs[1].samples, second.runs[1].samples);
}

#[test]
fn burst_under_ebb_drains_at_the_physical_limit() {
    // 200 items at t = 10 s; ebb ticks at 10 s, asks for 200 / 20 = 10 replicas at once,
    // they start 1 s later and take 10 items per second: 20 rounds, last done at 31 s.
    let comparison = compare(&args(&["--scenario", "burst", "--policy", "ebb"])).unwrap();
    let ebb = summary(&comparison.summaries, "ebb");
    assert_eq!(ebb.items, 200);
    assert_eq!(ebb.drain_seconds, Some(21.0));
    assert_eq!(ebb.latency_max_seconds, Some(21.0));
    assert_eq!(ebb.peak_replicas, 10);
    let last = comparison.runs[0].samples.last().unwrap();
    assert_eq!((last.waiting, last.in_flight, last.replicas), (0, 0, 0));
}

#[test]
fn drain_time_measures_rates_from_what_a_real_scaler_reads() {
    let config = ScalerConfig {
        drain_time: Some(Duration::from_secs(60)),
        ..ScalerSettings::default().scaler_config().unwrap()
    };
    let seen = |waiting, ready_replicas, completed| Observation {
        waiting,
        in_flight: 1,
        replicas: 1,
        ready_replicas,
        completed,
    };
    // 1 ready replica acks 1 item/s while 3/s arrive: (111 + 3 × 60) / (1 × 60) → 5
    // replicas, where the AverageValue rule says 110 / 20 → 6.
    let mut ebb = Ebb::new(config.clone(), Duration::from_secs(1)).unwrap();
    assert_eq!(
        ebb.observe(Instant::from_secs(0), &seen(100, 1, 0)),
        Some(5)
    );
    assert_eq!(
        ebb.observe(Instant::from_secs(5), &seen(110, 1, 5)),
        Some(5)
    );
    // The same acks with no replica ready at the start: no service rate can be told yet
    // (as in `ebb up`), so the AverageValue rule holds.
    let mut ebb = Ebb::new(config, Duration::from_secs(1)).unwrap();
    ebb.observe(Instant::from_secs(0), &seen(100, 0, 0));
    assert_eq!(
        ebb.observe(Instant::from_secs(5), &seen(110, 1, 5)),
        Some(6)
    );
}

#[test]
fn the_hpa_pipeline_reacts_only_after_scrape_rule_and_sync() {
    let flags = [
        "--scenario",
        "burst",
        "--policy",
        "hpa-pipeline",
        "--seed",
        "1",
    ];
    let comparison = compare(&args(&flags)).unwrap();
    let run = &comparison.runs[0];
    let first_scale = run.samples.iter().find(|s| s.replicas > 0).unwrap();
    // The earliest possible reaction is the next scrape after 10 s; a sync must follow.
    assert!(
        first_scale.at_ms > 10_000,
        "scaled at {} ms",
        first_scale.at_ms
    );
    // Without `behavior` the first step is at most max(2 × 0, 4) = 4 replicas.
    assert_eq!(first_scale.replicas, 4);
    let hpa = summary(&comparison.summaries, "hpa-pipeline");
    assert_eq!(hpa.items, 200);
    assert!(hpa.drain_seconds.unwrap() > 21.0);
}

#[test]
fn ebb_needs_fewer_replica_seconds_and_less_latency_than_the_pipeline_on_a_burst() {
    let comparison = compare(&args(&["--scenario", "burst"])).unwrap();
    let (ebb, hpa) = (
        summary(&comparison.summaries, "ebb"),
        summary(&comparison.summaries, "hpa-pipeline"),
    );
    assert!(ebb.latency_p95_seconds.unwrap() < hpa.latency_p95_seconds.unwrap());
    assert!(ebb.replica_seconds < hpa.replica_seconds);
}

#[test]
fn writes_timeline_chart_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let arrivals = out.join("arrivals.csv");
    std::fs::write(&arrivals, "t_seconds,count\n0,30\n20,50\n").unwrap();
    let flags = [
        "--arrivals",
        arrivals.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let parsed = args(&flags);
    assert_eq!(parsed.policies, [PolicyName::Ebb, PolicyName::HpaPipeline]);
    let comparison = compare(&parsed).unwrap();
    write_outputs(&parsed, &comparison).unwrap();

    let timeline = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    assert!(timeline.starts_with("t_seconds,policy,waiting,in_flight,pods,replicas\n"));
    let at_20s = timeline
        .lines()
        .find(|l| l.starts_with("20.0,ebb,"))
        .unwrap();
    let waiting: u64 = at_20s.split(',').nth(2).unwrap().parse().unwrap();
    assert!(
        (40..=50).contains(&waiting),
        "50 arrive at 20 s, a few taken at once: {at_20s}"
    );
    let svg = std::fs::read_to_string(out.join("chart.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 4, "2 panels × 2 policies");
    for text in [
        "items waiting",
        "replicas",
        "time (s)",
        ">ebb<",
        ">hpa-pipeline<",
    ] {
        assert!(svg.contains(text), "chart lacks {text}");
    }
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 3);
    assert!(summary.lines().nth(1).unwrap().contains(",ebb,80,"));
}

/// Writes `text` to a fresh arrivals file for one test, removed when the result is dropped.
fn arrivals_file(text: &str) -> tempfile::TempPath {
    let file = tempfile::Builder::new()
        .prefix("ebb-simulate-arrivals-")
        .suffix(".csv")
        .tempfile()
        .unwrap();
    std::fs::write(file.path(), text).unwrap();
    file.into_temp_path()
}

#[test]
fn a_zero_count_means_nothing_arrives_that_second() {
    let path = arrivals_file("0,5\n1,0\n2,3\n");
    let comparison = compare(&args(&["--arrivals", path.to_str().unwrap()])).unwrap();
    for summary in &comparison.summaries {
        assert_eq!(summary.items, 8, "{}", summary.policy);
        assert!(summary.drain_seconds.is_some(), "{}", summary.policy);
    }
    // Trailing zeros do not move the last arrival, from which drain time is measured.
    let trailing = parse_arrivals("0,5\n60,0\n", "in.csv").unwrap();
    assert_eq!(
        Workload {
            name: "t".into(),
            arrivals: trailing
        }
        .last_arrival_ms(),
        0
    );
}

#[test]
fn zero_periods_are_rejected_naming_the_flag() {
    for flag in [
        "--hpa-sync-period",
        "--scrape-interval",
        "--rule-interval",
        "--step",
        "--sample-every",
    ] {
        let error = compare(&args(&[flag, "0s"])).err().unwrap();
        assert_eq!(error.to_string(), format!("{flag} must be above 0"));
    }
    // The scaler's own, validated as `ebb up` validates it.
    let error = compare(&args(&["--interval", "0s"])).err().unwrap();
    assert_eq!(error.to_string(), "--interval: interval must be above 0");
    let error = compare(&args(&["--hpa-downscale-stabilization", "2h"]))
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "--hpa-downscale-stabilization: scale-down stabilization window must be at most 3600 s (autoscaling/v2 limit), got 7200 s"
    );
}

#[test]
fn far_times_and_huge_counts_are_refused_with_the_limit() {
    let cases = [
        (
            "0,1\n1e12,5\n",
            "in.csv:2: time 1e12 s is past the 86400 s (24h) a simulation covers",
        ),
        (
            "0,99999999999\n",
            "in.csv:1: 99999999999 items in all by this line, above the limit of 100000000",
        ),
        (
            "0,60000000\n5,60000000\n",
            "in.csv:2: 120000000 items in all by this line, above the limit of 100000000",
        ),
        (
            "0,99999999999999999999999\n",
            "in.csv:1: count `99999999999999999999999` is not a whole number from 0 to 100000000",
        ),
    ];
    for (text, message) in cases {
        let error = parse_arrivals(text, "in.csv").unwrap_err();
        assert_eq!(error.to_string(), message);
    }
    let error = compare(&args(&["--give-up-after", "25h"])).err().unwrap();
    assert_eq!(
        error.to_string(),
        "--give-up-after (90000s) is past the 86400 s (24h) a simulation covers"
    );
    let error = compare(&args(&[
        "--step",
        "1ms",
        "--sample-every",
        "1ms",
        "--give-up-after",
        "12h",
    ]))
    .err()
    .unwrap();
    assert_eq!(
        error.to_string(),
        "--step (1ms) over the 43210 s simulated is 43210000 steps, above the limit of 10000000: use a longer --step or a shorter --give-up-after"
    );
    let error = compare(&args(&[
        "--sample-every",
        "100ms",
        "--give-up-after",
        "24h",
    ]))
    .err()
    .unwrap();
    assert_eq!(
        error.to_string(),
        "--sample-every (100ms) over the 86410 s simulated is 864100 samples per policy, above the limit of 500000: use a longer --sample-every or a shorter --give-up-after"
    );

    // The largest workload allowed runs without holding anything per item.
    let path = arrivals_file("0,100000000\n");
    let flags = [
        "--arrivals",
        path.to_str().unwrap(),
        "--give-up-after",
        "10m",
    ];
    let comparison = compare(&args(&flags)).unwrap();
    let ebb = summary(&comparison.summaries, "ebb");
    assert_eq!(ebb.drain_seconds, None);
    assert_eq!(ebb.items, 20 * 599, "20 replicas at 1 item/s from t = 1 s");
}

#[test]
fn durations_read_like_every_other_ebb_command() {
    let parsed = args(&[
        "--cooldown",
        "1m30s",
        "--give-up-after",
        "1h30m",
        "--step",
        "50ms",
    ]);
    assert_eq!(parsed.scaler.cooldown, Duration::from_secs(90));
    assert_eq!(parsed.give_up_after, Duration::from_secs(5400));
    let bare = Cli::try_parse_from(["simulate", "--per-msg", "2"])
        .err()
        .unwrap();
    assert!(bare.to_string().contains("missing unit"), "{bare}");
    // Go's units parse; the simulated clock counts whole milliseconds and says so.
    let parsed = args(&["--startup", "10us"]);
    assert_eq!(parsed.startup, Duration::from_micros(10));
    let error = compare(&parsed).err().unwrap();
    assert_eq!(
        error.to_string(),
        "--startup (10µs) must be a whole number of milliseconds"
    );
}

#[test]
fn with_nothing_processed_latencies_are_dashes_not_zeros() {
    let comparison = compare(&args(&["--scenario", "burst", "--give-up-after", "0s"])).unwrap();
    let table = summary_table(&comparison.workload.name, &comparison.summaries);
    let ebb_row: Vec<&str> = table
        .lines()
        .find(|line| line.starts_with("ebb "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(ebb_row[..6], ["ebb", "0", "-", "-", "-", "-"], "{table}");
    let csv = summary_csv(&comparison.workload.name, &comparison.summaries);
    let ebb_line = csv
        .lines()
        .find(|line| line.starts_with("burst,ebb,"))
        .unwrap();
    let fields: Vec<&str> = ebb_line.split(',').collect();
    assert_eq!(fields[2..7], ["0", "not drained", "", "", ""], "{csv}");
}

#[test]
fn per_msg_must_be_a_whole_number_of_steps() {
    let error = compare(&args(&["--per-msg", "50ms"])).err().unwrap();
    assert_eq!(
        error.to_string(),
        "--per-msg (50ms) must be a multiple of --step (100ms): give a --step that divides it"
    );
    let error = compare(&args(&["--per-msg", "250ms"])).err().unwrap();
    assert!(
        error
            .to_string()
            .starts_with("--per-msg (250ms) must be a multiple of --step (100ms)")
    );
    let comparison = compare(&args(&[
        "--per-msg",
        "50ms",
        "--step",
        "50ms",
        "--sample-every",
        "1s",
    ]));
    assert!(comparison.is_ok());
}
