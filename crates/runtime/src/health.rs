use std::sync::{Arc, Mutex};

/// Whether the process can do its job right now, and if not, why. Cloned into every task
/// that learns something about it; read by `GET /readyz` (and `/healthz`), never by
/// `/livez`: a process that cannot reach Redis is unready, not dead.
#[derive(Clone, Debug, Default)]
pub struct Health {
    problem: Arc<Mutex<Option<String>>>,
}

impl Health {
    /// Healthy until told otherwise.
    pub fn new() -> Health {
        Health::default()
    }

    pub fn set_healthy(&self) {
        let mut problem = self.problem.lock().expect("health lock");
        if let Some(previous) = problem.take() {
            tracing::info!("healthy again (was: {previous})");
        }
    }

    /// Records why the process cannot work; logged once per change.
    pub fn set_unhealthy(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let mut problem = self.problem.lock().expect("health lock");
        if problem.as_deref() != Some(reason.as_str()) {
            tracing::warn!("unhealthy: {reason}");
            *problem = Some(reason);
        }
    }

    /// `None` when healthy, else the reason.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().expect("health lock").clone()
    }
}
