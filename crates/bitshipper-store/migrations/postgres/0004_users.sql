-- Dashboard users, their sessions and invitations, and tenant security settings.
CREATE TABLE users (
    id                   UUID PRIMARY KEY,
    tenant_id            UUID NOT NULL REFERENCES tenants(id),
    -- Login name, unique across tenants (one login per address).
    email                TEXT NOT NULL UNIQUE,
    role                 TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    -- TOTP secret sealed under the tenant data key; enabled once a code confirmed it.
    totp_sealed          TEXT,
    -- The last 30-second step whose code was accepted: each code works once.
    totp_last_step       BIGINT,
    totp_enabled         BOOLEAN NOT NULL,
    failed_logins        INTEGER NOT NULL,
    locked_until         TIMESTAMPTZ,
    disabled_at          TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL,
    password_changed_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_tenant ON users (tenant_id, id);

-- Sessions are found by the hash of the cookie's secret, never the secret itself.
CREATE TABLE sessions (
    id_hash        TEXT PRIMARY KEY,
    tenant_id      UUID NOT NULL,
    user_id        UUID NOT NULL REFERENCES users(id),
    csrf_token     TEXT NOT NULL,
    mfa_satisfied  BOOLEAN NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    last_seen_at   TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    reauth_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE invitations (
    token_hash   TEXT PRIMARY KEY,
    tenant_id    UUID NOT NULL,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    accepted_at  TIMESTAMPTZ
);

ALTER TABLE tenants ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
