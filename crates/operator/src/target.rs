//! The apply port on Kubernetes: a workload's scale subresource.
//!
//! The workload is followed by a watch on that one object, so reading its replica count
//! costs the API server nothing per tick; only a change of the count is written
//! (`PATCH …/scale`). Any kind with a scale subresource works: the kind is resolved once
//! through discovery.

use std::sync::Mutex;

use ebb_autoscaler::ScaleTarget;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;

use crate::crd::ScaleTargetRef;

/// Why the workload cannot be read, besides an API error.
#[derive(Debug, thiserror::Error)]
enum TargetProblem {
    #[error("not found")]
    NotFound,
    #[error("its watch stopped")]
    WatchStopped,
}

pub struct KubeScaleTarget {
    api: Api<DynamicObject>,
    name: String,
    described: String,
    store: Store<DynamicObject>,
    watch: JoinHandle<()>,
    /// The count this operator wrote last, and the workload's resourceVersion just before
    /// that write: until the watch delivers a newer version, the write is the truth.
    written: Mutex<Option<(u32, Option<String>)>>,
}

impl KubeScaleTarget {
    /// Resolves the workload's kind and starts following it.
    pub async fn follow(
        client: Client,
        namespace: &str,
        target: &ScaleTargetRef,
    ) -> Result<Self, kube::Error> {
        let (group, version) = match target.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", target.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &target.kind);
        let (resource, _) = pinned_kind(&client, &gvk).await?;
        let api = Api::<DynamicObject>::namespaced_with(client, namespace, &resource);
        let writer = reflector::store::Writer::new(resource.clone());
        let store = writer.as_reader();
        let config = watcher::Config::default().fields(&format!("metadata.name={}", target.name));
        let stream = reflector::reflector(writer, watcher(api.clone(), config))
            .default_backoff()
            .touched_objects();
        let watch = tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                if let Err(error) = event {
                    tracing::debug!("watch of a scale target: {error}");
                }
            }
        });
        Ok(KubeScaleTarget {
            api,
            name: target.name.clone(),
            described: format!("{}/{}", target.kind.to_lowercase(), target.name),
            store,
            watch,
            written: Mutex::new(None),
        })
    }

    async fn current(&self) -> ebb_autoscaler::Result<std::sync::Arc<DynamicObject>> {
        let unavailable = |problem: TargetProblem| ebb_autoscaler::Error::Apply {
            target: self.described.clone(),
            source: Box::new(problem),
        };
        self.store
            .wait_until_ready()
            .await
            .map_err(|_| unavailable(TargetProblem::WatchStopped))?;
        self.store
            .state()
            .into_iter()
            .find(|object| object.name_any() == self.name)
            .ok_or_else(|| unavailable(TargetProblem::NotFound))
    }
}

impl Drop for KubeScaleTarget {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

fn count(object: &DynamicObject, pointer: &str) -> Option<u32> {
    object
        .data
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .and_then(|value| u32::try_from(value).ok())
}

impl ScaleTarget for KubeScaleTarget {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn replicas(&self) -> ebb_autoscaler::Result<u32> {
        let object = self.current().await?;
        if let Some((written, before)) = self.written.lock().expect("not poisoned").clone()
            && object.resource_version() == before
        {
            return Ok(written);
        }
        // Deployments, StatefulSets, ReplicaSets; a custom resource may keep the count
        // elsewhere, which its scale subresource knows.
        match count(&object, "/spec/replicas") {
            Some(replicas) => Ok(replicas),
            None => {
                let scale = self.api.get_scale(&self.name).await.map_err(|error| {
                    ebb_autoscaler::Error::Apply {
                        target: self.described.clone(),
                        source: Box::new(error),
                    }
                })?;
                Ok(scale
                    .spec
                    .and_then(|spec| spec.replicas)
                    .and_then(|replicas| u32::try_from(replicas).ok())
                    .unwrap_or(0))
            }
        }
    }

    async fn ready_replicas(&self) -> ebb_autoscaler::Result<u32> {
        let object = self.current().await?;
        Ok(count(&object, "/status/readyReplicas").unwrap_or(0))
    }

    async fn scale(&self, replicas: u32) -> ebb_autoscaler::Result<()> {
        let before = self.current().await?.resource_version();
        // Checked last thing before the request: a leader resumed after a freeze must not
        // send a scale its stopping controller had already decided.
        if !crate::leader::may_write() {
            return Err(ebb_autoscaler::Error::Apply {
                target: self.described.clone(),
                source: Box::new(crate::leader::NotLeading),
            });
        }
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        self.api
            .patch_scale(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|error| ebb_autoscaler::Error::Apply {
                target: self.described.clone(),
                source: Box::new(error),
            })?;
        *self.written.lock().expect("not poisoned") = Some((replicas, before));
        Ok(())
    }
}
