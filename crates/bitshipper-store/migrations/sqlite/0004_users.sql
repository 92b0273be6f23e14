-- Dashboard users, their sessions and invitations, and tenant security settings.
CREATE TABLE users (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL REFERENCES tenants(id),
    -- Login name, unique across tenants (one login per address).
    email                TEXT NOT NULL UNIQUE,
    role                 TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    -- TOTP secret sealed under the tenant data key; enabled once a code confirmed it.
    totp_sealed          TEXT,
    -- The last 30-second step whose code was accepted: each code works once.
    totp_last_step       INTEGER,
    totp_enabled         INTEGER NOT NULL,
    failed_logins        INTEGER NOT NULL,
    locked_until         TEXT,
    disabled_at          TEXT,
    created_at           TEXT NOT NULL,
    password_changed_at  TEXT NOT NULL
);
CREATE INDEX users_tenant ON users (tenant_id, id);

-- Sessions are found by the hash of the cookie's secret, never the secret itself.
CREATE TABLE sessions (
    id_hash        TEXT PRIMARY KEY,
    tenant_id      BLOB NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users(id),
    csrf_token     TEXT NOT NULL,
    mfa_satisfied  INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    reauth_at      TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE invitations (
    token_hash   TEXT PRIMARY KEY,
    tenant_id    BLOB NOT NULL,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    accepted_at  TEXT
);

ALTER TABLE tenants ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
