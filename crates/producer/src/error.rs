/// Why the producer could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Queue(#[from] ebb_queue::Error),

    #[error(transparent)]
    Runtime(#[from] ebb_runtime::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
