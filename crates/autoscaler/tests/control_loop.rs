//! The control loop driven tick by tick against an in-memory queue and target: what it
//! publishes, what it counts, what it logs and what it records when the target refuses.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb_autoscaler::{ControlLoop, Error, MetricSource, Reading, Result, ScaleTarget, Status};
use ebb_scaling::{Instant, Scaler, ScalerConfig};

/// What the next read returns; the test changes it between ticks.
#[derive(Clone)]
struct InMemorySource(Arc<Mutex<Result<Reading, String>>>);

impl Default for InMemorySource {
    fn default() -> Self {
        InMemorySource(Arc::new(Mutex::new(Ok(Reading::default()))))
    }
}

impl InMemorySource {
    fn set(&self, next: Result<Reading, &str>) {
        *self.0.lock().unwrap() = next.map_err(str::to_owned);
    }
}

impl MetricSource for InMemorySource {
    fn describe(&self) -> String {
        "in-memory queue".to_owned()
    }

    async fn read(&self) -> ebb_autoscaler::sources::Result<Reading> {
        self.0
            .lock()
            .unwrap()
            .clone()
            .map_err(|reason| ebb_autoscaler::sources::Error::Read {
                source_name: self.describe(),
                source: reason.into(),
            })
    }
}

#[derive(Default)]
struct Replicas {
    asked: u32,
    /// `None`: as many as asked.
    ready: Option<u32>,
    /// Why the next `scale` calls fail, while set.
    refusal: Option<String>,
    /// Not there (yet): every call fails as [`Error::TargetMissing`].
    missing: bool,
}

#[derive(Clone, Default)]
struct InMemoryTarget(Arc<Mutex<Replicas>>);

impl InMemoryTarget {
    fn at(asked: u32) -> Self {
        let target = InMemoryTarget::default();
        target.0.lock().unwrap().asked = asked;
        target
    }

    fn asked(&self) -> u32 {
        self.0.lock().unwrap().asked
    }

    fn refuse(&self, reason: Option<&str>) {
        self.0.lock().unwrap().refusal = reason.map(str::to_owned);
    }

    fn set_missing(&self, missing: bool) {
        self.0.lock().unwrap().missing = missing;
    }

    fn there(&self) -> Result<()> {
        if self.0.lock().unwrap().missing {
            return Err(Error::TargetMissing {
                target: "in-memory target".to_owned(),
            });
        }
        Ok(())
    }
}

impl ScaleTarget for InMemoryTarget {
    fn describe(&self) -> String {
        "in-memory target".to_owned()
    }

    async fn replicas(&self) -> Result<u32> {
        self.there()?;
        Ok(self.asked())
    }

    async fn ready_replicas(&self) -> Result<u32> {
        self.there()?;
        let replicas = self.0.lock().unwrap();
        Ok(replicas.ready.unwrap_or(replicas.asked))
    }

    async fn scale(&self, replicas: u32) -> Result<()> {
        let mut state = self.0.lock().unwrap();
        if let Some(reason) = &state.refusal {
            return Err(Error::Apply {
                target: "in-memory target".to_owned(),
                source: reason.clone().into(),
            });
        }
        state.asked = replicas;
        Ok(())
    }
}

fn queue(waiting: u64, in_flight: u64, completed: u64) -> Result<Reading, &'static str> {
    Ok(Reading {
        completed_total: Some(completed),
        ..Reading::counts(waiting, in_flight)
    })
}

fn at(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

fn control_loop(
    config: ScalerConfig,
    source: &InMemorySource,
    target: &InMemoryTarget,
) -> ControlLoop<InMemorySource, InMemoryTarget> {
    let scaler = Scaler::new(config).unwrap();
    ControlLoop::new(
        source.clone(),
        target.clone(),
        scaler,
        Duration::from_secs(1),
    )
    .unwrap()
}

fn status(control: &ControlLoop<InMemorySource, InMemoryTarget>) -> Status {
    control.subscribe().borrow().clone()
}

#[tokio::test]
async fn a_read_error_is_published_until_a_tick_succeeds() {
    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(1));
    let mut control = control_loop(ScalerConfig::ebb_default(), &source, &target);

    source.set(Err("connection refused"));
    let error = control.tick(at(0)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "reading in-memory queue: connection refused"
    );
    assert_eq!(
        status(&control).last_error.as_deref(),
        Some("reading in-memory queue: connection refused")
    );

    source.set(queue(20, 0, 0));
    control.tick(at(1)).await.unwrap();
    let status = status(&control);
    assert_eq!(status.last_error, None);
    assert_eq!((status.waiting, status.replicas), (20, 1));
}

#[tokio::test]
async fn scale_events_count_only_applied_changes() {
    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(1));
    let mut control = control_loop(ScalerConfig::ebb_default(), &source, &target);
    source.set(queue(100, 0, 0));

    target.refuse(Some("quota exceeded"));
    let error = control.tick(at(0)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "scaling in-memory target: quota exceeded"
    );
    assert_eq!(status(&control).scale_events, 0);
    assert_eq!(target.asked(), 1);

    target.refuse(None);
    let decision = control.tick(at(1)).await.unwrap();
    assert_eq!(decision.desired_replicas, 5, "{}", decision.reason);
    assert_eq!(target.asked(), 5);
    assert_eq!(status(&control).scale_events, 1);

    control.tick(at(2)).await.unwrap();
    assert_eq!(status(&control).scale_events, 1, "staying is no event");
}

#[tokio::test]
async fn a_refused_change_is_not_recorded_by_the_scaler() {
    // The HPA's scale-up policy allows 4 pods per 15 s: a refused 1 → 5 that the scaler
    // recorded anyway would spend that allowance and pin the target at 1.
    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(1));
    let mut control = control_loop(ScalerConfig::hpa_default(), &source, &target);
    source.set(queue(20, 0, 0));
    control.tick(at(0)).await.unwrap();

    source.set(queue(400, 0, 0));
    target.refuse(Some("apiserver unavailable"));
    control.tick(at(1)).await.unwrap_err();

    target.refuse(None);
    let decision = control.tick(at(2)).await.unwrap();
    assert_eq!(decision.desired_replicas, 5, "{}", decision.reason);
    assert_eq!(target.asked(), 5);
}

/// The saturated start of the two rate tests below: 4 replicas asked, 2 of them ready, and a
/// drain time of 60 s.
fn four_asked_two_ready_draining_in_a_minute() -> (InMemorySource, InMemoryTarget, ScalerConfig) {
    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(4));
    target.0.lock().unwrap().ready = Some(2);
    let config = ScalerConfig {
        drain_time: Some(Duration::from_secs(60)),
        ..ScalerConfig::ebb_default()
    };
    (source, target, config)
}

#[tokio::test]
async fn the_service_rate_is_measured_over_ready_replicas() {
    // 4 replicas asked, 2 still starting: the 2 ready ones finish 4 items/s, 2/s each.
    // Over the 4 asked that would read 1/s and double the count drain time asks for.
    let (source, target, config) = four_asked_two_ready_draining_in_a_minute();
    let mut control = control_loop(config, &source, &target);

    // 80 waiting is the 20 per replica target at 4: no change before the rates are known.
    source.set(queue(80, 2, 0));
    control.tick(at(0)).await.unwrap();
    source.set(queue(80, 2, 20));
    let decision = control.tick(at(5)).await.unwrap();
    // 82 queued + 4/s × 60 s arriving = 322 items at 2/s × 60 s = 120 each: 3 replicas.
    assert_eq!(decision.recommendation, 3, "{}", decision.reason);
}

#[tokio::test]
async fn a_source_without_a_completion_counter_keeps_the_average_value_rule() {
    // The same saturated readings as above, minus the counter: no rate can be told, so
    // drain time falls back to 80 / 20 = 4 and nothing is shown as processed.
    let (source, target, config) = four_asked_two_ready_draining_in_a_minute();
    let mut control = control_loop(config, &source, &target);
    let blind = |waiting, in_flight| Ok(Reading::counts(waiting, in_flight));
    source.set(blind(80, 2));
    control.tick(at(0)).await.unwrap();
    source.set(blind(80, 2));
    let decision = control.tick(at(5)).await.unwrap();
    assert_eq!(decision.recommendation, 4, "{}", decision.reason);
    assert_eq!(status(&control).processed_per_sec, None);
}

#[tokio::test]
async fn an_unknown_in_flight_count_stays_unknown_and_the_step_to_zero_says_so() {
    // A plain list or a PromQL value cannot tell what is in flight: the status shows it
    // unknown (not 0), and the decision, which weighs waiting items alone then, says so.
    let config = ScalerConfig {
        min_replicas: 0,
        cooldown: Duration::ZERO,
        ..ScalerConfig::ebb_default()
    };
    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(1));
    let mut control = control_loop(config.clone(), &source, &target);
    source.set(Ok(Reading::waiting(0)));
    control.tick(at(0)).await.unwrap();
    // Past the 20 s scale-down window.
    let decision = control.tick(at(30)).await.unwrap();
    assert_eq!(status(&control).in_flight, None);
    assert_eq!(decision.desired_replicas, 0, "{}", decision.reason);
    assert!(
        decision.reason.contains("in flight unknown"),
        "{}",
        decision.reason
    );

    // Known items in flight hold the last replica.
    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(1));
    let mut control = control_loop(config, &source, &target);
    source.set(Ok(Reading::counts(0, 2)));
    control.tick(at(0)).await.unwrap();
    let decision = control.tick(at(30)).await.unwrap();
    assert_eq!(status(&control).in_flight, Some(2));
    assert_eq!(decision.desired_replicas, 1, "{}", decision.reason);
}

#[test]
fn a_zero_interval_is_refused_in_one_line() {
    let scaler = Scaler::new(ScalerConfig::ebb_default()).unwrap();
    let refused = ControlLoop::new(
        InMemorySource::default(),
        InMemoryTarget::default(),
        scaler,
        Duration::ZERO,
    );
    assert_eq!(
        refused.err().map(|error| error.to_string()).as_deref(),
        Some("the tick interval must be above 0")
    );
}

/// Everything logged while it is the thread's default subscriber.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_error_is_logged_once_per_change_of_message() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    // A current-thread runtime: every tick runs on this thread, under this subscriber.
    let _default = tracing::subscriber::set_default(subscriber);

    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(1));
    let mut control = control_loop(ScalerConfig::ebb_default(), &source, &target);
    source.set(Err("connection refused"));
    for second in 0..3 {
        control.tick(at(second)).await.unwrap_err();
    }
    source.set(Err("timed out"));
    control.tick(at(3)).await.unwrap_err();
    control.tick(at(4)).await.unwrap_err();
    source.set(queue(20, 0, 0));
    control.tick(at(5)).await.unwrap();
    source.set(Err("timed out"));
    control.tick(at(6)).await.unwrap_err();

    assert_eq!(
        log.lines(),
        [
            "reading in-memory queue: connection refused; trying again every 1s",
            "reading in-memory queue: timed out; trying again every 1s",
            "reading in-memory queue: timed out; trying again every 1s",
        ]
    );
}

/// A failed read never scales to zero: without a fallback the count holds; with one, it
/// applies after the given number of failures, from 0 replicas too, and ends with the
/// first successful read.
#[tokio::test]
async fn failed_reads_hold_the_count_then_apply_the_fallback_even_from_zero() {
    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(3));
    let mut holding = control_loop(ScalerConfig::ebb_default(), &source, &target);
    source.set(Err("connection refused"));
    for second in 1..=5 {
        assert!(holding.tick(at(second)).await.is_err());
    }
    assert_eq!(target.asked(), 3, "held");
    assert_eq!(status(&holding).consecutive_read_failures, 5);
    assert!(!status(&holding).fallback_active);

    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(0));
    let mut control = control_loop(ScalerConfig::ebb_default(), &source, &target).with_fallback(
        ebb_autoscaler::Fallback {
            replicas: 2,
            after_failures: 3,
        },
    );
    source.set(Err("connection refused"));
    for second in 1..=2 {
        assert!(control.tick(at(second)).await.is_err());
        assert_eq!(target.asked(), 0, "not yet: {second} failures");
        assert!(!status(&control).fallback_active);
    }
    assert!(control.tick(at(3)).await.is_err());
    assert_eq!(target.asked(), 2, "fallback from 0 after 3 failures");
    let seen = status(&control);
    assert!(seen.fallback_active);
    assert_eq!(seen.scale_events, 1);
    assert_eq!(seen.desired_replicas, 2);
    assert!(seen.last_error.is_some());
    assert!(
        seen.last_decision
            .unwrap()
            .reason
            .contains("fallback after 3 failed reads"),
    );
    assert!(control.tick(at(4)).await.is_err());
    assert_eq!(
        status(&control).scale_events,
        1,
        "no second write for the same count"
    );

    source.set(queue(200, 0, 0));
    control.tick(at(5)).await.unwrap();
    let seen = status(&control);
    assert!(!seen.fallback_active);
    assert_eq!(seen.consecutive_read_failures, 0);
    assert_eq!(target.asked(), 10, "decides from the queue again");
}

#[tokio::test]
async fn every_tick_is_counted_once_by_outcome_however_the_status_channel_merges_them() {
    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(0));
    let mut config = ScalerConfig::ebb_default();
    config.cooldown = Duration::ZERO;
    let mut control =
        control_loop(config, &source, &target).with_fallback(ebb_autoscaler::Fallback {
            replicas: 2,
            after_failures: 2,
        });
    // Nobody reads the channel between ticks: a follower would see one merged status.
    let follower = control.subscribe();
    let mut second = 0;
    let mut tick = |reading| {
        source.set(reading);
        // Far apart: past every stabilization window.
        second += 100;
        at(second)
    };
    for reading in [
        queue(0, 0, 0),   // hold at 0
        queue(100, 0, 0), // up
        queue(100, 0, 0), // hold
        Err("down"),      // read failure, held
        Err("down"),      // read failure, fallback
        Err("down"),      // read failure, fallback
        queue(0, 0, 0),   // down
    ] {
        let now = tick(reading);
        let _ = control.tick(now).await;
    }
    target.refuse(Some("forbidden"));
    let now = tick(queue(500, 0, 0));
    assert!(control.tick(now).await.is_err());

    let counts = follower.borrow().counts;
    assert_eq!(
        counts,
        ebb_autoscaler::TickCounts {
            reads: 5,
            read_failures: 3,
            apply_failures: 1,
            scale_up: 1,
            scale_down: 1,
            hold: 2,
            fallback: 2,
        },
        "{counts:?}"
    );
    assert_eq!(counts.decisions(), 6);
}

/// A workload created in the same apply as its scaler reaches the operator's watch a moment
/// after the scaler: the loop finds it missing at its first tick, and must try again within
/// seconds, not at its next polling interval (300 s here). Time is paused and advances only
/// when everything waits, so "within 10 s" is counted on the loop's own clock.
#[tokio::test(start_paused = true)]
async fn a_missing_target_is_tried_again_within_seconds_not_at_the_next_interval() {
    let (source, target) = (InMemorySource::default(), InMemoryTarget::at(0));
    source.set(queue(40, 0, 0));
    target.set_missing(true);
    let control = ControlLoop::new(
        source.clone(),
        target.clone(),
        Scaler::new(ScalerConfig::ebb_default()).unwrap(),
        Duration::from_secs(300),
    )
    .unwrap();
    let mut statuses = control.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(control.run(async {
        let _ = stopped.await;
    }));

    statuses
        .wait_for(|status| status.counts.apply_failures == 1)
        .await
        .unwrap();
    let error = statuses.borrow().last_error.clone().unwrap();
    assert_eq!(error, "scaling in-memory target: not found");
    target.set_missing(false);

    let seen = tokio::time::timeout(
        Duration::from_secs(10),
        statuses.wait_for(|status| status.last_error.is_none()),
    )
    .await
    .expect("the target was not tried again within 10 s of its appearing")
    .unwrap()
    .clone();
    assert_eq!(seen.desired_replicas, target.asked(), "{seen:?}");
    assert!(seen.desired_replicas > 0, "{seen:?}");

    // Gone at the next interval's tick and never back: tried every few seconds, the pause
    // doubling up to 8 s (1 + 2 + 4 + 8 + 8 … : about ten tries a minute, not one).
    target.set_missing(true);
    let before = statuses.borrow().counts.apply_failures;
    statuses
        .wait_for(|status| status.counts.apply_failures > before)
        .await
        .unwrap();
    let before = statuses.borrow().counts.apply_failures;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let retries = statuses.borrow().counts.apply_failures - before;
    assert!((5..=12).contains(&retries), "{retries} tries in 60 s");

    let _ = stop.send(());
    running.await.unwrap();
}
