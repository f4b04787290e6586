//! The "stop taking work" flag passed into every loop, mini-redis style: loops select on
//! [`Shutdown::requested`] instead of reading signals themselves, so tests can trigger it.

use tokio::sync::watch;

/// The receiving side: cheap to clone, one per task.
#[derive(Clone, Debug)]
pub struct Shutdown {
    requested: watch::Receiver<bool>,
}

/// The sending side: dropping it also counts as a request, so a forgotten trigger cannot leave
/// a process running forever.
#[derive(Debug)]
pub struct ShutdownTrigger {
    requested: watch::Sender<bool>,
}

impl Shutdown {
    /// A new flag and the trigger that raises it.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (sender, receiver) = watch::channel(false);
        (
            ShutdownTrigger { requested: sender },
            Shutdown {
                requested: receiver,
            },
        )
    }

    /// A flag raised by the first SIGTERM or SIGINT. Must be called inside a tokio runtime.
    pub fn on_signals() -> crate::Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).map_err(crate::Error::Signal)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(crate::Error::Signal)?;
        let (trigger, shutdown) = Shutdown::new();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            tracing::info!("{name} received: finishing the work in hand, then exiting");
            trigger.trigger();
        });
        Ok(shutdown)
    }

    /// True once shutdown has been requested.
    pub fn is_requested(&self) -> bool {
        *self.requested.borrow()
    }

    /// Completes when shutdown is requested (at once if it already was).
    pub async fn requested(&self) {
        let mut requested = self.requested.clone();
        // An error means the trigger is gone, which also means "stop".
        let _ = requested.wait_for(|requested| *requested).await;
    }
}

impl ShutdownTrigger {
    /// Raises the flag for every [`Shutdown`] clone.
    pub fn trigger(&self) {
        self.requested.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
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
        shutdown.requested().await;
    }

    #[tokio::test]
    async fn dropping_the_trigger_requests_shutdown() {
        let (trigger, shutdown) = Shutdown::new();
        drop(trigger);
        shutdown.requested().await;
    }
}
