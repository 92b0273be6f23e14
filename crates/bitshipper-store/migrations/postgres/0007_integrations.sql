-- Inbound webhook endpoints (one per provider connection, with its own secret) and the raw
-- payloads providers sent, kept compressed and sealed under the tenant key for audit.
CREATE TABLE webhook_endpoints (
    id             UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    provider       TEXT NOT NULL,
    name           TEXT NOT NULL,
    secret_sealed  TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE raw_payloads (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL,
    provider         TEXT NOT NULL,
    endpoint_id      UUID,
    tracking_number  TEXT,
    sha256           TEXT NOT NULL,
    body_sealed      BYTEA NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, sha256)
);
CREATE INDEX raw_payloads_tenant_received ON raw_payloads (tenant_id, received_at);

ALTER TABLE tenants ADD COLUMN retain_raw_payload_days INTEGER;

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON webhook_endpoints USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

ALTER TABLE raw_payloads ENABLE ROW LEVEL SECURITY;
ALTER TABLE raw_payloads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON raw_payloads USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));
