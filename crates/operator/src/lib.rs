//! `ebb operator`: the QueueScaler controller. It reads each QueueScaler's queue, decides
//! with ebb-scaling, and sets its workload's scale subresource itself: 0 ↔ N with no HPA.
//!
//! ```text
//!  QueueScaler (CRD, crd.rs) ──watch──▶ operator ──one ControlLoop per QueueScaler──┐
//!                                                                                    │
//!   read: ebb-sources source (Redis list,      decide: ebb_scaling::Scaler   apply: scale
//!         leased queue, stream, PromQL)  ───▶  (same rules as `ebb up`) ───▶ subresource
//!                                                    │
//!                                                    ▼ status (server-side apply)
//! ```

mod allowed;
mod cli;
mod config;
mod conflict;
mod context;
mod controller;
pub mod crd;
mod defaults;
mod error;
mod events;
mod gate;
mod inspect;
mod leader;
mod metrics;
mod pods;
pub mod reading;
mod redis_pool;
mod scaler_task;
mod source;
mod status;
mod stores;
mod target;
mod writer;

pub use allowed::{AllowedAddresses, parse_allowed_addresses};
pub use cli::{OperatorArgs, OperatorCommand, main};
pub use controller::{Settings as ControllerSettings, run as run_controller};
pub use crd::{QueueScaler, QueueScalerSpec, QueueScalerStatus, crd_yaml};
pub use error::{Error, NotLeading, Result};
pub use gate::{Gate, GateSwitch, gate};
pub use inspect::{InspectArgs, Output as InspectOutput, inspect, main as inspect_main};
pub use metrics::Metrics;
pub use reading::{Reading, read as reading};
pub use source::spec as source_spec;
pub use writer::Writer;
