//! The publish endpoints: validate, build the items, push them in one batch, answer.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use ebb_queue::{Batch, DEFAULT_PAYLOAD, Item, Queue};
use ebb_runtime::{Health, http, parse_positive};
use serde_json::json;

use crate::budget::{Budget, Busy, batch_cost};
use crate::commit::Committer;
use crate::metrics::{ProducerMetrics, RequestLabels};

/// Above this many items, building them is done off the async workers.
const BUILD_INLINE_UP_TO: usize = 1_000;

/// What one request may ask for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Items per request (`--max-batch`).
    pub(crate) max_batch: u64,
    /// Items × encoded bytes per request (`--max-batch-bytes`): what goes to Redis.
    pub(crate) max_batch_bytes: u64,
    /// Request body bytes (`--max-body-bytes`).
    pub(crate) max_body_bytes: u64,
}

#[derive(Clone)]
struct Publisher {
    committer: Committer,
    queue_name: Arc<str>,
    metrics: ProducerMetrics,
    limits: Limits,
    budget: Budget,
}

/// The producer's whole HTTP surface.
pub(crate) fn router(queue: Queue, health: Health, limits: Limits, budget: Budget) -> Router {
    let (metrics, exposition) = ProducerMetrics::register();
    let publisher = Publisher {
        queue_name: queue.name().into(),
        committer: Committer::start(queue, health.clone(), metrics.published.clone()),
        metrics,
        limits,
        budget,
    };
    let publish = Router::new()
        .route("/publish", post(publish_one))
        .route("/publish/{count}", post(publish_many))
        .layer(DefaultBodyLimit::max(
            usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX),
        ))
        .route_layer(middleware::from_fn_with_state(
            publisher.clone(),
            charge_the_body,
        ))
        .with_state(publisher);
    http::with_error_fallbacks(publish.merge(http::ops_router(health, exposition)))
}

/// Takes the body's share of `--max-in-flight-bytes` (its declared length, at most
/// `--max-body-bytes`) before the body is read, and holds it until the answer.
async fn charge_the_body(
    State(publisher): State<Publisher>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(publisher.limits.max_body_bytes);
    // A body above --max-body-bytes is refused by the extractor (413) once it reads that much.
    let share = declared.min(publisher.limits.max_body_bytes);
    match publisher.budget.take(share) {
        Ok(charge) => {
            let response = next.run(request).await;
            drop(charge);
            response
        }
        Err(busy) => {
            let started = Instant::now();
            let route = match request
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
            {
                Some("/publish/{count}") => "/publish/{count}",
                _ => "/publish",
            };
            let response = publisher.busy(request.headers(), &busy, share);
            publisher.observe(route, &response, started);
            response
        }
    }
}

// The body is taken as a `Result` so that a refused body (too large, cut short) gets the same
// one-line, negotiated answer as every other error, and is counted in the latency metric.

async fn publish_one(
    State(publisher): State<Publisher>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let response = publisher.publish(Ok(1), &headers, body).await;
    publisher.observe("/publish", &response, started);
    response
}

async fn publish_many(
    State(publisher): State<Publisher>,
    Path(count): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let count = parse_count(&count, publisher.limits.max_batch);
    let response = publisher.publish(count, &headers, body).await;
    publisher.observe("/publish/{count}", &response, started);
    response
}

/// A batch size from the URL: plain digits, positive, no larger than `--max-batch`.
fn parse_count(given: &str, max_batch: u64) -> Result<u64, String> {
    match parse_positive::<u64>(given) {
        Err(reason) => Err(format!("invalid count {given:?}: {reason}")),
        Ok(count) if count > max_batch => Err(format!(
            "count {count} is above the maximum batch of {max_batch} (--max-batch)"
        )),
        Ok(count) => Ok(count),
    }
}

impl Publisher {
    async fn publish(
        &self,
        count: Result<u64, String>,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Response {
        let count = match count {
            Ok(count) => count,
            Err(reason) => return http::error(headers, StatusCode::BAD_REQUEST, &reason),
        };
        let body = match body {
            Ok(body) => body,
            Err(rejection) => return self.refused_body(headers, &rejection),
        };
        let payload = match payload_of(&body) {
            Some(payload) => payload,
            None => {
                return http::error(
                    headers,
                    StatusCode::BAD_REQUEST,
                    "the request body is not UTF-8 text",
                );
            }
        };
        // What goes to Redis: each item's envelope (id, time, JSON-escaped payload), about
        // 90 bytes around a 1-byte body.
        let item_len = Batch::item_len(payload) as u64;
        let batch_bytes = count.saturating_mul(item_len);
        if batch_bytes > self.limits.max_batch_bytes {
            let reason = format!(
                "batch of {count} × {item_len} encoded bytes = {batch_bytes} bytes is above the maximum of {} bytes (--max-batch-bytes)",
                self.limits.max_batch_bytes
            );
            return http::error(headers, StatusCode::PAYLOAD_TOO_LARGE, &reason);
        }
        let cost = batch_cost(count, item_len);
        if cost > self.budget.limit() {
            let reason = format!(
                "batch of {count} × {item_len} encoded bytes needs {cost} bytes of memory to publish, above the {} bytes all publishes may hold (--max-in-flight-bytes)",
                self.budget.limit()
            );
            return http::error(headers, StatusCode::PAYLOAD_TOO_LARGE, &reason);
        }
        let charge = match self.budget.take(cost) {
            Ok(charge) => charge,
            Err(busy) => return self.busy(headers, &busy, cost),
        };
        // Within --max-batch-bytes, so within memory: the count fits a usize.
        let count = usize::try_from(count).expect("a batch that fits in memory");
        let batch = if count <= BUILD_INLINE_UP_TO {
            Batch::fresh(count, payload)
        } else {
            let body = body.clone();
            tokio::task::spawn_blocking(move || {
                Batch::fresh(count, payload_of(&body).expect("checked above"))
            })
            .await
            .expect("building items does not panic")
        };
        // Only JSON clients get the ids: decoding them costs more than a text answer.
        let ids = http::wants_json(headers).then(|| (id_of(&batch, 0), id_of(&batch, count - 1)));
        if let Err(error) = self.committer.commit(batch, charge).await {
            let reason = error.to_string();
            // 503 only when nothing can land, so that a retry never duplicates; when the
            // batch may have reached Redis (sent, then no answer or the connection lost),
            // 504 says so.
            return if outcome_unknown(&error) {
                let answer = format!("{reason}: the {count} item(s) may or may not be published");
                http::error(headers, StatusCode::GATEWAY_TIMEOUT, &answer)
            } else {
                let answer = format!("nothing published: {reason}");
                http::error(headers, StatusCode::SERVICE_UNAVAILABLE, &answer)
            };
        }
        let text = if count == 1 {
            "Message published 👌".to_owned()
        } else {
            format!("{count} messages published 👌")
        };
        let json = ids.map_or(serde_json::Value::Null, |(first_id, last_id)| {
            json!({
                "published": count,
                "queue": &*self.queue_name,
                "first_id": first_id,
                "last_id": last_id,
            })
        });
        http::negotiated(headers, StatusCode::OK, &text, json)
    }

    /// 429: the publishes in flight hold too much of `--max-in-flight-bytes` for this one.
    fn busy(&self, headers: &HeaderMap, busy: &Busy, needed: u64) -> Response {
        let reason = format!(
            "the producer is busy: publishes in flight hold {} of the {} bytes allowed (--max-in-flight-bytes) and this one needs {needed}; nothing published, try again",
            busy.used, busy.limit
        );
        let mut response = http::error(headers, StatusCode::TOO_MANY_REQUESTS, &reason);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }

    /// The answer to a body axum would not read: too large, or broken off.
    fn refused_body(&self, headers: &HeaderMap, rejection: &BytesRejection) -> Response {
        if let Some(cut) = http::body_timed_out(rejection) {
            return http::error(headers, cut.status(), &cut.to_string());
        }
        let status = rejection.status();
        let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the request body is above the maximum of {} bytes (--max-body-bytes)",
                self.limits.max_body_bytes
            )
        } else {
            rejection.body_text().replace('\n', " ")
        };
        http::error(headers, status, &reason)
    }

    fn observe(&self, route: &'static str, response: &Response, started: Instant) {
        self.metrics
            .request_duration
            .get_or_create(&RequestLabels {
                route,
                code: response.status().as_u16(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// True when the push may have been applied: every failure after the command could have been
/// written (no answer in time, the connection broken or timing out), as opposed to Redis'
/// own refusal or a connection that was never made.
fn outcome_unknown(error: &ebb_queue::Error) -> bool {
    use ebb_queue::RedisErrorKind;
    match error {
        ebb_queue::Error::NoAnswer { .. } => true,
        ebb_queue::Error::Redis { kind, .. } => matches!(
            **kind,
            RedisErrorKind::ConnectionLost { .. } | RedisErrorKind::Timeout { .. }
        ),
        _ => false,
    }
}

/// What each item carries: the body, or the dojo's payload when it is empty; `None` when the
/// body is not UTF-8.
fn payload_of(body: &[u8]) -> Option<&str> {
    match std::str::from_utf8(body) {
        Ok("") => Some(DEFAULT_PAYLOAD),
        Ok(text) => Some(text),
        Err(_) => None,
    }
}

/// The id of item `index` of a batch built here, for the JSON answer.
fn id_of(batch: &Batch, index: usize) -> String {
    batch
        .get(index)
        .and_then(|encoded| Item::decode(encoded).id)
        .expect("fresh items have ids")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(parse_count("1", 10), Ok(1));
        assert_eq!(parse_count("10", 10), Ok(10));
        for (given, reason) in [
            ("0", "must be a positive integer"),
            ("-3", "must be a positive integer"),
            ("+5", "must be a positive integer"),
            ("1.5", "must be a positive integer"),
            ("ten", "must be a positive integer"),
            ("99999999999999999999999", "is too large"),
            ("11", "above the maximum batch of 10"),
        ] {
            let error = parse_count(given, 10).unwrap_err();
            assert!(error.contains(reason), "{given}: {error}");
        }
    }
}
