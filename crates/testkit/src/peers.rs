//! The peers of the tests (a real Celery worker and client, a real BullMQ Worker, …): one
//! Python venv per `tests/peers/<name>/requirements.txt`, built by `scripts/install-deps.sh` at
//! `${EBB_CACHE_DIR:-~/.cache/ebb}/venv/<name>`, and one npm install per
//! `tests/peers/<name>/package-lock.json`, at `${EBB_CACHE_DIR:-~/.cache/ebb}/node/<name>`
//! (`scripts/lib/peers.sh` says how). A test finds a peer's programs here; when the peer is
//! missing it fails under CI, where install-deps.sh has run, and skips loudly elsewhere.

use std::path::PathBuf;

/// `${EBB_CACHE_DIR:-~/.cache/ebb}`, where `scripts/lib/peers.sh` installs the peers.
fn cache() -> PathBuf {
    std::env::var_os("EBB_CACHE_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/ebb")
        })
}

/// Where `scripts/lib/peers.sh` builds the venv of the peer `name` (which may not exist).
pub fn venv(name: &str) -> PathBuf {
    cache().join("venv").join(name)
}

/// The `node_modules` folder of the Node peer `name` (`node_modules_or_skip(test, "bullmq")`),
/// for `NODE_PATH`, or `None` after a loud `SKIPPED` line naming `test` when it or `node` is
/// not installed; a panic under CI.
pub fn node_modules_or_skip(test: &str, name: &str) -> Option<PathBuf> {
    let modules = cache().join("node").join(name).join("node_modules");
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if modules.is_dir() && node {
        return Some(modules);
    }
    let reason = if node {
        format!(
            "{} is missing: run scripts/install-deps.sh to install the {name} peer from tests/peers/{name}/package-lock.json",
            modules.display()
        )
    } else {
        "node is not on PATH: run scripts/install-deps.sh (Debian's nodejs and npm)".to_owned()
    };
    skip_or_fail(test, reason);
    None
}

/// A loud `SKIPPED` line naming `test`, or a panic under CI.
fn skip_or_fail(test: &str, reason: String) {
    if crate::under_ci() {
        panic!("{test}: required under CI but unavailable: {reason}");
    }
    eprintln!("\n!!!!!!!! SKIPPED {test}: {reason}\n");
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
    skip_or_fail(test, reason);
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
