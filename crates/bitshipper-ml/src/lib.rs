//! Delivery predictions: features computed by one code path for training and serving (nothing
//! known after the prediction time), gradient-boosted models, and their evaluation against the
//! carrier's promise and the lane's history.

pub mod accuracy;
pub mod features;
pub mod gbdt;
pub mod history;
pub mod metrics;
pub mod model;
pub mod places;
pub mod train;

/// The ML crate's error type.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    #[error("training data: {0}")]
    Data(String),
    #[error("model: {0}")]
    Model(String),
}
