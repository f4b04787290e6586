//! `ebb-units`: numbers and durations as ebb's flags, URLs and settings write them. Pure:
//! no I/O, no runtime, so a crate without tokio (the simulator, the scaling settings) reads
//! them exactly as the long-running processes do.
//!
//! - [`parse_duration`], [`format_duration`]: Go-style durations (`1s`, `250ms`, `1m30s`) for
//!   dojo-compatible flags, and back.
//! - [`parse_positive`], [`parse_count`], [`parse_bytes`]: counts and sizes, digits only, so
//!   `+5`, `-3`, `0x10` and `1e3` are refused with a reason instead of read some surprising way.
//! - [`redact_address`], [`redact_urls`]: an address or a message without the credentials in
//!   it, for every place an address is printed.
//!
//! Every parser fails with an [`Error`] that is one line. A number's error is a reason without
//! the value (clap prefixes it with the flag and the value it refused); a duration's error
//! quotes the value, since durations are also read outside clap.

mod duration;
mod error;
mod number;
mod redact;

pub use duration::{format_duration, parse_duration};
pub use error::{DurationProblem, Error, Result};
pub use number::{Bounded, parse_bytes, parse_count, parse_positive};
pub use redact::{REDACTED, redact_address, redact_urls};
