//! Managing people: list users, invite one by one-time link, change a role or disable an
//! account (which ends its sessions), accept an invitation, and the tenant's security settings.

use super::path_id;
use crate::auth::{AdminScope, Auth, OwnerRole, Principal};
use crate::credentials::{check_password_policy, hash_password, random_token};
use crate::extract::PathId;
use crate::json::ApiJson;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bitshipper_core::{Role, UserId};
use bitshipper_store::{AuditRecord, User};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    pub totp_enabled: bool,
    pub disabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            email: u.email,
            role: u.role,
            totp_enabled: u.totp_enabled,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub data: Vec<UserView>,
}

/// Only an owner may grant or take away the owner role.
fn may_assign(principal: &Principal, role: Role) -> Result<(), ApiError> {
    let is_owner = matches!(
        principal,
        Principal::User {
            role: Role::Owner,
            ..
        }
    );
    if role == Role::Owner && !is_owner {
        return Err(ApiError::Forbidden {
            needed: "owner role",
        });
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/users", tag = "users", security(("api_key" = []), ("session" = [])),
    responses((status = 200, body = UserList)))]
pub async fn list_users(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
) -> Result<Json<UserList>, ApiError> {
    let users = state.store.list_users(auth.tenant).await?;
    Ok(Json(UserList {
        data: users.into_iter().map(UserView::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationRequest {
    #[schema(max_length = 254)]
    pub email: String,
    pub role: Role,
}

/// A one-time invitation. The token is shown once; send the link to the person invited.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    pub email: String,
    pub role: Role,
    pub token: String,
    /// Path of the page that accepts the invitation.
    pub accept_path: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: DateTime<Utc>,
}

pub(crate) fn valid_email(email: &str) -> bool {
    let email = email.trim();
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.chars().count() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[utoipa::path(post, path = "/v1/users/invitations", tag = "users", request_body = InvitationRequest,
    security(("api_key" = []), ("session" = [])),
    description = "Invites a person; inviting an owner needs the owner role.",
    responses((status = 201, body = InvitationView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn invite_user(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<InvitationRequest>,
) -> Result<(StatusCode, Json<InvitationView>), ApiError> {
    if !valid_email(&body.email) {
        return Err(ApiError::field("email", "is not an email address"));
    }
    may_assign(&auth.principal, body.role)?;
    let token = random_token();
    let expires_at = Utc::now() + chrono::Duration::seconds(state.sessions.invitation_ttl_secs);
    state
        .store
        .create_invitation(
            auth.tenant,
            &body.email,
            body.role,
            &token,
            &auth.actor,
            expires_at,
        )
        .await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(auth.actor.clone(), "user.invited", "invitation")
                .with_details(serde_json::json!({ "role": body.role })),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(InvitationView {
            email: body.email.trim().to_lowercase(),
            role: body.role,
            accept_path: format!("/accept-invitation#token={token}"),
            token,
            expires_at,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    pub role: Option<Role>,
    /// `true` disables the account and ends its sessions; `false` enables it again.
    pub disabled: Option<bool>,
}

#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", request_body = UserUpdate,
    security(("api_key" = []), ("session" = [])), params(("id" = String, Path, description = "User id")),
    description = "Changes a role or disables an account (ending its sessions). Touching an owner needs the owner role.",
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_user(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UserUpdate>,
) -> Result<Json<UserView>, ApiError> {
    let id: UserId = path_id(&id, "user")?;
    let Some(current) = state.store.get_user(auth.tenant, id).await? else {
        return Err(super::not_found(
            &state,
            bitshipper_store::probes::Resource::User,
            id.0,
            auth.tenant,
        )
        .await);
    };
    may_assign(&auth.principal, current.role)?;
    if let Some(role) = body.role {
        may_assign(&auth.principal, role)?;
    }
    if body.role.is_none() && body.disabled.is_none() {
        return Err(ApiError::field("role", "give role and/or disabled"));
    }
    if matches!(&auth.principal, Principal::User { id: me, .. } if *me == id) {
        return Err(ApiError::field(
            "id",
            "you cannot change your own role or disable yourself",
        ));
    }
    state
        .store
        .update_user(auth.tenant, id, body.role, body.disabled)
        .await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(auth.actor.clone(), "user.updated", format!("user:{id}")).with_details(serde_json::json!({ "role": body.role, "disabled": body.disabled, "previous_role": current.role })),
        )
        .await?;
    let updated = state
        .store
        .get_user(auth.tenant, id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(Json(updated.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    pub token: String,
    /// 8 to 128 characters, not a common password.
    pub password: String,
}

#[utoipa::path(post, path = "/v1/invitations/accept", tag = "users", request_body = AcceptInvitation,
    description = "Public: the invitation token is the credential. Creates the account; then sign in.",
    responses((status = 201, body = UserView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AcceptInvitation>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    if body.token.len() > 128 {
        return Err(ApiError::NotFound("invitation"));
    }
    // Check the password before spending the one-time token.
    check_password_policy("password", &body.password, &[])?;
    let invitation = state
        .store
        .accept_invitation(&body.token)
        .await?
        .ok_or(ApiError::NotFound("invitation"))?;
    check_password_policy("password", &body.password, &[&invitation.email])?;
    let hash = hash_password(body.password).await?;
    let user = state
        .store
        .create_user(
            invitation.tenant_id,
            &invitation.email,
            invitation.role,
            &hash,
        )
        .await?;
    state
        .store
        .audit(
            invitation.tenant_id,
            AuditRecord::new(
                format!("user:{}", user.id),
                "user.created",
                format!("user:{}", user.id),
            )
            .with_details(serde_json::json!({ "role": user.role, "via": "invitation" })),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// Every user must have a second factor (OWASP ASVS level 2).
    pub require_second_factor: bool,
}

#[utoipa::path(put, path = "/v1/tenant/security", tag = "users", request_body = SecuritySettings,
    security(("session" = [])),
    responses((status = 200, body = SecuritySettings), (status = 403, body = Problem)))]
pub async fn set_security_settings(
    auth: Auth<OwnerRole>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SecuritySettings>,
) -> Result<Json<SecuritySettings>, ApiError> {
    state
        .store
        .set_require_mfa(auth.tenant, body.require_second_factor)
        .await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(
                auth.actor.clone(),
                "tenant.security_changed",
                format!("tenant:{}", auth.tenant),
            )
            .with_details(
                serde_json::json!({ "require_second_factor": body.require_second_factor }),
            ),
        )
        .await?;
    Ok(Json(body))
}

/// How long the tenant's data is kept after a shipment's last activity (`null`: until erased).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionView {
    /// Days before a shipment's tracking events are deleted (its folded state stays).
    #[schema(minimum = 1, maximum = 10000)]
    pub events_days: Option<u32>,
    /// Days before a shipment's recipient data is erased.
    #[schema(minimum = 1, maximum = 10000)]
    pub personal_data_days: Option<u32>,
    /// Days raw provider payloads are kept.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    pub raw_payload_days: Option<u32>,
}

#[utoipa::path(get, path = "/v1/tenant/retention", tag = "users",
    security(("api_key" = []), ("session" = [])),
    responses((status = 200, body = RetentionView)))]
pub async fn get_retention(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
) -> Result<Json<RetentionView>, ApiError> {
    let p = state.store.retention_policy(auth.tenant).await?;
    Ok(Json(RetentionView {
        events_days: p.events_days,
        personal_data_days: p.personal_data_days,
        raw_payload_days: p.raw_payload_days,
    }))
}

#[utoipa::path(put, path = "/v1/tenant/retention", tag = "users", request_body = RetentionView,
    security(("api_key" = []), ("session" = [])),
    description = "Sets retention; the housekeeping job (every 10 minutes, in the processor role) enforces it.",
    responses((status = 200, body = RetentionView), (status = 422, body = Problem)))]
pub async fn set_retention(
    auth: Auth<AdminScope>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RetentionView>,
) -> Result<Json<RetentionView>, ApiError> {
    let max = bitshipper_store::retention::MAX_RETENTION_DAYS;
    for (field, value) in [
        ("events_days", body.events_days),
        ("personal_data_days", body.personal_data_days),
        ("raw_payload_days", body.raw_payload_days),
    ] {
        if value.is_some_and(|d| d == 0 || d > max) {
            return Err(ApiError::field(
                field,
                format!("must be 1 to {max} days, or null"),
            ));
        }
    }
    let policy = bitshipper_store::RetentionPolicy {
        events_days: body.events_days,
        personal_data_days: body.personal_data_days,
        raw_payload_days: body.raw_payload_days,
    };
    state
        .store
        .set_retention_policy(auth.tenant, policy)
        .await?;
    state
        .store
        .audit(
            auth.tenant,
            AuditRecord::new(
                auth.actor.clone(),
                "tenant.retention_changed",
                format!("tenant:{}", auth.tenant),
            )
            .with_details(serde_json::json!(policy)),
        )
        .await?;
    Ok(Json(body))
}
