//! Local consumer processes as a [`ScaleTarget`]: the supervisor's desired count is the
//! replica count, like a Deployment's `spec.replicas`.

use ebb_autoscaler::{Error, Result, ScaleTarget};

use crate::supervisor::Supervisor;

pub struct LocalProcesses(pub Supervisor);

impl ScaleTarget for LocalProcesses {
    fn describe(&self) -> String {
        "local consumers".to_owned()
    }

    async fn replicas(&self) -> Result<u32> {
        Ok(self.0.counts().desired)
    }

    /// Processes running and not asked to stop (a crash-looping replica is not among them).
    async fn ready_replicas(&self) -> Result<u32> {
        Ok(self.0.counts().running)
    }

    async fn scale(&self, replicas: u32) -> Result<()> {
        self.0.scale(replicas).await.map_err(|error| Error::Apply {
            target: self.describe(),
            source: error.into(),
        })
    }
}
