//! Children die with `ebb up`, however it ends.
//!
//! A graceful stop is the supervisor's job; this covers the rest (SIGKILL, a crash): the
//! kernel sends each child SIGTERM when the thread that spawned it dies. Children are
//! spawned from the runtime's worker threads, which live as long as `ebb up` itself.

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid};

/// Makes the child spawned by `command` get SIGTERM when this process dies.
pub fn die_with_parent(command: &mut tokio::process::Command) {
    let parent = Pid::this();
    // SAFETY: the closure runs between fork and exec and only makes two async-signal-safe
    // system calls (prctl, getppid); it allocates nothing and takes no lock.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // The parent may have died before prctl took effect: then nobody would signal us.
            if getppid() != parent {
                return Err(std::io::Error::other(
                    "ebb up exited while starting this child",
                ));
            }
            Ok(())
        });
    }
}
