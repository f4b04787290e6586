//! The scale-in steps of the control loop, tick by tick, against an in-memory queue that
//! records leases and drain markers and an in-memory workload of named pods: who is chosen,
//! the order of drain, marks and scale, the wait, the cancel and the bound. The real parts
//! (Redis markers, pod-deletion-cost, a ReplicaSet) are the operator's e2e tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ebb_autoscaler::{
    ControlLoop, MetricSource, Reading, Result, ScaleInCounts, ScaleInPolicy, ScaleInReplicas,
    ScaleInStatus, ScaleTarget,
};
use ebb_scaling::{Behavior, Instant, Replica, Scaler, ScalerConfig};
use ebb_sources::Lease;

/// What both fakes write, in order: the test reads the sequence of operations.
type Log = Arc<Mutex<Vec<String>>>;

/// A queue of consumers, each holding some items (oldest taken at `since`), some draining.
#[derive(Clone)]
struct Queue {
    state: Arc<Mutex<QueueState>>,
    log: Log,
}

#[derive(Default)]
struct QueueState {
    waiting: u64,
    held: Vec<(String, u64, Option<SystemTime>)>,
    draining: Vec<String>,
}

impl Queue {
    fn hold(&self, consumer: &str, items: u64, ago: Duration) {
        let mut state = self.state.lock().unwrap();
        state.held.retain(|(name, ..)| name != consumer);
        let since = (items > 0).then(|| SystemTime::now() - ago);
        state.held.push((consumer.to_owned(), items, since));
    }

    fn set_waiting(&self, waiting: u64) {
        self.state.lock().unwrap().waiting = waiting;
    }

    fn draining(&self) -> Vec<String> {
        let mut draining = self.state.lock().unwrap().draining.clone();
        draining.sort();
        draining
    }
}

impl MetricSource for Queue {
    fn describe(&self) -> String {
        "in-memory queue".to_owned()
    }

    async fn read(&self) -> ebb_sources::Result<Reading> {
        let state = self.state.lock().unwrap();
        let leases: Vec<Lease> = state
            .held
            .iter()
            .map(|(consumer, leased, since)| Lease {
                consumer: consumer.clone(),
                leased: *leased,
                since: *since,
            })
            .collect();
        let in_flight = leases.iter().map(|lease| lease.leased).sum();
        Ok(Reading {
            leases,
            ..Reading::counts(state.waiting, in_flight)
        })
    }

    fn can_drain(&self) -> bool {
        true
    }

    async fn drain(&self, consumers: &[String], _ttl: Duration) -> ebb_sources::Result<()> {
        self.log
            .lock()
            .unwrap()
            .push(format!("drain {consumers:?}"));
        let mut state = self.state.lock().unwrap();
        for consumer in consumers {
            if !state.draining.contains(consumer) {
                state.draining.push(consumer.clone());
            }
        }
        Ok(())
    }

    async fn undrain(&self, consumers: &[String]) -> ebb_sources::Result<()> {
        if !consumers.is_empty() {
            self.log
                .lock()
                .unwrap()
                .push(format!("undrain {consumers:?}"));
        }
        self.state
            .lock()
            .unwrap()
            .draining
            .retain(|consumer| !consumers.contains(consumer));
        Ok(())
    }
}

/// A workload of named, Ready pods; `scale` removes the marked ones first, then the last.
#[derive(Clone)]
struct Pods {
    pods: Arc<Mutex<Vec<String>>>,
    marked: Arc<Mutex<Vec<String>>>,
    log: Log,
}

impl ScaleTarget for Pods {
    fn describe(&self) -> String {
        "in-memory pods".to_owned()
    }

    async fn replicas(&self) -> Result<u32> {
        Ok(self.pods.lock().unwrap().len() as u32)
    }

    async fn scale(&self, replicas: u32) -> Result<()> {
        self.log.lock().unwrap().push(format!("scale {replicas}"));
        let mut pods = self.pods.lock().unwrap();
        let marked = self.marked.lock().unwrap();
        while pods.len() > replicas as usize {
            let at = pods
                .iter()
                .position(|pod| marked.contains(pod))
                .unwrap_or(pods.len() - 1);
            pods.remove(at);
        }
        Ok(())
    }

    async fn replicas_for_scale_in(&self, _from: u32, _to: u32) -> Result<ScaleInReplicas> {
        self.log.lock().unwrap().push("list".to_owned());
        let pods = self.pods.lock().unwrap();
        Ok(ScaleInReplicas::Choosable(
            pods.iter()
                .map(|name| Replica {
                    name: name.clone(),
                    ready: true,
                    marked: self.marked.lock().unwrap().contains(name),
                })
                .collect(),
        ))
    }

    async fn order(&self, chosen: &[String]) -> Result<u32> {
        self.log.lock().unwrap().push(format!("order {chosen:?}"));
        let mut marked = self.marked.lock().unwrap();
        let writes = chosen.iter().filter(|name| !marked.contains(name)).count();
        *marked = chosen.to_vec();
        Ok(writes as u32)
    }

    async fn unorder(&self, replicas: &[String]) -> Result<u32> {
        self.log
            .lock()
            .unwrap()
            .push(format!("unorder {replicas:?}"));
        let mut marked = self.marked.lock().unwrap();
        let before = marked.len();
        marked.retain(|name| !replicas.contains(name));
        Ok((before - marked.len()) as u32)
    }
}

struct Fixture {
    queue: Queue,
    pods: Pods,
    control: ControlLoop<Queue, Pods>,
    log: Log,
}

/// Pods `a`..`d` at 4 replicas, each busy with one item, 4 waiting: one replica per waiting
/// item is wanted, no scale-down window. The first tick holds at 4.
async fn fixture(policy: ScaleInPolicy) -> Fixture {
    let log = Log::default();
    let queue = Queue {
        state: Arc::default(),
        log: log.clone(),
    };
    let names = ["a", "b", "c", "d"].map(str::to_owned).to_vec();
    for name in &names {
        queue.hold(name, 1, Duration::from_secs(1));
    }
    queue.set_waiting(4);
    let pods = Pods {
        pods: Arc::new(Mutex::new(names)),
        marked: Arc::default(),
        log: log.clone(),
    };
    let config = ScalerConfig {
        target_per_replica: 1.0,
        behavior: Behavior::ebb(Duration::ZERO),
        ..ScalerConfig::ebb_default()
    };
    let control = ControlLoop::new(
        queue.clone(),
        pods.clone(),
        Scaler::new(config).unwrap(),
        Duration::from_secs(1),
    )
    .unwrap()
    .with_scale_in(policy);
    let mut fixture = Fixture {
        queue,
        pods,
        control,
        log,
    };
    let held = fixture.tick(1).await;
    assert_eq!(held, 4);
    assert_eq!(fixture.log(), Vec::<String>::new(), "a hold touches no pod");
    fixture
}

impl Fixture {
    /// The desired count of the tick at `secs`.
    async fn tick(&mut self, secs: u64) -> u32 {
        self.control
            .tick(Instant::from_secs(secs))
            .await
            .unwrap()
            .desired_replicas
    }

    fn log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn pods(&self) -> Vec<String> {
        self.pods.pods.lock().unwrap().clone()
    }

    fn scale_in(&self) -> ScaleInStatus {
        self.control.subscribe().borrow().scale_in.clone().unwrap()
    }

    fn counts(&self) -> ScaleInCounts {
        self.control.subscribe().borrow().scale_in_counts
    }

    /// Every pod busy, c's item the oldest, and one replica fewer wanted.
    fn all_busy_three_wanted(&self) {
        self.queue.hold("c", 1, Duration::from_secs(30));
        self.queue.set_waiting(3);
    }
}

const DRAIN: ScaleInPolicy = ScaleInPolicy::Drain {
    bound: Duration::from_secs(60),
};

#[tokio::test]
async fn idle_pods_are_drained_marked_and_only_then_scaled_away() {
    let mut fixture = fixture(DRAIN).await;
    fixture.queue.hold("b", 0, Duration::ZERO);
    fixture.queue.hold("d", 0, Duration::ZERO);
    fixture.queue.set_waiting(2);
    assert_eq!(fixture.tick(2).await, 2);
    assert_eq!(
        fixture.log(),
        [
            "list",
            r#"drain ["b", "d"]"#,
            r#"order ["b", "d"]"#,
            "scale 2"
        ]
    );
    assert_eq!(fixture.pods(), ["a", "c"]);
    let scale_in = fixture.scale_in();
    assert_eq!(
        (scale_in.reason.as_str(), scale_in.idle, scale_in.busy),
        ("Chosen", 2, 0)
    );
    assert!(
        scale_in.message.contains("b, d go (2 idle, 0 busy)"),
        "{}",
        scale_in.message
    );
    assert_eq!(fixture.counts().without_idle, 0);
    assert_eq!(fixture.counts().replica_writes, 2);
}

#[tokio::test]
async fn all_busy_the_oldest_work_is_drained_and_the_scale_waits_until_it_is_done() {
    let mut fixture = fixture(DRAIN).await;
    fixture.all_busy_three_wanted();
    assert_eq!(fixture.tick(2).await, 4, "the scale-in waits");
    assert_eq!(fixture.log(), ["list", r#"drain ["c"]"#]);
    let scale_in = fixture.scale_in();
    assert_eq!(scale_in.reason, "Draining");
    assert_eq!(scale_in.waiting_for, ["c"]);
    assert_eq!(fixture.queue.draining(), ["c"]);
    // Still busy: nothing drained again, nothing marked.
    assert_eq!(fixture.tick(3).await, 4);
    assert_eq!(fixture.log(), ["list"]);
    // c's item is done, and it takes nothing new: now it goes, marked first.
    fixture.queue.hold("c", 0, Duration::ZERO);
    assert_eq!(fixture.tick(4).await, 3);
    assert_eq!(fixture.log(), ["list", r#"order ["c"]"#, "scale 3"]);
    assert_eq!(fixture.pods(), ["a", "b", "d"]);
    let scale_in = fixture.scale_in();
    assert_eq!((scale_in.reason.as_str(), scale_in.idle), ("Chosen", 1));
    assert!(scale_in.drain_seconds.is_some());
    assert!(!scale_in.drain_timed_out);
}

#[tokio::test]
async fn a_drain_is_cancelled_when_the_queue_grows_and_its_pod_works_again() {
    let mut fixture = fixture(DRAIN).await;
    fixture.all_busy_three_wanted();
    assert_eq!(fixture.tick(2).await, 4);
    fixture.log();
    fixture.queue.set_waiting(4);
    assert_eq!(fixture.tick(3).await, 4);
    assert_eq!(fixture.log(), [r#"undrain ["c"]"#, r#"unorder ["c"]"#]);
    assert_eq!(fixture.queue.draining(), Vec::<String>::new());
    assert_eq!(fixture.scale_in().reason, "DrainCancelled");
    assert_eq!(fixture.counts().drains_cancelled, 1);
    // And a scale-up is never held by a drain.
    fixture.queue.set_waiting(6);
    assert_eq!(fixture.tick(4).await, 6);
    assert_eq!(fixture.log(), ["scale 6"]);
}

#[tokio::test]
async fn when_the_bound_runs_out_the_scale_in_goes_on_and_says_so() {
    let mut fixture = fixture(ScaleInPolicy::Drain {
        bound: Duration::ZERO,
    })
    .await;
    fixture.all_busy_three_wanted();
    assert_eq!(fixture.tick(2).await, 3);
    assert_eq!(
        fixture.log(),
        ["list", r#"drain ["c"]"#, r#"order ["c"]"#, "scale 3"]
    );
    let scale_in = fixture.scale_in();
    assert!(scale_in.drain_timed_out);
    assert!(
        scale_in.message.contains("bound ran out"),
        "{}",
        scale_in.message
    );
    assert_eq!(fixture.counts().drains_timed_out, 1);
    assert_eq!(fixture.counts().without_idle, 1);
}

#[tokio::test]
async fn choose_without_drain_marks_the_oldest_work_and_scales_at_once() {
    let mut fixture = fixture(ScaleInPolicy::Choose).await;
    fixture.all_busy_three_wanted();
    assert_eq!(fixture.tick(2).await, 3);
    assert_eq!(fixture.log(), ["list", r#"order ["c"]"#, "scale 3"]);
    assert_eq!(fixture.pods(), ["a", "b", "d"]);
}

#[tokio::test]
async fn a_pod_the_queue_does_not_know_leaves_the_choice_to_the_workload_and_writes_nothing() {
    let mut fixture = fixture(DRAIN).await;
    fixture
        .queue
        .state
        .lock()
        .unwrap()
        .held
        .retain(|(name, ..)| name != "d");
    fixture.queue.set_waiting(3);
    assert_eq!(fixture.tick(2).await, 3);
    assert_eq!(fixture.log(), ["list", "scale 3"]);
    let scale_in = fixture.scale_in();
    assert_eq!(scale_in.reason, "UnknownConsumer");
    assert!(scale_in.message.contains("\"d\""), "{}", scale_in.message);
    assert!(!scale_in.ordered);
}

#[tokio::test]
async fn the_workload_policy_only_lowers_the_count() {
    let mut fixture = fixture(ScaleInPolicy::Workload).await;
    fixture.all_busy_three_wanted();
    assert_eq!(fixture.tick(2).await, 3);
    assert_eq!(fixture.log(), ["scale 3"]);
    assert_eq!(fixture.scale_in().reason, "WorkloadRules");
}
