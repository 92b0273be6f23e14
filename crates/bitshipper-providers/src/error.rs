//! The providers crate's error type.

/// Why a payload could not be read. `path` names the place in the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the payload is not valid JSON: {0}")]
    Json(String),
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("mapping table {provider}: {reason}")]
    Table { provider: String, reason: String },
}

impl ProviderError {
    pub(crate) fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ProviderError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The payload location the error names, when it names one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ProviderError::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }
}
