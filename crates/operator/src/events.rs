//! Events about QueueScalers (`events.k8s.io/v1`), made by one recorder for the process, that
//! the [`Writer`](crate::Writer) owns and gates.
//!
//! The same Event again (same object, reason and note, within six minutes) becomes a count
//! on the first one (its `series`), as client-go's and kube's recorders do. Unlike kube's
//! `Recorder`, the note is part of what makes two Events the same: kube's keys a series on
//! the reason alone, so one recorder for the process turned "scale 0 → 10" and a later
//! "scale 10 → 0" into one Event saying only the first. Every scale is an Event of its own.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::crd::QueueScaler;

/// How long a recorded Event still takes repeats as counts (client-go's and kube's figure).
const SERIES_FOR: SignedDuration = SignedDuration::from_mins(6);

/// What makes two Events the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    name: String,
    uid: Option<String>,
    reason: String,
    note: String,
}

/// An Event already recorded: its object's name, how often it happened, and when last.
#[derive(Debug, Clone)]
struct Recorded {
    object: String,
    count: i32,
    last: Timestamp,
}

/// Records Normal Events (action `Scale`) about QueueScalers, as `controller` (`instance`).
pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    recorded: Mutex<HashMap<Key, Recorded>>,
}

impl EventRecorder {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> EventRecorder {
        EventRecorder {
            client,
            controller: controller.to_owned(),
            instance: instance.unwrap_or_else(|| controller.to_owned()),
            recorded: Mutex::default(),
        }
    }

    /// Records the Event `reason` (`note`) about `scaler`: a new Event, or one more count on
    /// the same one recorded within [`SERIES_FOR`].
    pub async fn publish(
        &self,
        scaler: &QueueScaler,
        reason: &str,
        note: String,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let namespace = scaler.namespace().unwrap_or_default();
        let key = Key {
            namespace: namespace.clone(),
            name: scaler.name_any(),
            uid: scaler.uid(),
            reason: reason.to_owned(),
            note: note.clone(),
        };
        let seen = {
            let mut recorded = self.lock();
            recorded.retain(|_, event| event.last + SERIES_FOR > now);
            recorded.get(&key).cloned()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let recorded = match seen {
            Some(seen) => {
                let count = seen.count + 1;
                let series = json!({
                    "series": EventSeries { count, last_observed_time: MicroTime(now) },
                });
                events
                    .patch(
                        &seen.object,
                        &PatchParams::default(),
                        &Patch::Merge(&series),
                    )
                    .await?;
                Recorded {
                    count,
                    last: now,
                    ..seen
                }
            }
            None => {
                let object = format!("{}.{:x}", key.name, now.as_nanosecond());
                let event = Event {
                    metadata: ObjectMeta {
                        name: Some(object.clone()),
                        namespace: Some(namespace),
                        ..ObjectMeta::default()
                    },
                    action: Some("Scale".into()),
                    reason: Some(reason.to_owned()),
                    note: Some(note),
                    type_: Some("Normal".into()),
                    event_time: Some(MicroTime(now)),
                    regarding: Some(scaler.object_ref(&())),
                    reporting_controller: Some(self.controller.clone()),
                    reporting_instance: Some(self.instance.clone()),
                    ..Event::default()
                };
                events.create(&PostParams::default(), &event).await?;
                Recorded {
                    object,
                    count: 1,
                    last: now,
                }
            }
        };
        self.lock().insert(key, recorded);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Recorded>> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
