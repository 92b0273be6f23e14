//! Shared application state handed to every handler.

use bitshipper_core::MappingTable;
use bitshipper_pipeline::{LogAppender, ProcessorProgress};
use bitshipper_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// Request and batch limits, documented in the OpenAPI description and `docs/api.md`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most events in one `POST /v1/events`.
    pub max_batch_events: usize,
    /// Largest page of a list.
    pub max_page_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_batch_events: 1000,
            max_page_size: 200,
        }
    }
}

#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub appender: LogAppender,
    pub progress: Arc<ProcessorProgress>,
    pub mapping: Arc<MappingTable>,
    pub metrics: PrometheusHandle,
    pub limits: Limits,
    pub keys: Arc<crate::auth::KeyCache>,
    pub rate_limits: Arc<crate::ratelimit::RateLimits>,
}
