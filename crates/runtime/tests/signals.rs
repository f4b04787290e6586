//! `Shutdown::on_signals` with real signals sent to this test process (its own binary, so no
//! other test shares the process): the first asks for a graceful stop, the second for an
//! urgent one.

use std::process::Command;
use std::time::Duration;

use ebb_runtime::Shutdown;

const WITHIN: Duration = Duration::from_secs(5);

fn send_to_self(signal: &str) {
    let status = Command::new("kill")
        .args([signal, &std::process::id().to_string()])
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill {signal} failed");
}

#[tokio::test]
async fn a_second_signal_turns_the_shutdown_urgent() {
    // Installed before the first signal is sent, so neither signal kills the process.
    let shutdown = Shutdown::on_signals().unwrap();
    assert!(!shutdown.is_requested());

    send_to_self("-TERM");
    tokio::time::timeout(WITHIN, shutdown.requested())
        .await
        .expect("SIGTERM did not request shutdown");
    assert!(!shutdown.is_urgent());

    send_to_self("-INT");
    tokio::time::timeout(WITHIN, shutdown.urgent())
        .await
        .expect("a second signal did not make shutdown urgent");
}
