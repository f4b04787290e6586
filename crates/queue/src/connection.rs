//! One connection type over a standalone Redis and a Redis Cluster, so the queue's commands,
//! pipelines and scripts are written once.
//!
//! - Standalone: a [`ConnectionManager`], multiplexed, lazily connecting, reconnecting by itself.
//! - Cluster: a [`ClusterConnection`] (one multiplexed connection per node, routing by slot,
//!   following `MOVED`/`ASK`, refreshing the slot map), opened on first use; a failed first
//!   connection is retried on the next call, so programs start while the cluster is down.
//!
//! Each [`Connection`] made by [`RedisAddress::connection`] has connections of its own: a
//! blocking `BLMOVE` or a health probe never waits behind other traffic.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{
    Arg, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};
use tokio::sync::OnceCell;

use crate::address::{Target, install_crypto_provider};
use crate::{RedisAddress, Result};

/// How long opening a connection to one node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A cluster request is retried on redirections and node failures; these bound its waits so
/// that a call made while the cluster is down fails in about a second, like a standalone one.
const CLUSTER_RETRIES: u32 = 3;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 10;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 200;
/// How often a transaction refused with `MOVED`/`ASK` is sent again, [`REDIRECTION_WAIT`]
/// apart: enough to outlast a slot migration, whose `ASK` phase lasts as long as moving the
/// slot's keys takes; the call's own timeout bounds the total anyway.
const TRANSACTION_REDIRECTIONS: u32 = 50;
const REDIRECTION_WAIT: Duration = Duration::from_millis(20);

/// A connection to a standalone Redis or to a Redis Cluster. Cheap to clone; clones share it.
#[derive(Clone)]
pub(crate) enum Connection {
    Server(ConnectionManager),
    Cluster(LazyCluster),
}

#[derive(Clone)]
pub(crate) struct LazyCluster {
    client: Arc<ClusterClient>,
    connection: Arc<OnceCell<ClusterConnection>>,
}

impl LazyCluster {
    pub(crate) async fn get(&self) -> RedisResult<ClusterConnection> {
        self.connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl RedisAddress {
    /// A connection of its own, waiting at most `response_timeout` for any one answer. Touches
    /// no network: it connects on first use.
    pub(crate) fn connection(&self, response_timeout: Duration) -> Result<Connection> {
        match &self.target {
            Target::Server(url) => {
                // Reconnection gives up fast (one retry) so a call made while Redis is down
                // fails in about a second instead of hanging; the next call tries again.
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200))
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(response_timeout));
                ConnectionManager::new_lazy_with_config(self.server_client(url)?, config)
                    .map(Connection::Server)
                    .map_err(|error| self.redis_error(error))
            }
            Target::Cluster(seeds) => Ok(Connection::Cluster(LazyCluster {
                client: Arc::new(self.cluster_client(seeds, response_timeout)?),
                connection: Arc::new(OnceCell::new()),
            })),
        }
    }

    /// Builds (without connecting) the client this address needs, so that settings the
    /// `redis` crate or rustls refuse are reported at start-up.
    pub(crate) fn check_client(&self) -> Result<()> {
        match &self.target {
            Target::Server(url) => self.server_client(url).map(drop),
            Target::Cluster(seeds) => self.cluster_client(seeds, CONNECT_TIMEOUT).map(drop),
        }
    }

    pub(crate) fn server_client(&self, url: &str) -> Result<redis::Client> {
        install_crypto_provider();
        match self.tls_certificates() {
            None => redis::Client::open(url),
            Some(certificates) => redis::Client::build_with_tls(url, certificates),
        }
        .map_err(|error| self.redis_error(error))
    }

    fn cluster_client(
        &self,
        seeds: &[String],
        response_timeout: Duration,
    ) -> Result<ClusterClient> {
        install_crypto_provider();
        let mut builder = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(response_timeout)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
            .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS);
        if let Some(certificates) = self.tls_certificates() {
            builder = builder.certs(certificates);
        }
        builder.build().map_err(|error| self.redis_error(error))
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Server(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(lazy) => Box::pin(async move {
                let mut connection = lazy.get().await?;
                connection.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Server(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Cluster(lazy) => Box::pin(async move {
                let mut connection = lazy.get().await?;
                let mut redirections = 0;
                loop {
                    match connection
                        .req_packed_commands(pipeline, offset, count)
                        .await
                    {
                        Err(error)
                            if pipeline.is_transaction()
                                && redirections < TRANSACTION_REDIRECTIONS
                                && is_redirection(&error) =>
                        {
                            redirections += 1;
                            follow_redirection(&mut connection, pipeline).await;
                        }
                        answer => return answer,
                    }
                }
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Server(connection) => connection.get_db(),
            Connection::Cluster(_) => 0,
        }
    }
}

/// True when a transaction was refused because its slot is (being) served by another node.
/// The `redis` crate follows `MOVED` and `ASK` for single commands and plain pipelines, but a
/// `MULTI`/`EXEC` whose queued commands drew them comes back as an aborted transaction.
fn is_redirection(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::ExecAbort)
        && error.clone().into_server_errors().is_some_and(|errors| {
            errors.iter().any(|(_, error)| {
                matches!(
                    error.kind(),
                    Some(ServerErrorKind::Moved | ServerErrorKind::Ask)
                )
            })
        })
}

/// Makes the client learn where the transaction's slot now lives: a plain `EXISTS` of its
/// first key is redirected like any command, and a `MOVED` answer rebuilds the slot map. An
/// aborted transaction applied nothing, so it can then be sent again as it is. During a
/// migration (`ASK`) the map stays as it is until the slot has moved: wait a little.
async fn follow_redirection(connection: &mut ClusterConnection, transaction: &Pipeline) {
    let first_key = transaction
        .cmd_iter()
        .find_map(|command| match command.args_iter().nth(1) {
            Some(Arg::Simple(key)) => Some(key.to_vec()),
            _ => None,
        });
    if let Some(key) = first_key {
        // Its answer does not matter, only the redirection it follows.
        let _ = redis::cmd("EXISTS")
            .arg(key)
            .query_async::<Value>(connection)
            .await;
    }
    tokio::time::sleep(REDIRECTION_WAIT).await;
}
