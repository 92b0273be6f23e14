//! Erasure requests (GDPR art. 17): remove one recipient's personal data everywhere it is
//! stored, by destroying their data key and deleting their sealed fields. Admin scope.

use crate::auth::{AdminScope, Auth};
use crate::json::ApiJson;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use bitshipper_core::ShipmentId;
use bitshipper_store::{AuditRecord, ErasureReport, RecipientSelector};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whose data to erase: give exactly one of `recipient_email` or `shipment_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// Every shipment to this email address.
    #[schema(max_length = 254)]
    pub recipient_email: Option<String>,
    /// The recipient of this shipment (with every shipment sharing their email).
    #[schema(format = "uuid")]
    pub shipment_id: Option<String>,
}

/// What was erased.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureView {
    /// Shipments whose recipient data was removed.
    pub shipments: u64,
    /// Data keys destroyed (crypto-shredding).
    pub keys_destroyed: u64,
    /// Stored API responses removed because they held the data.
    pub responses_removed: u64,
}

impl From<ErasureReport> for ErasureView {
    fn from(r: ErasureReport) -> Self {
        ErasureView {
            shipments: r.shipments,
            keys_destroyed: r.keys_destroyed,
            responses_removed: r.responses_removed,
        }
    }
}

#[utoipa::path(post, path = "/v1/erasures", tag = "erasures", request_body = ErasureRequest,
    security(("api_key" = [])),
    responses((status = 200, body = ErasureView), (status = 422, body = Problem), (status = 403, body = Problem)))]
pub async fn erase_recipient(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ErasureRequest>,
) -> Result<Json<ErasureView>, ApiError> {
    let who = match (body.recipient_email, body.shipment_id) {
        (Some(email), None) => {
            if email.trim().is_empty() || email.chars().count() > 254 {
                return Err(ApiError::field(
                    "recipient_email",
                    "must be 1 to 254 characters",
                ));
            }
            RecipientSelector::Email(email)
        }
        (None, Some(id)) => {
            let id: ShipmentId = id
                .parse()
                .map_err(|_| ApiError::field("shipment_id", "is not a shipment id"))?;
            RecipientSelector::Shipment(id)
        }
        _ => {
            return Err(ApiError::field(
                "recipient_email",
                "give exactly one of recipient_email or shipment_id",
            ))
        }
    };
    let report = state.store.erase_recipient(auth.tenant, &who).await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::erasure(auth.actor.clone(), who.audit_target(), &report),
        )
        .await?;
    Ok(Json(report.into()))
}
