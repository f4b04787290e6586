//! The one outbound HTTP client of every source that speaks HTTP (Prometheus today, a
//! broker's management API next), built once per process with the rules a server chosen by a
//! QueueScaler's author must not be able to get around:
//!
//! - **No redirects.** A 3xx is an error naming its status: a redirect would let a server
//!   the operator was allowed to reach send it anywhere else (server-side request forgery).
//! - **A capped reply.** The body is read chunk by chunk against [`MAX_REPLY_BYTES`], and a
//!   `Content-Length` above it is refused before reading. Every reply being read also holds
//!   its bytes from one process-wide [`BUDGET_BYTES`]: a thousand scalers pointed at endless
//!   servers hold at most that much, not a thousand times the cap. A reply that finds the
//!   budget spent fails at once (and is retried at the next read) instead of waiting.
//! - **A timeout** ([`TIMEOUT`]) for the whole request, connection and body included.
//! - **No body text in errors.** A failure says what happened ("reply larger than 1 MiB",
//!   "HTTP 302 (a redirect, not followed)"); what a server sent never reaches an error, a log
//!   or a QueueScaler's status, where the author would read it. Request errors are shown
//!   without their URL (which may carry credentials) and with their causes.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Error, Result};

/// The largest reply body read: far above any query API's answer for one sample.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// Bytes of replies held at once by the whole process.
pub const BUDGET_BYTES: usize = 16 * MAX_REPLY_BYTES;

/// How long one request may take, connecting and reading the body included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The process's one client and its budget.
pub struct HttpClient {
    client: reqwest::Client,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    max_reply: usize,
}

/// A reply read whole: its status and body. The body's bytes stay counted against the budget
/// until the reply is dropped.
pub struct Reply {
    pub status: reqwest::StatusCode,
    pub body: Vec<u8>,
    _held: Option<OwnedSemaphorePermit>,
}

/// The shared client, built on first use.
pub fn shared() -> Result<&'static HttpClient> {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let built = HttpClient::new(MAX_REPLY_BYTES, BUDGET_BYTES)?;
    Ok(CLIENT.get_or_init(|| built))
}

impl HttpClient {
    /// A client with its own cap and budget; the process uses [`shared`].
    pub fn new(max_reply: usize, budget: usize) -> Result<HttpClient> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|error| Error::Http {
                server: "(none)".into(),
                reason: format!("building the HTTP client: {}", chain(&error)),
            })?;
        Ok(HttpClient {
            client,
            budget: Arc::new(Semaphore::new(budget)),
            budget_bytes: budget,
            max_reply,
        })
    }

    /// `GET url`, its reply read whole within the rules above. `server` is how errors name
    /// the server (redacted by the caller).
    pub async fn get(&self, url: reqwest::Url, server: &str) -> Result<Reply> {
        let failed = |reason: String| Error::Http {
            server: server.to_owned(),
            reason,
        };
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|error| failed(chain(&error)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(failed(format!(
                "answered HTTP {status} (a redirect, not followed)"
            )));
        }
        let too_large = || failed(format!("reply larger than {}", size(self.max_reply)));
        if response
            .content_length()
            .is_some_and(|length| length > self.max_reply as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut held: Option<OwnedSemaphorePermit> = None;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| failed(chain(&error)))?
        {
            if body.len() + chunk.len() > self.max_reply {
                return Err(too_large());
            }
            let more = u32::try_from(chunk.len()).map_err(|_| too_large())?;
            let permit = Arc::clone(&self.budget)
                .try_acquire_many_owned(more)
                .map_err(|_| {
                    failed(format!(
                        "too many replies being read at once (the process reads at most {} of replies at a time); retried at the next read",
                        size(self.budget_bytes)
                    ))
                })?;
            match &mut held {
                Some(held) => held.merge(permit),
                None => held = Some(permit),
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            body,
            _held: held,
        })
    }
}

/// `error` and its causes, one line, without the URL (it may carry credentials).
fn chain(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        format!("no complete reply within {TIMEOUT:?}")
    } else {
        let shown = error.url().map_or_else(
            || error.to_string(),
            |url| error.to_string().replace(&format!(" for url ({url})"), ""),
        );
        ebb_units::redact_urls(&shown)
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&ebb_units::redact_urls(&cause.to_string()));
        source = cause.source();
    }
    text
}

/// `bytes` as people read it (`1 MiB`, `512 KiB`, `100 bytes`).
fn size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}
