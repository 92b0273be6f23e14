//! The OpenAPI 3.1 document (`/openapi.json`) and the browsable API page (`/docs`).

use crate::routes::{audit, erasures, events, keys, shipments};
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
        audit::list_audit,
        erasures::erase_recipient,
    ),
    modifiers(&BearerAuth, &ProblemResponses),
    tags(
        (name = "events", description = "Ingest carrier tracking events"),
        (name = "shipments", description = "Shipments and their timelines"),
        (name = "api-keys", description = "Manage API keys (admin scope)"),
        (name = "erasures", description = "Erase a recipient's personal data (admin scope)"),
        (name = "audit", description = "The tenant's append-only, hash-chained audit log (admin scope)"),
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

/// Every error is `application/problem+json`, and every operation can answer the shared
/// problems (bad JSON, no key, wrong scope, too large, wrong media type, invalid, busy,
/// internal); documenting them once here keeps each route's list to what is particular to it.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        crate::problem::PROBLEM_CONTENT_TYPE,
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for op in operations.into_iter().flatten() {
                let responses = &mut op.responses.responses;
                // Errors a handler documents itself are problems too.
                for (code, response) in responses.iter_mut() {
                    if code.starts_with('4') || code.starts_with('5') {
                        if let RefOr::T(r) = response {
                            let description = r.description.clone();
                            *response = problem(&description);
                        }
                    }
                }
                let mut common = vec![
                    (
                        "400",
                        "Malformed request (JSON syntax, query string, headers)",
                    ),
                    ("401", "No valid API key"),
                    ("403", "The key lacks the scope this operation needs"),
                    ("404", "No such resource in this tenant"),
                    ("422", "Invalid fields; `errors` names each one"),
                    ("429", "Rate limit reached (per key, or failed authentications per address); see Retry-After"),
                    ("500", "Internal error (the cause is logged, never sent)"),
                    ("503", "At capacity or shutting down; see Retry-After"),
                ];
                if op.request_body.is_some() {
                    common.push(("413", "Body larger than the limit"));
                    common.push(("415", "Body is not application/json"));
                }
                for (code, description) in common {
                    responses
                        .entry(code.to_string())
                        .or_insert_with(|| problem(description));
                }
            }
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
