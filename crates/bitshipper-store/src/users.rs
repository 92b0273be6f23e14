//! Dashboard users, sessions and invitations. Passwords arrive already hashed (argon2id, in
//! the API layer); session and invitation secrets are stored only as SHA-256 hashes.
//! Finding a user by login email and a session by its secret are the two lookups not scoped
//! by tenant: they are how a tenant is found in the first place, as with API keys.

use crate::keys::hash_secret;
use crate::tenants::now;
use crate::{on_all_tenants, on_tenant, Store, StoreError};
use bitshipper_core::{Role, TenantId, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A user as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
    pub totp_enabled: bool,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// What login needs to know about a user.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
    pub totp_sealed: Option<String>,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub tenant_requires_mfa: bool,
}

/// A live session, as the authentication layer sees it.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub role: Role,
    pub csrf_token: String,
    pub mfa_satisfied: bool,
    pub tenant_requires_mfa: bool,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub reauth_at: DateTime<Utc>,
}

/// A session to create.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub secret: &'a str,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub csrf_token: &'a str,
    pub mfa_satisfied: bool,
    pub expires_at: DateTime<Utc>,
}

/// An accepted invitation: who joins which tenant with which role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
}

type UserRow = (
    Uuid,
    Uuid,
    String,
    String,
    bool,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);
const USER_COLUMNS: &str =
    "u.id, u.tenant_id, u.email, u.role, u.totp_enabled, u.disabled_at, u.created_at";

fn user_from_row(r: UserRow) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(r.0),
        tenant_id: TenantId(r.1),
        email: r.2,
        role: r.3.parse().map_err(StoreError::corrupt)?,
        totp_enabled: r.4,
        disabled: r.5.is_some(),
        created_at: r.6,
    })
}

pub(crate) fn normalize_login(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Store {
    /// Creates a user; the email must not be taken (in any tenant).
    pub async fn create_user(
        &self,
        tenant: TenantId,
        email: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let user = User {
            id: UserId::new(),
            tenant_id: tenant,
            email: normalize_login(email),
            role,
            totp_enabled: false,
            disabled: false,
            created_at: now(),
        };
        let result = on_tenant!(self, tenant, pool => {
            sqlx::query("INSERT INTO users (id, tenant_id, email, role, password_hash, totp_enabled, failed_logins, created_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)")
                .bind(user.id.0)
                .bind(tenant.0)
                .bind(&user.email)
                .bind(role.as_str())
                .bind(password_hash)
                .bind(false)
                .bind(user.created_at)
                .execute(pool)
                .await
                .map(|_| ())
        });
        match result.map_err(StoreError::from) {
            Err(e) if e.is_unique_violation() => Err(StoreError::Conflict(
                "a user with this email already exists".into(),
            )),
            Err(e) => Err(e),
            Ok(()) => Ok(user),
        }
    }

    /// Login lookup by email, across tenants.
    pub async fn user_credentials(
        &self,
        email: &str,
    ) -> Result<Option<UserCredentials>, StoreError> {
        type Row = (
            Uuid,
            Uuid,
            String,
            String,
            bool,
            Option<DateTime<Utc>>,
            DateTime<Utc>,
            String,
            Option<String>,
            i32,
            Option<DateTime<Utc>>,
            bool,
        );
        let sql = format!("SELECT {USER_COLUMNS}, u.password_hash, u.totp_sealed, u.failed_logins, u.locked_until, t.require_mfa FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.email = $1 AND t.erased_at IS NULL");
        let row: Option<Row> = on_all_tenants!(self, pool => {
            sqlx::query_as(&sql).bind(normalize_login(email)).fetch_optional(pool).await?
        });
        row.map(|r| {
            Ok(UserCredentials {
                user: user_from_row((r.0, r.1, r.2, r.3, r.4, r.5, r.6))?,
                password_hash: r.7,
                totp_sealed: r.8,
                failed_logins: r.9,
                locked_until: r.10,
                tenant_requires_mfa: r.11,
            })
        })
        .transpose()
    }

    pub async fn get_user(&self, tenant: TenantId, id: UserId) -> Result<Option<User>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 AND u.id = $2");
        let row: Option<UserRow> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
        });
        row.map(user_from_row).transpose()
    }

    pub async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 ORDER BY u.id");
        let rows: Vec<UserRow> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(&sql).bind(tenant.0).fetch_all(pool).await?
        });
        rows.into_iter().map(user_from_row).collect()
    }

    /// Counts a failed login; locks the account until `lock_until` when given.
    pub async fn record_login_failure(
        &self,
        user: UserId,
        lock_until: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        on_all_tenants!(self, pool => {
            sqlx::query("UPDATE users SET failed_logins = failed_logins + 1, locked_until = COALESCE($2, locked_until) WHERE id = $1")
                .bind(user.0)
                .bind(lock_until)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn record_login_success(&self, user: UserId) -> Result<(), StoreError> {
        on_all_tenants!(self, pool => {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
                .bind(user.0)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Changes role and/or disabled state. Disabling ends every session of the user.
    pub async fn update_user(
        &self,
        tenant: TenantId,
        id: UserId,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<bool, StoreError> {
        let at = now();
        let n = on_tenant!(self, tenant, pool => {
            sqlx::query("UPDATE users SET role = COALESCE($3, role), disabled_at = CASE WHEN $4 IS NULL THEN disabled_at WHEN $4 THEN COALESCE(disabled_at, $5) ELSE NULL END WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .bind(role.map(|r| r.as_str()))
                .bind(disabled)
                .bind(at)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if disabled == Some(true) || role.is_some() {
            self.end_sessions(tenant, id, None).await?;
        }
        Ok(n == 1)
    }

    /// Sets a new password hash and ends every other session of the user.
    pub async fn set_password(
        &self,
        tenant: TenantId,
        id: UserId,
        password_hash: &str,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        on_tenant!(self, tenant, pool => {
            sqlx::query("UPDATE users SET password_hash = $3, password_changed_at = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .bind(password_hash)
                .bind(now())
                .execute(pool)
                .await?;
        });
        self.end_sessions(tenant, id, keep_session).await
    }

    /// Changes the login email (unique across tenants) and ends the user's other sessions.
    pub async fn set_user_email(
        &self,
        tenant: TenantId,
        id: UserId,
        email: &str,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let result = on_tenant!(self, tenant, pool => {
            sqlx::query("UPDATE users SET email = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .bind(normalize_login(email))
                .execute(pool)
                .await
                .map(|_| ())
        });
        match result.map_err(StoreError::from) {
            Err(e) if e.is_unique_violation() => Err(StoreError::Conflict(
                "a user with this email already exists".into(),
            )),
            Err(e) => Err(e),
            Ok(()) => self.end_sessions(tenant, id, keep_session).await,
        }
    }

    /// Stores a TOTP secret (pending until `enable_totp`); `None` removes the second factor.
    pub async fn set_totp_secret(
        &self,
        tenant: TenantId,
        id: UserId,
        secret: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let sealed = match secret {
            Some(s) => Some(self.seal_for_tenant(tenant, &totp_context(id), s).await?),
            None => None,
        };
        on_tenant!(self, tenant, pool => {
            sqlx::query("UPDATE users SET totp_sealed = $3, totp_enabled = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .bind(&sealed)
                .bind(false)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Spends a TOTP time step: true only if no code of this step or a later one was accepted
    /// before (RFC 6238 §5.2: a code must not be accepted twice).
    pub async fn use_totp_step(
        &self,
        tenant: TenantId,
        id: UserId,
        step: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tenant!(self, tenant, pool => {
            sqlx::query("UPDATE users SET totp_last_step = $3 WHERE tenant_id = $1 AND id = $2 AND (totp_last_step IS NULL OR totp_last_step < $3)")
                .bind(tenant.0)
                .bind(id.0)
                .bind(step)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn enable_totp(&self, tenant: TenantId, id: UserId) -> Result<(), StoreError> {
        on_tenant!(self, tenant, pool => {
            sqlx::query("UPDATE users SET totp_enabled = $3 WHERE tenant_id = $1 AND id = $2 AND totp_sealed IS NOT NULL")
                .bind(tenant.0)
                .bind(id.0)
                .bind(true)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The user's TOTP secret, opened.
    pub async fn totp_secret(
        &self,
        tenant: TenantId,
        id: UserId,
        sealed: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        self.open_for_tenant(tenant, &totp_context(id), sealed)
            .await
    }

    pub async fn user_totp_sealed(
        &self,
        tenant: TenantId,
        id: UserId,
    ) -> Result<Option<String>, StoreError> {
        let v: Option<Option<String>> = on_tenant!(self, tenant, pool => {
            sqlx::query_scalar("SELECT totp_sealed FROM users WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0).bind(id.0).fetch_optional(pool).await?
        });
        Ok(v.flatten())
    }

    pub async fn user_password_hash(
        &self,
        tenant: TenantId,
        id: UserId,
    ) -> Result<Option<String>, StoreError> {
        let v: Option<String> = on_tenant!(self, tenant, pool => {
            sqlx::query_scalar("SELECT password_hash FROM users WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0).bind(id.0).fetch_optional(pool).await?
        });
        Ok(v)
    }

    pub async fn set_require_mfa(&self, tenant: TenantId, on: bool) -> Result<(), StoreError> {
        on_tenant!(self, tenant, pool => {
            sqlx::query("UPDATE tenants SET require_mfa = $2 WHERE id = $1")
                .bind(tenant.0).bind(on).execute(pool).await?;
        });
        Ok(())
    }

    pub async fn create_session(&self, s: NewSession<'_>) -> Result<(), StoreError> {
        let at = now();
        on_tenant!(self, s.tenant_id, pool => {
            sqlx::query("INSERT INTO sessions (id_hash, tenant_id, user_id, csrf_token, mfa_satisfied, created_at, last_seen_at, expires_at, reauth_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $6)")
                .bind(hash_secret(s.secret))
                .bind(s.tenant_id.0)
                .bind(s.user_id.0)
                .bind(s.csrf_token)
                .bind(s.mfa_satisfied)
                .bind(at)
                .bind(s.expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The session behind a cookie secret, if it exists, its user is enabled and its tenant
    /// not erased. Expiry is the caller's to check (it knows the idle timeout).
    pub async fn session(&self, secret: &str) -> Result<Option<SessionAuth>, StoreError> {
        type Row = (
            Uuid,
            Uuid,
            String,
            String,
            bool,
            bool,
            DateTime<Utc>,
            DateTime<Utc>,
            DateTime<Utc>,
        );
        let row: Option<Row> = on_all_tenants!(self, pool => {
            sqlx::query_as("SELECT s.tenant_id, s.user_id, u.role, s.csrf_token, s.mfa_satisfied, t.require_mfa, s.last_seen_at, s.expires_at, s.reauth_at
                            FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = s.tenant_id
                            WHERE s.id_hash = $1 AND u.disabled_at IS NULL AND t.erased_at IS NULL")
                .bind(hash_secret(secret))
                .fetch_optional(pool)
                .await?
        });
        row.map(|r| {
            Ok(SessionAuth {
                tenant_id: TenantId(r.0),
                user_id: UserId(r.1),
                role: r.2.parse().map_err(StoreError::corrupt)?,
                csrf_token: r.3,
                mfa_satisfied: r.4,
                tenant_requires_mfa: r.5,
                last_seen_at: r.6,
                expires_at: r.7,
                reauth_at: r.8,
            })
        })
        .transpose()
    }

    /// Records activity (for the idle timeout) and, with `reauthenticated`, a fresh proof of
    /// the password or second factor.
    pub async fn touch_session(
        &self,
        secret: &str,
        reauthenticated: bool,
        mfa_satisfied: bool,
    ) -> Result<(), StoreError> {
        let at = now();
        on_all_tenants!(self, pool => {
            sqlx::query("UPDATE sessions SET last_seen_at = $2, reauth_at = CASE WHEN $3 THEN $2 ELSE reauth_at END, mfa_satisfied = mfa_satisfied OR $4 WHERE id_hash = $1")
                .bind(hash_secret(secret))
                .bind(at)
                .bind(reauthenticated)
                .bind(mfa_satisfied)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn delete_session(&self, secret: &str) -> Result<(), StoreError> {
        on_all_tenants!(self, pool => {
            sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(hash_secret(secret)).execute(pool).await?;
        });
        Ok(())
    }

    /// Ends every session of a user, except the one whose secret is `keep`.
    pub async fn end_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        let keep = keep.map(hash_secret).unwrap_or_default();
        on_tenant!(self, tenant, pool => {
            sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND id_hash <> $3")
                .bind(tenant.0).bind(user.0).bind(&keep).execute(pool).await?;
        });
        Ok(())
    }

    pub async fn create_invitation(
        &self,
        tenant: TenantId,
        email: &str,
        role: Role,
        token: &str,
        created_by: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_tenant!(self, tenant, pool => {
            sqlx::query("INSERT INTO invitations (token_hash, tenant_id, email, role, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(hash_secret(token))
                .bind(tenant.0)
                .bind(normalize_login(email))
                .bind(role.as_str())
                .bind(created_by)
                .bind(now())
                .bind(expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Uses an invitation once: returns it if the token is valid, unused and unexpired.
    pub async fn accept_invitation(&self, token: &str) -> Result<Option<Invitation>, StoreError> {
        let at = now();
        let row: Option<(Uuid, String, String)> = on_all_tenants!(self, pool => {
            sqlx::query_as("UPDATE invitations SET accepted_at = $2 WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2 RETURNING tenant_id, email, role")
                .bind(hash_secret(token))
                .bind(at)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(t, email, role)| {
            Ok(Invitation {
                tenant_id: TenantId(t),
                email,
                role: role.parse().map_err(StoreError::corrupt)?,
            })
        })
        .transpose()
    }
}

fn totp_context(user: UserId) -> Vec<u8> {
    let mut c = b"totp-secret:".to_vec();
    c.extend_from_slice(user.0.as_bytes());
    c
}
