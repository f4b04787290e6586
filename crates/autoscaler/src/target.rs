//! The apply port: what the loop scales.

use std::future::Future;

use ebb_scaling::Replica;

use crate::Result;

/// A workload's replicas as a scale-in sees them (see [`ScaleTarget::replicas_for_scale_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleInReplicas {
    /// Its replicas, one pod each: the loop chooses which go, and [`ScaleTarget::order`]
    /// makes them go first.
    Choosable(Vec<Replica>),
    /// The workload removes these, whoever is busy (a StatefulSet, its highest ordinals):
    /// they can be drained first, not chosen.
    Fixed { going: Vec<String>, why: String },
    /// Nothing to choose or drain; `why` says so to the user.
    Unordered { why: String },
}

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

    /// Its replicas, as a scale-in from `from` to `to` replicas may choose among them. Read
    /// only when a scale-in comes, never on an idle tick.
    fn replicas_for_scale_in(
        &self,
        from: u32,
        to: u32,
    ) -> impl Future<Output = Result<ScaleInReplicas>> + Send {
        let _ = (from, to);
        async {
            Ok(ScaleInReplicas::Unordered {
                why: "this target cannot tell its replicas apart".to_owned(),
            })
        }
    }

    /// Makes `chosen` the replicas that go first at the next lowering of the count, and no
    /// others (a mark left from an earlier scale-in on any other replica is removed). Returns
    /// once the target holds it, and how many writes that took (0 when it held it already).
    fn order(&self, chosen: &[String]) -> impl Future<Output = Result<u32>> + Send {
        let _ = chosen;
        async { Ok(0) }
    }

    /// Removes the marks of [`order`](Self::order) from `replicas` that stayed (a scale-in
    /// cancelled, or one that removed others); how many writes that took.
    fn unorder(&self, replicas: &[String]) -> impl Future<Output = Result<u32>> + Send {
        let _ = replicas;
        async { Ok(0) }
    }
}
