//! What a request asks to do, in SubjectAccessReview terms, and what a review decided: the
//! words shared by the authorizer ([`crate::authz`]) and its cache ([`crate::decisions`]).

use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::routes::RequestPath;

/// How long an allowed decision is served.
pub const ALLOWED_FOR: Duration = Duration::from_secs(10);
/// How long a denial is served.
pub const DENIED_FOR: Duration = Duration::from_secs(2);

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Denied(String),
}

/// A review's outcome, shared by every request that waited for it.
pub type Outcome = std::result::Result<Decision, Arc<Error>>;
