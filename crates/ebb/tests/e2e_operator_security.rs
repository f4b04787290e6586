//! `ebb operator run` against a real control plane, as a QueueScaler author would attack it
//! (issue 18, items 1–3), in phases sharing one control plane and one operator:
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

use ebb_testkit::control_plane::{ControlPlane, Options, start_or_skip};

use common::Ebb;
use common::operator::{install_scaled_deployment, pod_less_deployment, start_operator};

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

async fn status_of(control_plane: &ControlPlane, name: &str) -> serde_json::Value {
    control_plane
        .get("queuescalers.ebb.dev", "attack", name)
        .await
        .map(|scaler| scaler["status"].clone())
        .unwrap_or_default()
}

/// The Ready condition's message once it is False with a message containing `needle`.
async fn not_ready_with(control_plane: &ControlPlane, name: &str, needle: &str) -> String {
    control_plane
        .wait_for(
            &format!("queuescaler attack/{name} not Ready, saying {needle:?}"),
            Duration::from_secs(60),
            || async {
                let status = status_of(control_plane, name).await;
                let ready = status["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|condition| condition["type"] == "Ready")
                    .cloned()
                    .unwrap_or_default();
                let message = ready["message"].as_str().unwrap_or_default().to_owned();
                if ready["status"] == "False" && message.contains(needle) {
                    Ok(Some(message))
                } else {
                    Err(format!("status: {status}"))
                }
            },
        )
        .await
        .unwrap()
}

/// A QueueScaler `name` in `attack`, reading `source` (YAML flow), and its own Deployment
/// `name` (one workload per scaler: a second scaler of one workload would stay hands-off).
fn scaler(name: &str, source: &str) -> String {
    format!(
        r#"{}
---
apiVersion: ebb.dev/v1alpha1
kind: QueueScaler
metadata: {{name: {name}, namespace: attack}}
spec:
  scaleTargetRef: {{name: {name}}}
  pollingIntervalSeconds: 1
  source: {source}
"#,
        pod_less_deployment("attack", name)
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

#[tokio::test(flavor = "multi_thread")]
async fn e2e_operator_security() {
    let Some(control_plane) = start_or_skip("e2e_operator_security", Options::default()).await
    else {
        return;
    };
    install_scaled_deployment(
        &control_plane,
        "attack",
        "worker",
        &format!(
            r#"
apiVersion: v1
kind: Secret
metadata: {{name: redis-auth, namespace: attack}}
stringData: {{password: "{SECRET}"}}
"#
        ),
    )
    .await;
    // Only the installer's Redis may receive credentials; the test's listeners are elsewhere.
    // …and one closed loopback port, for an allowed server that is not there.
    let closed = ebb_testkit::free_port();
    let kubeconfig = control_plane.kubeconfig.display().to_string();
    let operator = start_operator(
        "operator",
        &kubeconfig,
        &[(
            "EBB_ALLOWED_ADDRESSES",
            &format!("redis-master:6379,*.cache.svc,127.0.0.1:{closed}"),
        )],
    );

    a_bad_address_with_a_password_never_shows_the_secret(&control_plane, &operator, closed).await;
    a_password_goes_only_to_allowed_addresses(&control_plane).await;
    an_endless_reply_keeps_memory_flat(&control_plane, &operator).await;
}

async fn a_bad_address_with_a_password_never_shows_the_secret(
    control_plane: &ControlPlane,
    operator: &Ebb,
    closed: u16,
) {
    eprintln!("== a bad address with passwordFrom never shows the Secret");
    control_plane
        .apply(&scaler(
            "bad-port",
            &redis_with_password("redis-master:70000"),
        ))
        .await
        .unwrap();
    let message = not_ready_with(control_plane, "bad-port", "redis-master:70000").await;
    assert!(message.contains("port \"70000\""), "{message}");
    control_plane
        .apply(&scaler(
            "bad-url",
            &redis_with_password(&format!("redis://:{INLINE}@redis-master:70000")),
        ))
        .await
        .unwrap();
    let message = not_ready_with(control_plane, "bad-url", "invalid Redis server").await;
    assert!(
        message.contains("redis://***@redis-master:70000"),
        "{message}"
    );
    // Allowed and well-formed, so the password joins it; the server is not there.
    control_plane
        .apply(&scaler(
            "allowed-absent",
            &redis_with_password(&format!("127.0.0.1:{closed}")),
        ))
        .await
        .unwrap();
    not_ready_with(
        control_plane,
        "allowed-absent",
        &format!("127.0.0.1:{closed}"),
    )
    .await;
    let everything = format!(
        "{}\n{}\n{}",
        // The statuses only: the spec holds what its author wrote (INLINE among it).
        control_plane
            .kubectl(&["get", "qs", "-A", "-o", "jsonpath={.items[*].status}"])
            .await
            .unwrap(),
        control_plane
            .kubectl(&["get", "events", "-A", "-o", "yaml"])
            .await
            .unwrap(),
        operator.logs().join("\n"),
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
    for name in ["bad-port", "bad-url", "allowed-absent"] {
        control_plane
            .kubectl(&["delete", "qs", name, "-n", "attack"])
            .await
            .unwrap();
    }
}

async fn a_password_goes_only_to_allowed_addresses(control_plane: &ControlPlane) {
    eprintln!("== a password goes only to allowed addresses");
    let (port, seen) = listener(false);
    let mine = format!("127.0.0.1:{port}");
    control_plane
        .apply(&scaler("exfiltrate", &redis_with_password(&mine)))
        .await
        .unwrap();
    let message = not_ready_with(control_plane, "exfiltrate", "--allowed-addresses").await;
    for part in [
        "spec.source.ebbQueue.redis.address",
        "spec.source.ebbQueue.redis.passwordFrom",
        mine.as_str(),
        "redis-master:6379,*.cache.svc",
        "urlFrom",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    control_plane
        .apply(&scaler(
            "exfiltrate-inline",
            &format!(
                r#"{{redisList: {{key: jobs, redis: {{address: "redis://:{INLINE}@{mine}"}}}}}}"#
            ),
        ))
        .await
        .unwrap();
    let message = not_ready_with(control_plane, "exfiltrate-inline", "--allowed-addresses").await;
    assert!(
        message.contains("spec.source.redisList.redis.address (its user:password)"),
        "{message}"
    );
    control_plane
        .apply(&scaler(
            "exfiltrate-prometheus",
            &format!(
                r#"{{prometheus: {{serverAddress: "http://user:{INLINE}@{mine}", query: "vector(1)"}}}}"#
            ),
        ))
        .await
        .unwrap();
    let message = not_ready_with(
        control_plane,
        "exfiltrate-prometheus",
        "--allowed-addresses",
    )
    .await;
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
    control_plane
        .apply(&scaler(
            "no-credentials",
            &format!(r#"{{redisList: {{key: jobs, redis: {{address: "{mine}"}}}}}}"#),
        ))
        .await
        .unwrap();
    control_plane
        .wait_for(
            "the listener to see the credential-free scaler",
            Duration::from_secs(60),
            || async { Ok((seen.connections.load(Ordering::SeqCst) > 0).then_some(())) },
        )
        .await
        .unwrap();
    for name in [
        "exfiltrate",
        "exfiltrate-inline",
        "exfiltrate-prometheus",
        "no-credentials",
    ] {
        control_plane
            .kubectl(&["delete", "qs", name, "-n", "attack"])
            .await
            .unwrap();
    }
}

/// What endless replies may add to the operator's resident memory, at most: the budget of
/// replies held at once (16 MiB) is well under it, the 100 MiB offered far above.
const GROWTH_LIMIT: u64 = 20 * 1024 * 1024;
const OFFERED: u64 = 100 * 1024 * 1024;

async fn an_endless_reply_keeps_memory_flat(control_plane: &ControlPlane, operator: &Ebb) {
    eprintln!("== an endless reply keeps memory flat");
    let (port, seen) = listener(true);
    let before = resident_bytes(operator);
    let mut manifests = String::new();
    for n in 0..8 {
        manifests.push_str(&scaler(
            &format!("endless-{n}"),
            &format!(
                r#"{{prometheus: {{serverAddress: "http://127.0.0.1:{port}", query: "vector(1)"}}}}"#
            ),
        ));
        manifests.push_str("---");
    }
    control_plane.apply(&manifests).await.unwrap();
    let message = not_ready_with(control_plane, "endless-0", "reply larger than 1 MiB").await;
    assert!(
        !message.contains("    "),
        "reply text in the status: {message}"
    );
    // Sampled at every look (every 250 ms) while the servers send.
    let peak = AtomicU64::new(before);
    control_plane
        .wait_for(
            "100 MiB offered to the operator",
            Duration::from_secs(240),
            || async {
                let now = peak.fetch_max(resident_bytes(operator), Ordering::SeqCst);
                if now > before + GROWTH_LIMIT {
                    return Ok(Some(()));
                }
                let sent = seen.bytes_sent.load(Ordering::SeqCst);
                Ok((sent > OFFERED).then_some(()))
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
