//! The at-least-once guarantee with real processes: 3 consumers share 200 items; one is
//! SIGKILLed in the middle of an item, one is SIGTERMed. Every item is processed, and only the
//! killed consumer's item may be processed twice.

mod common;

use common::{Ebb, http, tally};
use ebb_testkit::poll;
use ebb_testkit::redis::RedisServer;
use std::time::Duration;

#[test]
fn every_item_is_processed_despite_a_kill_and_a_term() {
    let redis = RedisServer::start();
    let server = redis.address();
    let producer = Ebb::start("producer", &["producer", "--redis-server", &server]);
    let (status, body) = http("POST", &producer.url("/publish/200"));
    assert_eq!(
        (status, body.as_str()),
        (200, "200 messages published 👌\n")
    );
    let all_ids: Vec<String> = redis
        .cli(&["LRANGE", "padok", "0", "-1"])
        .lines()
        .map(|raw| ebb_queue::Item::decode(raw).id.unwrap())
        .collect();
    assert_eq!(all_ids.len(), 200);

    let consumer = |name: &str, per_msg: &str| {
        let args = [
            "consumer",
            "--redis-server",
            &server,
            "--per-msg",
            per_msg,
            "--lease",
            "1s",
            "--consumer-id",
            name,
        ];
        Ebb::start(name, &args)
    };
    // The victim works slowly, so it is certainly in the middle of an item when killed.
    let mut killed = consumer("killed", "30s");
    let mut terminated = consumer("terminated", "100ms");
    let mut survivor = consumer("survivor", "20ms");

    poll::until_blocking(
        "the victim to take an item",
        Duration::from_secs(30),
        || !killed.received().is_empty(),
    )
    .unwrap();
    killed.signal("KILL");
    assert!(!killed.wait_for_exit().success());
    let killed_in_hand = killed.received();
    assert!(killed.processed().is_empty());

    poll::until_blocking(
        "the terminated consumer to be mid-item",
        Duration::from_secs(30),
        || {
            terminated.received().len() > terminated.processed().len()
                && terminated.received().len() >= 3
        },
    )
    .unwrap();
    terminated.signal("TERM");
    let status = terminated.wait_for_exit();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert_eq!(
        terminated.received(),
        terminated.processed(),
        "the terminated consumer finished every item it took"
    );
    assert!(
        terminated
            .logs()
            .iter()
            .any(|line| line.contains("left the queue"))
    );

    poll::until_blocking(
        "every item to be processed",
        Duration::from_secs(30),
        || {
            let processed = [terminated.processed(), survivor.processed()].concat();
            let seen = tally(&processed);
            all_ids.iter().all(|id| seen.contains_key(id))
        },
    )
    .unwrap();
    let processed = [terminated.processed(), survivor.processed()].concat();
    for (id, times) in tally(&processed) {
        assert!(
            times == 1 || killed_in_hand.contains(&id),
            "{id} processed {times} times but was not the killed consumer's"
        );
    }
    for id in &killed_in_hand {
        assert!(
            survivor.processed().contains(id),
            "the killed consumer's {id} was redelivered"
        );
    }
    assert!(
        survivor
            .logs()
            .iter()
            .any(|line| line.contains("reaped 1 dead consumer(s): 1 item(s)"))
    );

    assert_eq!(redis.cli(&["LLEN", "padok"]), "0");
    assert_eq!(redis.cli(&["SMEMBERS", "{padok}:consumers"]), "survivor");
    assert_eq!(redis.cli(&["LLEN", "{padok}:processing:survivor"]), "0");
    let (_, metrics) = http("GET", &survivor.url("/metrics"));
    let consumed = survivor.processed().len();
    assert!(
        metrics.contains(&format!("consumer_messages_consumed_total {consumed}\n")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "consumer_queue_latency_seconds_count {consumed}\n"
        )),
        "{metrics}"
    );

    survivor.signal("INT");
    assert!(survivor.wait_for_exit().success(), "SIGINT exits 0 too");
    assert_eq!(
        redis.cli(&["EXISTS", "{padok}:consumers"]),
        "0",
        "everyone left"
    );
}

/// The window a reaper used to open: a consumer dropped from the registry (its lease ran out
/// while it was frozen) whose pop then moves an item into its list, and which then dies.
/// Nothing names that list any more but its key; the survivors' reaper sweeps for it.
#[test]
fn never_strands_an_item_popped_into_an_unregistered_consumer_killed_with_sigkill() {
    let redis = RedisServer::start();
    let server = redis.address();
    let producer = Ebb::start("producer", &["producer", "--redis-server", &server]);
    let consumer = |name: &str, per_msg: &str, lease: &str| {
        let args = [
            "consumer",
            "--redis-server",
            &server,
            "--per-msg",
            per_msg,
            "--lease",
            lease,
            "--consumer-id",
            name,
        ];
        Ebb::start(name, &args)
    };
    // A long lease: its heartbeats are 10 s apart, so it pops again without one.
    let mut victim = consumer("victim", "1h", "30s");
    poll::until_blocking("the victim to register", Duration::from_secs(30), || {
        redis.cli(&["SISMEMBER", "{padok}:consumers", "victim"]) == "1"
    })
    .unwrap();
    // Its lease runs out and a reaper drops it (forced: what the reaper does to a consumer
    // whose heartbeat expired and whose list is empty), while it waits in BLMOVE.
    redis.cli(&["DEL", "{padok}:heartbeat:victim"]);
    redis.cli(&["SREM", "{padok}:consumers", "victim"]);
    let (status, _) = http("POST", &producer.url("/publish/20"));
    assert_eq!(status, 200);
    poll::until_blocking(
        "the victim to take an item",
        Duration::from_secs(30),
        || !victim.received().is_empty(),
    )
    .unwrap();
    victim.signal("KILL");
    assert!(!victim.wait_for_exit().success());
    let taken = victim.received();
    assert_eq!(taken.len(), 1);
    // The window: its item is in a list no registry names, counted nowhere.
    assert_eq!(
        redis.cli(&["SISMEMBER", "{padok}:consumers", "victim"]),
        "0"
    );
    assert_eq!(redis.cli(&["LLEN", "{padok}:processing:victim"]), "1");

    let mut survivor = consumer("survivor", "0", "1s");
    poll::until_blocking(
        "every item to be completed",
        Duration::from_secs(30),
        || redis.cli(&["GET", "{padok}:completed"]) == "20",
    )
    .unwrap();
    let processed = survivor.processed();
    assert!(processed.contains(&taken[0]), "the victim's item came back");
    assert_eq!(tally(&processed).len(), 20, "every item processed");
    assert_eq!(
        redis.cli(&["GET", "{padok}:completed"]),
        "20",
        "= published"
    );
    assert_eq!(redis.cli(&["LLEN", "padok"]), "0");
    assert_eq!(redis.cli(&["EXISTS", "{padok}:processing:victim"]), "0");
    survivor.signal("TERM");
    assert!(survivor.wait_for_exit().success());
}

/// A consumer is its pod (the chart sets `EBB_CONSUMER_ID` to the pod's name): a container
/// restarted in the same pod takes the same id, and at start it takes back what its
/// predecessor held, long before that lease would have run out.
#[test]
fn a_restarted_container_keeps_its_pods_name_and_takes_back_what_it_held() {
    let redis = RedisServer::start();
    let server = redis.address();
    let producer = Ebb::start("producer", &["producer", "--redis-server", &server]);
    let consumer = |per_msg: &str| {
        let args = [
            "consumer",
            "--redis-server",
            &server,
            "--per-msg",
            per_msg,
            "--lease",
            "1h",
        ];
        Ebb::start_with_env(
            "consumer",
            &args,
            &[("EBB_CONSUMER_ID", "consumer-5d4f8-x2k9q")],
        )
    };
    let (status, _) = http("POST", &producer.url("/publish/5"));
    assert_eq!(status, 200);
    let mut first = consumer("1h");
    poll::until_blocking(
        "the first run to take an item",
        Duration::from_secs(30),
        || !first.received().is_empty(),
    )
    .unwrap();
    first.signal("KILL");
    assert!(!first.wait_for_exit().success());
    let held = first.received();
    assert_eq!(held.len(), 1);
    assert_eq!(
        redis
            .cli(&[
                "LRANGE",
                "{padok}:processing:consumer-5d4f8-x2k9q",
                "0",
                "-1"
            ])
            .lines()
            .count(),
        1,
        "the killed run's item waits in the pod's processing list"
    );

    // An hour's lease: only the restarted container itself can bring the item back in time.
    let mut restarted = consumer("0");
    poll::until_blocking(
        "every item to be completed",
        Duration::from_secs(30),
        || redis.cli(&["GET", "{padok}:completed"]) == "5",
    )
    .unwrap();
    let processed = restarted.processed();
    assert!(
        processed.contains(&held[0]),
        "the predecessor's item came back"
    );
    assert_eq!(tally(&processed).len(), 5, "every item processed");
    assert_eq!(redis.cli(&["LLEN", "padok"]), "0");
    assert_eq!(
        redis.cli(&["SMEMBERS", "{padok}:consumers"]),
        "consumer-5d4f8-x2k9q",
        "one consumer registered, under the pod's name"
    );
    restarted.signal("TERM");
    assert!(restarted.wait_for_exit().success());
}

/// The id of a pod that is gone (scaled in, evicted, rescheduled under a new name) blocks
/// nothing and leaves no trace: its lease runs out, its item goes to the pod that replaced it,
/// and no key of its own is left to skew a count or a ranking.
#[test]
fn a_gone_pods_name_blocks_nothing_and_leaves_no_trace() {
    let redis = RedisServer::start();
    let server = redis.address();
    let producer = Ebb::start("producer", &["producer", "--redis-server", &server]);
    let consumer = |pod: &str, per_msg: &str| {
        let args = [
            "consumer",
            "--redis-server",
            &server,
            "--per-msg",
            per_msg,
            "--lease",
            "1s",
        ];
        Ebb::start_with_env(pod, &args, &[("EBB_CONSUMER_ID", pod)])
    };
    let (status, _) = http("POST", &producer.url("/publish/5"));
    assert_eq!(status, 200);
    let mut gone = consumer("consumer-5d4f8-gone1", "1h");
    poll::until_blocking("the pod to take an item", Duration::from_secs(30), || {
        !gone.received().is_empty()
    })
    .unwrap();
    gone.signal("KILL");
    assert!(!gone.wait_for_exit().success());
    let held = gone.received();

    let mut replacement = consumer("consumer-5d4f8-new22", "0");
    poll::until_blocking(
        "every item to be completed",
        Duration::from_secs(30),
        || redis.cli(&["GET", "{padok}:completed"]) == "5",
    )
    .unwrap();
    assert!(replacement.processed().contains(&held[0]));
    assert_eq!(
        redis.cli(&["SMEMBERS", "{padok}:consumers"]),
        "consumer-5d4f8-new22"
    );
    for key in ["processing", "heartbeat", "draining"] {
        assert_eq!(
            redis.cli(&["EXISTS", &format!("{{padok}}:{key}:consumer-5d4f8-gone1")]),
            "0",
            "{key} of the gone pod"
        );
    }
    replacement.signal("TERM");
    assert!(replacement.wait_for_exit().success());
}
