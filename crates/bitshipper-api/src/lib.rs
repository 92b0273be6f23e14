//! BitShipper's HTTP API: axum routers under `/v1`, API-key authentication with per-route
//! scopes, RFC 9457 problem responses, idempotent POSTs, an OpenAPI 3.1 document and a
//! browsable API page. A thin adapter over the store and the pipeline.

pub mod auth;
pub mod credentials;
pub mod extract;
pub mod idempotency;
pub mod ingest;
pub mod json;
mod observe;
pub mod openapi;
pub mod problem;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod views;

pub use observe::install_metrics_recorder;
pub use problem::ApiError;
pub use state::{AnalyticsSource, AppState, Limits, SessionPolicy};

use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `Strict-Transport-Security` when the request reached us over TLS through a proxy that says
/// so (`X-Forwarded-Proto: https`); browsers ignore it over plain HTTP anyway.
async fn hsts_behind_tls(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let over_tls = request
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let mut response = next.run(request).await;
    if over_tls {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// Liveness, readiness and metrics: served by every process, whatever its roles.
fn ops_routes() -> Router<AppState> {
    use routes::ops;
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
}

/// Health, readiness and metrics only: for processes that run no API role.
pub fn ops_router(state: AppState) -> Router {
    ops_routes().fallback(observe::not_found).with_state(state)
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    use routes::{
        account, analytics, audit, erasures, events, imports, keys, predictions, shipments, users,
        webhooks,
    };
    let v1 = Router::new()
        .route("/v1/events", post(events::ingest_events))
        .route(
            "/v1/shipments",
            post(shipments::create_shipment).get(shipments::list_shipments),
        )
        .route("/v1/shipments/lookup", get(shipments::lookup_shipment))
        .route(
            "/v1/shipments/{id}",
            get(shipments::get_shipment).patch(shipments::update_shipment),
        )
        .route(
            "/v1/shipments/{id}/cancel",
            post(shipments::cancel_shipment),
        )
        .route("/v1/shipments/{id}/events", get(shipments::shipment_events))
        .route("/v1/predictions/accuracy", get(predictions::accuracy))
        .route("/v1/analytics/kpis", get(analytics::kpis))
        .route("/v1/exports/{table}", get(analytics::export))
        .route("/v1/api-keys", post(keys::create_key).get(keys::list_keys))
        .route(
            "/v1/api-keys/{id}",
            get(keys::get_key).delete(keys::revoke_key),
        )
        .route("/v1/audit", get(audit::list_audit))
        .route("/v1/erasures", post(erasures::erase_recipient))
        .route("/v1/auth/logout", post(account::logout))
        .route("/v1/auth/session", get(account::current_session))
        .route("/v1/auth/password", post(account::change_password))
        .route("/v1/auth/email", post(account::change_email))
        .route("/v1/auth/totp", post(account::start_totp))
        .route("/v1/auth/totp/confirm", post(account::confirm_totp))
        .route("/v1/users", get(users::list_users))
        .route(
            "/v1/webhook-endpoints",
            post(webhooks::create_endpoint).get(webhooks::list_endpoints),
        )
        .route(
            "/v1/webhook-endpoints/{id}",
            axum::routing::delete(webhooks::revoke_endpoint),
        )
        .route("/v1/raw-payloads/{id}", get(webhooks::get_raw_payload))
        .route("/v1/imports", post(imports::import))
        .route("/v1/users/invitations", post(users::invite_user))
        .route("/v1/users/{id}", axum::routing::patch(users::update_user))
        .route(
            "/v1/tenant/security",
            axum::routing::put(users::set_security_settings),
        )
        .route(
            "/v1/tenant/retention",
            get(users::get_retention).put(users::set_retention),
        )
        // Layers run outside-in: authenticate first, then idempotency (which needs the tenant).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));

    // Routes whose credential is in the body: no key or session yet.
    let public = Router::new()
        .route("/v1/auth/login", post(account::login))
        .route("/v1/invitations/accept", post(users::accept_invitation))
        .route(
            "/v1/webhooks/{provider}/{endpoint_id}",
            post(webhooks::receive),
        );

    ops_routes()
        .merge(openapi::routes())
        .merge(public)
        .merge(v1)
        .fallback(observe::not_found)
        .method_not_allowed_fallback(observe::method_not_allowed)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // Same-origin only; no framing. The API page (/docs) needs its inline bootstrap.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(axum::middleware::from_fn(hsts_behind_tls))
        .layer(axum::middleware::from_fn(observe::http_metrics))
        // Spans name the path only: query strings can carry personal data (a recipient email).
        .layer(TraceLayer::new_for_http().make_span_with(
            |request: &axum::http::Request<axum::body::Body>| {
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
            },
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .layer(CatchPanicLayer::custom(observe::panic_response))
        .with_state(state)
}
