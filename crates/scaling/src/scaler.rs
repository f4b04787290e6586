//! The decision loop's pure core: read an [`Input`], decide, and leave applying to the caller.
//!
//! ```text
//!  Input ──▶ bounds? ──▶ recommend ──▶ normalize ──────────▶ zero guard ──▶ Decision
//!            (paused,     (AverageValue  (stabilization      (nothing waits or
//!             >max, <min)  or drain time) windows, policies)  in flight, cooldown)
//! ```

use crate::behavior::Behavior;
use crate::config::ScalerConfig;
use crate::error::Result;
use crate::input::{Decision, Input};
use crate::normalize::{self, Frame, Normalized};
use crate::recommend::{Recommendation, recommend};
use crate::state::{ScalerState, Stamped};
use crate::time::Instant;

/// A validated configuration and the history its decisions depend on.
#[derive(Debug, Clone)]
pub struct Scaler {
    config: ScalerConfig,
    state: ScalerState,
}

impl Scaler {
    pub fn new(config: ScalerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Scaler {
            config,
            state: ScalerState::default(),
        })
    }

    pub fn config(&self) -> &ScalerConfig {
        &self.config
    }

    pub fn state(&self) -> &ScalerState {
        &self.state
    }

    /// As if this scaler had taken its target to 0 replicas itself (upstream's `ScaledToZero`
    /// condition True): the state of the dojo's HPA once its queue first drained. With
    /// [`ScalerConfig::paused_at_zero`], only then does a target at 0 scale up again.
    pub fn with_scaled_to_zero(mut self) -> Self {
        self.state.scaled_to_zero = true;
        self
    }

    /// Continues from `memory` (see [`crate::Memory`]), taken by an earlier scaler, as seen
    /// at `now`. Replaces this scaler's history.
    pub fn recall(&mut self, memory: &crate::Memory, now: Instant) {
        self.state = ScalerState::recalled(memory, now);
    }

    /// What a later scaler needs to continue this one's decisions, as seen at `now`.
    pub fn memory(&self, now: Instant) -> crate::Memory {
        self.state.memory(now)
    }

    /// The raw recommendation for this input, without touching the history.
    pub fn recommend(&self, input: &Input) -> Recommendation {
        recommend(&self.config, input)
    }

    /// Decides the replica count for `input` observed at `now`, and records the decision
    /// as applied (its recommendation for the windows, its change for the policies).
    /// Call it once per tick with non-decreasing `now`. For a caller whose apply can fail,
    /// [`Scaler::propose`] then [`Scaler::commit`] once applied.
    pub fn decide(&mut self, input: &Input, now: Instant) -> Decision {
        decide_on(&self.config, &mut self.state, input, now)
    }

    /// Decides as [`Scaler::decide`] would, without recording anything: the history moves
    /// only when the proposal is handed to [`Scaler::commit`]. Dropping it instead (the
    /// target refused the change) leaves the scaler as if this tick had not happened, so no
    /// rate-limit policy counts a change that never took place.
    pub fn propose(&self, input: &Input, now: Instant) -> Proposal {
        let mut state = self.state.clone();
        let decision = decide_on(&self.config, &mut state, input, now);
        Proposal { decision, state }
    }

    /// Records `proposal` as applied and returns its decision. Commit proposals in the order
    /// they were made, each made from the state the previous commit left.
    pub fn commit(&mut self, proposal: Proposal) -> Decision {
        self.state = proposal.state;
        proposal.decision
    }
}

/// A decision not yet recorded: what [`Scaler::propose`] returns and [`Scaler::commit`] takes.
#[derive(Debug, Clone)]
#[must_use = "a proposal changes nothing until it is committed"]
pub struct Proposal {
    decision: Decision,
    /// The scaler's history as it will be once this decision is applied.
    state: ScalerState,
}

impl Proposal {
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

/// The decision for `input` at `now`, recorded into `state` as if applied.
fn decide_on(
    config: &ScalerConfig,
    state: &mut ScalerState,
    input: &Input,
    now: Instant,
) -> Decision {
    let current = input.current_replicas;
    if !state.started {
        // Upstream counts the count found at start as a recommendation.
        state.started = true;
        state.recommendations.push(Stamped {
            at: now,
            replicas: current,
        });
    }
    state.queue_empty_since = match input.backlog() {
        0 => Some(state.queue_empty_since.unwrap_or(now)),
        _ => None,
    };

    // Upstream's order (`reconcileAutoscaler`): 0 replicas first, then above max, below min.
    let upstream_from_zero = current == 0 && config.paused_at_zero;
    let (recommendation, desired, notes) = if upstream_from_zero && !state.scaled_to_zero {
        let why = "scaling is disabled: the target is at 0 replicas and this scaler \
                           did not take it there (no ScaledToZero condition)"
            .to_owned();
        (0, 0, vec![why])
    } else if current > config.max_replicas {
        let why = format!(
            "current count is above max replicas {}",
            config.max_replicas
        );
        (config.max_replicas, config.max_replicas, vec![why])
    } else if current < config.min_replicas && !upstream_from_zero {
        let why = format!(
            "current count is below min replicas {}",
            config.min_replicas
        );
        (config.min_replicas, config.min_replicas, vec![why])
    } else {
        let Recommendation { replicas, basis } = recommend(config, input);
        let frame = Frame {
            min: config.min_replicas,
            max: config.max_replicas,
            current,
        };
        let Normalized {
            replicas: normalized,
            mut notes,
        } = match &config.behavior {
            Behavior::Unset {
                downscale_stabilization,
            } => normalize::without_behavior(state, *downscale_stabilization, frame, replicas, now),
            Behavior::Rules {
                scale_up,
                scale_down,
            } => normalize::with_rules(state, (scale_up, scale_down), frame, replicas, now),
        };
        notes.insert(0, basis);
        let desired = match step_to_zero(config, state, input, normalized, now) {
            Some(StepToZero::Hold(why)) => {
                notes.push(why);
                1
            }
            Some(StepToZero::Allowed(why)) => {
                notes.push(why);
                0
            }
            None => normalized,
        };
        let desired = if current == 0 && desired < config.min_replicas {
            notes.push(format!(
                "raised to min replicas {} from 0",
                config.min_replicas
            ));
            config.min_replicas
        } else {
            desired
        };
        (replicas, desired, notes)
    };

    if desired != current {
        state.scaled_to_zero = current > 0 && desired == 0 && config.min_replicas == 0;
    }
    if desired != current
        && let Behavior::Rules {
            scale_up,
            scale_down,
        } = &config.behavior
    {
        normalize::record_scale_event(state, (scale_up, scale_down), current, desired, now);
    }
    let verdict = if desired == current {
        format!("stay at {current}")
    } else {
        format!("scale {current} → {desired}")
    };
    Decision {
        current_replicas: current,
        desired_replicas: desired,
        recommendation,
        average_per_replica: input.average_per_replica(),
        reason: format!("{verdict}: {}", notes.join("; ")),
    }
}

/// Whether the last step to 0 may happen now, and why.
enum StepToZero {
    Hold(String),
    Allowed(String),
}

/// What a step to zero adds when the source cannot tell what is in flight: it went by the
/// waiting items alone.
fn unknown_note(input: &Input) -> &'static str {
    match input.in_flight {
        Some(_) => "",
        None => " (nothing waits; in flight unknown to this source)",
    }
}

/// The last step to 0 waits until nothing waits or is in flight, for the whole cooldown.
fn step_to_zero(
    config: &ScalerConfig,
    state: &ScalerState,
    input: &Input,
    normalized: u32,
    now: Instant,
) -> Option<StepToZero> {
    if normalized > 0 || input.current_replicas == 0 {
        return None;
    }
    let Some(empty_since) = state.queue_empty_since else {
        return Some(StepToZero::Hold(format!(
            "holding 1 replica while {} wait and {} are in flight",
            input.waiting,
            input.in_flight_shown()
        )));
    };
    let empty_for = now.saturating_duration_since(empty_since).as_secs_f64();
    let cooldown = config.cooldown.as_secs_f64();
    Some(if empty_for < cooldown {
        StepToZero::Hold(format!(
            "holding 1 replica: queue empty for {empty_for:.1} s of the {cooldown} s cooldown"
        ))
    } else if config.cooldown.is_zero() {
        StepToZero::Allowed(format!("queue empty{}", unknown_note(input)))
    } else {
        StepToZero::Allowed(format!(
            "queue empty for {empty_for:.1} s, cooldown of {cooldown} s over{}",
            unknown_note(input)
        ))
    })
}
