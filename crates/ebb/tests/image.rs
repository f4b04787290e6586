//! The ebb image (`scripts/image.sh`), built without a daemon from the release binary and run
//! with runc on the host network: small, non-root, labelled with its version; inside it Redis
//! is found by name (`localhost:<port>`) and reached over TLS (`rediss://` with a private CA).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ebb_testkit::control_plane;
use ebb_testkit::redis::RedisServer;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn image_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/image.sh")
}

/// A file of the image archive (`tar -xO`).
fn archive_file(archive: &Path, name: &str) -> serde_json::Value {
    let output = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(name)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "no {name} in {}",
        archive.display()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn blob(digest: &serde_json::Value) -> String {
    format!(
        "blobs/sha256/{}",
        digest.as_str().unwrap().trim_start_matches("sha256:")
    )
}

/// What running the image needs here, or why not (skipped loudly, or a failure under CI).
fn missing_tool() -> Option<String> {
    for tool in ["runc", "umoci", "gcc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            return Some(format!("{tool} is not installed (scripts/install-deps.sh)"));
        }
    }
    // /proc/self belongs to this process' effective user.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
    (uid != 0).then(|| "runc needs root".into())
}

/// `ebb producer` in the image, host network, a CA file mounted at /ca.crt when given.
struct ImageProducer {
    child: tokio::process::Child,
    url: String,
}

impl ImageProducer {
    async fn start(redis_server: &str, ca: Option<&Path>) -> ImageProducer {
        let port = ebb_testkit::free_port();
        let mut command = tokio::process::Command::new(image_script());
        command.arg("run");
        if let Some(ca) = ca {
            command.args(["-v", &format!("{}:/ca.crt", ca.display())]);
        }
        command
            .args(["--", "producer", &format!("--http=127.0.0.1:{port}")])
            .arg(format!("--redis-server={redis_server}"));
        if ca.is_some() {
            command.arg("--redis-ca=/ca.crt");
        }
        let child = command.stdin(Stdio::null()).spawn().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client
                .get(format!("{url}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return ImageProducer { child, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the producer in the image did not become healthy on {url} ({redis_server})");
    }

    async fn publish(&self) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/publish", self.url))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{response:?}");
        response.text().await.unwrap().trim_end().to_owned()
    }

    /// SIGTERM, forwarded to ebb in the container: it stops cleanly.
    async fn stop(mut self) {
        self.terminate();
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the image stops within 20 s of SIGTERM")
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

impl ImageProducer {
    fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
}

/// A failed test must not leave the container running (image.sh forwards SIGTERM to it).
impl Drop for ImageProducer {
    fn drop(&mut self) {
        self.terminate();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_is_small_non_root_labelled_and_reaches_redis_by_name_and_over_tls() {
    let test = "the_image_is_small_non_root_labelled_and_reaches_redis_by_name_and_over_tls";
    if let Some(reason) = missing_tool() {
        assert!(
            !ebb_testkit::under_ci(),
            "{test}: required under CI: {reason}"
        );
        eprintln!("\n!!!!!!!! SKIPPED {test}: {reason}\n");
        return;
    }
    let archive = control_plane::ebb_image().unwrap_or_else(|error| panic!("{test}: {error}"));

    let size = std::fs::metadata(&archive).unwrap().len();
    assert!(size < 20_000_000, "{} is {size} bytes", archive.display());
    let index = archive_file(&archive, "index.json");
    let manifest = archive_file(&archive, &blob(&index["manifests"][0]["digest"]));
    let config = archive_file(&archive, &blob(&manifest["config"]["digest"]));
    assert_eq!(config["config"]["User"], "65534:65534");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        control_plane::ebb_image_name().unwrap()
    );

    let redis = RedisServer::start_tls(&[]);
    let by_name = ImageProducer::start(&format!("localhost:{}", redis.port()), None).await;
    assert_eq!(by_name.publish().await, "Message published 👌");
    by_name.stop().await;
    assert_eq!(redis.cli(&["LLEN", "padok"]).trim(), "1");

    let tls_port = redis.tls_url().rsplit(':').next().unwrap().to_owned();
    let over_tls = ImageProducer::start(
        &format!("rediss://localhost:{tls_port}"),
        Some(&redis.ca_file()),
    )
    .await;
    assert_eq!(over_tls.publish().await, "Message published 👌");
    over_tls.stop().await;
    assert_eq!(redis.cli(&["LLEN", "padok"]).trim(), "2");
}
