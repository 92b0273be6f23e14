//! The lake crate's one error type.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LakeError {
    /// The lake location (a path or `s3://bucket/prefix`) or its settings are unusable.
    #[error("lake location: {0}")]
    Location(String),
    #[error("delta table: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    #[error("arrow: {0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] deltalake::parquet::errors::ParquetError),
    /// A query failed to plan or run: a user's SQL or an analytics request.
    #[error("query: {0}")]
    Query(String),
    #[error("store: {0}")]
    Store(#[from] bitshipper_store::StoreError),
    /// A log entry or a stored value the lake cannot read.
    #[error("corrupt input: {0}")]
    Corrupt(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<deltalake::datafusion::error::DataFusionError> for LakeError {
    fn from(e: deltalake::datafusion::error::DataFusionError) -> Self {
        LakeError::Query(e.to_string())
    }
}
