use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Logs to stderr, one line per event, filtered by `EBB_LOG` (e.g. `debug`,
/// `ebb_consumer=debug`; default `info`). Safe to call twice: the second call does nothing.
pub fn init_logging() {
    let filter = EnvFilter::try_from_env("EBB_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
