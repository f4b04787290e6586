//! Authorization by SubjectAccessReview, as delegated API servers do: the attributes of the
//! request (Kubernetes' RequestInfo rules) and the user from the front proxy, asked to the
//! kube-apiserver.
//!
//! Decisions are cached per (user, attributes), bounded per user and in all
//! (`decisions.rs`: one user's entries never evict another's), so that a request
//! seldom waits for the kube-apiserver (a review is a round trip to it, milliseconds to a
//! hundred under load, where an answer from the cache takes microseconds):
//! - an allowed decision is served for [`ALLOWED_FOR`](crate::review::ALLOWED_FOR) (the Go servers' default); a request
//!   that finds it older than [`REFRESH_AFTER`] starts a review in the background and is
//!   answered from the cache at once (refresh-ahead), so a steady caller never waits for one;
//! - a denial is served for [`DENIED_FOR`](crate::review::DENIED_FOR) only, and not refreshed ahead: a denied caller is
//!   usually waiting for an RBAC fix, which should show soon;
//! - requests that need the same review while it is under way share it: one review, however
//!   many wait;
//! - a failed review is not cached. A failed refresh is tried again no sooner than
//!   [`RETRY_AFTER`], and the decision it could not confirm still expires at [`ALLOWED_FOR`](crate::review::ALLOWED_FOR):
//!   after that requests wait for a new review and get its error (500), never the old verdict.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::authn::User;
use crate::decisions::{Decisions, Key, serve_for};
use crate::metrics::{ReviewLabels, ServerMetrics};
use crate::review::{Attributes, Decision, Outcome};
use crate::{Error, Result};

/// Age past which serving an allowed decision also starts its refresh.
pub const REFRESH_AFTER: Duration = Duration::from_secs(5);
/// Pause after a failed refresh before the next one.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Who decides: the kube-apiserver, by SubjectAccessReview.
pub trait Reviewer: Send + Sync + 'static {
    fn review(&self, user: &User, attributes: &Attributes) -> BoxFuture<'static, Result<Decision>>;
}

/// Asks the kube-apiserver with a SubjectAccessReview.
pub struct SubjectAccessReviewer(pub kube::Client);

impl Reviewer for SubjectAccessReviewer {
    fn review(&self, user: &User, attributes: &Attributes) -> BoxFuture<'static, Result<Decision>> {
        let review = SubjectAccessReview {
            spec: spec(user, attributes),
            ..SubjectAccessReview::default()
        };
        let api: kube::Api<SubjectAccessReview> = kube::Api::all(self.0.clone());
        Box::pin(async move {
            let answered = api
                .create(&kube::api::PostParams::default(), &review)
                .await
                .map_err(Error::Review)?;
            let status = answered.status.unwrap_or_default();
            Ok(if status.allowed {
                Decision::Allowed
            } else {
                Decision::Denied(status.reason.unwrap_or_default())
            })
        })
    }
}

struct Shared {
    reviewer: Box<dyn Reviewer>,
    slots: Mutex<Decisions>,
    metrics: ServerMetrics,
}

pub struct Authorizer(Arc<Shared>);

impl Authorizer {
    pub fn new(client: kube::Client, metrics: ServerMetrics) -> Authorizer {
        Authorizer::with_reviewer(SubjectAccessReviewer(client), metrics)
    }

    pub fn with_reviewer(reviewer: impl Reviewer, metrics: ServerMetrics) -> Authorizer {
        Authorizer(Arc::new(Shared {
            reviewer: Box::new(reviewer),
            slots: Mutex::new(Decisions::default()),
            metrics,
        }))
    }

    /// The decision for `user` doing `attributes`: from the cache when it holds one young
    /// enough (refreshing it ahead in the background when it ages), else from a review, shared
    /// with every other request waiting for the same one.
    pub async fn review(&self, user: &User, attributes: &Attributes) -> Outcome {
        let key = (user.clone(), attributes.clone());
        let mut outcome = {
            let mut slots = self.0.slots.lock().expect("authz lock");
            let now = Instant::now();
            let slot = slots.used(&key, now);
            if let Some((decision, at)) = &slot.decided {
                let age = now - *at;
                if age < serve_for(decision) {
                    let decision = decision.clone();
                    let retry_due = slot
                        .failed_at
                        .is_none_or(|failed| now - failed >= RETRY_AFTER);
                    if decision == Decision::Allowed
                        && age >= REFRESH_AFTER
                        && slot.pending.is_none()
                        && retry_due
                    {
                        slot.pending = Some(self.start(key, "background"));
                    }
                    return Ok(decision);
                }
            }
            match &slot.pending {
                Some(pending) => pending.clone(),
                None => {
                    let pending = self.start(key, "request");
                    slot.pending = Some(pending.clone());
                    pending
                }
            }
        };
        match outcome.wait_for(Option::is_some).await {
            Ok(answered) => answered
                .clone()
                .unwrap_or(Err(Arc::new(Error::ReviewAbandoned))),
            Err(_) => Err(Arc::new(Error::ReviewAbandoned)),
        }
    }

    /// Starts the review of `key` in its own task (it finishes, and is cached, even if the
    /// request that started it goes away); its outcome comes on the channel returned.
    fn start(&self, key: Key, waited_by: &'static str) -> watch::Receiver<Option<Outcome>> {
        let (answer, outcome) = watch::channel(None);
        let shared = self.0.clone();
        tokio::spawn(async move {
            let asked = Instant::now();
            let result = shared.reviewer.review(&key.0, &key.1).await;
            shared
                .metrics
                .review_latency
                .observe(asked.elapsed().as_secs_f64());
            shared
                .metrics
                .reviews
                .get_or_create(&ReviewLabels {
                    result: match &result {
                        Ok(Decision::Allowed) => "allowed",
                        Ok(Decision::Denied(_)) => "denied",
                        Err(_) => "error",
                    },
                    waited_by,
                })
                .inc();
            let result = result.map_err(Arc::new);
            {
                let mut slots = shared.slots.lock().expect("authz lock");
                // Evicted meanwhile: its waiters get the outcome, nothing is kept.
                if let Some(slot) = slots.get_mut(&key) {
                    slot.pending = None;
                    match &result {
                        Ok(decision) => {
                            slot.decided = Some((decision.clone(), asked));
                            slot.failed_at = None;
                        }
                        Err(error) => {
                            if waited_by == "background" {
                                tracing::warn!("refreshing an authorization decision: {error}");
                            }
                            slot.failed_at = Some(Instant::now());
                        }
                    }
                }
            }
            answer.send_replace(Some(result));
        });
        outcome
    }
}

fn spec(user: &User, attributes: &Attributes) -> SubjectAccessReviewSpec {
    let mut spec = SubjectAccessReviewSpec {
        user: Some(user.name.clone()),
        groups: Some(user.groups.clone()),
        uid: user.uid.clone(),
        extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        ..SubjectAccessReviewSpec::default()
    };
    match attributes {
        Attributes::Resource {
            verb,
            group,
            version,
            namespace,
            resource,
            name,
            subresource,
        } => {
            spec.resource_attributes = Some(ResourceAttributes {
                verb: Some((*verb).to_owned()),
                group: Some(group.clone()),
                version: Some(version.clone()),
                namespace: namespace.clone(),
                resource: Some(resource.clone()),
                name: name.clone(),
                subresource: subresource.clone(),
                ..ResourceAttributes::default()
            });
        }
        Attributes::NonResource { path } => {
            spec.non_resource_attributes = Some(NonResourceAttributes {
                path: Some(path.clone()),
                verb: Some("get".to_owned()),
            });
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::review::{ALLOWED_FOR, DENIED_FOR};
    use crate::routes::RequestPath;

    /// What the test's kube-apiserver answers, how slowly, and how often it was asked.
    #[derive(Clone)]
    struct Answering {
        answer: Arc<Mutex<std::result::Result<Decision, String>>>,
        takes: Duration,
        asked: Arc<AtomicUsize>,
    }

    impl Answering {
        fn new(takes: Duration) -> Answering {
            Answering {
                answer: Arc::new(Mutex::new(Ok(Decision::Allowed))),
                takes,
                asked: Arc::new(AtomicUsize::new(0)),
            }
        }

        fn will(&self, answer: std::result::Result<Decision, &str>) {
            *self.answer.lock().expect("answer lock") = answer.map_err(str::to_owned);
        }

        fn asked(&self) -> usize {
            self.asked.load(Ordering::SeqCst)
        }
    }

    impl Reviewer for Answering {
        fn review(&self, _: &User, _: &Attributes) -> BoxFuture<'static, Result<Decision>> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            let answer = self.answer.clone();
            let takes = self.takes;
            Box::pin(async move {
                tokio::time::sleep(takes).await;
                answer
                    .lock()
                    .expect("answer lock")
                    .clone()
                    .map_err(|unreachable| Error::Review(kube::Error::Service(unreachable.into())))
            })
        }
    }

    const REVIEW_TAKES: Duration = Duration::from_millis(50);

    fn authorizer() -> (Answering, Authorizer) {
        let answering = Answering::new(REVIEW_TAKES);
        let metrics =
            ServerMetrics::register(&mut prometheus_client::registry::Registry::default());
        (
            answering.clone(),
            Authorizer::with_reviewer(answering, metrics),
        )
    }

    fn hpa() -> User {
        User {
            name: "system:serviceaccount:kube-system:horizontal-pod-autoscaler".into(),
            groups: vec![
                "system:serviceaccounts".into(),
                "system:authenticated".into(),
            ],
            uid: None,
            extra: Default::default(),
        }
    }

    fn metric() -> Attributes {
        of(
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue",
        )
    }

    /// The outcome of one request, and how long (virtual time) it waited for it.
    async fn ask(authorizer: &Authorizer) -> (Outcome, Duration) {
        let started = Instant::now();
        let outcome = authorizer.review(&hpa(), &metric()).await;
        (outcome, started.elapsed())
    }

    /// Lets time pass (and the background reviews run) until `at` after `origin`.
    async fn until(origin: Instant, at: Duration) {
        tokio::time::sleep_until(origin + at).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_caller_never_waits_for_a_review() {
        let (answering, authorizer) = authorizer();
        let origin = Instant::now();
        let (outcome, waited) = ask(&authorizer).await;
        assert_eq!(outcome.expect("allowed"), Decision::Allowed);
        assert_eq!(
            waited, REVIEW_TAKES,
            "the first request waits for the first review"
        );
        assert_eq!(answering.asked(), 1);

        // One request every 100 ms for a minute: every one answered at once from the cache,
        // the decision refreshed ahead in the background about every REFRESH_AFTER.
        for step in 1..600u32 {
            until(origin, Duration::from_millis(100) * step).await;
            let (outcome, waited) = ask(&authorizer).await;
            assert_eq!(outcome.expect("allowed"), Decision::Allowed);
            assert_eq!(waited, Duration::ZERO, "request {step} waited for a review");
        }
        let refreshes = answering.asked() - 1;
        let expected = (60.0 / (REFRESH_AFTER + REVIEW_TAKES).as_secs_f64()) as usize;
        assert!(
            (expected - 1..=expected + 1).contains(&refreshes),
            "{refreshes} refreshes in a minute, expected about {expected}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_that_denies_takes_effect() {
        let (answering, authorizer) = authorizer();
        let origin = Instant::now();
        ask(&authorizer).await.0.expect("allowed");
        answering.will(Ok(Decision::Denied("RBAC changed".into())));
        until(origin, REFRESH_AFTER + Duration::from_millis(100)).await;
        let (outcome, waited) = ask(&authorizer).await;
        assert_eq!(
            outcome.expect("a decision"),
            Decision::Allowed,
            "served while refreshing"
        );
        assert_eq!(waited, Duration::ZERO);
        tokio::time::sleep(REVIEW_TAKES * 2).await;
        let (outcome, waited) = ask(&authorizer).await;
        assert_eq!(
            outcome.expect("a decision"),
            Decision::Denied("RBAC changed".into())
        );
        assert_eq!(waited, Duration::ZERO);
        assert_eq!(answering.asked(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_share_one_review() {
        let (answering, authorizer) = authorizer();
        let authorizer = Arc::new(authorizer);
        let asking: Vec<_> = (0..50)
            .map(|_| {
                let authorizer = authorizer.clone();
                tokio::spawn(async move { ask(&authorizer).await })
            })
            .collect();
        for request in asking {
            let (outcome, waited) = request.await.expect("the request's task");
            assert_eq!(outcome.expect("allowed"), Decision::Allowed);
            assert_eq!(waited, REVIEW_TAKES);
        }
        assert_eq!(answering.asked(), 1, "50 concurrent misses, one review");

        // Another user is another question.
        let other = User {
            name: "someone".into(),
            ..hpa()
        };
        authorizer.review(&other, &metric()).await.expect("allowed");
        assert_eq!(answering.asked(), 2);

        // Concurrent requests for an expired decision share one review too.
        tokio::time::sleep(ALLOWED_FOR).await;
        let asking: Vec<_> = (0..20)
            .map(|_| {
                let authorizer = authorizer.clone();
                tokio::spawn(async move { ask(&authorizer).await })
            })
            .collect();
        for request in asking {
            let (_, waited) = request.await.expect("the request's task");
            assert_eq!(waited, REVIEW_TAKES);
        }
        assert_eq!(answering.asked(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_decision_that_cannot_be_refreshed_expires() {
        let (answering, authorizer) = authorizer();
        let origin = Instant::now();
        ask(&authorizer).await.0.expect("allowed");
        answering.will(Err("the kube-apiserver is down"));

        // Still young: served, and each failed refresh is retried no sooner than RETRY_AFTER.
        until(origin, REFRESH_AFTER).await;
        while Instant::now() < origin + ALLOWED_FOR - Duration::from_millis(100) {
            let (outcome, waited) = ask(&authorizer).await;
            assert_eq!(outcome.expect("the cached decision"), Decision::Allowed);
            assert_eq!(waited, Duration::ZERO);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let refreshes = answering.asked() - 1;
        let bound = ((ALLOWED_FOR - REFRESH_AFTER).as_secs_f64()
            / (RETRY_AFTER + REVIEW_TAKES).as_secs_f64())
        .ceil() as usize;
        assert!(
            (1..=bound).contains(&refreshes),
            "{refreshes} failed refreshes in {:?}, at most {bound} expected",
            ALLOWED_FOR - REFRESH_AFTER
        );

        // Expired: the request waits for a review and gets its error, not the old decision;
        // so does the next one (failures are not cached).
        until(origin, ALLOWED_FOR).await;
        for _ in 0..2 {
            let before = answering.asked();
            let (outcome, waited) = ask(&authorizer).await;
            let error = outcome.expect_err("no decision to serve");
            assert!(
                error.to_string().contains("the kube-apiserver is down"),
                "{error}"
            );
            assert_eq!(waited, REVIEW_TAKES);
            assert_eq!(answering.asked(), before + 1);
        }

        // Back: the next request waits once, then the cache serves again.
        answering.will(Ok(Decision::Allowed));
        assert_eq!(
            ask(&authorizer).await.0.expect("allowed"),
            Decision::Allowed
        );
        let (outcome, waited) = ask(&authorizer).await;
        assert_eq!(outcome.expect("allowed"), Decision::Allowed);
        assert_eq!(waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_denial_is_kept_briefly_and_not_refreshed_ahead() {
        let (answering, authorizer) = authorizer();
        answering.will(Ok(Decision::Denied("no RBAC".into())));
        let origin = Instant::now();
        assert!(matches!(ask(&authorizer).await.0, Ok(Decision::Denied(_))));
        until(origin, DENIED_FOR - Duration::from_millis(100)).await;
        let (outcome, waited) = ask(&authorizer).await;
        assert!(matches!(outcome, Ok(Decision::Denied(_))));
        assert_eq!(waited, Duration::ZERO);
        assert_eq!(answering.asked(), 1, "a denial is not refreshed ahead");

        // The RBAC fix shows as soon as the denial expires.
        answering.will(Ok(Decision::Allowed));
        until(origin, DENIED_FOR + REVIEW_TAKES).await;
        let (outcome, waited) = ask(&authorizer).await;
        assert_eq!(outcome.expect("allowed"), Decision::Allowed);
        assert_eq!(waited, REVIEW_TAKES);
        assert_eq!(answering.asked(), 2);
    }

    fn of(path: &str) -> Attributes {
        Attributes::of(&RequestPath::parse(path).expect("a valid path"))
    }

    #[test]
    fn request_info_as_kubernetes_computes_it() {
        assert_eq!(
            of(
                "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/services/prometheus-redis-exporter/redis_items_in_queue"
            ),
            Attributes::Resource {
                verb: "get",
                group: "custom.metrics.k8s.io".into(),
                version: "v1beta1".into(),
                namespace: Some("default".into()),
                resource: "services".into(),
                name: Some("prometheus-redis-exporter".into()),
                subresource: Some("redis_items_in_queue".into()),
            }
        );
        assert_eq!(
            of("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/redis_items_in_queue"),
            Attributes::Resource {
                verb: "list",
                group: "external.metrics.k8s.io".into(),
                version: "v1beta1".into(),
                namespace: Some("default".into()),
                resource: "redis_items_in_queue".into(),
                name: None,
                subresource: None,
            }
        );
        assert_eq!(
            of("/apis/custom.metrics.k8s.io/v1beta1"),
            Attributes::NonResource {
                path: "/apis/custom.metrics.k8s.io/v1beta1".into()
            }
        );
        assert_eq!(
            of("/openapi/v2"),
            Attributes::NonResource {
                path: "/openapi/v2".into()
            }
        );
    }

    #[test]
    fn escaped_segments_are_reviewed_decoded() {
        // client-go's custom metrics client escapes the `*` of "every object".
        assert_eq!(
            of(
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/services/%2A/redis_items_in_queue"
            ),
            of(
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/services/*/redis_items_in_queue"
            ),
        );
        assert!(matches!(
            of("/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/services/%2a/m"),
            Attributes::Resource { name: Some(name), .. } if name == "*"
        ));
    }
}
