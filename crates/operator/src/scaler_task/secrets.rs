//! Secret resolution: the Redis address a QueueScaler's source names, with its URL,
//! password and CA read from Secrets of the QueueScaler's own namespace, and the watch that
//! ends the task's life when one of those Secrets changes.

use ebb_queue::RedisAddress;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use super::Task;
use crate::crd::{RedisServer, SecretKeyRef};
use crate::{Error, Result};

impl Task {
    /// The Redis address: from the spec or a Secret, with a password and CA from Secrets.
    /// Secrets are read from the QueueScaler's own namespace only, and their contents never
    /// reach a log, an Event or the status: errors name the Secret and key, not the value.
    /// `field` is where `redis` is in the spec (`spec.source.ebbQueue.redis`).
    ///
    /// A credential goes only where the installer allows (`--allowed-addresses`, see
    /// `allowed.rs`): a password from `passwordFrom`, or one written into a literal `address`,
    /// makes the address subject to the list; `urlFrom` alone does not. The check runs before
    /// the password's Secret is even read, and nothing connects when it fails.
    pub(super) async fn address(&self, redis: &RedisServer, field: &str) -> Result<RedisAddress> {
        let given = match (&redis.address, &redis.url_from) {
            (Some(address), _) => address.clone(),
            (None, Some(reference)) => self.secret_text(reference).await?,
            (None, None) => {
                return Err(Error::InvalidField {
                    field: "spec.source.*.redis",
                    reason: "set address or urlFrom".into(),
                });
            }
        };
        // The address is checked as given, before any password joins it: an error quotes
        // the address (redacted, should the author have written credentials into it), never
        // a Secret's value.
        let address: RedisAddress = given.parse().map_err(|error| match redis.url_from {
            // The URL may carry a password: say where it came from, not what it was.
            Some(ref reference) => Error::InvalidField {
                field: "spec.source.*.redis.urlFrom",
                reason: format!(
                    "Secret {}/{} key {} does not hold a Redis URL (host:port, redis://, rediss://, redis+cluster://)",
                    self.namespace, reference.name, reference.key
                ),
            },
            None => Error::from(error),
        })?;
        let address_field = match redis.address {
            Some(_) => format!("{field}.address"),
            None => format!("{field}.urlFrom"),
        };
        let allowed = &self.context.allowed;
        if redis.password_from.is_some() {
            allowed.check(
                &address_field,
                &format!("{field}.passwordFrom"),
                &address.host_ports(),
            )?;
        } else if redis.address.is_some() && address.carries_credentials() {
            allowed.check(
                &address_field,
                &format!("{field}.address (its user:password)"),
                &address.host_ports(),
            )?;
        }
        let address = match &redis.password_from {
            Some(reference) => {
                let password = self.secret_text(reference).await?;
                address
                    .with_password(&password)
                    .map_err(|error| Error::InvalidField {
                        field: "spec.source.*.redis.passwordFrom",
                        reason: error.to_string(),
                    })?
            }
            None => address,
        };
        match &redis.ca_from {
            None => Ok(address),
            Some(reference) => {
                let pem = self.secret_bytes(reference).await?;
                let origin = format!(
                    "Secret {}/{} key {}",
                    self.namespace, reference.name, reference.key
                );
                Ok(address.trusting_pem(pem, &origin)?)
            }
        }
    }

    async fn secret_bytes(&self, reference: &SecretKeyRef) -> Result<Vec<u8>> {
        let secrets: Api<Secret> = Api::namespaced(self.context.client.clone(), &self.namespace);
        let secret = secrets
            .get(&reference.name)
            .await
            .map_err(|source| Error::Secret {
                namespace: self.namespace.clone(),
                name: reference.name.clone(),
                source,
            })?;
        secret
            .data
            .and_then(|mut data| data.remove(&reference.key))
            .map(|bytes| bytes.0)
            .ok_or_else(|| Error::SecretKeyMissing {
                namespace: self.namespace.clone(),
                name: reference.name.clone(),
                key: reference.key.clone(),
            })
    }

    async fn secret_text(&self, reference: &SecretKeyRef) -> Result<String> {
        let bytes = self.secret_bytes(reference).await?;
        String::from_utf8(bytes)
            .map(|text| text.trim().to_owned())
            .map_err(|_| Error::InvalidField {
                field: "spec.source.*.redis",
                reason: format!(
                    "Secret {}/{} key {} is not UTF-8 text",
                    self.namespace, reference.name, reference.key
                ),
            })
    }

    /// Completes when one of `secrets` changes after the first look (a watch per Secret
    /// name; no polling).
    pub(super) async fn secrets_change(&self, secrets: Vec<SecretKeyRef>) {
        if secrets.is_empty() {
            return std::future::pending().await;
        }
        let api: Api<Secret> = Api::namespaced(self.context.client.clone(), &self.namespace);
        let names: std::collections::BTreeSet<String> = secrets
            .into_iter()
            .map(|reference| reference.name)
            .collect();
        let watches = names.into_iter().map(|name| {
            watcher(
                api.clone(),
                watcher::Config::default().fields(&format!("metadata.name={name}")),
            )
            .default_backoff()
            .boxed()
        });
        let mut all = futures::stream::select_all(watches);
        // The initial listing (Init…InitDone) is what was just read; a later Apply or Delete
        // is a change.
        while let Some(event) = all.next().await {
            if let Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) = event {
                return;
            }
        }
        std::future::pending().await
    }
}
