//! `ebb operator run` against a real control plane, as a QueueScaler author would attack it
//! (issue 18, items 1–3), one test per attack, on the binary's shared control plane, each in a
//! namespace with an operator of its own (the memory one measures its operator alone):
//!
//! - a bad address with `passwordFrom`: the Secret's value appears in no status, Event or log;
//! - `passwordFrom` (or a user:password) pointed at a listener of the test's own that is not
//!   on `--allowed-addresses`: the listener receives no connection, and the status says why;
//!   the same listener without credentials is read (any address is fine then);
//! - servers that never stop sending: the operator's resident memory stays flat while more
//!   than 100 MiB is offered to it.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use ebb_testkit::control_plane::Options;
use ebb_testkit::poll;
use ebb_testkit::scenario::condition;

use common::Ebb;
use common::operator::OperatorScenario;

const SECRET: &str = "pa55-Wo3d-never-shown";
const INLINE: &str = "inline-s3cret-never-shown";

/// What a listener of the test's own saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
}

/// A TCP listener on 127.0.0.1 that counts connections and the bytes it receives, and, when
/// `endless`, answers each connection with an HTTP reply whose body never ends.
fn listener(endless: bool) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let counted = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counted.connections.fetch_add(1, Ordering::SeqCst);
            let counted = Arc::clone(&counted);
            std::thread::spawn(move || {
                let mut buffer = [0; 4096];
                if !endless {
                    while let Ok(read @ 1..) = stream.read(&mut buffer) {
                        counted
                            .bytes_received
                            .fetch_add(read as u64, Ordering::SeqCst);
                    }
                    return;
                }
                if let Ok(read) = stream.read(&mut buffer) {
                    counted
                        .bytes_received
                        .fetch_add(read as u64, Ordering::SeqCst);
                }
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if stream.write_all(head).is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
                while stream.write_all(chunk.as_bytes()).is_ok() {
                    counted
                        .bytes_sent
                        .fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
            });
        }
    });
    (port, seen)
}

/// The Ready condition's message once it is False with a message containing `needle`.
async fn not_ready_with(scenario: &OperatorScenario, name: &str, needle: &str) -> String {
    let status = scenario
        .wait_for_status(
            name,
            &format!("not Ready, saying {needle:?}"),
            Duration::from_secs(60),
            |status| {
                condition(status, "Ready").as_deref() == Some("False")
                    && ready_message(status).contains(needle)
            },
        )
        .await;
    ready_message(&status)
}

fn ready_message(status: &serde_json::Value) -> String {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|condition| condition["type"] == "Ready")
        .and_then(|ready| ready["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A QueueScaler `name` in the scenario's namespace, reading `source` (YAML flow), and its own
/// Deployment `name` (one workload per scaler: a second scaler of one workload would stay
/// hands-off).
fn scaler(scenario: &OperatorScenario, name: &str, source: &str) -> String {
    format!(
        r#"{}
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: {name}, namespace: {}}}
spec:
  scaleTargetRef: {{name: {name}}}
  pollingIntervalSeconds: 1
  source: {source}
"#,
        scenario.deployment(name),
        scenario.namespace
    )
}

fn redis_with_password(address: &str) -> String {
    format!(
        r#"{{ebbQueue: {{queue: jobs, redis: {{address: "{address}", passwordFrom: {{name: redis-auth, key: password}}}}}}}}"#
    )
}

/// The operator's resident memory, in bytes (VmRSS of /proc/<pid>/status).
fn resident_bytes(operator: &Ebb) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", operator.pid())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

/// The scenario `namespace` of the test `test`: its operator sends credentials only to the
/// installer's Redis (the test's listeners are elsewhere) and to `closed`, a closed loopback
/// port, for an allowed server that is not there; the Secret `redis-auth` holds [`SECRET`].
async fn scenario(test: &str, namespace: &str, closed: u16) -> Option<OperatorScenario> {
    let allowed = format!("redis-master:6379,*.cache.svc,127.0.0.1:{closed}");
    let scenario = OperatorScenario::start(
        test,
        Options::default(),
        namespace,
        &[("EBB_ALLOWED_ADDRESSES", &allowed)],
    )
    .await?;
    scenario
        .apply(&format!(
            r#"
apiVersion: v1
kind: Secret
metadata: {{name: redis-auth, namespace: {namespace}}}
stringData: {{password: "{SECRET}"}}
"#
        ))
        .await;
    Some(scenario)
}

/// A bad address with `passwordFrom`: the Secret's value appears in no status, Event or log.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_address_with_a_password_never_shows_the_secret() {
    let closed = ebb_testkit::free_port();
    let Some(scenario) = scenario(
        "a_bad_address_with_a_password_never_shows_the_secret",
        "bad-address",
        closed,
    )
    .await
    else {
        return;
    };
    scenario
        .apply(&scaler(
            &scenario,
            "bad-port",
            &redis_with_password("redis-master:70000"),
        ))
        .await;
    let message = not_ready_with(&scenario, "bad-port", "redis-master:70000").await;
    assert!(message.contains("port \"70000\""), "{message}");
    scenario
        .apply(&scaler(
            &scenario,
            "bad-url",
            &redis_with_password(&format!("redis://:{INLINE}@redis-master:70000")),
        ))
        .await;
    let message = not_ready_with(&scenario, "bad-url", "invalid Redis server").await;
    assert!(
        message.contains("redis://***@redis-master:70000"),
        "{message}"
    );
    // Allowed and well-formed, so the password joins it; the server is not there.
    scenario
        .apply(&scaler(
            &scenario,
            "allowed-absent",
            &redis_with_password(&format!("127.0.0.1:{closed}")),
        ))
        .await;
    not_ready_with(&scenario, "allowed-absent", &format!("127.0.0.1:{closed}")).await;
    let everything = format!(
        "{}\n{}\n{}",
        // The statuses only: the spec holds what its author wrote (INLINE among it).
        scenario
            .kubectl(&["get", "qs", "-o", "jsonpath={.items[*].status}"])
            .await,
        scenario.kubectl(&["get", "events", "-o", "yaml"]).await,
        scenario.operator.logs().join("\n"),
    );
    // What is grepped holds the errors themselves.
    assert!(
        everything.contains("redis://***@redis-master:70000"),
        "{everything}"
    );
    for secret in [SECRET, INLINE] {
        assert!(
            !everything.contains(secret),
            "{secret} appears in the status, the Events or the operator's log"
        );
    }
}

/// `passwordFrom` (or a user:password) pointed at a listener of the test's own that is not
/// on `--allowed-addresses`: the listener receives no connection, and the status says why;
/// the same listener without credentials is read (any address is fine then).
#[tokio::test(flavor = "multi_thread")]
async fn a_password_goes_only_to_allowed_addresses() {
    let Some(scenario) = scenario(
        "a_password_goes_only_to_allowed_addresses",
        "exfiltrate",
        ebb_testkit::free_port(),
    )
    .await
    else {
        return;
    };
    let (port, seen) = listener(false);
    let mine = format!("127.0.0.1:{port}");
    scenario
        .apply(&scaler(
            &scenario,
            "exfiltrate",
            &redis_with_password(&mine),
        ))
        .await;
    let message = not_ready_with(&scenario, "exfiltrate", "--allowed-addresses").await;
    for part in [
        "spec.source.ebbQueue.redis.address",
        "spec.source.ebbQueue.redis.passwordFrom",
        mine.as_str(),
        "redis-master:6379,*.cache.svc",
        "urlFrom",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    scenario
        .apply(&scaler(
            &scenario,
            "exfiltrate-inline",
            &format!(
                r#"{{redisList: {{key: jobs, redis: {{address: "redis://:{INLINE}@{mine}"}}}}}}"#
            ),
        ))
        .await;
    let message = not_ready_with(&scenario, "exfiltrate-inline", "--allowed-addresses").await;
    assert!(
        message.contains("spec.source.redisList.redis.address (its user:password)"),
        "{message}"
    );
    scenario
        .apply(&scaler(
            &scenario,
            "exfiltrate-prometheus",
            &format!(
                r#"{{prometheus: {{serverAddress: "http://user:{INLINE}@{mine}", query: "vector(1)"}}}}"#
            ),
        ))
        .await;
    let message = not_ready_with(&scenario, "exfiltrate-prometheus", "--allowed-addresses").await;
    assert!(
        message.contains("spec.source.prometheus.serverAddress"),
        "{message}"
    );
    // The tasks retry their set-up (after 1 s, 2 s, …): let a few retries pass, then the
    // listener must still have seen nothing at all.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(seen.connections.load(Ordering::SeqCst), 0, "connections");
    assert_eq!(seen.bytes_received.load(Ordering::SeqCst), 0, "bytes");

    // Without credentials the same address is read: the listener does see the operator, so
    // the zero above is the allow-list's doing.
    scenario
        .apply(&scaler(
            &scenario,
            "no-credentials",
            &format!(r#"{{redisList: {{key: jobs, redis: {{address: "{mine}"}}}}}}"#),
        ))
        .await;
    poll::until(
        "the listener to see the credential-free scaler",
        Duration::from_secs(60),
        || async { seen.connections.load(Ordering::SeqCst) > 0 },
    )
    .await
    .unwrap();
}

/// What endless replies may add to the operator's resident memory, at most: the budget of
/// replies held at once (16 MiB) is well under it, the 100 MiB offered far above.
const GROWTH_LIMIT: u64 = 20 * 1024 * 1024;
const OFFERED: u64 = 100 * 1024 * 1024;

/// Servers that never stop sending: the operator's resident memory stays flat while more than
/// 100 MiB is offered to it.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_reply_keeps_the_operators_memory_flat() {
    let Some(scenario) = scenario(
        "an_endless_reply_keeps_the_operators_memory_flat",
        "endless",
        ebb_testkit::free_port(),
    )
    .await
    else {
        return;
    };
    let operator = &scenario.operator;
    let (port, seen) = listener(true);
    let before = resident_bytes(operator);
    let mut manifests = String::new();
    for n in 0..8 {
        manifests.push_str(&scaler(
            &scenario,
            &format!("endless-{n}"),
            &format!(
                r#"{{prometheus: {{serverAddress: "http://127.0.0.1:{port}", query: "vector(1)"}}}}"#
            ),
        ));
        manifests.push_str("---\n");
    }
    scenario.apply(&manifests).await;
    let message = not_ready_with(&scenario, "endless-0", "reply larger than 1 MiB").await;
    assert!(
        !message.contains("    "),
        "reply text in the status: {message}"
    );
    // Sampled at every look (every 250 ms) while the servers send.
    let peak = AtomicU64::new(before);
    poll::until(
        "100 MiB offered to the operator",
        Duration::from_secs(240),
        || async {
            let now = peak.fetch_max(resident_bytes(operator), Ordering::SeqCst);
            now > before + GROWTH_LIMIT || seen.bytes_sent.load(Ordering::SeqCst) > OFFERED
        },
    )
    .await
    .unwrap();
    let peak = peak.load(Ordering::SeqCst);
    let after = resident_bytes(operator);
    let peak = peak.max(after);
    let sent = seen.bytes_sent.load(Ordering::SeqCst);
    let connections = seen.connections.load(Ordering::SeqCst);
    eprintln!(
        "operator VmRSS: {} KiB before, {} KiB at the peak, {} KiB after; {} MiB sent over {connections} connections",
        before / 1024,
        peak / 1024,
        after / 1024,
        sent / (1024 * 1024)
    );
    assert!(
        peak.saturating_sub(before) < GROWTH_LIMIT,
        "the operator grew from {before} to {peak} bytes while {sent} bytes were offered"
    );
}
