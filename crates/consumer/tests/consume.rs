//! The consumer in-process against a real Redis: items of every shape, concurrency, graceful
//! shutdown, the operations endpoints, and a Redis outage.

use std::time::Duration;

use clap::Parser;
use ebb_consumer::Args;
use ebb_queue::{Item, Lengths, Queue};
use ebb_runtime::{Shutdown, ShutdownTrigger};
use ebb_testkit::poll;
use ebb_testkit::redis::RedisServer;
use tokio::task::JoinHandle;

/// `ebb consumer`'s command line, parsed the way the binary parses it.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn parse(flags: &[&str]) -> Result<Args, String> {
    Cli::try_parse_from([&["consumer"], flags].concat())
        .map(|cli| cli.args)
        .map_err(|error| error.to_string())
}

struct Consumer {
    base: String,
    stop: ShutdownTrigger,
    running: JoinHandle<ebb_consumer::Result<()>>,
}

async fn start(redis: &RedisServer, per_msg: Duration, concurrency: u32) -> Consumer {
    let per_msg = format!("{}ms", per_msg.as_millis());
    let concurrency = concurrency.to_string();
    start_with(&[
        "--redis-server",
        &redis.address(),
        "--per-msg",
        &per_msg,
        "--concurrency",
        &concurrency,
    ])
    .await
}

/// A consumer `c1` with a 2 s lease and these flags.
async fn start_with(flags: &[&str]) -> Consumer {
    let args = parse(&[&["--lease", "2s", "--consumer-id", "c1"], flags].concat()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, shutdown) = Shutdown::new();
    let running = tokio::spawn(ebb_consumer::serve(args, listener, shutdown));
    Consumer {
        base,
        stop,
        running,
    }
}

impl Consumer {
    /// Waits until the consumer's metrics count `count` items consumed (`what` names the wait).
    async fn wait_consumed(&self, what: &str, count: u64) {
        let line = format!("consumer_messages_consumed_total {count}\n");
        poll::until(what, Duration::from_secs(15), || async {
            get(format!("{}/metrics", self.base))
                .await
                .1
                .contains(&line)
        })
        .await
        .unwrap();
    }

    /// Shuts it down as SIGTERM would, and waits until it returned without an error.
    async fn stop(self) {
        self.stop.trigger();
        self.running.await.unwrap().unwrap();
    }
}

/// A fresh Redis and its queue `padok`.
fn padok() -> (RedisServer, Queue) {
    let redis = RedisServer::start();
    let queue = Queue::new(&redis.address().parse().unwrap(), "padok").unwrap();
    (redis, queue)
}

async fn get(url: String) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(response) => (response.status().as_u16(), response.text().await.unwrap()),
        Err(error) => (0, error.to_string()),
    }
}

#[tokio::test]
async fn works_through_envelopes_and_plain_items_and_reports_metrics() {
    let (redis, queue) = padok();
    let consumer = start(&redis, Duration::ZERO, 1).await;
    queue
        .push(&[
            Item::new("one").encode(),
            "plain text from redis-cli".into(),
            "{\"not\": \"ours\"}".into(),
        ])
        .await
        .unwrap();
    poll::until("the queue to drain", Duration::from_secs(15), || async {
        queue.lengths().await.unwrap() == Lengths::default()
    })
    .await
    .unwrap();
    consumer.wait_consumed("3 items counted", 3).await;
    let (_, metrics) = get(format!("{}/metrics", consumer.base)).await;
    assert!(
        metrics.contains("consumer_processing_duration_seconds_count 3\n"),
        "{metrics}"
    );
    // Only the envelope carries an enqueue time.
    assert!(
        metrics.contains("consumer_queue_latency_seconds_count 1\n"),
        "{metrics}"
    );
    assert_eq!(
        get(format!("{}/healthz", consumer.base)).await,
        (200, "The server is healthy\n".into())
    );
    let wrong_method = reqwest::Client::new()
        .post(format!("{}/metrics", consumer.base))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);

    consumer.stop().await;
    assert_eq!(
        redis.cli(&["EXISTS", "{padok}:consumers", "{padok}:heartbeat:c1"]),
        "0"
    );
}

#[tokio::test]
async fn takes_concurrency_items_at_once_and_finishes_them_on_shutdown() {
    let (redis, queue) = padok();
    let items: Vec<String> = (0..10)
        .map(|n| Item::new(format!("{n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();
    let consumer = start(&redis, Duration::from_secs(2), 4).await;
    poll::until("4 items in flight", Duration::from_secs(15), || async {
        queue.lengths().await.unwrap()
            == Lengths {
                waiting: 6,
                in_flight: 4,
            }
    })
    .await
    .unwrap();

    consumer.stop().await;
    // The 4 in hand were finished and acknowledged; no new one was taken.
    assert_eq!(
        queue.lengths().await.unwrap(),
        Lengths {
            waiting: 6,
            in_flight: 0
        }
    );
    assert_eq!(redis.cli(&["LINDEX", "padok", "0"]), items[4]);
}

/// Items of a millisecond or more: each comes with the ack before it, one round trip each.
#[tokio::test]
async fn takes_waiting_items_in_one_round_trip_each() {
    let (redis, queue) = padok();
    let items: Vec<String> = (0..100)
        .map(|n| Item::new(format!("{n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();
    let consumer = start(&redis, Duration::from_millis(2), 2).await;
    consumer.wait_consumed("100 items counted", 100).await;
    consumer.stop().await;
    assert_eq!(queue.lengths().await.unwrap(), Lengths::default());
    assert_eq!(queue.completed().await.unwrap(), 100);
    // A BLMOVE per slot for its first item, then some on the empty queue (one a second);
    // every other item came with the ack before it, in the same script.
    let blocking = redis.calls("blmove");
    assert!(blocking < 20, "{blocking} BLMOVEs for 100 items");
    let taken = redis.calls("lmove");
    assert!(taken >= 98, "{taken} LMOVEs for 100 items");
    assert_eq!(redis.calls("lpop"), 0, "no batch of items this long");
}

/// Items that take no time: the consumer takes them in batches, far fewer round trips than
/// items, and each is completed and counted once.
#[tokio::test]
async fn takes_instant_items_in_batches() {
    let (redis, queue) = padok();
    let items: Vec<String> = (0..3_000)
        .map(|n| Item::new(format!("{n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();
    let consumer = start(&redis, Duration::ZERO, 2).await;
    consumer.wait_consumed("3000 items counted", 3_000).await;
    consumer.stop().await;
    assert_eq!(queue.lengths().await.unwrap(), Lengths::default());
    assert_eq!(queue.completed().await.unwrap(), 3_000);
    let scripts = redis.calls("evalsha");
    assert!(scripts < 300, "{scripts} scripts for 3000 instant items");
}

/// How Redis fails in an outage test.
#[derive(Clone, Copy)]
enum Outage {
    /// Killed: connections refused.
    Down,
    /// Stopped (SIGSTOP): connections open, nothing answers.
    Frozen,
}

/// Breaks Redis, checks that /healthz says why, mends it, and checks that the consumer
/// recovers by itself and takes an item pushed after the outage.
async fn reports_the_outage_and_resumes_alone(outage: Outage) {
    let (mut redis, queue) = padok();
    let consumer = start(&redis, Duration::ZERO, 1).await;
    // An item consumed before the outage: the consumer's connections are up when it starts.
    queue
        .push(&[Item::new("before the outage").encode()])
        .await
        .unwrap();
    consumer.wait_consumed("the first item consumed", 1).await;

    let reason = match outage {
        Outage::Down => {
            redis.stop();
            "is unreachable"
        }
        Outage::Frozen => {
            redis.pause();
            "did not answer within"
        }
    };
    poll::until("unhealthy", Duration::from_secs(15), || async {
        get(format!("{}/healthz", consumer.base)).await.0 == 503
    })
    .await
    .unwrap();
    let (_, body) = get(format!("{}/healthz", consumer.base)).await;
    let expected = format!(
        "The server is unhealthy: Redis at {} {reason}",
        redis.address()
    );
    assert!(body.starts_with(&expected), "{body}");

    match outage {
        Outage::Down => redis.resume(),
        Outage::Frozen => redis.unpause(),
    }
    poll::until(
        "the item pushed after the outage queued",
        Duration::from_secs(15),
        || async {
            queue
                .push(&[Item::new("after the outage").encode()])
                .await
                .is_ok()
        },
    )
    .await
    .unwrap();
    poll::until("healthy again", Duration::from_secs(15), || async {
        get(format!("{}/healthz", consumer.base)).await.0 == 200
    })
    .await
    .unwrap();
    poll::until("the new item consumed", Duration::from_secs(15), || async {
        queue
            .lengths()
            .await
            .is_ok_and(|lengths| lengths == Lengths::default())
            && redis.cli(&["EXISTS", "padok"]) == "0"
    })
    .await
    .unwrap();
    consumer.stop().await;
}

#[tokio::test]
async fn reports_unhealthy_while_redis_is_down_and_resumes_alone() {
    reports_the_outage_and_resumes_alone(Outage::Down).await;
}

#[tokio::test]
async fn reports_a_frozen_redis_and_resumes_alone() {
    reports_the_outage_and_resumes_alone(Outage::Frozen).await;
}

#[tokio::test]
async fn consumes_over_tls_with_a_private_ca() {
    let redis = RedisServer::start_tls(&["--requirepass", "pw"]);
    let url = redis.tls_url().replace("rediss://", "rediss://:pw@");
    let ca = redis.ca_file().display().to_string();
    redis.cli(&["RPUSH", "padok", "over TLS"]);
    let consumer = start_with(&["--redis-server", &url, "--redis-ca", &ca, "--per-msg", "0"]).await;
    consumer
        .wait_consumed("the item consumed over TLS", 1)
        .await;
    assert_eq!(redis.cli(&["EXISTS", "padok"]), "0");
    consumer.stop().await;
}

#[test]
fn flags_refuse_blank_names_and_non_positive_numbers_in_one_line() {
    let args = parse(&[]).unwrap();
    assert_eq!((args.concurrency, args.lease), (1, Duration::from_secs(10)));
    for (flags, first_line) in [
        (
            &["--consumer-id", ""][..],
            "error: invalid value '' for '--consumer-id <CONSUMER_ID>': must not be empty",
        ),
        (
            &["--redis-queue", " "],
            "error: invalid value ' ' for '--redis-queue <REDIS_QUEUE>': must not be empty",
        ),
        (
            &["--concurrency", "0"],
            "error: invalid value '0' for '--concurrency <CONCURRENCY>': must be a positive integer (digits only)",
        ),
        (
            &["--concurrency", "-3"],
            "error: invalid value '-3' for '--concurrency <CONCURRENCY>': must be a positive integer (digits only)",
        ),
        (
            &["--lease", "-1s"],
            "error: invalid value '-1s' for '--lease <LEASE>': invalid duration \"-1s\": negative",
        ),
        (
            &["--per-msg", "-250ms"],
            "error: invalid value '-250ms' for '--per-msg <PER_MSG>': invalid duration \"-250ms\": negative",
        ),
    ] {
        let error = parse(flags).err().unwrap();
        assert_eq!(error.lines().next(), Some(first_line), "{flags:?}: {error}");
    }
}

#[tokio::test]
async fn a_lease_under_30ms_is_refused_naming_the_flag() {
    let args = parse(&["--lease", "10ms", "--http", "127.0.0.1:0"]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_stop, shutdown) = Shutdown::new();
    let error = ebb_consumer::serve(args, listener, shutdown)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "--lease 10ms is too short: use at least 30ms (heartbeats go every third of it, and a pop waits in Redis at most a sixth)"
    );
}
