//! Draining: asking consumers to finish what they hold and take nothing new, the hook a
//! scaler uses before it removes them (see `take.rs` for how a consumer honours it).
//!
//! The marker is `{<queue>}:draining:<consumer id>`, a string with a time to live: a scaler
//! that crashes mid-drain leaves consumers that go back to work once it expires, never
//! consumers idle for good. Setting and clearing are idempotent, so a scaler that restarts
//! and drains the same consumers again changes nothing.

use std::time::Duration;

use crate::{COMMAND_TIMEOUT, Queue, Result};

impl Queue {
    /// Marks `consumers` draining for `ttl` (at least a millisecond), in one transaction.
    pub async fn drain(&self, consumers: &[String], ttl: Duration) -> Result<()> {
        if consumers.is_empty() {
            return Ok(());
        }
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        for consumer in consumers {
            pipeline
                .cmd("SET")
                .arg(self.inner.keys.own.draining(consumer))
                .arg(1)
                .arg("PX")
                .arg(millis)
                .ignore();
        }
        let mut connection = self.connection.clone();
        self.answer(COMMAND_TIMEOUT, pipeline.query_async::<()>(&mut connection))
            .await
    }

    /// Lets `consumers` take work again.
    pub async fn undrain(&self, consumers: &[String]) -> Result<()> {
        if consumers.is_empty() {
            return Ok(());
        }
        let mut del = redis::cmd("DEL");
        for consumer in consumers {
            del.arg(self.inner.keys.own.draining(consumer));
        }
        let mut connection = self.connection.clone();
        self.answer(COMMAND_TIMEOUT, del.query_async::<()>(&mut connection))
            .await
    }
}
