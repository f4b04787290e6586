//! The reaper's second pass: processing lists whose consumer is not registered.
//!
//! The registry (`<prefix>:consumers`) is how the reaper finds processing lists, and a consumer
//! leaves it only when reaped. An item can still land in the list of a consumer that is not
//! registered: its `BLMOVE` ran after a reaper dropped it (the process froze between its
//! heartbeat and its pop). If that process then dies, no registry names the list. So the
//! reaper also looks the lists up by name, with `SCAN MATCH <prefix>:processing:*` (on a
//! cluster, on the master of the queue's slot, where every key of the queue lives), and
//! returns the items of each list whose consumer is neither registered nor alive.
//!
//! A sweep reads the whole keyspace, page by page, so it runs at most every
//! [`ORPHAN_SWEEP_EVERY`] per queue, across every process (a `SET NX PX` key spaces them out).

use std::time::Duration;

use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};

use crate::batch::slot_of;
use crate::connection::Connection;
use crate::keys::{RETURN_ORPHANED, glob_escaped};
use crate::queue::COMMAND_TIMEOUT;
use crate::{Queue, Reaped, Result};

/// How often, at most, the processing lists of a queue are swept for orphans.
pub const ORPHAN_SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Keys asked per `SCAN` page.
const SCAN_PAGE: u64 = 1_000;

impl Queue {
    /// Returns the items of processing lists whose consumer is not registered and not alive
    /// to the head of the queue, now, whatever the spacing of sweeps. [`Queue::reap`] does
    /// it at most every [`ORPHAN_SWEEP_EVERY`].
    pub async fn reap_orphans(&self) -> Result<Reaped> {
        let mut reaped = Reaped::default();
        let orphaned = redis::Script::new(RETURN_ORPHANED);
        for layout in self.layouts_read() {
            let prefix = format!("{}:processing:", layout.prefix);
            let pattern = format!("{}*", glob_escaped(&prefix));
            let mut cursor = 0_u64;
            loop {
                let (next, keys) = self.scan_page(cursor, &pattern).await?;
                for key in keys {
                    let Some(consumer) = key.strip_prefix(&prefix) else {
                        continue;
                    };
                    let mut invocation = orphaned.key(&self.inner.keys.queue);
                    invocation
                        .key(&layout.consumers)
                        .key(&key)
                        .key(layout.heartbeat(consumer))
                        .arg(consumer);
                    let mut connection = self.connection.clone();
                    let returned = self
                        .answer(
                            COMMAND_TIMEOUT,
                            invocation.invoke_async::<u64>(&mut connection),
                        )
                        .await?;
                    if returned > 0 {
                        tracing::warn!(
                            "{returned} item(s) of unregistered consumer {consumer} back at the head of the queue"
                        );
                        reaped.consumers += 1;
                        reaped.items += returned;
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(reaped)
    }

    /// True when this process should sweep now: no process swept within
    /// [`ORPHAN_SWEEP_EVERY`].
    pub(crate) async fn orphan_sweep_due(&self) -> Result<bool> {
        let mut connection = self.connection.clone();
        let mut claim = redis::cmd("SET");
        claim
            .arg(format!("{}:orphan-sweep", self.inner.keys.own.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ORPHAN_SWEEP_EVERY.as_millis() as u64);
        self.answer(
            COMMAND_TIMEOUT,
            claim.query_async::<Option<String>>(&mut connection),
        )
        .await
        .map(|claimed| claimed.is_some())
    }

    /// One `SCAN` page of list keys matching `pattern`, on the node of the queue's slot.
    async fn scan_page(&self, cursor: u64, pattern: &str) -> Result<(u64, Vec<String>)> {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_PAGE)
            .arg("TYPE")
            .arg("list");
        match &self.connection {
            Connection::Server(connection) => {
                let mut connection = connection.clone();
                self.answer(COMMAND_TIMEOUT, scan.query_async(&mut connection))
                    .await
            }
            Connection::Cluster(lazy) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::new(slot_of(&self.inner.keys.queue), SlotAddr::Master),
                ));
                let page = async {
                    let mut connection = lazy.get().await?;
                    let value = connection.route_command(scan, route).await?;
                    redis::from_redis_value::<(u64, Vec<String>)>(value).map_err(Into::into)
                };
                self.answer(COMMAND_TIMEOUT, page).await
            }
        }
    }
}
