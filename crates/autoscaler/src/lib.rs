//! `ebb-autoscaler`: the control loop that closes the circle, the same for every place ebb
//! scales (local processes today, a Kubernetes scale subresource in the operator).
//!
//! ```text
//!   read                          decide                          apply
//!  ┌────────────────────┐ Reading ┌─────────────────────┐ desired ┌───────────────────┐
//!  │ MetricSource       │────────▶│ ebb_scaling::Scaler │────────▶│ ScaleTarget       │
//!  │ (sources::…)       │         │ (+ its RateMeter)   │         │ (local processes, │
//!  └────────────────────┘         └─────────────────────┘         │  scale subresource│
//!                                           │ Status (watch)      └───────────────────┘
//!                                           ▼
//!                                 live view, /status, /metrics
//! ```
//!
//! Each port is one trait: [`MetricSource`] (one source per file under [`sources`]) and
//! [`ScaleTarget`]. [`ControlLoop::run`] ticks until its shutdown future completes. The
//! scaler records a decision only once the target accepted it (`Scaler::propose`, then
//! `Scaler::commit`), and an error is logged once and kept in [`Status::last_error`].

mod control_loop;
mod error;
pub mod http_client;
mod source;
pub mod sources;
mod target;

pub use control_loop::{ControlLoop, DecisionStatus, Fallback, Status, TickCounts};
pub use error::{Error, Result};
pub use source::{MetricSource, Reading};
pub use target::ScaleTarget;
