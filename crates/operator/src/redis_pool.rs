//! One connection per Redis server for every scaler reading it: the scalers of a server share
//! a [`RedisReader`] (their reads of a tick go out as one pipeline, see `ebb_queue`'s
//! `batch.rs`) and a [`KeyspaceEvents`] (one keyspace subscription per server, per master on
//! a cluster, instead of one pub/sub connection per scaler).
//!
//! Servers are told apart by address, credentials and trusted CA: two QueueScalers naming the
//! same host with different passwords get two connections, each authenticated as its spec
//! says. An entry lives while a scaler uses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use ebb_queue::{KeyspaceEvents, RedisAddress, RedisReader};

/// What the scalers of one Redis server share.
pub struct Server {
    pub reader: RedisReader,
    pub keyspace: KeyspaceEvents,
}

pub struct RedisPool {
    /// Turn keyspace notifications on where they are off (`--enable-keyspace-events`).
    enable_keyspace_events: bool,
    servers: Mutex<HashMap<RedisAddress, Weak<Server>>>,
}

impl RedisPool {
    pub fn new(enable_keyspace_events: bool) -> RedisPool {
        RedisPool {
            enable_keyspace_events,
            servers: Mutex::default(),
        }
    }

    /// The shared connections to `address`, made on first use.
    pub fn server(&self, address: &RedisAddress) -> crate::Result<Arc<Server>> {
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = servers.get(address).and_then(Weak::upgrade) {
            return Ok(server);
        }
        servers.retain(|_, server| server.strong_count() > 0);
        let server = Arc::new(Server {
            reader: RedisReader::new(address)?,
            keyspace: KeyspaceEvents::new(address, self.enable_keyspace_events),
        });
        servers.insert(address.clone(), Arc::downgrade(&server));
        Ok(server)
    }

    /// Servers with a connection in use.
    #[cfg(test)]
    pub fn servers(&self) -> usize {
        let servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        servers
            .values()
            .filter(|server| server.strong_count() > 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_same_server_and_credentials_share_one_entry_while_it_is_used() {
        let pool = RedisPool::new(false);
        let plain: RedisAddress = "127.0.0.1:6379".parse().unwrap();
        let same: RedisAddress = "redis://127.0.0.1:6379".parse().unwrap();
        let other_password: RedisAddress = "redis://:x@127.0.0.1:6379".parse().unwrap();
        let a = pool.server(&plain).unwrap();
        let b = pool.server(&plain).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = pool.server(&other_password).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(pool.servers(), 2);
        drop((a, b, c));
        assert_eq!(pool.servers(), 0);
        // `host:port` and its redis:// URL are the same server.
        let d = pool.server(&plain).unwrap();
        let e = pool.server(&same).unwrap();
        assert!(Arc::ptr_eq(&d, &e));
    }
}
