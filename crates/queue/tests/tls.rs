//! `rediss://` against a real TLS `redis-server` whose certificate comes from a throwaway CA.

use ebb_queue::{Item, Queue, RedisAddress};
use ebb_testkit::redis::RedisServer;

fn address(url: &str) -> RedisAddress {
    url.parse().unwrap()
}

#[tokio::test]
async fn insecure_fragment_skips_verification() {
    let server = RedisServer::start_tls(&[]);
    let queue = Queue::new(
        &address(&format!("{}/#insecure", server.tls_url())),
        "padok",
    )
    .unwrap();
    queue.push(&[Item::new("over TLS").encode()]).await.unwrap();
    assert_eq!(server.cli(&["LLEN", "padok"]), "1");
}

#[tokio::test]
async fn an_unknown_ca_is_refused_with_a_reason() {
    let server = RedisServer::start_tls(&[]);
    let queue = Queue::new(&address(&server.tls_url()), "padok").unwrap();
    let error = queue.ping().await.unwrap_err().to_string();
    assert!(error.contains("TLS handshake failed"), "{error}");
    assert!(error.contains("certificate"), "{error}");
}

#[tokio::test]
async fn a_private_ca_and_a_password_work() {
    let server = RedisServer::start_tls(&["--requirepass", "pw"]);
    let url = server.tls_url().replace("rediss://", "rediss://:pw@");
    let trusted = address(&url).trusting(&server.ca_file()).unwrap();
    let queue = Queue::new(&trusted, "padok").unwrap();
    queue.ping().await.unwrap();
    queue
        .push(&[Item::new("private CA").encode()])
        .await
        .unwrap();
    assert_eq!(queue.lengths().await.unwrap().waiting, 1);

    let wrong = address(&server.tls_url().replace("rediss://", "rediss://:nope@"))
        .trusting(&server.ca_file())
        .unwrap();
    let error = Queue::new(&wrong, "padok")
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert!(!error.to_string().contains("nope"), "{error}");
}

#[tokio::test]
async fn a_ca_file_that_cannot_serve_is_one_line() {
    let server = RedisServer::start_tls(&[]);
    let dir = server.ca_file().parent().unwrap().to_owned();
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    std::fs::write(
        dir.join("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    )
    .unwrap();
    for (url, file, reason) in [
        (server.tls_url(), dir.join("missing.pem"), "No such file"),
        (
            server.tls_url(),
            dir.join("empty.pem"),
            "no PEM certificate in it",
        ),
        (server.tls_url(), dir.join("garbage.pem"), "not PEM"),
        (
            server.address(),
            server.ca_file(),
            "is not a rediss:// (TLS) address",
        ),
    ] {
        let error = address(&url).trusting(&file).err().unwrap().to_string();
        assert!(error.starts_with("invalid --redis-ca"), "{error}");
        assert!(error.contains(reason), "{file:?}: {error}");
        assert!(!error.contains('\n'), "{error}");
    }
}
