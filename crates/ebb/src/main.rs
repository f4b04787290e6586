//! `ebb`: one binary, one subcommand per component. Each subcommand's code lives in its own
//! crate (see `crates/`); this file only parses the command line and dispatches.

fn main() {}
