//! HTTP handlers, one module per resource.

pub mod account;
pub mod audit;
pub mod erasures;
pub mod events;
pub mod keys;
pub mod ops;
pub mod shipments;
pub mod users;

use crate::problem::ApiError;
use std::str::FromStr;

/// Parses a path id; anything that is not a valid id is simply not found.
pub(crate) fn path_id<T: FromStr>(raw: &str, what: &'static str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(what))
}
