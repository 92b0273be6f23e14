//! The data lake and warehouse: Delta tables of tracking events, shipment changes and
//! predictions on a local directory or S3, written exactly once by the lake writer, queried
//! through tenant-scoped DataFusion views, and the KPIs behind `/v1/analytics/`.

pub mod analytics;
mod error;
pub mod export;
pub mod location;
pub mod rows;
pub mod table;
pub mod warehouse;
pub mod writer;

pub use error::LakeError;
pub use location::LakeLocation;
pub use table::LakeTable;
pub use warehouse::Warehouse;
pub use writer::{LakeWriter, Positions, WriterSettings, Written};

/// The Arrow crate the lake is built on (for callers formatting query results).
pub use deltalake::arrow;
/// The Parquet crate the lake writes with.
pub use deltalake::parquet;
