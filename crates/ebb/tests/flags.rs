//! Flag mistakes, as the real binary reports them: one line that names the flag and says what
//! is wrong, and a failing exit status.

use std::process::{Command, Stdio};

/// Runs `ebb <args>` to its end; its exit success and the first line of its stderr.
fn ebb(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(args)
        .env("EBB_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .expect("the ebb binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.success(),
        stderr.lines().next().unwrap_or_default().to_owned(),
    )
}

#[test]
fn bad_values_are_one_line_naming_the_flag() {
    for (args, first_line) in [
        (
            &["producer", "--max-batch", "-3"][..],
            "error: invalid value '-3' for '--max-batch <MAX_BATCH>': must be a positive integer (digits only)",
        ),
        (
            &["producer", "--max-batch", "0"],
            "error: invalid value '0' for '--max-batch <MAX_BATCH>': must be a positive integer (digits only)",
        ),
        (
            &["producer", "--redis-queue", ""],
            "error: invalid value '' for '--redis-queue <REDIS_QUEUE>': must not be empty",
        ),
        (
            &["consumer", "--consumer-id", ""],
            "error: invalid value '' for '--consumer-id <CONSUMER_ID>': must not be empty",
        ),
        (
            &["consumer", "--concurrency", "-1"],
            "error: invalid value '-1' for '--concurrency <CONCURRENCY>': must be a positive integer (digits only)",
        ),
        (
            &["consumer", "--lease", "-5s"],
            "error: invalid value '-5s' for '--lease <LEASE>': invalid duration \"-5s\": negative",
        ),
    ] {
        assert_eq!(ebb(args), (false, first_line.to_owned()), "{args:?}");
    }
}

#[test]
fn a_ca_for_a_plain_address_or_a_missing_ca_file_stops_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let missing = missing.display().to_string();
    for (subcommand, server, reason) in [
        (
            "producer",
            "127.0.0.1:6379",
            "127.0.0.1:6379 is not a rediss:// (TLS) address".to_owned(),
        ),
        (
            "consumer",
            "rediss://127.0.0.1:6379",
            "No such file or directory (os error 2)".to_owned(),
        ),
    ] {
        let (succeeded, line) = ebb(&[
            subcommand,
            "--http",
            "127.0.0.1:0",
            "--redis-server",
            server,
            "--redis-ca",
            &missing,
        ]);
        assert!(!succeeded, "{line}");
        assert_eq!(
            line,
            format!("ebb: invalid --redis-ca {missing:?}: {reason}"),
            "{subcommand}"
        );
    }
}

/// The scaler's flags, as `ebb up` and `ebb simulate` both take them.
const SCALER_VARIABLES: [&str; 9] = [
    "EBB_MIN_REPLICAS",
    "EBB_MAX_REPLICAS",
    "EBB_TARGET_PER_REPLICA",
    "EBB_ACTIVATION_THRESHOLD",
    "EBB_COOLDOWN",
    "EBB_SCALE_DOWN_STABILIZATION",
    "EBB_TOLERANCE",
    "EBB_DRAIN_TIME",
    "EBB_INTERVAL",
];

/// The "Scaler:" section of `ebb <subcommand> -h`, with none of its variables set.
fn scaler_help(subcommand: &str) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ebb"));
    command.args([subcommand, "-h"]).env("COLUMNS", "200");
    for variable in SCALER_VARIABLES {
        command.env_remove(variable);
    }
    let output = command.output().expect("the ebb binary runs");
    assert!(output.status.success(), "{subcommand} -h");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .skip_while(|line| *line != "Scaler:")
        .take_while(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn up_and_simulate_list_the_same_scaler_flags_with_the_same_defaults() {
    let up = scaler_help("up");
    assert_eq!(up, scaler_help("simulate"));
    for (flag, variable, default) in [
        ("--min-replicas", "EBB_MIN_REPLICAS", Some("0")),
        ("--max-replicas", "EBB_MAX_REPLICAS", Some("20")),
        ("--target-per-replica", "EBB_TARGET_PER_REPLICA", Some("20")),
        (
            "--activation-threshold",
            "EBB_ACTIVATION_THRESHOLD",
            Some("0"),
        ),
        ("--cooldown", "EBB_COOLDOWN", Some("20s")),
        (
            "--scale-down-stabilization",
            "EBB_SCALE_DOWN_STABILIZATION",
            Some("20s"),
        ),
        ("--tolerance", "EBB_TOLERANCE", Some("0.1")),
        ("--drain-time", "EBB_DRAIN_TIME", None),
        ("--interval", "EBB_INTERVAL", Some("250ms")),
    ] {
        // Each flag's help is the line after its name.
        let mut lines = up.lines().skip_while(|line| !line.contains(flag));
        assert!(lines.next().is_some(), "{flag} missing from:\n{up}");
        let help = lines.next().unwrap_or_default();
        assert!(help.contains(&format!("[env: {variable}=]")), "{help}");
        match default {
            Some(value) => assert!(help.ends_with(&format!("[default: {value}]")), "{help}"),
            None => assert!(!help.contains("[default:"), "{help}"),
        }
    }
}

#[test]
fn bad_scaler_flags_read_the_same_in_up_and_simulate() {
    for (flags, first_line) in [
        (
            &["--min-replicas", "-1"][..],
            "error: invalid value '-1' for '--min-replicas <MIN_REPLICAS>': must be 0 or a positive integer (digits only)",
        ),
        (
            &["--max-replicas", "0"],
            "error: invalid value '0' for '--max-replicas <MAX_REPLICAS>': must be a positive integer (digits only)",
        ),
        (
            &["--cooldown", "-5s"],
            "error: invalid value '-5s' for '--cooldown <COOLDOWN>': invalid duration \"-5s\": negative",
        ),
        (
            &["--interval", "1"],
            "error: invalid value '1' for '--interval <INTERVAL>': invalid duration \"1\": missing unit (e.g. 1s, 500ms)",
        ),
        (
            &["--min-replicas", "5", "--max-replicas", "3"],
            "ebb: --min-replicas: min replicas (5) is above max replicas (3)",
        ),
        (
            &["--target-per-replica", "-2"],
            "ebb: --target-per-replica: target per replica must be a finite number above 0, got -2",
        ),
        (
            &["--tolerance", "1.5"],
            "ebb: --tolerance: scale-up tolerance must be a finite number between 0 and 1, got 1.5",
        ),
        (
            &["--drain-time", "500ms"],
            "ebb: --drain-time: drain-time target must be at least 1 s, got 500ms",
        ),
        (
            &["--interval", "0s"],
            "ebb: --interval: interval must be above 0",
        ),
    ] {
        for subcommand in ["up", "simulate"] {
            let args: Vec<&str> = std::iter::once(subcommand)
                .chain(flags.iter().copied())
                .collect();
            assert_eq!(ebb(&args), (false, first_line.to_owned()), "{args:?}");
        }
    }
}

#[test]
fn metrics_api_stops_at_start_on_a_bad_configuration_file_or_flag() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("metrics-api.yaml");
    std::fs::write(
        &config,
        "interval: 1s\nmetrics:\n  - name: m\n    source: {redisList: {}}\n    label: key\n    keys: []\n    objects: [{resource: services, namespace: default, name: s}]\n",
    )
    .unwrap();
    let path = config.display().to_string();
    assert_eq!(
        ebb(&["metrics-api", "--config", &path]),
        (
            false,
            format!(
                "ebb: {path}:4: metrics[0].keys: no key allowed: list the keys (or patterns) this metric may read"
            )
        )
    );
    assert_eq!(
        ebb(&["metrics-api", "--tls-cert-file", "cert.pem"]),
        (
            false,
            "error: the following required arguments were not provided:".to_owned()
        )
    );
    assert_eq!(
        ebb(&["metrics-api", "--secure-port", "70000"]),
        (
            false,
            "error: invalid value '70000' for '--secure-port <SECURE_PORT>': 70000 is not in 0..=65535".to_owned()
        )
    );
}

/// A `--redis-server` (or `EBB_REDIS_SERVER`) that does not parse is refused naming the flag,
/// and the password in it is never printed: not by clap's error, not by the address's own.
#[test]
fn a_bad_redis_server_never_prints_its_password() {
    const PASSWORD: &str = "hunter2-s3cret";
    let bad = [
        format!("redis://:{PASSWORD}@redis-master:70000"),
        format!("redis://user:{PASSWORD}@"),
        format!("http://:{PASSWORD}@redis-master:6379"),
        format!("redis+cluster://:{PASSWORD}@a:7000,b"),
        format!(":{PASSWORD}@redis-master"),
    ];
    for subcommand in ["producer", "consumer", "metrics-api", "up"] {
        for server in &bad {
            for by_env in [false, true] {
                let mut command = Command::new(env!("CARGO_BIN_EXE_ebb"));
                command.arg(subcommand);
                if by_env {
                    command.env("EBB_REDIS_SERVER", server);
                } else {
                    command.args(["--redis-server", server]);
                }
                let output = command
                    .env("EBB_LOG", "debug")
                    .stdin(Stdio::null())
                    .output()
                    .expect("the ebb binary runs");
                let stderr = String::from_utf8_lossy(&output.stderr);
                let stdout = String::from_utf8_lossy(&output.stdout);
                let what = format!("ebb {subcommand} with {server} (by env: {by_env})");
                assert!(!output.status.success(), "{what} started\n{stderr}");
                assert!(
                    stderr.contains("--redis-server"),
                    "{what}: the error does not name the flag\n{stderr}"
                );
                assert!(
                    !stderr.contains(PASSWORD) && !stdout.contains(PASSWORD),
                    "{what} printed the password\n{stderr}{stdout}"
                );
            }
        }
    }
}
