//! The OpenAPI 3.1 document (`/openapi.json`) and the browsable API page (`/docs`).

use crate::auth::{Access, ROUTE_ACCESS};
use crate::routes::{
    account, analytics, audit, erasures, events, imports, keys, predictions, shipments, users,
    webhooks,
};
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
        predictions::accuracy,
        analytics::kpis,
        analytics::export,
        keys::create_key, keys::list_keys, keys::get_key, keys::revoke_key,
        audit::list_audit,
        erasures::erase_recipient,
        account::login, account::logout, account::current_session, account::change_password,
        account::change_email,
        account::start_totp, account::confirm_totp,
        users::list_users, users::invite_user, users::update_user, users::accept_invitation,
        users::set_security_settings, users::get_retention, users::set_retention,
        webhooks::create_endpoint, webhooks::list_endpoints, webhooks::revoke_endpoint,
        webhooks::receive, webhooks::get_raw_payload, imports::import,
    ),
    modifiers(&BearerAuth, &ProblemResponses, &RequiredAccess),
    tags(
        (name = "events", description = "Ingest carrier tracking events"),
        (name = "shipments", description = "Shipments and their timelines"),
        (name = "predictions", description = "How well delivery predictions held"),
        (name = "analytics", description = "Delivery KPIs from the lake: volume, on-time rate, transit times, exceptions, first-attempt delivery"),
        (name = "api-keys", description = "Manage API keys (admin scope)"),
        (name = "auth", description = "Sign in with email and password (and a second factor); the session cookie then authenticates, with `X-CSRF-Token` on writes"),
        (name = "users", description = "People in the tenant, their roles and invitations"),
        (name = "integrations", description = "Provider webhooks in, their endpoints and the raw payloads kept for audit"),
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
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    crate::credentials::SESSION_COOKIE,
                    "Session cookie from POST /v1/auth/login; writes also need the X-CSRF-Token header",
                ),
            )),
        );
    }
}

/// Writes each operation's requirement into the document: `x-required-scope` (for API keys),
/// `x-minimum-role` (for people), and a sentence in the description. The API tests walk these
/// and check every route refuses the roles below it.
struct RequiredAccess;

impl Modify for RequiredAccess {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::extensions::ExtensionsBuilder;
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("put", item.put.as_mut()),
                ("patch", item.patch.as_mut()),
                ("delete", item.delete.as_mut()),
            ];
            for (method, op) in operations {
                let Some(op) = op else { continue };
                let access = ROUTE_ACCESS
                    .iter()
                    .find(|(m, p, _)| *m == method && p == path)
                    .map(|(_, _, a)| *a);
                let (scope, role, sentence) = match access {
                    None => ("none".to_string(), "none".to_string(), "Public: no credentials.".to_string()),
                    Some(Access::Scope(s)) => (
                        s.as_str().to_string(),
                        Access::Scope(s).minimum_role().as_str().to_string(),
                        format!("Requires an API key with scope `{s}` (or `admin`), or a user with role `{}` or above.", Access::Scope(s).minimum_role()),
                    ),
                    Some(Access::Owner) => ("none".into(), "owner".into(), "Requires a signed-in user with role `owner`; API keys cannot.".into()),
                    Some(Access::User) => ("none".into(), "viewer".into(), "Requires a signed-in user (any role); API keys cannot.".into()),
                };
                let extensions = ExtensionsBuilder::new()
                    .add("x-required-scope", scope)
                    .add("x-minimum-role", role)
                    .build();
                match op.extensions.as_mut() {
                    Some(e) => e.merge(extensions),
                    None => op.extensions = Some(extensions),
                }
                op.description = Some(match op.description.take() {
                    Some(d) if !d.is_empty() => format!("{d}\n\n{sentence}"),
                    _ => sentence,
                });
            }
        }
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
                    ("401", "No valid API key or session"),
                    ("403", "The caller lacks the scope or role this operation needs, or a cookie-authenticated write lacks its CSRF token"),
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
