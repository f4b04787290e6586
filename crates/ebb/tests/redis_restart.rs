//! Redis killed and restarted in the middle of a run: the producer answers 503 (after at most
//! a 504 for a push that may have gone out before Redis died) and reports
//! unhealthy meanwhile, the consumer reports unhealthy and retries; both recover by themselves
//! and every item is processed.

mod common;

use common::{Ebb, http, wait_until};
use ebb_testkit::redis::RedisServer;

#[test]
fn producer_and_consumer_recover_from_a_redis_restart() {
    let mut redis = RedisServer::start();
    let server = redis.address();
    let producer = Ebb::start("producer", &["producer", "--redis-server", &server]);
    let consumer = Ebb::start(
        "consumer",
        &[
            "consumer",
            "--redis-server",
            &server,
            "--per-msg",
            "50ms",
            "--lease",
            "2s",
        ],
    );
    assert_eq!(http("POST", &producer.url("/publish/40")).0, 200);
    wait_until("the consumer to be working", || {
        consumer.processed().len() >= 3
    });

    redis.stop();
    // The first push may still go out on the connection open before Redis stopped: 504, its
    // outcome unknown; once reconnecting fails, 503 (nothing can land).
    let (mut status, mut body) = http("POST", &producer.url("/publish/5"));
    for _ in 0..50 {
        if status != 504 {
            break;
        }
        assert!(body.contains("may or may not be published"), "{body}");
        std::thread::sleep(std::time::Duration::from_millis(100));
        (status, body) = http("POST", &producer.url("/publish/5"));
    }
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&format!("Redis at {server} is unreachable")),
        "{body}"
    );
    wait_until("both /healthz to turn 503", || {
        http("GET", &producer.url("/healthz")).0 == 503
            && http("GET", &consumer.url("/healthz")).0 == 503
    });
    let (_, reason) = http("GET", &consumer.url("/healthz"));
    assert!(
        reason.starts_with("The server is unhealthy: Redis at"),
        "{reason}"
    );

    redis.resume();
    wait_until("both /healthz to turn 200", || {
        http("GET", &producer.url("/healthz")).0 == 200
            && http("GET", &consumer.url("/healthz")).0 == 200
    });
    assert_eq!(http("POST", &producer.url("/publish/40")).0, 200);
    wait_until("all 80 items to be processed", || {
        redis.cli(&["LLEN", "padok"]) == "0" && consumer.processed().len() >= 80
    });
    let mut processed = consumer.processed();
    processed.sort();
    processed.dedup();
    assert_eq!(
        processed.len(),
        80,
        "each of the 80 published items was processed"
    );
}
