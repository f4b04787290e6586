//! The "stop taking work" flag passed into every loop, mini-redis style: loops select on
//! [`Shutdown::requested`] instead of reading signals themselves, so tests can trigger it.
//!
//! Two stages, so a person is never left waiting on a grace period:
//!
//! ```text
//!   SIGTERM / SIGINT ──▶ requested: stop taking work, finish what is in hand
//!   SIGTERM / SIGINT ──▶ urgent:    stop now, skip the grace period
//! ```

use tokio::sync::watch;

/// How far shutdown has gone; each stage includes the ones before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    Running,
    /// Stop taking work and finish what is in hand.
    Requested,
    /// Stop now: whatever is still in hand is abandoned (an unacknowledged item is redelivered).
    Urgent,
}

/// The receiving side: cheap to clone, one per task.
#[derive(Clone, Debug)]
pub struct Shutdown {
    stage: watch::Receiver<Stage>,
}

/// The sending side: dropping it also counts as a request (not an urgent one), so a forgotten
/// trigger cannot leave a process running forever.
#[derive(Debug)]
pub struct ShutdownTrigger {
    stage: watch::Sender<Stage>,
}

impl Shutdown {
    /// A new flag and the trigger that raises it.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (sender, receiver) = watch::channel(Stage::Running);
        (
            ShutdownTrigger { stage: sender },
            Shutdown { stage: receiver },
        )
    }

    /// A flag requested by the first SIGTERM or SIGINT and made urgent by the second. Must be
    /// called inside a tokio runtime.
    pub fn on_signals() -> crate::Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).map_err(crate::Error::Signal)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(crate::Error::Signal)?;
        let (trigger, shutdown) = Shutdown::new();
        tokio::spawn(async move {
            while trigger.stage() < Stage::Urgent {
                let name = tokio::select! {
                    _ = terminate.recv() => "SIGTERM",
                    _ = interrupt.recv() => "SIGINT",
                };
                trigger.escalate(name);
            }
        });
        Ok(shutdown)
    }

    /// True once shutdown has been requested (urgently or not).
    pub fn is_requested(&self) -> bool {
        *self.stage.borrow() >= Stage::Requested
    }

    /// True once shutdown has turned urgent.
    pub fn is_urgent(&self) -> bool {
        *self.stage.borrow() == Stage::Urgent
    }

    /// Completes when shutdown is requested (at once if it already was).
    pub async fn requested(&self) {
        // An error means the trigger is gone, which also means "stop".
        let _ = self.reached(Stage::Requested).await;
    }

    /// Completes when shutdown turns urgent (at once if it already is): the moment to stop
    /// waiting for work in hand. Never completes once the trigger is gone without having made
    /// it urgent: a forgotten trigger asks for a graceful stop, not a hasty one.
    pub async fn urgent(&self) {
        if self.reached(Stage::Urgent).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    async fn reached(&self, stage: Stage) -> Result<(), watch::error::RecvError> {
        let mut receiver = self.stage.clone();
        receiver.wait_for(|now| *now >= stage).await.map(drop)
    }
}

impl ShutdownTrigger {
    /// Requests shutdown for every [`Shutdown`] clone.
    pub fn trigger(&self) {
        self.raise_to(Stage::Requested);
    }

    /// Makes shutdown urgent for every [`Shutdown`] clone (requesting it too).
    pub fn trigger_urgently(&self) {
        self.raise_to(Stage::Urgent);
    }

    /// One stop signal named `signal` arrived: the first requests shutdown, the next makes it
    /// urgent. Returns the stage reached.
    pub(crate) fn escalate(&self, signal: &str) -> Stage {
        match self.stage() {
            Stage::Running => {
                tracing::info!("{signal} received: finishing the work in hand, then exiting");
                self.trigger();
            }
            Stage::Requested | Stage::Urgent => {
                tracing::warn!("second signal ({signal}): stopping now");
                self.trigger_urgently();
            }
        }
        self.stage()
    }

    /// The stage reached so far.
    pub(crate) fn stage(&self) -> Stage {
        *self.stage.borrow()
    }

    /// Moves to `stage` unless already there or further: a late graceful request must not
    /// take back an urgent one.
    fn raise_to(&self, stage: Stage) {
        self.stage.send_if_modified(|now| {
            let raised = *now < stage;
            if raised {
                *now = stage;
            }
            raised
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_request() {
        let (trigger, shutdown) = Shutdown::new();
        let other = shutdown.clone();
        assert!(!shutdown.is_requested());
        let waiter = tokio::spawn(async move { other.requested().await });
        trigger.trigger();
        waiter.await.unwrap();
        assert!(shutdown.is_requested());
        assert!(!shutdown.is_urgent());
        shutdown.requested().await;
    }

    #[tokio::test]
    async fn dropping_the_trigger_requests_shutdown_but_not_urgently() {
        let (trigger, shutdown) = Shutdown::new();
        drop(trigger);
        shutdown.requested().await;
        let urgent = tokio::time::timeout(Duration::from_millis(50), shutdown.urgent()).await;
        assert!(
            urgent.is_err(),
            "urgent() completed without an urgent request"
        );
    }

    #[tokio::test]
    async fn the_first_signal_requests_and_the_second_makes_it_urgent() {
        let (trigger, shutdown) = Shutdown::new();
        let waiting_for_urgent = shutdown.clone();
        let urgent = tokio::spawn(async move { waiting_for_urgent.urgent().await });

        assert_eq!(trigger.escalate("SIGTERM"), Stage::Requested);
        shutdown.requested().await;
        assert!(!shutdown.is_urgent());
        tokio::task::yield_now().await;
        assert!(
            !urgent.is_finished(),
            "one signal must leave time to finish"
        );

        assert_eq!(trigger.escalate("SIGINT"), Stage::Urgent);
        urgent.await.unwrap();
        assert!(shutdown.is_requested() && shutdown.is_urgent());

        assert_eq!(
            trigger.escalate("SIGTERM"),
            Stage::Urgent,
            "no stage after urgent"
        );
    }

    #[tokio::test]
    async fn a_graceful_request_after_an_urgent_one_changes_nothing() {
        let (trigger, shutdown) = Shutdown::new();
        trigger.trigger_urgently();
        trigger.trigger();
        assert!(shutdown.is_urgent());
        shutdown.requested().await;
        shutdown.urgent().await;
    }
}
