//! The leadership gate: whether this replica may write to the API server now, as a value
//! handed to whoever writes (the [`Writer`](crate::Writer)) rather than a process-wide flag.
//!
//! ```text
//!  leader election ──GateSwitch::set(acting until)──▶ watch channel ──▶ Gate::is_open()
//!                                                                        (every write)
//! ```
//!
//! The gate holds a deadline, not a yes/no: it closes by itself once the deadline passes, so
//! a process frozen past its Lease (SIGSTOP) and then resumed finds it closed before it
//! sends anything. A switch that is dropped (its election ended) closes every gate too.

use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// Closes and opens the gates made from it; held by the leader election.
#[derive(Debug)]
pub struct GateSwitch {
    acting_until: watch::Sender<Option<SystemTime>>,
}

/// Whether this replica may write now: cheap to clone, one per writer.
#[derive(Debug, Clone)]
pub struct Gate {
    acting_until: watch::Receiver<Option<SystemTime>>,
}

/// A switch and its gate, closed.
pub fn gate() -> (GateSwitch, Gate) {
    let (acting_until, receiver) = watch::channel(None);
    (
        GateSwitch { acting_until },
        Gate {
            acting_until: receiver,
        },
    )
}

impl GateSwitch {
    /// Opens the gates until `until`; `None` closes them.
    pub fn set(&self, until: Option<SystemTime>) {
        self.acting_until.send_replace(until);
    }

    /// Opens the gates until `until`.
    pub fn open_until(&self, until: SystemTime) {
        self.set(Some(until));
    }

    /// Closes the gates now.
    pub fn close(&self) {
        self.set(None);
    }

    /// One more gate of this switch.
    pub fn gate(&self) -> Gate {
        Gate {
            acting_until: self.acting_until.subscribe(),
        }
    }
}

impl Gate {
    /// Whether a write may be sent now: the switch is still there and its deadline has not
    /// passed.
    pub fn is_open(&self) -> bool {
        self.acting_until.has_changed().is_ok() && remaining(*self.acting_until.borrow()).is_some()
    }

    /// Completes once the gate is open; never, once its switch is gone.
    pub async fn opened(&mut self) {
        loop {
            if remaining(*self.acting_until.borrow_and_update()).is_some() {
                return;
            }
            if self.acting_until.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Completes once the gate is closed: closed by the switch, its deadline passed, or the
    /// switch gone.
    pub async fn closed(&mut self) {
        loop {
            let Some(left) = remaining(*self.acting_until.borrow_and_update()) else {
                return;
            };
            tokio::select! {
                () = tokio::time::sleep(left) => {}
                changed = self.acting_until.changed() => if changed.is_err() { return },
            }
        }
    }
}

/// How long is left until `until`; `None` when nothing is.
fn remaining(until: Option<SystemTime>) -> Option<Duration> {
    until?
        .duration_since(SystemTime::now())
        .ok()
        .filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_past_deadline_leaves_nothing_remaining() {
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(remaining(Some(past)), None);
        assert_eq!(remaining(None), None);
        assert!(remaining(Some(SystemTime::now() + Duration::from_secs(5))).is_some());
    }

    #[test]
    fn the_gate_follows_its_switch_and_closes_when_the_switch_is_gone() {
        let (switch, gate) = gate();
        assert!(!gate.is_open(), "a new gate is closed");
        switch.open_until(SystemTime::now() + Duration::from_secs(60));
        assert!(gate.is_open());
        assert!(switch.gate().is_open());
        switch.open_until(SystemTime::now() - Duration::from_secs(1));
        assert!(!gate.is_open(), "a past deadline closes it");
        switch.open_until(SystemTime::now() + Duration::from_secs(60));
        switch.close();
        assert!(!gate.is_open());
        switch.open_until(SystemTime::now() + Duration::from_secs(60));
        drop(switch);
        assert!(!gate.is_open(), "a gate whose switch is gone is closed");
    }
}
