//! The apply port: what the loop scales.

use std::future::Future;

use crate::Result;

pub trait ScaleTarget: Send + Sync {
    /// What this target is, for messages (`local consumer processes`, `deployment/consumer`).
    fn describe(&self) -> String;

    /// The replica count asked for now (a Deployment's `spec.replicas`).
    fn replicas(&self) -> impl Future<Output = Result<u32>> + Send;

    /// The replicas running and able to work now (a Deployment's `status.readyReplicas`):
    /// throughput is divided by these, so replicas still starting or crash-looping do not
    /// lower the measured per-replica service rate. Defaults to [`replicas`](Self::replicas)
    /// for a target that cannot tell.
    fn ready_replicas(&self) -> impl Future<Output = Result<u32>> + Send {
        self.replicas()
    }

    /// Asks for `replicas`. Returns once the request is accepted, not once they run.
    fn scale(&self, replicas: u32) -> impl Future<Output = Result<()>> + Send;
}
