//! Children die with `ebb up`, however it ends.
//!
//! A graceful stop is the supervisor's job; this covers the rest (SIGKILL, a crash): the
//! kernel sends each child SIGTERM when the thread that spawned it dies. Children are
//! spawned from the runtime's worker threads, which live as long as `ebb up` itself.
//!
//! Each child also gets a process group of its own, so a Ctrl-C on the terminal reaches only
//! `ebb up`, which then stops the children in order (consumers before the Redis they ack to).

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid};

/// Makes the child spawned by `command` get SIGTERM when this process dies, and keeps it out
/// of the terminal's process group.
pub fn die_with_parent(command: &mut tokio::process::Command) {
    command.process_group(0);
    // Everything the child needs is made here, before the fork: the closure below only copies
    // this pid.
    let parent = Pid::this();
    // SAFETY: the closure runs in the child between fork and exec. `ebb up` is multi-threaded
    // (the tokio runtime), and fork copies only the calling thread: a lock another thread
    // held at that instant (the allocator's, the logger's, stdio's) stays locked forever in
    // the child. So the closure may only make async-signal-safe calls (here the system calls
    // prctl and getppid) and must allocate nothing: no String, Vec, format!, CString, no
    // logging, and an error only as a bare errno (`io::Error::from(Errno)` holds the number
    // inline; `io::Error::other` would box a message).
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // The parent may have died before prctl took effect: then nobody would signal us.
            // (std reports only the errno of a pre_exec failure to the parent anyway.)
            if getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}
