//! The pipeline crate's error type.

use bitshipper_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Queues are full or the processor is too far behind: retry after the given seconds.
    #[error("the pipeline is at capacity; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u32 },
    #[error("the pipeline is shutting down")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}
