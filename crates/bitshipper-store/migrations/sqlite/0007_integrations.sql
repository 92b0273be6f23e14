-- Inbound webhook endpoints (one per provider connection, with its own secret) and the raw
-- payloads providers sent, kept compressed and sealed under the tenant key for audit.
CREATE TABLE webhook_endpoints (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    provider       TEXT NOT NULL,
    name           TEXT NOT NULL,
    secret_sealed  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    revoked_at     TEXT
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE raw_payloads (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL,
    provider         TEXT NOT NULL,
    endpoint_id      BLOB,
    tracking_number  TEXT,
    sha256           TEXT NOT NULL,
    body_sealed      BLOB NOT NULL,
    received_at      TEXT NOT NULL,
    UNIQUE (tenant_id, sha256)
);
CREATE INDEX raw_payloads_tenant_received ON raw_payloads (tenant_id, received_at);

ALTER TABLE tenants ADD COLUMN retain_raw_payload_days INTEGER;
