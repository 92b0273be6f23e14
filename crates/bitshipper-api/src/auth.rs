//! Authentication and authorization in one place. A middleware turns the bearer API key or the
//! session cookie into an `Authenticated` principal (checking CSRF for cookie-authenticated
//! writes and the tenant's second-factor rule); handlers declare what they need in their
//! signature with `Auth<ReadScope>`, `Auth<OwnerRole>` and friends, checked here. A user's role
//! maps to scopes (`Role::scopes`), so keys and people pass the same checks.

use crate::credentials::{secrets_equal, session_secret, CSRF_HEADER};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use bitshipper_core::{ApiKeyId, Role, Scope, TenantId, UserId};
use std::marker::PhantomData;
use std::net::SocketAddr;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    ApiKey(ApiKeyId),
    /// A person signed in with a session cookie; `session` is the cookie's secret.
    User {
        id: UserId,
        role: Role,
        session: String,
    },
}

/// The caller, once its credentials checked out.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub tenant: TenantId,
    pub principal: Principal,
    pub scopes: Vec<Scope>,
}

impl Authenticated {
    /// How the audit log names this caller: `api_key:<id>` or `user:<id>`.
    pub fn actor(&self) -> String {
        match &self.principal {
            Principal::ApiKey(id) => format!("api_key:{id}"),
            Principal::User { id, .. } => format!("user:{id}"),
        }
    }
}

/// Middleware for every authenticated `/v1` route: 401 unless a live key or session is
/// presented.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let client_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let refuse = |state: &AppState, reason: &'static str| -> ApiError {
        metrics::counter!("bitshipper_auth_failures_total", "reason" => reason).increment(1);
        refusal(state, client_ip)
    };
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .unwrap_or("")
                .trim()
                .to_string()
        });
    let who = match (bearer, session_secret(request.headers())) {
        (Some(secret), _) => {
            if secret.is_empty() {
                return Err(refuse(&state, "malformed"));
            }
            match api_key_principal(&state, &secret).await? {
                Some(who) => who,
                None => return Err(refuse(&state, "unknown_key")),
            }
        }
        (None, Some(secret)) => {
            let path = request.uri().path().to_string();
            match session_principal(&state, &secret, request.method(), request.headers(), &path)
                .await?
            {
                Ok(who) => who,
                Err(SessionRefusal::Unknown) => return Err(refuse(&state, "unknown_session")),
                Err(SessionRefusal::Other(e)) => return Err(e),
            }
        }
        (None, None) => return Err(refuse(&state, "missing")),
    };
    request.extensions_mut().insert(who);
    Ok(next.run(request).await)
}

/// 401, or 429 once one address has failed too often.
pub(crate) fn refusal(state: &AppState, client_ip: Option<std::net::IpAddr>) -> ApiError {
    match client_ip.map(|ip| state.rate_limits.failed_auth(ip)) {
        Some(Err(retry_after_secs)) => {
            metrics::counter!("bitshipper_auth_rate_limited_total").increment(1);
            ApiError::RateLimited { retry_after_secs }
        }
        _ => ApiError::Unauthorized,
    }
}

async fn api_key_principal(
    state: &AppState,
    secret: &str,
) -> Result<Option<Authenticated>, ApiError> {
    let auth = match state.keys.get(secret) {
        Some(auth) => auth,
        None => match state.store.authenticate_api_key(secret).await? {
            Some(auth) => {
                state.keys.insert(secret, auth.clone());
                auth
            }
            None => return Ok(None),
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
    Ok(Some(Authenticated {
        tenant: auth.tenant_id,
        principal: Principal::ApiKey(auth.key_id),
        scopes: auth.scopes,
    }))
}

enum SessionRefusal {
    Unknown,
    Other(ApiError),
}

async fn session_principal(
    state: &AppState,
    secret: &str,
    method: &Method,
    headers: &axum::http::HeaderMap,
    path: &str,
) -> Result<Result<Authenticated, SessionRefusal>, ApiError> {
    let Some(session) = state.store.session(secret).await? else {
        return Ok(Err(SessionRefusal::Unknown));
    };
    let now = chrono::Utc::now();
    let idle = chrono::Duration::seconds(state.sessions.idle_timeout_secs);
    if now >= session.expires_at || now - session.last_seen_at > idle {
        state.store.delete_session(secret).await?;
        return Ok(Err(SessionRefusal::Unknown));
    }
    // Cookies ride along on cross-site requests; a write must prove it came from our pages.
    let unsafe_method = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !secrets_equal(sent, &session.csrf_token) {
            metrics::counter!("bitshipper_csrf_rejections_total").increment(1);
            return Ok(Err(SessionRefusal::Other(ApiError::CsrfRejected)));
        }
    }
    // A tenant that requires a second factor lets a session without one only set it up.
    if session.tenant_requires_mfa && !session.mfa_satisfied && !path.starts_with("/v1/auth/") {
        return Ok(Err(SessionRefusal::Other(ApiError::MfaRequired)));
    }
    if now - session.last_seen_at > chrono::Duration::seconds(60) {
        let store = state.store.clone();
        let secret = secret.to_string();
        tokio::spawn(async move {
            if let Err(e) = store.touch_session(&secret, false, false).await {
                tracing::warn!(error = %e, "could not record session use");
            }
        });
    }
    Ok(Ok(Authenticated {
        tenant: session.tenant_id,
        scopes: session.role.scopes().to_vec(),
        principal: Principal::User {
            id: session.user_id,
            role: session.role,
            session: secret.to_string(),
        },
    }))
}

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A key with this scope (or `admin`), or a user whose role grants it.
    Scope(Scope),
    /// A signed-in user with the `owner` role; API keys never qualify.
    Owner,
    /// Any signed-in user (their own account); API keys never qualify.
    User,
}

impl Access {
    /// The least role that passes, for the OpenAPI document.
    pub fn minimum_role(&self) -> Role {
        match self {
            Access::Scope(s) => Role::least_for(*s),
            Access::Owner => Role::Owner,
            Access::User => Role::Viewer,
        }
    }

    fn check(&self, who: &Authenticated) -> Result<(), ApiError> {
        match (self, &who.principal) {
            (Access::Scope(s), _) if s.is_satisfied_by(&who.scopes) => Ok(()),
            (Access::Scope(s), _) => Err(ApiError::Forbidden { needed: s.as_str() }),
            (
                Access::Owner,
                Principal::User {
                    role: Role::Owner, ..
                },
            ) => Ok(()),
            (Access::Owner, _) => Err(ApiError::Forbidden {
                needed: "owner role",
            }),
            (Access::User, Principal::User { .. }) => Ok(()),
            (Access::User, _) => Err(ApiError::Forbidden {
                needed: "signed-in user",
            }),
        }
    }
}

/// Every authenticated operation's requirement, as its handler's extractor declares it; written
/// into the OpenAPI document (`x-minimum-role`, `x-required-scope`). Operations not listed are
/// public. The API tests check each route against this list for every role.
pub const ROUTE_ACCESS: &[(&str, &str, Access)] = &[
    ("post", "/v1/events", Access::Scope(Scope::Ingest)),
    ("post", "/v1/shipments", Access::Scope(Scope::Write)),
    ("get", "/v1/shipments", Access::Scope(Scope::Read)),
    ("get", "/v1/shipments/lookup", Access::Scope(Scope::Read)),
    ("get", "/v1/shipments/{id}", Access::Scope(Scope::Read)),
    (
        "get",
        "/v1/predictions/accuracy",
        Access::Scope(Scope::Read),
    ),
    ("patch", "/v1/shipments/{id}", Access::Scope(Scope::Write)),
    (
        "post",
        "/v1/shipments/{id}/cancel",
        Access::Scope(Scope::Write),
    ),
    (
        "get",
        "/v1/shipments/{id}/events",
        Access::Scope(Scope::Read),
    ),
    ("post", "/v1/api-keys", Access::Scope(Scope::Admin)),
    ("get", "/v1/api-keys", Access::Scope(Scope::Admin)),
    ("get", "/v1/api-keys/{id}", Access::Scope(Scope::Admin)),
    ("delete", "/v1/api-keys/{id}", Access::Scope(Scope::Admin)),
    ("get", "/v1/audit", Access::Scope(Scope::Admin)),
    ("post", "/v1/erasures", Access::Scope(Scope::Admin)),
    ("post", "/v1/auth/logout", Access::User),
    ("get", "/v1/auth/session", Access::User),
    ("post", "/v1/auth/password", Access::User),
    ("post", "/v1/auth/email", Access::User),
    ("post", "/v1/auth/totp", Access::User),
    ("post", "/v1/auth/totp/confirm", Access::User),
    ("get", "/v1/users", Access::Scope(Scope::Admin)),
    ("post", "/v1/users/invitations", Access::Scope(Scope::Admin)),
    ("patch", "/v1/users/{id}", Access::Scope(Scope::Admin)),
    ("put", "/v1/tenant/security", Access::Owner),
    ("get", "/v1/tenant/retention", Access::Scope(Scope::Admin)),
    ("post", "/v1/webhook-endpoints", Access::Scope(Scope::Admin)),
    ("get", "/v1/webhook-endpoints", Access::Scope(Scope::Admin)),
    (
        "delete",
        "/v1/webhook-endpoints/{id}",
        Access::Scope(Scope::Admin),
    ),
    ("get", "/v1/raw-payloads/{id}", Access::Scope(Scope::Admin)),
    ("post", "/v1/imports", Access::Scope(Scope::Write)),
    ("put", "/v1/tenant/retention", Access::Scope(Scope::Admin)),
];

/// A requirement a route declares through its extractor's type.
pub trait Requirement {
    const ACCESS: Access;
}

macro_rules! requirement_marker {
    ($name:ident, $access:expr) => {
        #[derive(Debug)]
        pub struct $name;
        impl Requirement for $name {
            const ACCESS: Access = $access;
        }
    };
}
requirement_marker!(IngestScope, Access::Scope(Scope::Ingest));
requirement_marker!(ReadScope, Access::Scope(Scope::Read));
requirement_marker!(WriteScope, Access::Scope(Scope::Write));
requirement_marker!(AdminScope, Access::Scope(Scope::Admin));
requirement_marker!(OwnerRole, Access::Owner);
requirement_marker!(SignedInUser, Access::User);

/// Extractor: the authenticated caller, who must meet requirement `R`.
#[derive(Debug)]
pub struct Auth<R: Requirement> {
    pub tenant: TenantId,
    /// How the audit log names the caller.
    pub actor: String,
    pub principal: Principal,
    _requirement: PhantomData<R>,
}

impl<R: Requirement + Send + Sync, St: Send + Sync> FromRequestParts<St> for Auth<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, ApiError> {
        let who = parts
            .extensions
            .get::<Authenticated>()
            .ok_or(ApiError::Unauthorized)?;
        R::ACCESS.check(who)?;
        Ok(Auth {
            tenant: who.tenant,
            actor: who.actor(),
            principal: who.principal.clone(),
            _requirement: PhantomData,
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
    pub(crate) fn touched(&self, secret: &str) {
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
