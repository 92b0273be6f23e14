//! Authentication and authorization in one place: a middleware turns the bearer key into an
//! `Authenticated` principal; handlers declare the scope they need in their signature with
//! `Auth<ReadScope>` and friends, checked here.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use bitshipper_core::{ApiKeyId, Scope, TenantId};
use std::marker::PhantomData;
use std::net::SocketAddr;

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
    let client_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // Too many failures from one address: refuse with 429 instead of answering the guess.
    let refuse = |state: &AppState| -> ApiError {
        match client_ip.map(|ip| state.rate_limits.failed_auth(ip)) {
            Some(Err(retry_after_secs)) => {
                metrics::counter!("bitshipper_auth_rate_limited_total").increment(1);
                ApiError::RateLimited { retry_after_secs }
            }
            _ => ApiError::Unauthorized,
        }
    };
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(secret) = secret else {
        metrics::counter!("bitshipper_auth_failures_total", "reason" => "missing").increment(1);
        return Err(refuse(&state));
    };
    let auth = match state.keys.get(secret) {
        Some(auth) => auth,
        None => match state.store.authenticate_api_key(secret).await? {
            Some(auth) => {
                state.keys.insert(secret, auth.clone());
                auth
            }
            None => {
                metrics::counter!("bitshipper_auth_failures_total", "reason" => "unknown_key")
                    .increment(1);
                return Err(refuse(&state));
            }
        },
    };
    if let Err(retry_after_secs) = state.rate_limits.check_key(auth.key_id) {
        metrics::counter!("bitshipper_rate_limited_total").increment(1);
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    // Record use at most once a minute per key, off the request path.
    let stale = auth
        .last_used_at
        .is_none_or(|t| chrono::Utc::now() - t > chrono::Duration::seconds(60));
    if stale {
        state.keys.touched(secret);
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

/// Recently authenticated keys, so a read does not cost a key lookup as well. Entries live a few
/// seconds; a revocation through this process removes its key at once, one through another
/// process takes effect within the time to live. Unknown secrets are never cached.
#[derive(Debug)]
pub struct KeyCache {
    entries: std::sync::Mutex<
        std::collections::HashMap<String, (bitshipper_store::ApiKeyAuth, std::time::Instant)>,
    >,
    ttl: std::time::Duration,
}

const KEY_CACHE_MAX_ENTRIES: usize = 10_000;

impl KeyCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            entries: Default::default(),
            ttl,
        }
    }

    fn slot(secret: &str) -> String {
        bitshipper_store::keys::hash_secret(secret)
    }

    pub fn get(&self, secret: &str) -> Option<bitshipper_store::ApiKeyAuth> {
        let entries = self.entries.lock().ok()?;
        let (auth, at) = entries.get(&Self::slot(secret))?;
        let fresh = at.elapsed() < self.ttl;
        let unexpired = auth.expires_at.is_none_or(|e| e > chrono::Utc::now());
        (fresh && unexpired).then(|| auth.clone())
    }

    pub fn insert(&self, secret: &str, auth: bitshipper_store::ApiKeyAuth) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= KEY_CACHE_MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(Self::slot(secret), (auth, std::time::Instant::now()));
        }
    }

    /// Notes that use was just recorded, so cached copies do not trigger another write.
    fn touched(&self, secret: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            if let Some((auth, _)) = entries.get_mut(&Self::slot(secret)) {
                auth.last_used_at = Some(chrono::Utc::now());
            }
        }
    }

    /// Forgets a key (after revocation).
    pub fn forget(&self, key: ApiKeyId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (auth, _)| auth.key_id != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitshipper_store::ApiKeyAuth;

    fn auth(expires_in: Option<i64>) -> ApiKeyAuth {
        ApiKeyAuth {
            key_id: ApiKeyId::new(),
            tenant_id: TenantId::new(),
            scopes: vec![Scope::Read],
            last_used_at: None,
            expires_at: expires_in.map(|s| chrono::Utc::now() + chrono::Duration::seconds(s)),
        }
    }

    #[test]
    fn remembers_forgets_and_honours_expiry() {
        let cache = KeyCache::new(std::time::Duration::from_secs(60));
        let a = auth(None);
        cache.insert("bsk_live_a", a.clone());
        assert_eq!(cache.get("bsk_live_a"), Some(a.clone()));
        assert_eq!(cache.get("bsk_live_b"), None);
        cache.forget(a.key_id);
        assert_eq!(cache.get("bsk_live_a"), None);

        cache.insert("bsk_live_c", auth(Some(-1)));
        assert_eq!(
            cache.get("bsk_live_c"),
            None,
            "an expired key is not served from the cache"
        );

        let off = KeyCache::new(std::time::Duration::ZERO);
        off.insert("bsk_live_a", a);
        assert_eq!(off.get("bsk_live_a"), None);
    }
}
