//! Keyspace notifications: Redis telling a scaler that a key it reads changed, so the
//! scaler reads at once instead of at its next poll. Polling stays the safety net: a
//! notification is a hint to read now, never a value.
//!
//! Only where the server already sends them (`notify-keyspace-events` with `K` and list
//! events, `l` or `A`): turning them on is the operator's explicit opt-in
//! ([`RedisAddress::enable_keyspace_events`]), since `CONFIG SET` on a shared or managed
//! Redis is intrusive. Standalone servers only: on a cluster each node sends its own, and
//! scalers there keep polling.

use futures::StreamExt;

use crate::address::Target;
use crate::{COMMAND_TIMEOUT, Error, RedisAddress, Result};

/// A stream of "one of the keys changed" signals.
pub struct KeyChanges {
    messages: redis::aio::PubSubStream,
}

impl KeyChanges {
    /// Waits for the next change; `None` when the subscription ended (Redis went away): the
    /// caller polls meanwhile and may subscribe again.
    pub async fn changed(&mut self) -> Option<()> {
        self.messages.next().await.map(drop)
    }
}

/// Whether a `notify-keyspace-events` value makes Redis announce list changes on keyspace
/// channels.
fn announces_list_changes(flags: &str) -> bool {
    flags.contains('K') && (flags.contains('A') || flags.contains('l'))
}

impl RedisAddress {
    async fn notify_flags(&self, client: &redis::Client) -> Result<String> {
        let mut connection =
            tokio::time::timeout(COMMAND_TIMEOUT, client.get_multiplexed_async_connection())
                .await
                .map_err(|_| self.no_answer(COMMAND_TIMEOUT))?
                .map_err(|source| self.redis_error(source))?;
        let answer: Vec<String> = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("notify-keyspace-events")
                .query_async(&mut connection),
        )
        .await
        .map_err(|_| self.no_answer(COMMAND_TIMEOUT))?
        .map_err(|source| self.redis_error(source))?;
        Ok(answer.get(1).cloned().unwrap_or_default())
    }

    /// Subscribes to changes of `keys` when the server announces them; `Ok(None)` when it
    /// does not (or is a cluster, or refuses `CONFIG GET` as managed services may).
    pub async fn watch_keys(&self, keys: &[String]) -> Result<Option<KeyChanges>> {
        let Target::Server(url) = &self.target else {
            return Ok(None);
        };
        let client = self.server_client(url)?;
        match self.notify_flags(&client).await {
            Ok(flags) if announces_list_changes(&flags) => {}
            Ok(_) => return Ok(None),
            Err(Error::Redis { .. }) => return Ok(None),
            Err(other) => return Err(other),
        }
        let mut pubsub = tokio::time::timeout(COMMAND_TIMEOUT, client.get_async_pubsub())
            .await
            .map_err(|_| self.no_answer(COMMAND_TIMEOUT))?
            .map_err(|source| self.redis_error(source))?;
        for key in keys {
            pubsub
                .psubscribe(format!("__keyspace@*__:{key}"))
                .await
                .map_err(|source| self.redis_error(source))?;
        }
        Ok(Some(KeyChanges {
            messages: pubsub.into_on_message(),
        }))
    }

    /// Turns on keyspace notifications for list and generic events (`Klg`, added to what
    /// the server already sends). The explicit opt-in: it changes the server's configuration.
    pub async fn enable_keyspace_events(&self) -> Result<()> {
        let Target::Server(url) = &self.target else {
            return Ok(());
        };
        let client = self.server_client(url)?;
        let flags = self.notify_flags(&client).await?;
        if announces_list_changes(&flags) {
            return Ok(());
        }
        let mut wanted: String = flags;
        for flag in ['K', 'l', 'g'] {
            if !wanted.contains(flag) {
                wanted.push(flag);
            }
        }
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|source| self.redis_error(source))?;
        tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("notify-keyspace-events")
                .arg(&wanted)
                .query_async::<()>(&mut connection),
        )
        .await
        .map_err(|_| self.no_answer(COMMAND_TIMEOUT))?
        .map_err(|source| self.redis_error(source))
    }

    fn no_answer(&self, within: std::time::Duration) -> Error {
        Error::NoAnswer {
            address: self.to_string(),
            within,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::announces_list_changes;

    #[test]
    fn list_changes_need_keyspace_and_list_or_all_events() {
        assert!(announces_list_changes("Kl"));
        assert!(announces_list_changes("KA"));
        assert!(announces_list_changes("AKE"));
        assert!(!announces_list_changes(""));
        assert!(!announces_list_changes("El"));
        assert!(!announces_list_changes("Kg"));
    }
}
