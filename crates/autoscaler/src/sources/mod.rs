//! Metric sources, one per file:
//! - [`redis`]: the ebb leased queue (waiting, in flight, completions; reaps dead consumers);
//! - [`redis_list`]: any Redis list's length;
//! - [`redis_stream`]: a Redis stream consumer group's lag and pending entries;
//! - [`prometheus`]: the value of a PromQL instant query.

pub mod prometheus;
pub mod redis;
pub mod redis_list;
pub mod redis_stream;
