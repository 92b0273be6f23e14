//! HTTP handlers, one module per resource.

pub mod account;
pub mod analytics;
pub mod audit;
pub mod erasures;
pub mod events;
pub mod imports;
pub mod keys;
pub mod ops;
pub mod predictions;
pub mod shipments;
pub mod users;
pub mod webhooks;

use crate::problem::ApiError;
use std::str::FromStr;

/// Parses a path id; anything that is not a valid id is simply not found.
pub(crate) fn path_id<T: FromStr>(raw: &str, what: &'static str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(what))
}

/// 404 for an id the tenant does not own; when the id belongs to another tenant, the attempt is
/// counted (`bitshipper_cross_tenant_attempts_total`), but the answer is the same.
pub(crate) async fn not_found(
    state: &crate::state::AppState,
    resource: bitshipper_store::probes::Resource,
    id: uuid::Uuid,
    tenant: bitshipper_core::TenantId,
) -> ApiError {
    match state
        .store
        .belongs_to_another_tenant(resource, id, tenant)
        .await
    {
        Ok(true) => {
            metrics::counter!("bitshipper_cross_tenant_attempts_total", "resource" => resource.as_str())
                .increment(1);
            tracing::warn!(resource = resource.as_str(), tenant = %tenant, "cross-tenant access attempt");
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not check a cross-tenant probe"),
    }
    ApiError::NotFound(match resource {
        bitshipper_store::probes::Resource::Shipment => "shipment",
        bitshipper_store::probes::Resource::ApiKey => "api key", // pragma: allowlist secret (a resource name)
        bitshipper_store::probes::Resource::User => "user",
    })
}
