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

/// Session and login rules for people (API keys have their own limits).
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle_timeout_secs: i64,
    /// A session ends this long after login, used or not.
    pub absolute_timeout_secs: i64,
    /// Failed logins in a row before the account locks.
    pub lockout_after_failures: i32,
    /// How long a locked account stays locked.
    pub lockout_secs: i64,
    /// How long an invitation link works.
    pub invitation_ttl_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 3600,
            lockout_after_failures: 5,
            lockout_secs: 15 * 60,
            invitation_ttl_secs: 7 * 24 * 3600,
        }
    }
}

/// Where analytics come from (the lake's warehouse in the binary; the API crate does not link
/// the query engine).
#[async_trait::async_trait]
pub trait AnalyticsSource: Send + Sync + std::fmt::Debug {
    /// KPIs for one tenant. An `Err` is a failure of the source, logged and answered with 503.
    async fn kpis(
        &self,
        tenant: bitshipper_core::TenantId,
        query: &bitshipper_core::analytics::KpiQuery,
    ) -> Result<bitshipper_core::analytics::KpiReport, String>;

    /// An export, as a stream of encoded chunks (CSV or Parquet). An `Err` before the stream
    /// starts is a failure of the source; one inside the stream cuts the response short.
    async fn export(
        &self,
        tenant: bitshipper_core::TenantId,
        request: &bitshipper_core::analytics::ExportRequest,
    ) -> Result<ExportStream, String>;
}

/// Encoded export chunks.
pub type ExportStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<Vec<u8>, String>> + Send>>;

#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub appender: LogAppender,
    pub progress: Arc<ProcessorProgress>,
    pub mapping: Arc<MappingTable>,
    /// Every provider's mapping table (webhooks and imports).
    pub providers: Arc<bitshipper_providers::mapping::Tables>,
    pub metrics: PrometheusHandle,
    pub limits: Limits,
    pub keys: Arc<crate::auth::KeyCache>,
    pub rate_limits: Arc<crate::ratelimit::RateLimits>,
    pub sessions: SessionPolicy,
    /// `None` when this deployment has no lake (`lake.enabled = false`).
    pub analytics: Option<Arc<dyn AnalyticsSource>>,
}
