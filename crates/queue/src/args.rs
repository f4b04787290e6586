//! The flags of every process that talks to a queue (`ebb producer`, `ebb consumer`), defined
//! once and flattened into each command, so names, variables, defaults and checks agree.
//!
//! `--redis-server` is read by [`RedisServerParser`], never by clap's default parser of a
//! `FromStr` type: that one quotes the refused value, password included, in its error.

use std::ffi::OsStr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

use crate::keys::queue_name;
use crate::{Queue, RedisAddress, Result};

/// `--redis-server`, `--redis-ca`, `--redis-queue`; each also reads its `EBB_…` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct QueueArgs {
    /// Redis server: host:port, redis://[:password@]host:port[/db], rediss://… (TLS) or
    /// rediss://…/#insecure (TLS without certificate checks); a Redis Cluster by its seed
    /// nodes: redis+cluster://[:password@]host:port[,host:port…] (rediss+cluster://… for TLS).
    #[arg(
        long,
        env = "EBB_REDIS_SERVER",
        default_value = "redis-master:6379",
        value_parser = RedisServerParser
    )]
    pub redis_server: RedisAddress,

    /// PEM file of the CA that signed a rediss:// server's certificate (default: the public
    /// web roots).
    #[arg(long, env = "EBB_REDIS_CA", value_name = "FILE")]
    pub redis_ca: Option<PathBuf>,

    /// Redis list of the queue (its own keys are named {<queue>}:…, in the list's cluster slot).
    #[arg(long, env = "EBB_REDIS_QUEUE", default_value = "padok", value_parser = queue_name)]
    pub redis_queue: String,
}

impl QueueArgs {
    /// The queue these flags name, trusting `--redis-ca` when given. Touches no network.
    pub fn queue(&self) -> Result<Queue> {
        let address = match &self.redis_ca {
            Some(ca_file) => self.redis_server.clone().trusting(ca_file)?,
            None => self.redis_server.clone(),
        };
        Queue::new(&address, &self.redis_queue)
    }
}

/// Reads `--redis-server` (and any flag holding a Redis address) into a [`RedisAddress`]. A
/// refused value is quoted with its userinfo redacted: the flag's error line (and the
/// `EBB_REDIS_SERVER` variable's) never shows the password.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedisServerParser;

impl TypedValueParser for RedisServerParser {
    type Value = RedisAddress;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> std::result::Result<RedisAddress, clap::Error> {
        let flag = arg.map_or_else(|| "--redis-server".to_owned(), ToString::to_string);
        let refuse = |message: String| {
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("invalid value for '{flag}': {message}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("not UTF-8 text".to_owned()))?;
        text.parse::<RedisAddress>()
            .map_err(|error| refuse(error.to_string()))
    }
}
