//! The core crate's error type and the field-level validation errors shown to API clients.

use serde::Serialize;

/// One problem with one input field: which field (a JSON pointer-like dotted path) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Dotted path of the offending field, e.g. `location.lat` or `events[3].occurred_at`.
    pub field: String,
    /// Human-readable reason.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Accumulates every field problem of one input so a client sees them all at once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError::new(field, reason));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `Ok(value)` when no error was recorded.
    pub fn finish<T>(self, value: T) -> Result<T, CoreError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(CoreError::Invalid(self.0))
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("mapping table is invalid: {0}")]
    Mapping(String),
}

impl CoreError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CoreError::Invalid(vec![FieldError::new(field, reason)])
    }
}
