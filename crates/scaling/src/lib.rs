//! `ebb-scaling`: the decision "how many consumers now?", as a pure library.
//!
//! No I/O, no runtime, no clock: the caller observes the queue, passes the observation and
//! the time in, and applies the answer. The same [`Scaler::decide`] serves `ebb up` (one
//! call per tick), `ebb simulate` (a simulated clock) and a Kubernetes operator. A caller
//! whose apply can fail splits it: [`Scaler::propose`] decides without recording, and
//! [`Scaler::commit`] records once the target accepted the change.
//!
//! ```text
//!   read                       decide (this crate)                        apply
//!  ┌──────────────┐   Input   ┌───────────────────────────────┐ Decision ┌──────────────┐
//!  │ waiting,     │──────────▶│ recommend → normalize → guard │─────────▶│ processes,   │
//!  │ in flight,   │   now     │   (ScalerState: windows,      │          │ scale        │
//!  │ replicas     │──────────▶│    scale events, cooldown)    │          │ subresource  │
//!  └──────────────┘           └───────────────────────────────┘          └──────────────┘
//! ```
//!
//! Semantics follow the upstream HPA (pkg/controller/podautoscaler) for an AverageValue
//! target: `desired = ceil(waiting / target)` unless the ratio waiting / (target × current)
//! is within the tolerance, clamped to [min, max], then autoscaling/v2 `behavior`
//! (stabilization windows, Pods/Percent policies over periods, selectPolicy). At 0 replicas
//! the 1.37 HPA scales only a target it took to 0 itself (its `ScaledToZero` condition,
//! [`ScalerState::scaled_to_zero`]); [`ScalerConfig::paused_at_zero`] chooses that rule.
//! Checked row by row against the v1.37.2 source in `tests/upstream_table.rs`. ebb adds:
//! - scale-to-zero rules: from 0, scale up only when waiting > the activation threshold;
//!   scale to 0 only when nothing waits or is in flight, for the whole cooldown;
//! - a drain-time mode that sizes the count from measured rates ([`RateMeter`] measures
//!   them from successive readings, the same for `ebb up` and `ebb simulate`);
//! - the per-replica average is `None` at 0 replicas instead of upstream's −2⁶³;
//! - on a scale-in, which replicas go ([`choose`]): idle ones first, then the busy ones
//!   whose work began longest ago, from what the queue says each consumer holds.
//!
//! What a person sets (bounds, target, windows, interval) is [`ScalerSettings`], with the
//! defaults in [`settings`] and one validation naming the offending flag or field; with
//! the `cli` feature, `ScalerArgs` is the same as clap flags for every command.
//!
//! # Example
//!
//! ```
//! use ebb_scaling::{Input, Instant, Scaler, ScalerConfig};
//!
//! let mut scaler = Scaler::new(ScalerConfig::ebb_default()).unwrap();
//! // 200 items land on an idle queue: 200 / 20 per replica = 10, no rate limit.
//! let decision = scaler.decide(&Input::new(200, 0, 0), Instant::from_secs(0));
//! assert_eq!(decision.desired_replicas, 10);
//! assert_eq!(decision.average_per_replica, None);
//! // Drained, last items still in flight: never to 0 while anything is in flight.
//! let decision = scaler.decide(&Input::new(0, 3, 10), Instant::from_secs(30));
//! assert_eq!(decision.desired_replicas, 1);
//! // Empty for the whole 20 s cooldown: back to 0.
//! scaler.decide(&Input::new(0, 0, 1), Instant::from_secs(31));
//! let decision = scaler.decide(&Input::new(0, 0, 1), Instant::from_secs(51));
//! assert_eq!(decision.desired_replicas, 0);
//! println!("{}", decision.reason);
//! ```

mod behavior;
#[cfg(feature = "cli")]
mod cli;
mod config;
mod defaults;
mod error;
mod input;
mod memory;
mod normalize;
mod rates;
mod recommend;
mod scale_in;
mod scaler;
mod setting;
pub mod settings;
mod state;
mod time;
pub mod upstream;

pub use behavior::{Behavior, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy};
#[cfg(feature = "cli")]
pub use cli::ScalerArgs;
pub use config::{ScalerConfig, Tolerance};
pub use error::{Direction, Error, Result};
pub use input::{Change, Decision, Input, Rates};
pub use memory::Memory;
pub use rates::{RateMeter, RateReading};
pub use recommend::Recommendation;
pub use scale_in::{Choice, Chosen, Holding, Replica, Why, choose};
pub use scaler::{Proposal, Scaler};
pub use settings::{ScalerSettings, Setting};
pub use state::ScalerState;
pub use time::Instant;
