use std::future::Future;

use crate::{Error, Shutdown, init_logging};

/// Runs a long-lived subcommand: initializes logging, builds a tokio runtime with
/// `worker_threads` workers (0 = single-threaded, the smallest footprint) and runs `service`
/// until it returns; the first SIGTERM or SIGINT raises its [`Shutdown`].
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
        service(shutdown).await
    })
}
