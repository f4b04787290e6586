//! The simulated world: a FIFO queue, consumers that start after a delay and take one item
//! at a time, a clock advancing in fixed steps, and a policy setting the replica count.
//!
//! ```text
//!  workload ──arrive──▶ queue ──take──▶ consumers (starting → idle ⇄ busy) ──▶ done
//!                          │ waiting, in flight, counters          ▲
//!                          ▼                                       │ replicas
//!                        policy.observe(now) ──────────────────────┘
//! ```
//!
//! Scaling down removes starting consumers first, then idle ones; a busy consumer finishes
//! its item before it leaves, as a consumer does on SIGTERM.

use std::collections::{BTreeMap, VecDeque};

use ebb_scaling::Instant;

use crate::policy::{Observation, Policy};
use crate::workload::{Arrival, Workload};

/// The world's constants.
#[derive(Debug, Clone, Copy)]
pub struct WorldSettings {
    pub step_ms: u64,
    /// Time one consumer spends on one item.
    pub service_ms: u64,
    /// Time from "replica requested" to "consumer takes items".
    pub startup_ms: u64,
    /// The timeline keeps one sample per this interval.
    pub sample_every_ms: u64,
    /// Give up this long after the last arrival if the queue still has not drained.
    pub give_up_after_ms: u64,
    /// The run ends once drained and the replica count is down to this.
    pub settled_replicas: u32,
}

/// One point of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub at_ms: u64,
    pub waiting: u64,
    pub in_flight: u64,
    /// Consumers that exist (starting, working or finishing before they leave).
    pub pods: u32,
    /// The count the policy asked for.
    pub replicas: u32,
}

/// Everything measured during one run.
#[derive(Debug, Clone)]
pub struct Run {
    pub policy: String,
    pub samples: Vec<Sample>,
    /// How many items were completed with each latency (arrival → completion), in ms. Items
    /// of one batch finishing in one step share a latency, so this stays small however
    /// many items run.
    pub latency_counts_ms: BTreeMap<u64, u64>,
    /// Sum of pods × time, in pod-milliseconds.
    pub pod_ms: u64,
    pub scale_events: u32,
    pub peak_replicas: u32,
    pub last_arrival_ms: u64,
    pub last_completion_ms: Option<u64>,
    /// False when the run gave up before everything was processed.
    pub drained: bool,
}

#[derive(Debug, Clone, Copy)]
enum Work {
    Starting { ready_at_ms: u64 },
    Idle,
    Busy { done_at_ms: u64, arrived_at_ms: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Consumer {
    work: Work,
    /// Asked to stop: leaves as soon as its current item is done.
    leaving: bool,
}

pub fn simulate(workload: &Workload, policy: &mut dyn Policy, world: &WorldSettings) -> Run {
    let mut pending = workload.batches().peekable();
    let mut queue: VecDeque<Arrival> = VecDeque::new();
    let mut consumers: Vec<Consumer> = Vec::new();
    let mut seen = Observation::default();
    let mut run = Run {
        policy: policy.name().to_owned(),
        samples: Vec::new(),
        latency_counts_ms: BTreeMap::new(),
        pod_ms: 0,
        scale_events: 0,
        peak_replicas: 0,
        last_arrival_ms: workload.last_arrival_ms(),
        last_completion_ms: None,
        drained: false,
    };
    let give_up_at_ms = workload.last_arrival_ms() + world.give_up_after_ms;
    let mut now_ms = 0;
    loop {
        while let Some(arrival) = pending.next_if(|arrival| arrival.at_ms <= now_ms) {
            seen.waiting += arrival.count;
            queue.push_back(arrival);
        }
        finish_and_start(&mut consumers, &mut seen, &mut run, now_ms);
        for consumer in consumers
            .iter_mut()
            .filter(|c| matches!(c.work, Work::Idle))
        {
            let Some(arrived_at_ms) = take(&mut queue) else {
                break;
            };
            consumer.work = Work::Busy {
                done_at_ms: now_ms + world.service_ms,
                arrived_at_ms,
            };
            seen.waiting -= 1;
            seen.in_flight += 1;
        }
        seen.ready_replicas = consumers
            .iter()
            .filter(|c| !c.leaving && !matches!(c.work, Work::Starting { .. }))
            .count() as u32;
        if let Some(desired) = policy.observe(Instant::from_millis(now_ms), &seen)
            && desired != seen.replicas
        {
            run.scale_events += 1;
            resize(
                &mut consumers,
                seen.replicas,
                desired,
                now_ms + world.startup_ms,
            );
            seen.replicas = desired;
            run.peak_replicas = run.peak_replicas.max(desired);
        }

        let pods = consumers.len() as u32;
        run.pod_ms += u64::from(pods) * world.step_ms;
        if now_ms.is_multiple_of(world.sample_every_ms) {
            run.samples.push(Sample {
                at_ms: now_ms,
                waiting: seen.waiting,
                in_flight: seen.in_flight,
                pods,
                replicas: seen.replicas,
            });
        }

        let arrivals_done = pending.peek().is_none();
        let processed = arrivals_done && seen.waiting == 0 && seen.in_flight == 0;
        if processed && seen.replicas <= world.settled_replicas {
            run.drained = true;
            break;
        }
        if now_ms >= give_up_at_ms {
            run.drained = processed;
            break;
        }
        now_ms += world.step_ms;
    }
    run
}

/// Completes items whose time is up and readies consumers whose startup is over.
fn finish_and_start(
    consumers: &mut Vec<Consumer>,
    seen: &mut Observation,
    run: &mut Run,
    now_ms: u64,
) {
    consumers.retain_mut(|consumer| {
        match consumer.work {
            Work::Busy {
                done_at_ms,
                arrived_at_ms,
            } if done_at_ms <= now_ms => {
                *run.latency_counts_ms
                    .entry(done_at_ms - arrived_at_ms)
                    .or_default() += 1;
                run.last_completion_ms = Some(done_at_ms);
                // The ack: out of flight, counted as `<queue>:completed` is by the real one.
                seen.in_flight -= 1;
                seen.completed += 1;
                consumer.work = Work::Idle;
            }
            Work::Starting { ready_at_ms } if ready_at_ms <= now_ms => consumer.work = Work::Idle,
            _ => {}
        }
        !(consumer.leaving && matches!(consumer.work, Work::Idle))
    });
}

fn take(queue: &mut VecDeque<Arrival>) -> Option<u64> {
    let front = queue.front_mut()?;
    let arrived_at_ms = front.at_ms;
    front.count -= 1;
    if front.count == 0 {
        queue.pop_front();
    }
    Some(arrived_at_ms)
}

/// Adds starting consumers, or removes the least useful ones first.
fn resize(consumers: &mut Vec<Consumer>, current: u32, desired: u32, ready_at_ms: u64) {
    if desired > current {
        consumers.extend((current..desired).map(|_| Consumer {
            work: Work::Starting { ready_at_ms },
            leaving: false,
        }));
        return;
    }
    let mut surplus = (current - desired) as usize;
    // Least useful first: starting, then idle, then busy (which finish their item first).
    for rank in 0..3 {
        let mut index = consumers.len();
        while surplus > 0 && index > 0 {
            index -= 1;
            let consumer = consumers[index];
            let matches_rank = match consumer.work {
                Work::Starting { .. } => rank == 0,
                Work::Idle => rank == 1,
                Work::Busy { .. } => rank == 2,
            };
            if consumer.leaving || !matches_rank {
                continue;
            }
            surplus -= 1;
            if rank == 2 {
                consumers[index].leaving = true;
            } else {
                consumers.remove(index);
            }
        }
    }
}
