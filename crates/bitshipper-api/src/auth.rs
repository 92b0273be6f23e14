//! Authentication and authorization in one place: a middleware turns the bearer key into an
//! `Authenticated` principal; handlers declare the scope they need in their signature with
//! `Auth<ReadScope>` and friends, checked here.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use bitshipper_core::{ApiKeyId, Scope, TenantId};
use std::marker::PhantomData;

/// The caller, once its API key checked out.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub tenant: TenantId,
    pub key_id: ApiKeyId,
    pub scopes: Vec<Scope>,
}

/// Middleware for every `/v1` route: 401 unless a live key is presented.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    let auth = state
        .store
        .authenticate_api_key(secret)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    // Record use at most once a minute per key, off the request path.
    let stale = auth
        .last_used_at
        .is_none_or(|t| chrono::Utc::now() - t > chrono::Duration::seconds(60));
    if stale {
        let store = state.store.clone();
        let (tenant, key) = (auth.tenant_id, auth.key_id);
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(tenant, key).await {
                tracing::warn!(error = %e, "could not record api key use");
            }
        });
    }
    request.extensions_mut().insert(Authenticated {
        tenant: auth.tenant_id,
        key_id: auth.key_id,
        scopes: auth.scopes,
    });
    Ok(next.run(request).await)
}

/// A scope a route needs.
pub trait RequiredScope {
    const SCOPE: Scope;
}

macro_rules! scope_marker {
    ($name:ident, $scope:expr) => {
        #[derive(Debug)]
        pub struct $name;
        impl RequiredScope for $name {
            const SCOPE: Scope = $scope;
        }
    };
}
scope_marker!(IngestScope, Scope::Ingest);
scope_marker!(ReadScope, Scope::Read);
scope_marker!(WriteScope, Scope::Write);
scope_marker!(AdminScope, Scope::Admin);

/// Extractor: the authenticated caller, who must hold scope `S` (or `admin`).
#[derive(Debug)]
pub struct Auth<S: RequiredScope> {
    pub tenant: TenantId,
    pub key_id: ApiKeyId,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope + Send + Sync, St: Send + Sync> FromRequestParts<St> for Auth<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, ApiError> {
        let who = parts
            .extensions
            .get::<Authenticated>()
            .ok_or(ApiError::Unauthorized)?;
        if !S::SCOPE.is_satisfied_by(&who.scopes) {
            return Err(ApiError::Forbidden {
                needed: S::SCOPE.as_str(),
            });
        }
        Ok(Auth {
            tenant: who.tenant,
            key_id: who.key_id,
            _scope: PhantomData,
        })
    }
}
