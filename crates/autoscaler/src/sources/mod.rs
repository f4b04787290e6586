//! Metric sources, one per file.

pub mod redis;
