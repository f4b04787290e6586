//! What the harness's servers share: the test kit's one child-process wrapper
//! ([`Process`]: output kept, killed on drop), a free port, a private folder, and the wait
//! for a server's first 2xx.

use std::time::Duration;

use ebb_testkit::poll;
pub use ebb_testkit::process::Process;
use tempfile::TempDir;

use crate::{Error, Result};

pub use ebb_testkit::free_port;

/// A fresh private folder under the system temp dir for one test's files, removed when the
/// returned [`TempDir`] is dropped.
pub fn temp_dir(prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir()
        .map_err(|source| Error::Io {
            path: tempfile::env::temp_dir(),
            source,
        })
}

/// Waits (up to 30 s) until `url` answers 2xx, failing early with the process's output if it
/// exits.
pub async fn wait_http_ok(process: &Process, url: &str) -> Result<()> {
    let client = reqwest::Client::new();
    let answered = poll::until(
        &format!("{url} to answer 2xx"),
        Duration::from_secs(30),
        || {
            let client = &client;
            async move {
                if let Err(exited) = process.check_running() {
                    return Ok(Some(Err(exited)));
                }
                match client.get(url).send().await {
                    Ok(response) if response.status().is_success() => Ok(Some(Ok(()))),
                    answer => Err(format!("{answer:?}")),
                }
            }
        },
    )
    .await;
    match answered {
        Ok(done) => Ok(done?),
        Err(ebb_testkit::Error::Timeout { last, .. }) => Err(Error::NotReady {
            what: url.into(),
            last,
            tail: process.tail(20),
        }),
        Err(error) => Err(error.into()),
    }
}
