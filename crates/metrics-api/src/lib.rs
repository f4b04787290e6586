//! `ebb metrics-api`: the custom and external metrics API (an aggregated API server the HPA
//! queries), read straight from the queue: no exporter, scrape, recording rule or adapter.
//!
//! ```text
//!  kube-apiserver (front proxy, client cert + X-Remote-*)        kubelet probes
//!        │ HTTPS                                                       │ /healthz /livez /readyz
//!        ▼                                                             ▼
//!  tls.rs (rustls; serving cert from files or self-signed; client cert optional at TLS)
//!        ▼
//!  authn.rs: chain to the requestheader CA + allowed CN ─▶ 401     (CA/names: files or the
//!        ▼    user/groups/uid/extra from X-Remote-*                 extension-apiserver-
//!  authz.rs: SubjectAccessReview, cached briefly ─▶ 403             authentication ConfigMap)
//!        ▼
//!  routes.rs: discovery, values, openapi ─▶ shapes.rs (upstream JSON) / Status 400 404 503
//!        │ lookups (never wait on a source, except a key's first read, bounded)
//!        ▼
//!  cache.rs ◀── poller.rs: every interval, every wanted probe read concurrently, one
//!                          RedisReader per server (ebb-autoscaler's sources), PromQL
//! ```
//!
//! What is served comes from the configuration ([`Config`], `default-config.yaml`): metrics,
//! the objects and namespaces they are attached to, the Redis keys they may read. Its own
//! Prometheus metrics are on a separate plain-HTTP port (`--metrics-port`).

mod args;
mod config;
mod error;

pub use args::MetricsApiArgs;
pub use config::{
    Config, DEFAULT_CONFIG, EmptyResult, KeyPattern, MetricRule, ObjectRef, QueueCount,
    SourceKind, StreamCount,
};
pub use error::{Error, Result};

/// Runs `ebb metrics-api` until `shutdown`.
pub async fn run(args: MetricsApiArgs, shutdown: ebb_runtime::Shutdown) -> Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::builtin(),
    };
    let _ = (config, shutdown);
    Err(Error::InvalidFlag {
        flag: "metrics-api",
        reason: "the server is not wired yet".to_owned(),
    })
}
