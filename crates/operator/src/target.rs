//! The apply port on Kubernetes: a workload's scale subresource.
//!
//! Workloads are followed by watches, so reading a replica count costs the API server
//! nothing per tick; only a change of the count is written (`PATCH …/scale`). Any kind with a
//! scale subresource works: each kind is resolved once through discovery.
//!
//! One watch per kind and namespace ([`TargetWatches`]), shared by every scaler whose
//! workload is of that kind there: a thousand QueueScalers on a thousand Deployments of a
//! namespace cost one watch connection, not a thousand, and one discovery call per kind.
//! A watch lives while a scaler uses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use ebb_autoscaler::{ScaleInReplicas, ScaleTarget};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::pinned_kind;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;

use crate::crd::ScaleTargetRef;
use crate::pods::{KindRule, WorkloadPods, highest_ordinals, unordered};
use crate::writer::Writer;

/// Why the workload cannot be read, besides an API error or its absence
/// ([`ebb_autoscaler::Error::TargetMissing`], which the loop retries within seconds).
#[derive(Debug, thiserror::Error)]
enum TargetProblem {
    #[error("its watch stopped")]
    WatchStopped,
}

/// The watches of scale targets, one per kind and namespace, and the kinds resolved so far.
pub struct TargetWatches {
    client: Client,
    kinds: tokio::sync::Mutex<HashMap<GroupVersionKind, ApiResource>>,
    watches: Mutex<HashMap<(GroupVersionKind, String), Weak<KindWatch>>>,
}

/// Every object of one kind in one namespace, as watched.
struct KindWatch {
    api: Api<DynamicObject>,
    resource: ApiResource,
    namespace: String,
    store: Store<DynamicObject>,
    task: JoinHandle<()>,
}

impl Drop for KindWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TargetWatches {
    pub fn new(client: Client) -> TargetWatches {
        TargetWatches {
            client,
            kinds: tokio::sync::Mutex::default(),
            watches: Mutex::default(),
        }
    }

    /// The resource of `gvk`, from discovery the first time.
    async fn resource(&self, gvk: &GroupVersionKind) -> Result<ApiResource, kube::Error> {
        let mut kinds = self.kinds.lock().await;
        if let Some(resource) = kinds.get(gvk) {
            return Ok(resource.clone());
        }
        let (resource, _) = pinned_kind(&self.client, gvk).await?;
        kinds.insert(gvk.clone(), resource.clone());
        Ok(resource)
    }

    /// The watch of `gvk` objects in `namespace`, started on first use.
    async fn watch(
        &self,
        gvk: &GroupVersionKind,
        namespace: &str,
    ) -> Result<Arc<KindWatch>, kube::Error> {
        let key = (gvk.clone(), namespace.to_owned());
        if let Some(watch) = self.lock().get(&key).and_then(Weak::upgrade) {
            return Ok(watch);
        }
        let resource = self.resource(gvk).await?;
        let mut watches = self.lock();
        if let Some(watch) = watches.get(&key).and_then(Weak::upgrade) {
            return Ok(watch);
        }
        watches.retain(|_, watch| watch.strong_count() > 0);
        let api = Api::<DynamicObject>::namespaced_with(self.client.clone(), namespace, &resource);
        let writer = reflector::store::Writer::new(resource.clone());
        let store = writer.as_reader();
        let objects = watcher(api.clone(), watcher::Config::default())
            .modify(crate::stores::without_managed_fields);
        let stream = reflector::reflector(writer, objects)
            .default_backoff()
            .touched_objects();
        let task = tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                if let Err(error) = event {
                    tracing::debug!("watch of scale targets: {error}");
                }
            }
        });
        let watch = Arc::new(KindWatch {
            api,
            resource,
            namespace: namespace.to_owned(),
            store,
            task,
        });
        watches.insert(key, Arc::downgrade(&watch));
        Ok(watch)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(GroupVersionKind, String), Weak<KindWatch>>> {
        self.watches.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct KubeScaleTarget {
    watch: Arc<KindWatch>,
    writer: Arc<Writer>,
    name: String,
    described: String,
    /// The count this operator wrote last, and the workload's resourceVersion just before
    /// that write: until the watch delivers a newer version, the write is the truth.
    written: Mutex<Option<(u32, Option<String>)>>,
    /// How its kind takes a scale-in, and its pods, read only when one comes.
    rule: KindRule,
    kind: String,
    pods: WorkloadPods,
}

/// The group, version and kind `target` names: `apiVersion` `v1` is the core group's.
pub fn kind_of(target: &ScaleTargetRef) -> GroupVersionKind {
    let (group, version) = match target.api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", target.api_version.as_str()),
    };
    GroupVersionKind::gvk(group, version, &target.kind)
}

impl KubeScaleTarget {
    /// Resolves the workload's kind and follows it through its kind's shared watch.
    pub async fn follow(
        watches: &TargetWatches,
        writer: Arc<Writer>,
        namespace: &str,
        target: &ScaleTargetRef,
    ) -> Result<Self, kube::Error> {
        let gvk = kind_of(target);
        Ok(KubeScaleTarget {
            watch: watches.watch(&gvk, namespace).await?,
            writer,
            name: target.name.clone(),
            described: format!("{}/{}", target.kind.to_lowercase(), target.name),
            written: Mutex::new(None),
            rule: KindRule::of(&gvk),
            kind: target.kind.clone(),
            pods: WorkloadPods::new(Api::namespaced(watches.client.clone(), namespace)),
        })
    }

    /// Its kind's rule for a scale-in, for the ScaleInOrder condition.
    pub fn scale_in_rule(&self) -> KindRule {
        self.rule
    }

    fn failed(&self, error: crate::Error) -> ebb_autoscaler::Error {
        ebb_autoscaler::Error::Apply {
            target: self.described.clone(),
            source: Box::new(error),
        }
    }

    async fn current(&self) -> ebb_autoscaler::Result<std::sync::Arc<DynamicObject>> {
        let unavailable = |problem: TargetProblem| ebb_autoscaler::Error::Apply {
            target: self.described.clone(),
            source: Box::new(problem),
        };
        let store = &self.watch.store;
        store
            .wait_until_ready()
            .await
            .map_err(|_| unavailable(TargetProblem::WatchStopped))?;
        let object = ObjectRef::new_with(&self.name, self.watch.resource.clone())
            .within(&self.watch.namespace);
        store
            .get(&object)
            .ok_or_else(|| ebb_autoscaler::Error::TargetMissing {
                target: self.described.clone(),
            })
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
                let scale = self
                    .watch
                    .api
                    .get_scale(&self.name)
                    .await
                    .map_err(|error| ebb_autoscaler::Error::Apply {
                        target: self.described.clone(),
                        source: Box::new(error),
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
        self.writer
            .scale(&self.watch.api, &self.name, replicas)
            .await
            .map_err(|error| ebb_autoscaler::Error::Apply {
                target: self.described.clone(),
                source: Box::new(error),
            })?;
        *self.written.lock().expect("not poisoned") = Some((replicas, before));
        Ok(())
    }

    async fn replicas_for_scale_in(
        &self,
        from: u32,
        to: u32,
    ) -> ebb_autoscaler::Result<ScaleInReplicas> {
        match self.rule {
            KindRule::Own => Ok(unordered(self.rule, &self.kind)),
            KindRule::HighestOrdinals => Ok(ScaleInReplicas::Fixed {
                going: highest_ordinals(&self.name, from, to),
                why: self.rule.condition(&self.kind).2,
            }),
            KindRule::Costs => {
                let object = self.current().await?;
                let replicas = self
                    .pods
                    .replicas(&object)
                    .await
                    .map_err(|error| self.failed(error))?;
                Ok(ScaleInReplicas::Choosable(replicas))
            }
        }
    }

    async fn order(&self, chosen: &[String]) -> ebb_autoscaler::Result<u32> {
        self.pods
            .order(&self.writer, chosen)
            .await
            .map_err(|error| self.failed(error))
    }

    async fn unorder(&self, replicas: &[String]) -> ebb_autoscaler::Result<u32> {
        if self.rule != KindRule::Costs {
            return Ok(0);
        }
        self.pods
            .unorder(&self.writer, replicas)
            .await
            .map_err(|error| self.failed(error))
    }
}
