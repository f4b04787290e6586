//! The gate: whether a test that needs the control plane runs, skips loudly, or fails (under
//! CI); and the one control plane the tests of a test binary share.

use std::path::PathBuf;

use super::{ControlPlane, Options, binaries};
use crate::{Error, Result};

/// The one gate of every test that needs the control plane, a running one or only its
/// binaries: the folder of the built binaries (kubectl, helm, prometheus-adapter, …), or `None`
/// after a loud `SKIPPED` message when they cannot be built here (no Go toolchain). Under CI
/// ([`under_ci`](crate::under_ci)) that case fails the test instead: `.ci/run` installs Go and
/// builds the binaries, so a skip there would hide a broken install step. A build that fails
/// for any other reason fails the test everywhere. Blocking: builds on first use.
pub fn require(test: &str) -> Option<PathBuf> {
    gate(test, binaries(), crate::under_ci())
}

/// [`require`]'s decision, given what building gave and whether this is CI.
fn gate(test: &str, binaries: Result<PathBuf>, under_ci: bool) -> Option<PathBuf> {
    match binaries {
        Ok(bin) => Some(bin),
        Err(Error::Unavailable(reason)) if under_ci => {
            panic!(
                "{test}: the Kubernetes control plane is required under CI but unavailable: {reason}"
            )
        }
        Err(Error::Unavailable(reason)) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED {test}: {reason}\n!!!!!!!! .ci/run builds it; run `scripts/control-plane.sh build` locally.\n"
            );
            None
        }
        Err(error) => panic!("{test}: {error}"),
    }
}

/// For tests: a running control plane, or `None` when [`require`] skips; panics when it is
/// available but does not start.
pub async fn start_or_skip(test: &str, options: Options) -> Option<ControlPlane> {
    let name = test.to_owned();
    tokio::task::spawn_blocking(move || require(&name))
        .await
        .expect("building the control plane panicked")?;
    match ControlPlane::start_with(options).await {
        Ok(control_plane) => Some(control_plane),
        Err(Error::NoNode(reason)) => skip_or_fail(test, &reason),
        Err(error) => panic!("{test}: cannot start the control plane: {error}"),
    }
}

/// A test that needs something this machine lacks: `None` after a loud `SKIPPED` line, or a
/// panic under CI, where `.ci/run` provides everything.
fn skip_or_fail<T>(test: &str, reason: &str) -> Option<T> {
    if crate::under_ci() {
        panic!("{test}: required under CI but unavailable: {reason}");
    }
    eprintln!("\n!!!!!!!! SKIPPED {test}: {reason}\n");
    None
}

/// For tests that need pods to run: a control plane with a node, or `None` when this machine
/// cannot run one (skipped loudly outside CI, a failure under CI).
pub async fn start_with_node_or_skip(test: &str, options: Options) -> Option<ControlPlane> {
    start_or_skip(
        test,
        Options {
            node: true,
            ..options
        },
    )
    .await
}

/// The control plane every test of this test binary shares, started by the first test that
/// asks (with `options`; every later caller must ask for the same), or `None` when the gate
/// skips. Each test then works in a namespace of its own, so that one test's objects and
/// failures do not reach another, and a failure names its test instead of hiding the rest.
///
/// Never dropped: `scripts/control-plane.sh` watches this process (it is started with
/// `EBB_CONTROL_PLANE_OWNER_PID`) and runs `down` once the test binary has exited, however it
/// exits. It runs no task of any test's runtime (its servers are processes of their own), so
/// it outlives the test that started it. A start that fails fails every test that asks, with
/// the same message, instead of each trying again.
pub async fn shared_or_skip(test: &str, options: Options) -> Option<&'static ControlPlane> {
    type Started = (Options, Result<Option<ControlPlane>, String>);
    static SHARED: tokio::sync::OnceCell<Started> = tokio::sync::OnceCell::const_new();
    let (started_with, started) = SHARED
        .get_or_init(|| async {
            let first = test.to_owned();
            let wanted = options.clone();
            // In a task of its own, so that a panic of the gate (CI without Go, a start that
            // failed) becomes the one message every test reports.
            let started = tokio::spawn(async move { start_or_skip(&first, wanted).await })
                .await
                .map_err(|error| match error.try_into_panic() {
                    Ok(panic) => panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                        .unwrap_or_else(|| "the start panicked".to_owned()),
                    Err(error) => error.to_string(),
                });
            (options.clone(), started)
        })
        .await;
    assert_eq!(
        started_with, &options,
        "{test}: the test binary's shared control plane was started with other options"
    );
    match started {
        Ok(Some(control_plane)) => Some(control_plane),
        Ok(None) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED {test}: the shared control plane is unavailable (see above)\n"
            );
            None
        }
        Err(message) => panic!("{test}: the shared control plane did not start: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_go_the_gate_skips_outside_ci() {
        let unavailable = || Err(Error::Unavailable("go >= 1.26 is not installed".into()));
        assert_eq!(gate("a test", unavailable(), false), None);
        let bin = PathBuf::from("/bin dir");
        assert_eq!(gate("a test", Ok(bin.clone()), true), Some(bin));
    }

    #[test]
    #[should_panic(
        expected = "a test: the Kubernetes control plane is required under CI but unavailable: go >= 1.26 is not installed"
    )]
    fn without_go_the_gate_fails_under_ci() {
        gate(
            "a test",
            Err(Error::Unavailable("go >= 1.26 is not installed".into())),
            true,
        );
    }

    #[test]
    #[should_panic(expected = "a test: building the control plane failed: exit 1")]
    fn a_failed_build_fails_everywhere() {
        gate("a test", Err(Error::Build("exit 1".into())), false);
    }
}
