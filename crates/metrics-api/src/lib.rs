//! `ebb metrics-api`: the custom and external metrics API (an aggregated API server the HPA
//! queries), read straight from the queue: no exporter, scrape, recording rule or adapter.
//!
//! ```text
//!  kube-apiserver (front proxy, client cert + X-Remote-*)        kubelet probes
//!        │ HTTPS                                                       │ /healthz /livez /readyz
//!        ▼                                                             ▼
//!  tls.rs (rustls; serving cert from files or self-signed; client cert optional at TLS)
//!        ▼
//!  server.rs ─ authn.rs: chain to the requestheader CA + allowed CN ─▶ 401  (CA, names: files
//!        │              user/groups/uid/extra from X-Remote-*               or the extension-
//!        │   authz.rs: SubjectAccessReview, cached briefly ─▶ 403           apiserver-authentication
//!        ▼                                                                  ConfigMap, reloaded)
//!  routes.rs: discovery, values ─▶ shapes.rs (upstream JSON), Status 400 404 503; openapi.rs
//!        │ `*` + labelSelector: objects.rs lists the objects (metadata, bounded) from the API server
//!        │ lookups: never wait on a source, except a new probe's first read (bounded)
//!        ▼
//!  cache.rs ◀── poller.rs: every interval, every probe read concurrently (probe.rs: the
//!                          ebb-autoscaler sources, one RedisReader per server; PromQL)
//!
//!  --metrics-port (plain HTTP): /metrics (metrics.rs), /healthz
//! ```
//!
//! What is served comes from the configuration ([`Config`], `default-config.yaml`, README):
//! metrics, the objects and namespaces they are attached to, the Redis keys they may read.

mod args;
mod authn;
mod authz;
mod cache;
mod config;
mod decisions;
mod error;
mod metrics;
mod objects;
mod openapi;
mod poller;
mod probe;
mod review;
mod routes;
mod selector;
mod server;
mod shapes;
mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ebb_runtime::{Health, Shutdown, http};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

pub use args::MetricsApiArgs;
pub use config::{Config, DEFAULT_CONFIG, KeyPattern, MetricRule, ObjectRef};
pub use error::{Error, Result};

/// Runs `ebb metrics-api` until `shutdown`.
pub async fn run(args: MetricsApiArgs, shutdown: Shutdown) -> Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::builtin(),
    };
    // The ports first: a taken one fails at once, naming its flag.
    let secure = bind(
        SocketAddr::new(args.bind_address, args.secure_port),
        "--secure-port",
    )
    .await?;
    let plain = bind(
        SocketAddr::new(args.bind_address, args.metrics_port),
        "--metrics-port",
    )
    .await?;
    serve(args, config, secure, plain, shutdown).await
}

async fn bind(address: SocketAddr, flag: &'static str) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|source| Error::Bind {
            flag,
            address: address.to_string(),
            source,
        })
}

/// Serves `config` on the given listeners (HTTPS API, plain metrics) until `shutdown`; the
/// rest of `args` (certificates, requestheader settings, kubeconfigs, Redis) as given.
pub async fn serve(
    args: MetricsApiArgs,
    config: Config,
    secure: TcpListener,
    plain: TcpListener,
    shutdown: Shutdown,
) -> Result<()> {
    let tls = Arc::new(tls::Tls::new(
        match (&args.tls_cert_file, &args.tls_private_key_file) {
            (Some(cert), Some(key)) => tls::ServingCert::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => tls::ServingCert::SelfSigned,
        },
    )?);
    let authn_origin = match &args.requestheader_client_ca_file {
        Some(ca) => authn::Origin::Files {
            ca: ca.clone(),
            allowed_names: args.requestheader_allowed_names.clone(),
        },
        None => authn::Origin::ConfigMap(
            kube_client(
                args.authentication_kubeconfig
                    .as_deref()
                    .or(args.kubeconfig.as_deref()),
                "--authentication-kubeconfig",
            )
            .await?,
        ),
    };
    let authn = authn::Authenticator::new(authn_origin).await?;
    let mut registry = Registry::default();
    let server_metrics = metrics::ServerMetrics::register(&mut registry);
    let authz = authz::Authorizer::new(
        kube_client(
            args.authorization_kubeconfig
                .as_deref()
                .or(args.kubeconfig.as_deref()),
            "--authorization-kubeconfig",
        )
        .await?,
        server_metrics.clone(),
    );
    let address = args.redis_address()?;
    let readers = ebb_sources::Redis {
        reader: ebb_queue::RedisReader::new(&address)?,
        address,
    };
    let cache = Arc::new(cache::Cache::new(
        readers,
        cache::Limits {
            max_age: config.max_age,
            first_read_wait: config.first_read_wait,
            learned_max: config.learned_keys_max,
            learned_expire_after: config.learned_keys_expire_after,
        },
        server_metrics.clone(),
    ));
    for probe in probe::configured_probes(&config) {
        cache.pin(probe)?;
    }
    let interval = config.interval;
    let server = Arc::new(server::Server {
        api: routes::Api {
            config,
            cache: cache.clone(),
            lister: objects::ObjectLister::new(args.kubeconfig.clone()),
        },
        authn,
        authz,
        metrics: server_metrics,
    });
    let health = Health::new();
    health.set_healthy();
    let ops = http::with_error_fallbacks(http::ops_router(
        health,
        ebb_runtime::Metrics::new(registry),
    ));
    tracing::info!(
        "ebb metrics-api: HTTPS on {}, metrics on {}",
        secure.local_addr().map_err(Error::Serve)?,
        plain.local_addr().map_err(Error::Serve)?
    );
    let (served, plain_served, (), (), ()) = tokio::join!(
        server::serve_tls(
            secure,
            tls.clone(),
            server.clone(),
            args.http_limits,
            shutdown.clone()
        ),
        http::serve(plain, ops, args.http_limits, shutdown.clone()),
        poller::run(cache, interval, shutdown.clone()),
        tls.reload_until(shutdown.clone()),
        server.authn.reload_until(shutdown.clone()),
    );
    served?;
    Ok(plain_served?)
}

/// A client from `kubeconfig`, or inferred ($KUBECONFIG, ~/.kube/config, in-cluster).
pub(crate) async fn kube_client(kubeconfig: Option<&Path>, flag: &str) -> Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let origin = format!("{flag} {}", path.display());
            let file =
                kube::config::Kubeconfig::read_from(path).map_err(|source| Error::KubeConfig {
                    origin: origin.clone(),
                    source: Box::new(source),
                })?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|source| Error::KubeConfig {
                    origin,
                    source: Box::new(source),
                })?
        }
        None => kube::Config::infer()
            .await
            .map_err(|source| Error::KubeConfig {
                origin: "in-cluster or default kubeconfig".to_owned(),
                source: Box::new(source),
            })?,
    };
    Ok(kube::Client::try_from(config)?)
}
