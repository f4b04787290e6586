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
//! Each port is one trait: [`MetricSource`] (the sources are the catalogue, `ebb-sources`,
//! re-exported as [`sources`]) and [`ScaleTarget`]. [`ControlLoop::run`] ticks until its shutdown future completes. The
//! scaler records a decision only once the target accepted it (`Scaler::propose`, then
//! `Scaler::commit`), and an error is logged once and kept in [`Status::last_error`]. On a
//! scale-in the loop can choose the replicas that go and drain them first ([`ScaleInPolicy`],
//! `scale_in.rs`).

mod control_loop;
mod error;
mod scale_in;
mod target;

pub use control_loop::{ControlLoop, DecisionStatus, Fallback, Status, TickCounts};
pub use ebb_sources as sources;
pub use ebb_sources::{MetricSource, Reading};
pub use error::{Cause, Error, Result};
pub use scale_in::{DRAIN_RECHECK, ScaleInCounts, ScaleInPolicy, ScaleInStatus};
pub use target::{ScaleInReplicas, ScaleTarget};
