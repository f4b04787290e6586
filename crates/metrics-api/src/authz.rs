//! Authorization by SubjectAccessReview, as delegated API servers do: the attributes of the
//! request (Kubernetes' RequestInfo rules) and the user from the front proxy, asked to the
//! kube-apiserver; answers cached for [`CACHE_FOR`] (the Go servers' default for both allowed
//! and denied), at most [`CACHE_MAX`] of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};

use crate::authn::User;
use crate::routes::RequestPath;

pub const CACHE_FOR: Duration = Duration::from_secs(10);
pub const CACHE_MAX: usize = 10_000;

/// What a request does, in SubjectAccessReview terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attributes {
    Resource {
        verb: &'static str,
        group: String,
        version: String,
        namespace: Option<String>,
        resource: String,
        name: Option<String>,
        subresource: Option<String>,
    },
    NonResource {
        path: String,
    },
}

impl Attributes {
    /// Kubernetes' RequestInfo for a GET: `/apis/<group>/<version>/[namespaces/<ns>/]<resource>
    /// [/<name>[/<subresource>]]` is a resource request (`get` with a name, `list` without);
    /// anything else is a non-resource path.
    pub fn of(path: &RequestPath) -> Attributes {
        let parts = path.segments();
        let ["apis", group, version, rest @ ..] = parts.as_slice() else {
            return Attributes::NonResource {
                path: path.decoded.clone(),
            };
        };
        let mut rest = rest;
        let mut namespace = None;
        if let ["namespaces", name, after @ ..] = rest {
            namespace = Some((*name).to_owned());
            if !after.is_empty() && !matches!(after[0], "status" | "finalize") {
                rest = after;
            }
        }
        match rest {
            [] => Attributes::NonResource {
                path: path.decoded.clone(),
            },
            [resource, more @ ..] => Attributes::Resource {
                verb: if more.is_empty() { "list" } else { "get" },
                group: (*group).to_owned(),
                version: (*version).to_owned(),
                namespace,
                resource: (*resource).to_owned(),
                name: more.first().map(|name| (*name).to_owned()),
                subresource: more.get(1).map(|name| (*name).to_owned()),
            },
        }
    }
}

/// A review's verdict.
#[derive(Debug, Clone)]
pub enum Decision {
    Allowed,
    Denied(String),
}

pub struct Authorizer {
    client: kube::Client,
    cache: Mutex<HashMap<(User, Attributes), (Decision, Instant)>>,
}

impl Authorizer {
    pub fn new(client: kube::Client) -> Authorizer {
        Authorizer {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn review(
        &self,
        user: &User,
        attributes: &Attributes,
    ) -> Result<Decision, kube::Error> {
        let key = (user.clone(), attributes.clone());
        if let Some((decision, at)) = self.cache.lock().expect("authz lock").get(&key)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(decision.clone());
        }
        let review = SubjectAccessReview {
            spec: spec(user, attributes),
            ..SubjectAccessReview::default()
        };
        let api: kube::Api<SubjectAccessReview> = kube::Api::all(self.client.clone());
        let answered = api
            .create(&kube::api::PostParams::default(), &review)
            .await?;
        let status = answered.status.unwrap_or_default();
        let decision = if status.allowed {
            Decision::Allowed
        } else {
            Decision::Denied(status.reason.unwrap_or_default())
        };
        let mut cache = self.cache.lock().expect("authz lock");
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_FOR);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, (decision.clone(), Instant::now()));
        Ok(decision)
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
    use super::*;

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
