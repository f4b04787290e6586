//! Authentication as a Kubernetes aggregated API server does it (the "requestheader"
//! authenticator): a request is from the front proxy (the kube-apiserver) when its client
//! certificate chains to the requestheader CA and its common name is allowed; the user it acts
//! for is then read from the `X-Remote-User`, `X-Remote-Group`, `X-Remote-Uid` and
//! `X-Remote-Extra-<key>` headers (or the header names the ConfigMap gives).
//!
//! The CA and the names come from files (`--requestheader-client-ca-file`,
//! `--requestheader-allowed-names`) or, by default, from the ConfigMap
//! `kube-system/extension-apiserver-authentication`; re-read every [`FILE_RELOAD_INTERVAL`]
//! (files) or [`CONFIG_MAP_RELOAD_INTERVAL`] (ConfigMap).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ebb_runtime::Shutdown;
use http::HeaderMap;
use k8s_openapi::api::core::v1::ConfigMap;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use crate::tls::{FILE_RELOAD_INTERVAL, certificates, provider};
use crate::{Error, Result};

const CONFIG_MAP_NAMESPACE: &str = "kube-system";
const CONFIG_MAP_NAME: &str = "extension-apiserver-authentication";
/// How often the ConfigMap is read again (one GET to the API server each time).
pub const CONFIG_MAP_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the requestheader settings come from.
#[derive(Clone)]
pub enum Origin {
    Files {
        ca: PathBuf,
        allowed_names: Vec<String>,
    },
    ConfigMap(kube::Client),
}

/// One version of the requestheader settings.
pub struct RequestHeader {
    verifier: Arc<dyn ClientCertVerifier>,
    allowed_names: Vec<String>,
    username_headers: Vec<String>,
    group_headers: Vec<String>,
    uid_headers: Vec<String>,
    extra_prefixes: Vec<String>,
    /// What it was built from, to notice a change.
    source: (Vec<u8>, Vec<String>, Vec<Vec<String>>),
}

/// The user a request acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    pub uid: Option<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The group every authenticated user belongs to. Kubernetes' authenticators never send it in
/// `X-Remote-Group` (the kube-apiserver's own discovery and OpenAPI requests, as
/// `system:aggregator`, carry no group at all); Go's `authenticatedGroupAdder` adds it after
/// authentication, and the cluster's RBAC (`system:discovery`, `system:public-info-viewer`)
/// grants discovery and `/openapi` to it, so without it the SubjectAccessReview denies them.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// How long a verdict on a connection's certificate holds while the settings do not change.
pub const VERDICT_FOR: Duration = Duration::from_secs(10);

/// The client certificate chain a connection presented, and the latest verdict on it.
pub struct ClientChain {
    chain: Option<Vec<CertificateDer<'static>>>,
    verdict: Mutex<Option<(Arc<RequestHeader>, Instant, Peer)>>,
}

impl ClientChain {
    pub fn new(chain: Option<&[CertificateDer<'static>]>) -> ClientChain {
        ClientChain {
            chain: chain.map(<[_]>::to_vec),
            verdict: Mutex::new(None),
        }
    }
}

/// Who is at the other end of a connection.
#[derive(Debug, Clone)]
pub enum Peer {
    /// A client certificate that chains to the requestheader CA, with an allowed name.
    FrontProxy,
    /// Why not.
    Anonymous(String),
}

pub struct Authenticator {
    current: RwLock<Arc<RequestHeader>>,
    origin: Origin,
}

impl Authenticator {
    /// Loads the settings once; fails when they cannot be read at start.
    pub async fn new(origin: Origin) -> Result<Authenticator> {
        let settings = load(&origin).await?;
        Ok(Authenticator {
            current: RwLock::new(Arc::new(settings)),
            origin,
        })
    }

    fn current(&self) -> Arc<RequestHeader> {
        self.current.read().expect("authn lock").clone()
    }

    /// Re-reads the settings periodically; failures keep the loaded ones.
    pub async fn reload_until(&self, shutdown: Shutdown) {
        let every = match self.origin {
            Origin::Files { .. } => FILE_RELOAD_INTERVAL,
            Origin::ConfigMap(_) => CONFIG_MAP_RELOAD_INTERVAL,
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = shutdown.requested() => return,
            }
            match load(&self.origin).await {
                Ok(settings) if settings.source != self.current().source => {
                    *self.current.write().expect("authn lock") = Arc::new(settings);
                    tracing::info!("requestheader CA and allowed names reloaded");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!("keeping the loaded requestheader settings: {error}"),
            }
        }
    }

    /// Who is at the other end of `connection`: judged again when the requestheader
    /// settings changed since the last verdict, or after [`VERDICT_FOR`] (a certificate
    /// expires, a CA is rotated out: kept-alive connections are not trusted forever).
    pub fn peer(&self, connection: &ClientChain) -> Peer {
        let settings = self.current();
        let mut verdict = connection.verdict.lock().expect("verdict lock");
        if let Some((judged_with, at, peer)) = &*verdict
            && Arc::ptr_eq(judged_with, &settings)
            && at.elapsed() < VERDICT_FOR
        {
            return peer.clone();
        }
        let peer = judge(&settings, connection.chain.as_deref());
        *verdict = Some((settings, Instant::now(), peer.clone()));
        peer
    }

    /// The user named by the headers of a front-proxy request.
    pub fn user(&self, headers: &HeaderMap) -> std::result::Result<User, String> {
        let settings = self.current();
        let values = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .flat_map(|name| headers.get_all(name.as_str()))
                .filter_map(|value| value.to_str().ok())
                .map(str::to_owned)
                .collect()
        };
        let Some(name) = values(&settings.username_headers)
            .into_iter()
            .find(|name| !name.is_empty())
        else {
            return Err(format!(
                "no user in the {} header",
                settings.username_headers.join("/")
            ));
        };
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (header, value) in headers {
            let Ok(value) = value.to_str() else { continue };
            for prefix in &settings.extra_prefixes {
                if let Some(key) = header.as_str().strip_prefix(&prefix.to_ascii_lowercase()) {
                    // Keys are percent-encoded in header names, as the Go front proxy writes them.
                    let key = percent_encoding::percent_decode_str(key)
                        .decode_utf8_lossy()
                        .to_lowercase();
                    extra.entry(key).or_default().push(value.to_owned());
                }
            }
        }
        let mut groups = values(&settings.group_headers);
        if !groups.iter().any(|group| group == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.to_owned());
        }
        Ok(User {
            name,
            groups,
            uid: values(&settings.uid_headers).into_iter().next(),
            extra,
        })
    }
}

/// A client certificate chain against one version of the settings.
fn judge(settings: &RequestHeader, chain: Option<&[CertificateDer<'static>]>) -> Peer {
    let Some((end_entity, intermediates)) = chain.and_then(|chain| chain.split_first()) else {
        return Peer::Anonymous("no client certificate".to_owned());
    };
    if let Err(error) =
        settings
            .verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
    {
        return Peer::Anonymous(format!(
            "the client certificate is not signed by the requestheader CA: {error}"
        ));
    }
    if settings.allowed_names.is_empty() {
        return Peer::FrontProxy;
    }
    match common_name(end_entity) {
        Some(name) if settings.allowed_names.contains(&name) => Peer::FrontProxy,
        Some(name) => Peer::Anonymous(format!(
            "the client certificate's common name {name:?} is not an allowed requestheader name"
        )),
        None => Peer::Anonymous("the client certificate has no common name".to_owned()),
    }
}

fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|name| name.as_str().ok())
        .map(str::to_owned)
}

async fn load(origin: &Origin) -> Result<RequestHeader> {
    match origin {
        Origin::Files { ca, allowed_names } => {
            let pem = std::fs::read(ca).map_err(|source| Error::ReadFile {
                path: ca.clone(),
                source,
            })?;
            build(
                pem,
                &ca.display().to_string(),
                allowed_names.clone(),
                [
                    vec!["X-Remote-User".to_owned()],
                    vec!["X-Remote-Group".to_owned()],
                    vec!["X-Remote-Uid".to_owned()],
                    vec!["X-Remote-Extra-".to_owned()],
                ],
            )
        }
        Origin::ConfigMap(client) => {
            let api: kube::Api<ConfigMap> =
                kube::Api::namespaced(client.clone(), CONFIG_MAP_NAMESPACE);
            let map = api.get(CONFIG_MAP_NAME).await?;
            let data = map.data.unwrap_or_default();
            let missing = |key: &str| {
                Error::AuthenticationConfigMap(format!(
                    "no {key} (is the kube-apiserver started with --requestheader-client-ca-file?)"
                ))
            };
            let ca = data
                .get("requestheader-client-ca-file")
                .ok_or_else(|| missing("requestheader-client-ca-file"))?;
            let list = |key: &str, default: &str| -> Result<Vec<String>> {
                match data.get(key) {
                    None => Ok(if default.is_empty() {
                        Vec::new()
                    } else {
                        vec![default.to_owned()]
                    }),
                    Some(text) => serde_json::from_str(text).map_err(|error| {
                        Error::AuthenticationConfigMap(format!(
                            "{key} is not a JSON list of strings: {error}"
                        ))
                    }),
                }
            };
            build(
                ca.clone().into_bytes(),
                &format!("ConfigMap {CONFIG_MAP_NAMESPACE}/{CONFIG_MAP_NAME}"),
                list("requestheader-allowed-names", "")?,
                [
                    list("requestheader-username-headers", "X-Remote-User")?,
                    list("requestheader-group-headers", "X-Remote-Group")?,
                    list("requestheader-uid-headers", "X-Remote-Uid")?,
                    list("requestheader-extra-headers-prefix", "X-Remote-Extra-")?,
                ],
            )
        }
    }
}

fn build(
    ca_pem: Vec<u8>,
    origin: &str,
    allowed_names: Vec<String>,
    headers: [Vec<String>; 4],
) -> Result<RequestHeader> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(&ca_pem, origin)? {
        roots.add(cert)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|error| Error::Pem {
            path: origin.to_owned(),
            reason: error.to_string(),
        })?;
    let [username_headers, group_headers, uid_headers, extra_prefixes] = headers.clone();
    Ok(RequestHeader {
        verifier,
        allowed_names: allowed_names.clone(),
        username_headers,
        group_headers,
        uid_headers,
        extra_prefixes,
        source: (ca_pem, allowed_names, headers.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn authenticator() -> (tempfile::TempDir, Authenticator) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca = dir.path().join("ca.pem");
        let certified = rcgen::generate_simple_self_signed(vec!["front-proxy-ca".to_owned()])
            .expect("a self-signed CA");
        std::fs::write(&ca, certified.cert.pem()).expect("the CA written");
        let authenticator = Authenticator::new(Origin::Files {
            ca,
            allowed_names: Vec::new(),
        })
        .await
        .expect("the requestheader settings");
        (dir, authenticator)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().expect("a header value"));
        }
        headers
    }

    #[tokio::test]
    async fn a_user_without_groups_is_in_system_authenticated() {
        // What the kube-apiserver sends when it fetches /apis and /openapi/v2 for itself.
        let (_dir, authenticator) = authenticator().await;
        let user = authenticator
            .user(&headers(&[("X-Remote-User", "system:aggregator")]))
            .expect("a user");
        assert_eq!(user.name, "system:aggregator");
        assert_eq!(user.groups, vec![AUTHENTICATED_GROUP.to_owned()]);
    }

    #[tokio::test]
    async fn system_authenticated_is_added_once_after_the_given_groups() {
        let (_dir, authenticator) = authenticator().await;
        let user = authenticator
            .user(&headers(&[
                (
                    "X-Remote-User",
                    "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                ),
                ("X-Remote-Group", "system:serviceaccounts"),
                ("X-Remote-Group", "system:serviceaccounts:kube-system"),
            ]))
            .expect("a user");
        assert_eq!(
            user.groups,
            vec![
                "system:serviceaccounts".to_owned(),
                "system:serviceaccounts:kube-system".to_owned(),
                AUTHENTICATED_GROUP.to_owned(),
            ]
        );
        let already = authenticator
            .user(&headers(&[
                ("X-Remote-User", "someone"),
                ("X-Remote-Group", AUTHENTICATED_GROUP),
                ("X-Remote-Group", "team"),
            ]))
            .expect("a user");
        assert_eq!(
            already.groups,
            vec![AUTHENTICATED_GROUP.to_owned(), "team".to_owned()]
        );
    }
}
