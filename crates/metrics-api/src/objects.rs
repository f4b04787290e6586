//! The objects `*` with a `labelSelector` answers for: listed from the API server (metadata
//! only, the selector passed along so the API server filters), each request bounded by
//! [`LIST_TIMEOUT`]. The server's account needs `list` on the resource (RBAC), in the
//! namespace asked for (cluster-wide for a cluster-scoped resource); a refusal names it.
//!
//! The client is made at the first such request, from `--kubeconfig` (else inferred), so a
//! configuration that never answers `*` needs no list permission and no API server at start.
//! The plural resource (`services`, `deployments.apps`) is resolved by discovery once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use tokio::sync::OnceCell;

use crate::{Error, Result};

/// The longest a request waits on the API server for a list (discovery included).
pub const LIST_TIMEOUT: Duration = Duration::from_secs(3);

pub struct ObjectLister {
    kubeconfig: Option<PathBuf>,
    client: OnceCell<kube::Client>,
    resources: Mutex<HashMap<String, ApiResource>>,
}

impl ObjectLister {
    pub fn new(kubeconfig: Option<PathBuf>) -> ObjectLister {
        ObjectLister {
            kubeconfig,
            client: OnceCell::new(),
            resources: Mutex::new(HashMap::new()),
        }
    }

    /// The names of the objects of `resource` (plural, `<plural>.<group>` outside core) in
    /// `namespace` (`None`: cluster-scoped) that `selector` matches, as the API server lists them.
    pub async fn names(
        &self,
        resource: &str,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<String>> {
        let timed_out = || Error::ListTimeout {
            resource: resource.to_owned(),
            timeout: LIST_TIMEOUT,
        };
        tokio::time::timeout(LIST_TIMEOUT, self.list(resource, namespace, selector))
            .await
            .map_err(|_| timed_out())?
    }

    async fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<String>> {
        let client = self
            .client
            .get_or_try_init(|| crate::kube_client(self.kubeconfig.as_deref(), "--kubeconfig"))
            .await?
            .clone();
        let api_resource = self.resolve(&client, resource).await?;
        let api: Api<DynamicObject> = match namespace {
            Some(namespace) => Api::namespaced_with(client, namespace, &api_resource),
            None => Api::all_with(client, &api_resource),
        };
        let list = api
            .list_metadata(&ListParams::default().labels(selector))
            .await
            .map_err(|source| Error::ListObjects {
                resource: resource.to_owned(),
                namespace: namespace.map(str::to_owned),
                source: Box::new(source),
            })?;
        let mut names: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|object| object.metadata.name)
            .collect();
        names.sort();
        Ok(names)
    }

    async fn resolve(&self, client: &kube::Client, resource: &str) -> Result<ApiResource> {
        if let Some(known) = self.resources.lock().expect("lister lock").get(resource) {
            return Ok(known.clone());
        }
        let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
        let unknown = || Error::UnknownResource {
            resource: resource.to_owned(),
            group: group.to_owned(),
            plural: plural.to_owned(),
        };
        let discovered = match kube::discovery::group(client, group).await {
            Ok(discovered) => discovered,
            Err(kube::Error::Discovery(_)) => return Err(unknown()),
            Err(source) => {
                return Err(Error::Discovery {
                    resource: resource.to_owned(),
                    source: Box::new(source),
                });
            }
        };
        let (found, _) = discovered
            .recommended_resources()
            .into_iter()
            .find(|(found, _)| found.plural == plural)
            .ok_or_else(unknown)?;
        self.resources
            .lock()
            .expect("lister lock")
            .insert(resource.to_owned(), found.clone());
        Ok(found)
    }
}
