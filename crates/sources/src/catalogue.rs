//! The catalogue's machinery: what each source's file tells it ([`Kind`]), and the macro that
//! turns the list of sources in `lib.rs` into the one spec enum ([`SourceSpec`](crate::SourceSpec)),
//! the one dispatching source ([`Source`](crate::Source)) and the table of kinds
//! ([`CATALOGUE`](crate::CATALOGUE)) both sides are checked against.

use ebb_queue::{RedisAddress, RedisReader};

use crate::{Count, MetricSource, Result};

/// The Redis server a source reads, as the side that builds it found it: a process flag
/// (the metrics API), or the server of one QueueScaler, Secrets resolved (the operator).
#[derive(Clone)]
pub struct Redis {
    pub address: RedisAddress,
    /// Shared by every source of the same server: one pipelined round trip per interval.
    pub reader: RedisReader,
}

/// What one source's spec is: its name, its fields, the counts it serves, how it is checked,
/// filled in and built. Every file of the catalogue implements it for its spec.
pub trait Kind: Sized {
    /// The name both sides give it: the field of a QueueScaler's `spec.source`, the key of a
    /// metric's `source` in the metrics API's configuration.
    const KIND: &'static str;
    /// The spec field holding the Redis key it reads, for sources that read the Redis server
    /// the side gives them. The QueueScaler writes it; the metrics API fills it in from a
    /// label value.
    const REDIS_KEY: Option<&'static str>;
    /// Its other fields, spelt alike by the QueueScaler and the metrics API.
    const FIELDS: &'static [&'static str];
    /// The counts a metric may serve from it, by the name it is chosen with; the first is
    /// the default.
    const COUNTS: &'static [(&'static str, Count)];

    type Source: MetricSource;

    /// Checks what the side's own schema cannot; `field` is where the side wrote the spec.
    fn check(&self, field: &str) -> Result<()>;
    /// The spec with its templates filled in from `fields`.
    fn resolve(&self, fields: &[(&str, &str)]) -> Self;
    /// The source, reading through `redis` if it reads Redis. Fails on a spec not resolved.
    fn build(&self, redis: Option<&Redis>) -> Result<Self::Source>;
}

/// One row of the catalogue, for the sides' tests and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    pub kind: &'static str,
    pub redis_key: Option<&'static str>,
    pub fields: &'static [&'static str],
    pub counts: &'static [(&'static str, Count)],
}

impl KindInfo {
    pub const fn of<K: Kind>() -> KindInfo {
        KindInfo {
            kind: K::KIND,
            redis_key: K::REDIS_KEY,
            fields: K::FIELDS,
            counts: K::COUNTS,
        }
    }

    /// The count a metric serves when it names `name`, or none (the default).
    pub fn count(&self, name: Option<&str>) -> Option<Count> {
        match name {
            None => self.counts.first().map(|(_, count)| *count),
            Some(name) => self
                .counts
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, count)| *count),
        }
    }
}

/// The `Redis` a source needs, or the error naming its kind.
pub(crate) fn redis<'r>(redis: Option<&'r Redis>, kind: &'static str) -> Result<&'r Redis> {
    redis.ok_or(crate::Error::NoRedis { kind })
}

/// The `Redis` a source needs, refused when it is a Redis Cluster: for a framework (`name`)
/// whose keys of one queue are in different hash slots, which one script cannot read.
pub(crate) fn standalone_redis<'r>(
    redis_at: Option<&'r Redis>,
    kind: &'static str,
    name: &str,
) -> Result<&'r Redis> {
    let redis = redis(redis_at, kind)?;
    if redis.address.is_cluster() {
        return Err(crate::Error::Invalid {
            field: format!("{kind}.redis"),
            reason: format!(
                "{} is a Redis Cluster, and {name}'s keys of one queue are in different hash slots: {name} runs on a standalone Redis",
                redis.address
            ),
        });
    }
    Ok(redis)
}

/// A text of the spec that must be fixed by now.
pub(crate) fn fixed<'t>(
    text: &'t crate::Text,
    kind: &'static str,
    field: &'static str,
) -> Result<&'t str> {
    text.fixed().ok_or_else(|| crate::Error::Unresolved {
        kind,
        field,
        template: text.as_str().to_owned(),
    })
}

/// Declares each source's module and makes the catalogue from them: `Variant => module::Spec`.
macro_rules! catalogue {
    ($($variant:ident => $module:ident :: $spec:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// What to read: one variant per source of the catalogue. The operator maps a
        /// QueueScaler's `spec.source` to it, the metrics API a metric's `source`, each in
        /// one function.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SourceSpec {
            $($variant($module::$spec),)*
        }

        /// A source, built from a [`SourceSpec`]; dispatches to the source of its kind.
        pub enum Source {
            $($variant(<$module::$spec as $crate::Kind>::Source),)*
        }

        /// Every source, in the order of the catalogue.
        pub const CATALOGUE: &[$crate::KindInfo] =
            &[$($crate::KindInfo::of::<$module::$spec>(),)*];

        impl SourceSpec {
            /// Its row of the catalogue.
            pub fn info(&self) -> $crate::KindInfo {
                match self {
                    $(SourceSpec::$variant(_) => $crate::KindInfo::of::<$module::$spec>(),)*
                }
            }

            /// Its name, as both sides write it (`redisList`).
            pub fn kind(&self) -> &'static str {
                self.info().kind
            }

            /// Whether it reads the Redis server the side gives it.
            pub fn reads_redis(&self) -> bool {
                self.info().redis_key.is_some()
            }

            /// See [`Kind::check`]; `field` is where the side wrote it.
            pub fn check(&self, field: &str) -> $crate::Result<()> {
                match self {
                    $(SourceSpec::$variant(spec) => $crate::Kind::check(spec, field),)*
                }
            }

            /// See [`Kind::resolve`].
            pub fn resolve(&self, fields: &[(&str, &str)]) -> SourceSpec {
                match self {
                    $(SourceSpec::$variant(spec) =>
                        SourceSpec::$variant($crate::Kind::resolve(spec, fields)),)*
                }
            }

            /// See [`Kind::build`].
            pub fn build(&self, redis: Option<&$crate::Redis>) -> $crate::Result<Source> {
                Ok(match self {
                    $(SourceSpec::$variant(spec) =>
                        Source::$variant($crate::Kind::build(spec, redis)?),)*
                })
            }
        }

        impl $crate::MetricSource for Source {
            fn describe(&self) -> String {
                match self {
                    $(Source::$variant(source) => source.describe(),)*
                }
            }

            async fn read(&self) -> $crate::Result<$crate::Reading> {
                match self {
                    $(Source::$variant(source) => source.read().await,)*
                }
            }

            async fn measure(&self) -> $crate::Result<$crate::Measured> {
                match self {
                    $(Source::$variant(source) => source.measure().await,)*
                }
            }

            fn can_drain(&self) -> bool {
                match self {
                    $(Source::$variant(source) => source.can_drain(),)*
                }
            }

            async fn drain(
                &self,
                consumers: &[String],
                ttl: std::time::Duration,
            ) -> $crate::Result<()> {
                match self {
                    $(Source::$variant(source) => source.drain(consumers, ttl).await,)*
                }
            }

            async fn undrain(&self, consumers: &[String]) -> $crate::Result<()> {
                match self {
                    $(Source::$variant(source) => source.undrain(consumers).await,)*
                }
            }
        }
    };
}

pub(crate) use catalogue;
