//! `ebb inspect`, the real binary against a real Redis: a source written as a QueueScaler's
//! `spec.source` is read once, through the same catalogue as the operator, and printed as a
//! table or JSON with who holds what; unknown stays unknown, and a mistake is one line that
//! names the field.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use ebb_queue::{Item, Queue, RedisAddress};
use ebb_testkit::redis::RedisServer;
use serde_json::Value;

/// Runs `ebb inspect <args>` with `stdin`; success, stdout and stderr.
fn inspect(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ebb"))
        .arg("inspect")
        .args(args)
        .env("EBB_LOG", "error")
        .env_remove("EBB_REDIS_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ebb binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn queue_with_a_busy_and_an_idle_consumer(server: &RedisServer) {
    let address: RedisAddress = server.address().parse().unwrap();
    let queue = Queue::new(&address, "padok").unwrap();
    let items: Vec<String> = (0..5)
        .map(|n| Item::new(format!("item {n}")).encode())
        .collect();
    queue.push(&items).await.unwrap();
    let busy = queue
        .consumer_lease("consumer-busy", Duration::from_secs(600))
        .unwrap();
    let idle = queue
        .consumer_lease("consumer-idle", Duration::from_secs(600))
        .unwrap();
    idle.heartbeat().await.unwrap();
    for _ in 0..2 {
        busy.pop(Duration::ZERO).await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_prints_the_ebb_queue_with_who_holds_what_as_a_table_and_as_json() {
    let server = RedisServer::start();
    queue_with_a_busy_and_an_idle_consumer(&server).await;
    let source = format!(
        "{{ebbQueue: {{redis: {{address: \"{}\"}}, queue: padok}}}}",
        server.address()
    );

    let (ok, table, stderr) = inspect(&["--source", &source], "");
    assert!(ok, "{stderr}");
    assert!(table.contains("waiting      3\n"), "{table}");
    assert!(table.contains("in flight    2\n"), "{table}");
    let busy = table
        .lines()
        .find(|line| line.starts_with("consumer-busy"))
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(busy.split_whitespace().nth(1), Some("2"), "{table}");
    let idle = table
        .lines()
        .find(|line| line.starts_with("consumer-idle"))
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(
        idle.split_whitespace().collect::<Vec<_>>(),
        ["consumer-idle", "0", "-"]
    );

    // The same from a whole QueueScaler on standard input, as JSON.
    let scaler = format!(
        "apiVersion: ebb.dev/v1alpha1\nkind: QueueScaler\nmetadata: {{name: consumer}}\nspec:\n  scaleTargetRef: {{name: consumer}}\n  source: {source}\n"
    );
    let (ok, json, stderr) = inspect(&["-f", "-", "-o", "json"], &scaler);
    assert!(ok, "{stderr}");
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["waiting"], 3);
    assert_eq!(json["inFlight"], 2);
    assert_eq!(json["consumers"].as_array().unwrap().len(), 2, "{json}");
}

#[tokio::test(flavor = "multi_thread")]
async fn inspect_says_unknown_for_what_a_plain_list_cannot_tell() {
    let server = RedisServer::start();
    server.cli(&["RPUSH", "jobs", "a", "b"]);
    let source = format!(
        "{{redisList: {{redis: {{address: \"{}\"}}, key: jobs}}}}",
        server.address()
    );
    let (ok, table, stderr) = inspect(&["--source", &source], "");
    assert!(ok, "{stderr}");
    assert!(table.contains("waiting      2\n"), "{table}");
    assert!(table.contains("in flight    unknown\n"), "{table}");
    assert!(table.contains("consumers    unknown"), "{table}");
    let (ok, json, _) = inspect(&["--source", &source, "-o", "json"], "");
    assert!(ok);
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["inFlight"], Value::Null, "unknown, never 0");
}

#[test]
fn inspect_mistakes_are_one_line_naming_the_field() {
    for (args, expected) in [
        (
            vec![
                "--source",
                "{redisLsit: {redis: {address: r:6379}, key: jobs}}",
            ],
            r#"spec.source: --source: "redisLsit" is not a source; one of redisList"#,
        ),
        (
            vec!["--source", "{redisList: {redis: {address: r:6379}}}"],
            "spec.source: --source: missing field `key`",
        ),
        (
            vec![
                "--source",
                "{redisList: {redis: {urlFrom: {name: redis, key: url}}, key: jobs}}",
            ],
            "--redis-server: spec.source.redisList.redis.urlFrom: ebb inspect reads no Secret",
        ),
        (vec![], "--source: give the source"),
    ] {
        let (ok, _, stderr) = inspect(&args, "");
        assert!(!ok, "{args:?} succeeded");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.contains(expected), "{args:?}: {stderr}");
    }
}
