//! Children die with `ebb up`, however it ends.
//!
//! A graceful stop is the supervisor's job; this covers the rest (SIGKILL, a crash): the
//! kernel sends each child SIGTERM when the thread that spawned it dies. Children are
//! spawned from the runtime's worker threads, which live as long as `ebb up` itself.
//!
//! Each child also gets a process group of its own, so a Ctrl-C on the terminal reaches only
//! `ebb up`, which then stops the children in order (consumers before the Redis they ack to).

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid};

/// Makes the child spawned by `command` get SIGTERM when this process dies, and keeps it out
/// of the terminal's process group.
pub fn die_with_parent(command: &mut tokio::process::Command) {
    command.process_group(0);
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
