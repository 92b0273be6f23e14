//! The OpenAPI 3.1 document (`/openapi.json`) and the browsable API page (`/docs`).

use crate::routes::{events, keys, shipments};
use crate::state::AppState;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "BitShipper API",
        description = "Real-time shipment visibility. Authenticate with `Authorization: Bearer bsk_live_...`. \
Errors are RFC 9457 `application/problem+json` documents naming each invalid field. \
Limits: request bodies up to 1 MiB; `POST /v1/events` takes 1 to 1,000 events; list pages up to 200. \
POSTs accept an `Idempotency-Key` header (kept 24 hours, per tenant)."
    ),
    paths(
        events::ingest_events,
        shipments::create_shipment, shipments::list_shipments, shipments::lookup_shipment,
        shipments::get_shipment, shipments::update_shipment, shipments::cancel_shipment,
        shipments::shipment_events,
        keys::create_key, keys::list_keys, keys::get_key, keys::revoke_key,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "events", description = "Ingest carrier tracking events"),
        (name = "shipments", description = "Shipments and their timelines"),
        (name = "api-keys", description = "Manage API keys (admin scope)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("bsk_live_...")
                    .build(),
            ),
        );
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
