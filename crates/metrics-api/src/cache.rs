//! The values requests are answered from, one entry per [`Probe`], filled by the poller.
//!
//! Bounded by design: entries come from the configuration (pinned: exact keys, read from the
//! start) or from requests for keys a pattern allows (learned: at most `learnedKeys.max`,
//! dropped after `learnedKeys.expireAfter` without a request). A request never waits on a
//! source, except a probe's very first one, which waits at most `firstReadWait` for its first
//! read. A value older than `maxAge` is refused, never served.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, watch};

use crate::metrics::{ServerMetrics, SourceLabels};
use ebb_sources::{Measured, MetricSource, Redis, Source};

use crate::probe::Probe;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_age: Duration,
    pub first_read_wait: Duration,
    pub learned_max: usize,
    pub learned_expire_after: Duration,
}

/// A successful read.
#[derive(Debug, Clone)]
pub struct Sample {
    pub reading: Measured,
    /// When it was read, for the reply's `timestamp`.
    pub read_at: SystemTime,
    at: Instant,
}

/// What the latest reads of a probe gave.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Reads made, successful or not.
    pub reads: u64,
    pub last_good: Option<Sample>,
    /// The latest read's error; `None` when it succeeded.
    pub last_error: Option<Arc<ebb_sources::Error>>,
    /// The latest read was a PromQL query that matched nothing, with `emptyResult: notFound`
    /// (the catalogue's `EmptyResult::Error`).
    pub empty: bool,
}

pub struct Entry {
    pub source: Source,
    pub state: watch::Sender<State>,
    pinned: bool,
    last_asked: Mutex<Instant>,
    /// A read is under way: the poller starts no second one (a slow source is read at its
    /// own pace and holds up no other).
    reading: AtomicBool,
}

/// What a request gets.
#[derive(Debug)]
pub enum Lookup {
    Value(Sample),
    /// 404: the query matched nothing and the metric says that means "not found".
    NotFound,
    /// 503, with the reason.
    Unavailable(String),
}

pub struct Cache {
    entries: Mutex<HashMap<Probe, Arc<Entry>>>,
    readers: Redis,
    limits: Limits,
    /// Wakes the poller for a new probe's first read.
    pub(crate) new_probe: Notify,
    pub(crate) metrics: ServerMetrics,
}

impl Cache {
    pub fn new(readers: Redis, limits: Limits, metrics: ServerMetrics) -> Cache {
        Cache {
            entries: Mutex::new(HashMap::new()),
            readers,
            limits,
            new_probe: Notify::new(),
            metrics,
        }
    }

    /// Adds a probe the configuration names: read from the start, never dropped.
    pub fn pin(&self, probe: Probe) -> crate::Result<()> {
        let source = probe.build(Some(&self.readers))?;
        let mut entries = self.entries.lock().expect("cache lock");
        entries.entry(probe).or_insert_with(|| {
            Arc::new(Entry {
                source,
                state: watch::Sender::new(State::default()),
                pinned: true,
                last_asked: Mutex::new(Instant::now()),
                reading: AtomicBool::new(false),
            })
        });
        self.metrics.cache_entries.set(entries.len() as i64);
        Ok(())
    }

    /// The value of `probe`, learning it when it is new (the caller checked that the
    /// configuration allows it).
    pub async fn lookup(&self, probe: &Probe) -> Lookup {
        let entry = match self.entry(probe) {
            Ok(entry) => entry,
            Err(reason) => return Lookup::Unavailable(reason),
        };
        *entry.last_asked.lock().expect("entry lock") = Instant::now();
        let mut state = entry.state.subscribe();
        if state.borrow().reads == 0 {
            self.new_probe.notify_one();
            // Bounded: past it the answer is a 503 and the read goes on.
            let _ = tokio::time::timeout(
                self.limits.first_read_wait,
                state.wait_for(|state| state.reads > 0),
            )
            .await;
        }
        let state = state.borrow().clone();
        self.judge(&state, &entry)
    }

    fn entry(&self, probe: &Probe) -> Result<Arc<Entry>, String> {
        let mut entries = self.entries.lock().expect("cache lock");
        if let Some(entry) = entries.get(probe) {
            return Ok(entry.clone());
        }
        let learned = entries.values().filter(|entry| !entry.pinned).count();
        if learned >= self.limits.learned_max {
            return Err(format!(
                "{learned} keys learned from requests are being polled already, the configured maximum (learnedKeys.max); this one will be read once some expire"
            ));
        }
        let source = probe
            .build(Some(&self.readers))
            .map_err(|error| error.to_string())?;
        let entry = Arc::new(Entry {
            source,
            state: watch::Sender::new(State::default()),
            pinned: false,
            last_asked: Mutex::new(Instant::now()),
            reading: AtomicBool::new(false),
        });
        entries.insert(probe.clone(), entry.clone());
        self.metrics.cache_entries.set(entries.len() as i64);
        Ok(entry)
    }

    fn judge(&self, state: &State, entry: &Entry) -> Lookup {
        if state.empty {
            return Lookup::NotFound;
        }
        let fresh = state
            .last_good
            .clone()
            .filter(|sample| sample.at.elapsed() <= self.limits.max_age);
        if let Some(sample) = fresh {
            return Lookup::Value(sample);
        }
        if let Some(error) = &state.last_error {
            return Lookup::Unavailable(error.to_string());
        }
        let what = entry.source.describe();
        let pending = if entry.reading.load(Ordering::Acquire) {
            ", and the read under way has not answered yet"
        } else {
            ""
        };
        Lookup::Unavailable(match &state.last_good {
            None => format!(
                "{what}: not read yet (waited {}{pending})",
                ebb_runtime::format_duration(self.limits.first_read_wait)
            ),
            Some(sample) => format!(
                "{what}: the last value is {} old, above maxAge ({}){pending}",
                ebb_runtime::format_duration(Duration::from_millis(
                    sample.at.elapsed().as_millis() as u64
                )),
                ebb_runtime::format_duration(self.limits.max_age)
            ),
        })
    }

    /// Every entry to read now, after dropping learned ones nobody asked for lately, and
    /// marked as being read (those already being read are left out); with `only_new`, only
    /// those never read. [`record`](Self::record) ends each read.
    pub(crate) fn due(&self, only_new: bool) -> Vec<(Probe, Arc<Entry>)> {
        let mut entries = self.entries.lock().expect("cache lock");
        let expire_after = self.limits.learned_expire_after;
        entries.retain(|_, entry| {
            entry.pinned || entry.last_asked.lock().expect("entry lock").elapsed() < expire_after
        });
        self.metrics.cache_entries.set(entries.len() as i64);
        entries
            .iter()
            .filter(|(_, entry)| !only_new || entry.state.borrow().reads == 0)
            .filter(|(_, entry)| !entry.reading.swap(true, Ordering::AcqRel))
            .map(|(probe, entry)| (probe.clone(), entry.clone()))
            .collect()
    }

    /// Records one read of `probe`.
    pub(crate) fn record(
        &self,
        probe: &Probe,
        entry: &Entry,
        result: ebb_sources::Result<Measured>,
    ) {
        let read_at = SystemTime::now();
        entry.reading.store(false, Ordering::Release);
        entry.state.send_modify(|state| {
            state.reads += 1;
            match result {
                Ok(reading) => {
                    state.last_good = Some(Sample {
                        reading,
                        read_at,
                        at: Instant::now(),
                    });
                    state.last_error = None;
                    state.empty = false;
                }
                Err(ebb_sources::Error::PrometheusEmpty { .. }) => {
                    state.empty = true;
                    state.last_error = None;
                }
                Err(error) => {
                    let first = state.last_error.is_none();
                    self.metrics
                        .source_errors
                        .get_or_create(&SourceLabels {
                            source: probe.kind(),
                        })
                        .inc();
                    if first {
                        tracing::warn!("{error}");
                    }
                    state.empty = false;
                    state.last_error = Some(Arc::new(error));
                }
            }
        });
    }

    /// Round trips the Redis reader has made so far.
    pub(crate) fn redis_round_trips(&self) -> u64 {
        self.readers.reader.round_trips()
    }

    /// Age of the oldest value held, for the metrics.
    pub(crate) fn oldest_age(&self) -> Duration {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .values()
            .filter_map(|entry| {
                entry
                    .state
                    .borrow()
                    .last_good
                    .as_ref()
                    .map(|sample| sample.at.elapsed())
            })
            .max()
            .unwrap_or_default()
    }
}
