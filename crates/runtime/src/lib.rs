//! What every long-running ebb process shares, so the producer, the consumer and `ebb up` start,
//! report and stop the same way.
//!
//! ```text
//!   SIGTERM / SIGINT ──▶ Shutdown ──▶ component loops stop taking work, finish, return
//!                                └──▶ HTTP server stops after in-flight requests
//!                                    GET /livez    (200 while the process serves)
//!   component ──set──▶ Health ──▶ GET /readyz    (200 ready / 503 with the reason; /healthz too)
//!   component ──inc──▶ Registry ─▶ GET /metrics  (Prometheus text format)
//! ```
//!
//! - [`Shutdown`]: a cloneable "stop now" flag, triggered by signals or by a test.
//! - [`init_logging`]: one-line-per-event logs to stderr, filter from `EBB_LOG` (default info).
//! - [`Health`], [`Metrics`], [`http::ops_router`], [`http::serve`]: the operations endpoints.
//! - [`parse_duration`], [`format_duration`], [`parse_positive`], [`parse_count`],
//!   [`parse_bytes`]: durations, counts and sizes for flags and URLs, re-exported from the
//!   I/O-free `ebb-units` so that every command reads them one way.
//! - [`Backoff`]: capped exponential retry delay.
//! - [`free_loopback_port`]: a port for a server about to start, out of the way of outgoing
//!   connections.
//! - [`run_service`]: a subcommand's entry point: logging, its own runtime, signals, and
//!   [`release_start_up_pages`] once start-up is over (small at rest).
//! - [`probe`]: `ebb probe`, the exec probe of a server on a port picked at start (several
//!   replicas on one host-network node).

mod backoff;
mod error;
mod health;
pub mod http;
mod logging;
mod port;
mod probe;
mod resident;
mod service;
mod shutdown;

pub use backoff::Backoff;
pub use error::{Error, Result};
pub use health::Health;
pub use http::{Metrics, parse_listen_address};
pub use logging::init_logging;
pub use port::free_loopback_port;
pub use probe::{ProbeArgs, probe};
pub use resident::{Released, release_start_up_pages};
pub use service::run_service;
pub use shutdown::{Shutdown, ShutdownTrigger};

pub use ebb_units::{
    Bounded, format_duration, parse_bytes, parse_count, parse_duration, parse_positive,
};
