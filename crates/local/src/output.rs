//! Everything `ebb up` prints goes through one writer thread, so a slow or paused stdout
//! (`ebb up | less`) never blocks the runtime's workers: lines beyond what the queue holds
//! are dropped and counted instead, and a closed stdout is ignored rather than a panic.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, SyncSender, TrySendError, channel, sync_channel};

/// Lines waiting for stdout before new ones are dropped.
const BACKLOG: usize = 4096;

enum Chunk {
    Text(Vec<u8>),
    /// Answered once everything queued before it is written.
    Flush(Sender<()>),
}

static WRITER: OnceLock<SyncSender<Chunk>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn writer() -> &'static SyncSender<Chunk> {
    WRITER.get_or_init(|| {
        let (sender, receiver) = sync_channel::<Chunk>(BACKLOG);
        std::thread::Builder::new()
            .name("ebb-up-stdout".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                for chunk in receiver {
                    let text = match chunk {
                        Chunk::Text(text) => text,
                        Chunk::Flush(done) => {
                            let _ = done.send(());
                            continue;
                        }
                    };
                    let mut out = stdout.lock();
                    let dropped = DROPPED.swap(0, Ordering::Relaxed);
                    if dropped > 0 {
                        let _ =
                            writeln!(out, "[ebb up] {dropped} lines dropped: stdout was not read");
                    }
                    let _ = out.write_all(&text);
                    let _ = out.flush();
                }
            })
            .expect("the stdout thread starts");
        sender
    })
}

/// Prints `text` as is (a live-view frame, with its escape sequences).
pub fn raw(text: String) {
    match writer().try_send(Chunk::Text(text.into_bytes())) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(_)) => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Prints one line.
pub fn line(mut text: String) {
    text.push('\n');
    raw(text);
}

/// Waits until everything queued so far is written (before exiting).
pub fn flush() {
    let (done, written) = channel();
    if writer().send(Chunk::Flush(done)).is_ok() {
        let _ = written.recv();
    }
}
