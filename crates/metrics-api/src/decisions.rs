//! The authorization decisions kept by `authz.rs`, bounded so that no caller can push out
//! another's: each user (by name) keeps at most [`PER_USER_MAX`] entries, and past that its own
//! least recently used one goes; the whole cache keeps at most [`CACHE_MAX`], and when full it
//! first drops what can no longer be served, then the least recently used entry of the user
//! holding the most. A user flooding the cache with distinct requests thus only ever evicts
//! its own entries, never the HPA's.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::authn::User;
use crate::review::{ALLOWED_FOR, Attributes, DENIED_FOR, Decision, Outcome};

/// Entries in the whole cache, at most.
pub const CACHE_MAX: usize = 10_000;
/// Entries of one user, at most.
pub const PER_USER_MAX: usize = 1_000;

pub(crate) type Key = (User, Attributes);

/// What is known of one (user, attributes).
#[derive(Default)]
pub(crate) struct Slot {
    /// The latest decision, and when it was asked for.
    pub(crate) decided: Option<(Decision, Instant)>,
    /// The review under way: its outcome comes on this channel.
    pub(crate) pending: Option<watch::Receiver<Option<Outcome>>>,
    /// When the latest review failed, if it did.
    pub(crate) failed_at: Option<Instant>,
    /// When a request last read it: the order of eviction.
    used_at: Option<Instant>,
}

impl Slot {
    /// Whether it can go without loss: nothing servable and nothing under way.
    fn spent(&self, now: Instant) -> bool {
        self.pending.is_none()
            && self
                .decided
                .as_ref()
                .is_none_or(|(decision, at)| now - *at >= serve_for(decision))
    }
}

/// How long `decision` is served.
pub(crate) fn serve_for(decision: &Decision) -> Duration {
    match decision {
        Decision::Allowed => ALLOWED_FOR,
        Decision::Denied(_) => DENIED_FOR,
    }
}

/// The bounded map of slots, with each user's count.
pub(crate) struct Decisions {
    slots: HashMap<Key, Slot>,
    per_user: HashMap<String, usize>,
    max: usize,
    per_user_max: usize,
}

impl Default for Decisions {
    fn default() -> Decisions {
        Decisions::with_limits(CACHE_MAX, PER_USER_MAX)
    }
}

impl Decisions {
    pub(crate) fn with_limits(max: usize, per_user_max: usize) -> Decisions {
        Decisions {
            slots: HashMap::new(),
            per_user: HashMap::new(),
            max,
            per_user_max,
        }
    }

    /// The slot of `key`, made (room first) if missing, marked used now.
    pub(crate) fn used(&mut self, key: &Key, now: Instant) -> &mut Slot {
        if !self.slots.contains_key(key) {
            self.make_room(&key.0.name, now);
            *self.per_user.entry(key.0.name.clone()).or_default() += 1;
        }
        let slot = self.slots.entry(key.clone()).or_default();
        slot.used_at = Some(now);
        slot
    }

    /// The slot of `key` if it is still kept (a review finishing after its eviction).
    pub(crate) fn get_mut(&mut self, key: &Key) -> Option<&mut Slot> {
        self.slots.get_mut(key)
    }

    #[cfg(test)]
    pub(crate) fn len_of(&self, user: &str) -> usize {
        self.per_user.get(user).copied().unwrap_or(0)
    }

    fn make_room(&mut self, user: &str, now: Instant) {
        if self.per_user.get(user).copied().unwrap_or(0) >= self.per_user_max {
            self.evict_oldest_of(user, now);
            return;
        }
        if self.slots.len() < self.max {
            return;
        }
        let spent: Vec<Key> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.spent(now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in spent {
            self.remove(&key);
        }
        if self.slots.len() >= self.max {
            let largest = self
                .per_user
                .iter()
                .max_by_key(|(_, count)| **count)
                .map(|(name, _)| name.clone());
            if let Some(largest) = largest {
                self.evict_oldest_of(&largest, now);
            }
        }
    }

    /// Drops `user`'s least recently used slot, one with no review under way if there is one
    /// (a dropped pending review still answers its waiters; only its sharing is lost).
    fn evict_oldest_of(&mut self, user: &str, now: Instant) {
        let oldest = self
            .slots
            .iter()
            .filter(|(key, _)| key.0.name == user)
            .min_by_key(|(_, slot)| (slot.pending.is_some(), !slot.spent(now), slot.used_at))
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.remove(&key);
        }
    }

    fn remove(&mut self, key: &Key) {
        if self.slots.remove(key).is_some()
            && let Some(count) = self.per_user.get_mut(&key.0.name)
        {
            *count -= 1;
            if *count == 0 {
                self.per_user.remove(&key.0.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            groups: vec!["system:authenticated".into()],
            uid: None,
            extra: Default::default(),
        }
    }

    fn path(index: usize) -> Attributes {
        Attributes::NonResource {
            path: format!("/apis/{index}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn filling_it_with_one_users_entries_does_not_evict_another_users() {
        let mut decisions = Decisions::with_limits(10, 4);
        let now = Instant::now();
        let hpa = (user("hpa"), path(0));
        decisions.used(&hpa, now).decided = Some((Decision::Allowed, now));
        for index in 0..1_000 {
            let key = (user("mallory"), path(index));
            let at = now + Duration::from_millis(index as u64);
            decisions.used(&key, at).decided = Some((Decision::Allowed, now));
        }
        assert_eq!(decisions.len_of("mallory"), 4, "capped at its own share");
        assert!(
            decisions
                .get_mut(&hpa)
                .is_some_and(|slot| slot.decided.is_some()),
            "the HPA's decision was evicted"
        );
        // Mallory's newest entries are the ones kept.
        assert!(decisions.get_mut(&(user("mallory"), path(999))).is_some());
        assert!(decisions.get_mut(&(user("mallory"), path(0))).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn when_full_the_largest_users_oldest_entry_goes_first() {
        let mut decisions = Decisions::with_limits(6, 4);
        let now = Instant::now();
        for (name, count) in [("a", 4), ("b", 1), ("c", 1)] {
            for index in 0..count {
                let key = (user(name), path(index));
                let at = now + Duration::from_millis(index as u64);
                decisions.used(&key, at).decided = Some((Decision::Allowed, now));
            }
        }
        decisions.used(&(user("d"), path(0)), now + Duration::from_millis(10));
        assert_eq!(
            [
                decisions.len_of("a"),
                decisions.len_of("b"),
                decisions.len_of("c"),
                decisions.len_of("d")
            ],
            [3, 1, 1, 1]
        );
        assert!(
            decisions.get_mut(&(user("a"), path(0))).is_none(),
            "a's oldest went"
        );
    }
}
