use std::future::Future;
use std::time::Duration;

use crate::{Error, Shutdown, init_logging, release_start_up_pages};

/// How long after start the pages only start-up used are handed back: by then the listener is
/// bound and the first Redis round trips are done, and what runs next is the steady state.
const START_UP: Duration = Duration::from_secs(1);

/// Runs a long-lived subcommand: initializes logging, builds a tokio runtime with
/// `worker_threads` workers (0 = single-threaded, the smallest footprint) and runs `service`
/// until it returns; the first SIGTERM or SIGINT raises its [`Shutdown`]. [`START_UP`] after
/// it starts, the executable's pages that only start-up touched are handed back
/// ([`release_start_up_pages`]).
pub fn run_service<Service, Running, E>(worker_threads: usize, service: Service) -> Result<(), E>
where
    Service: FnOnce(Shutdown) -> Running,
    Running: Future<Output = Result<(), E>>,
    E: From<Error>,
{
    init_logging();
    let runtime = match worker_threads {
        0 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        threads => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build(),
    }
    .map_err(Error::AsyncRuntime)?;
    runtime.block_on(async move {
        let shutdown = Shutdown::on_signals()?;
        let release = tokio::spawn(async {
            tokio::time::sleep(START_UP).await;
            match release_start_up_pages() {
                Ok(released) => tracing::debug!(
                    "handed back {} KiB of start-up pages ({} mappings of the executable)",
                    released.resident_bytes / 1024,
                    released.mappings
                ),
                Err(error) => tracing::debug!("cannot hand back start-up pages: {error}"),
            }
        });
        let served = service(shutdown).await;
        release.abort();
        served
    })
}
