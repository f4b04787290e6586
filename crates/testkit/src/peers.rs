//! The Python peers of the tests (a real Celery worker and client, …): one venv per
//! `tests/peers/<name>/requirements.txt`, built by `scripts/install-deps.sh` at
//! `${EBB_CACHE_DIR:-~/.cache/ebb}/venv/<name>` (`scripts/lib/peers.sh` says how). A test
//! finds a peer's programs here; when the venv is missing it fails under CI, where
//! install-deps.sh has run, and skips loudly elsewhere.

use std::path::PathBuf;

/// Where `scripts/lib/peers.sh` builds the venv of the peer `name` (which may not exist).
pub fn venv(name: &str) -> PathBuf {
    let cache = std::env::var_os("EBB_CACHE_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/ebb")
        });
    cache.join("venv").join(name)
}

/// The program `program` of the peer `peer`'s venv (`venv_bin_or_skip(test, "celery",
/// "python")`), or `None` after a loud `SKIPPED` line naming `test` when it is not installed;
/// a panic under CI.
pub fn venv_bin_or_skip(test: &str, peer: &str, program: &str) -> Option<PathBuf> {
    let path = venv(peer).join("bin").join(program);
    if path.is_file() {
        return Some(path);
    }
    let reason = format!(
        "{} is missing: run scripts/install-deps.sh to build the {peer} peer's venv from tests/peers/{peer}/requirements.txt",
        path.display()
    );
    if crate::under_ci() {
        panic!("{test}: required under CI but unavailable: {reason}");
    }
    eprintln!("\n!!!!!!!! SKIPPED {test}: {reason}\n");
    None
}

/// The system program `program` (`/usr/bin/sidekiq`), installed from the Debian package
/// `package` by `scripts/install-deps.sh`, or `None` after a loud `SKIPPED` line naming
/// `test` when it is not installed; a panic under CI.
pub fn system_program_or_skip(test: &str, program: &str, package: &str) -> Option<PathBuf> {
    let path = PathBuf::from(program);
    if path.is_file() {
        return Some(path);
    }
    let reason = format!(
        "{program} is missing: run scripts/install-deps.sh (it installs the Debian package {package})"
    );
    if crate::under_ci() {
        panic!("{test}: required under CI but unavailable: {reason}");
    }
    eprintln!("\n!!!!!!!! SKIPPED {test}: {reason}\n");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_peer_program_skips_outside_ci_and_is_named() {
        if crate::under_ci() {
            let panic = std::panic::catch_unwind(|| {
                venv_bin_or_skip("t", "no-such-peer", "python");
            })
            .unwrap_err();
            let message = panic.downcast_ref::<String>().unwrap();
            assert!(message.contains("no-such-peer"), "{message}");
        } else {
            assert_eq!(venv_bin_or_skip("t", "no-such-peer", "python"), None);
        }
        assert!(venv("celery").ends_with("venv/celery"));
    }
}
