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
