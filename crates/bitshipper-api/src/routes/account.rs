//! Signing in and managing one's own account: login (password, then the second factor when
//! set), logout, the current session, password change and TOTP setup. Changing the password or
//! the second factor asks for the current password again (re-authentication).

use crate::auth::{refusal, Auth, Principal, SignedInUser};
use crate::credentials::{
    check_password_policy, cleared_session_cookie, hash_password, new_totp_secret, random_token,
    session_cookie, totp_step, verify_password,
};
use crate::json::ApiJson;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bitshipper_core::{Role, TenantId, UserId};
use bitshipper_store::{AuditRecord, NewSession};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(max_length = 254)]
    pub email: String,
    #[schema(max_length = 128)]
    pub password: String,
    /// The 6-digit code of the second factor, when the account has one.
    #[schema(pattern = "^[0-9]{6}$")]
    pub totp_code: Option<String>,
}

/// The signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
    pub totp_enabled: bool,
    /// Send this as `X-CSRF-Token` on every write made with the session cookie.
    pub csrf_token: String,
    /// The tenant requires a second factor and this account has none yet: only `/v1/auth/`
    /// routes work until one is set up.
    pub second_factor_setup_required: bool,
}

/// Opens the user's sealed TOTP secret and spends the code's time step: true only for a
/// current code whose step was not used before.
async fn spend_totp_code(
    state: &AppState,
    tenant: TenantId,
    user: UserId,
    sealed: &str,
    code: &str,
) -> Result<bool, ApiError> {
    let secret = state.store.totp_secret(tenant, user, sealed).await?;
    match totp_step(&secret, code)? {
        Some(step) => Ok(state.store.use_totp_step(tenant, user, step).await?),
        None => Ok(false),
    }
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    description = "Public. Sets the `bs_session` cookie (HttpOnly, Secure, SameSite=Lax). Five failures in a row lock the account for 15 minutes.",
    responses((status = 200, body = SessionView), (status = 401, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let ip = connect.map(|c| c.0 .0.ip());
    if body.email.chars().count() > 254 || body.password.chars().count() > 128 {
        return Err(ApiError::field("email", "email or password is too long"));
    }
    let creds = state.store.user_credentials(&body.email).await?;
    let now = chrono::Utc::now();
    let fail = |reason: &'static str| {
        metrics::counter!("bitshipper_login_failures_total", "reason" => reason).increment(1);
    };
    // Always verify against something, so unknown emails take as long as known ones.
    let password_ok = verify_password(
        body.password.clone(),
        creds.as_ref().map(|c| c.password_hash.clone()),
    )
    .await;
    let Some(creds) = creds else {
        fail("unknown_user");
        return Err(match refusal(&state, ip) {
            ApiError::Unauthorized => ApiError::LoginFailed,
            other => other,
        });
    };
    let user = creds.user.clone();
    if let Some(until) = creds.locked_until.filter(|u| *u > now) {
        fail("locked");
        let retry_after_secs = u32::try_from((until - now).num_seconds().max(1)).unwrap_or(1);
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    let mut second_factor_ok = true;
    if password_ok && creds.user.totp_enabled {
        match (&body.totp_code, &creds.totp_sealed) {
            (None, _) => {
                return Err(ApiError::field(
                    "totp_code",
                    "is required: this account has a second factor",
                ))
            }
            (Some(code), Some(sealed)) => {
                second_factor_ok =
                    spend_totp_code(&state, user.tenant_id, user.id, sealed, code).await?;
            }
            (Some(_), None) => second_factor_ok = false,
        }
    }
    if !password_ok || !second_factor_ok || user.disabled {
        fail(if user.disabled {
            "disabled"
        } else if password_ok {
            "second_factor"
        } else {
            "password"
        });
        let lock = (creds.failed_logins + 1 >= state.sessions.lockout_after_failures)
            .then(|| now + chrono::Duration::seconds(state.sessions.lockout_secs));
        state.store.record_login_failure(user.id, lock).await?;
        state
            .store
            .audit(
                user.tenant_id,
                AuditRecord::new(
                    "anonymous",
                    if lock.is_some() {
                        "login.locked"
                    } else {
                        "login.failed"
                    },
                    format!("user:{}", user.id),
                ),
            )
            .await?;
        return Err(match refusal(&state, ip) {
            ApiError::Unauthorized => ApiError::LoginFailed,
            other => other,
        });
    }
    state.store.record_login_success(user.id).await?;
    // A fresh session id at every login (no fixation).
    let secret = random_token();
    let csrf = random_token();
    let lifetime = state.sessions.absolute_timeout_secs;
    state
        .store
        .create_session(NewSession {
            secret: &secret,
            tenant_id: user.tenant_id,
            user_id: user.id,
            csrf_token: &csrf,
            mfa_satisfied: user.totp_enabled,
            expires_at: now + chrono::Duration::seconds(lifetime),
        })
        .await?;
    state
        .store
        .audit(
            user.tenant_id,
            AuditRecord::new(
                format!("user:{}", user.id),
                "login.succeeded",
                format!("user:{}", user.id),
            ),
        )
        .await?;
    let view = SessionView {
        user_id: user.id,
        tenant_id: user.tenant_id,
        email: user.email,
        role: user.role,
        totp_enabled: user.totp_enabled,
        csrf_token: csrf,
        second_factor_setup_required: creds.tenant_requires_mfa && !user.totp_enabled,
    };
    let mut response = Json(view).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&secret, lifetime));
    Ok(response)
}

fn session_of(principal: &Principal) -> (UserId, &str) {
    match principal {
        Principal::User { id, session, .. } => (*id, session.as_str()),
        // `SignedInUser` admits only users.
        Principal::ApiKey(_) => (UserId(uuid::Uuid::nil()), ""),
    }
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("session" = [])),
    responses((status = 204, description = "Signed out; the cookie is cleared")))]
pub async fn logout(
    auth: Auth<SignedInUser>,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let (user, session) = session_of(&auth.principal);
    state.store.delete_session(session).await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(auth.actor.clone(), "logout", format!("user:{user}")),
        )
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, cleared_session_cookie());
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

#[utoipa::path(get, path = "/v1/auth/session", tag = "auth", security(("session" = [])),
    responses((status = 200, body = SessionView)))]
pub async fn current_session(
    auth: Auth<SignedInUser>,
    State(state): State<AppState>,
) -> Result<Json<SessionView>, ApiError> {
    let (user_id, secret) = session_of(&auth.principal);
    let user = state
        .store
        .get_user(auth.tenant, user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let session = state
        .store
        .session(secret)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(SessionView {
        user_id,
        tenant_id: auth.tenant,
        email: user.email,
        role: user.role,
        totp_enabled: user.totp_enabled,
        csrf_token: session.csrf_token,
        second_factor_setup_required: session.tenant_requires_mfa && !user.totp_enabled,
    }))
}

/// Proves the caller knows the current password (re-authentication).
async fn reauthenticate(
    state: &AppState,
    tenant: TenantId,
    user: UserId,
    password: &str,
) -> Result<(), ApiError> {
    let hash = state.store.user_password_hash(tenant, user).await?;
    if !verify_password(password.to_string(), hash).await {
        metrics::counter!("bitshipper_login_failures_total", "reason" => "reauthentication")
            .increment(1);
        return Err(ApiError::field("current_password", "is wrong"));
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// 8 to 128 characters, not a common password.
    pub new_password: String,
}

#[utoipa::path(post, path = "/v1/auth/password", tag = "auth", request_body = PasswordChange,
    security(("session" = [])),
    description = "Changes the password after checking the current one; ends every other session of the user.",
    responses((status = 204, description = "Changed"), (status = 422, body = Problem)))]
pub async fn change_password(
    auth: Auth<SignedInUser>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let (user_id, session) = session_of(&auth.principal);
    reauthenticate(&state, auth.tenant, user_id, &body.current_password).await?;
    let user = state
        .store
        .get_user(auth.tenant, user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    check_password_policy("new_password", &body.new_password, &[&user.email])?;
    let hash = hash_password(body.new_password).await?;
    state
        .store
        .set_password(auth.tenant, user_id, &hash, Some(session))
        .await?;
    state.store.touch_session(session, true, false).await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(
                auth.actor.clone(),
                "user.password_changed",
                format!("user:{user_id}"),
            ),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reauthentication {
    pub current_password: String,
}

/// A new second factor to enter into an authenticator app, then confirm with a code.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 secret.
    pub secret: String,
    /// `otpauth://` URI for a QR code.
    pub otpauth_uri: String,
}

#[utoipa::path(post, path = "/v1/auth/totp", tag = "auth", request_body = Reauthentication,
    security(("session" = [])),
    description = "Starts second-factor setup (RFC 6238 TOTP) after checking the password; confirm with `POST /v1/auth/totp/confirm`.",
    responses((status = 200, body = TotpSetup), (status = 422, body = Problem)))]
pub async fn start_totp(
    auth: Auth<SignedInUser>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Reauthentication>,
) -> Result<Json<TotpSetup>, ApiError> {
    let (user_id, _) = session_of(&auth.principal);
    reauthenticate(&state, auth.tenant, user_id, &body.current_password).await?;
    let user = state
        .store
        .get_user(auth.tenant, user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let secret = new_totp_secret();
    state
        .store
        .set_totp_secret(auth.tenant, user_id, Some(&secret))
        .await?;
    let encoded = crate::credentials::totp(&secret)?.get_secret_base32();
    Ok(Json(TotpSetup {
        otpauth_uri: format!(
            "otpauth://totp/BitShipper:{}?secret={encoded}&issuer=BitShipper&algorithm=SHA1&digits=6&period=30",
            user.email.replace('@', "%40")
        ),
        secret: encoded,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

#[utoipa::path(post, path = "/v1/auth/totp/confirm", tag = "auth", request_body = TotpConfirm,
    security(("session" = [])),
    responses((status = 204, description = "Second factor on"), (status = 422, body = Problem)))]
pub async fn confirm_totp(
    auth: Auth<SignedInUser>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TotpConfirm>,
) -> Result<StatusCode, ApiError> {
    let (user_id, session) = session_of(&auth.principal);
    let sealed = state
        .store
        .user_totp_sealed(auth.tenant, user_id)
        .await?
        .ok_or_else(|| ApiError::field("code", "start setup with POST /v1/auth/totp first"))?;
    if !spend_totp_code(&state, auth.tenant, user_id, &sealed, &body.code).await? {
        return Err(ApiError::field(
            "code",
            "does not match (or was already used); check the device's clock",
        ));
    }
    state.store.enable_totp(auth.tenant, user_id).await?;
    state.store.touch_session(session, true, true).await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(
                auth.actor.clone(),
                "user.second_factor_enabled",
                format!("user:{user_id}"),
            ),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChange {
    pub current_password: String,
    #[schema(max_length = 254)]
    pub new_email: String,
}

#[utoipa::path(post, path = "/v1/auth/email", tag = "auth", request_body = EmailChange,
    security(("session" = [])),
    description = "Changes the login email after checking the password; ends every other session of the user.",
    responses((status = 204, description = "Changed"), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn change_email(
    auth: Auth<SignedInUser>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EmailChange>,
) -> Result<StatusCode, ApiError> {
    let (user_id, session) = session_of(&auth.principal);
    if !super::users::valid_email(&body.new_email) {
        return Err(ApiError::field("new_email", "is not an email address"));
    }
    reauthenticate(&state, auth.tenant, user_id, &body.current_password).await?;
    state
        .store
        .set_user_email(auth.tenant, user_id, &body.new_email, Some(session))
        .await?;
    state.store.touch_session(session, true, false).await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(
                auth.actor.clone(),
                "user.email_changed",
                format!("user:{user_id}"),
            ),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
