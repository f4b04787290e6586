//! `ebb metrics-api …` on the command line: flags named like Kubernetes' own aggregated API
//! servers (`--secure-port`, `--tls-cert-file`, `--requestheader-…`, `--authentication-kubeconfig`,
//! …), plus `--metrics-port`, `--config` and the Redis flags every ebb command shares. Each flag
//! also reads its `EBB_…` variable.

use std::net::IpAddr;
use std::path::PathBuf;

use ebb_queue::RedisAddress;

#[derive(Debug, Clone, clap::Args)]
pub struct MetricsApiArgs {
    /// The configuration file (YAML): which metrics are served, read from where, attached to
    /// which objects (see crates/metrics-api/README.md). Default: the built-in configuration,
    /// the dojo's `redis_items_in_queue{key=padok}` on Service default/prometheus-redis-exporter.
    #[arg(long, env = "EBB_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The HTTPS port of the aggregated API (0: any free port).
    #[arg(long, env = "EBB_SECURE_PORT", default_value_t = 6443)]
    pub secure_port: u16,

    /// The address the HTTPS port and the metrics port listen on.
    #[arg(long, env = "EBB_BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// PEM file of the serving certificate (its chain after it), reloaded when it changes.
    /// Unset: a self-signed certificate made at start.
    #[arg(
        long,
        env = "EBB_TLS_CERT_FILE",
        value_name = "FILE",
        requires = "tls_private_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM file of the serving certificate's private key, reloaded with it.
    #[arg(
        long,
        env = "EBB_TLS_PRIVATE_KEY_FILE",
        value_name = "FILE",
        requires = "tls_cert_file"
    )]
    pub tls_private_key_file: Option<PathBuf>,

    /// PEM file of the CA that signs the front proxy's client certificate (the kube-apiserver's
    /// --requestheader-client-ca-file), reloaded when it changes. Unset: read from the
    /// ConfigMap kube-system/extension-apiserver-authentication, as the Go servers do.
    #[arg(long, env = "EBB_REQUESTHEADER_CLIENT_CA_FILE", value_name = "FILE")]
    pub requestheader_client_ca_file: Option<PathBuf>,

    /// Common names allowed for the front proxy's client certificate, comma-separated; empty:
    /// any certificate the CA signed. Used with --requestheader-client-ca-file (otherwise the
    /// ConfigMap's list applies).
    #[arg(long, env = "EBB_REQUESTHEADER_ALLOWED_NAMES", value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,

    /// Kubeconfig for reading the extension-apiserver-authentication ConfigMap (default:
    /// --kubeconfig, then in-cluster).
    #[arg(long, env = "EBB_AUTHENTICATION_KUBECONFIG", value_name = "FILE")]
    pub authentication_kubeconfig: Option<PathBuf>,

    /// Kubeconfig for SubjectAccessReviews (default: --kubeconfig, then in-cluster).
    #[arg(long, env = "EBB_AUTHORIZATION_KUBECONFIG", value_name = "FILE")]
    pub authorization_kubeconfig: Option<PathBuf>,

    /// Kubeconfig of the other two when they are not given (default: $KUBECONFIG, then
    /// ~/.kube/config, then the in-cluster service account).
    #[arg(long, env = "EBB_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Plain-HTTP port of this server's own Prometheus metrics (/metrics) and /healthz
    /// (0: any free port).
    #[arg(long, env = "EBB_METRICS_PORT", default_value_t = 8080)]
    pub metrics_port: u16,

    /// Redis server the configuration's Redis sources read: host:port,
    /// redis://[:password@]host:port[/db], rediss://… (TLS), rediss://…/#insecure, or a Redis
    /// Cluster as redis+cluster://host:port[,host:port…] (as every ebb command).
    #[arg(
        long,
        env = "EBB_REDIS_SERVER",
        default_value = "redis-master:6379",
        value_parser = ebb_queue::RedisServerParser
    )]
    pub redis_server: RedisAddress,

    /// PEM file of the CA that signed a rediss:// server's certificate (default: the public
    /// web roots).
    #[arg(long, env = "EBB_REDIS_CA", value_name = "FILE")]
    pub redis_ca: Option<PathBuf>,

    /// Timeouts and the connection cap of both ports (the HTTPS port's TLS handshake is under
    /// --http-header-timeout).
    #[command(flatten)]
    pub http_limits: ebb_runtime::http::HttpLimits,
}

impl MetricsApiArgs {
    /// The Redis address, trusting `--redis-ca` when given.
    pub fn redis_address(&self) -> crate::Result<RedisAddress> {
        Ok(match &self.redis_ca {
            Some(ca_file) => self.redis_server.clone().trusting(ca_file)?,
            None => self.redis_server.clone(),
        })
    }
}
