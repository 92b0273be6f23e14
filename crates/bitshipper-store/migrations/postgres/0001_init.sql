-- BitShipper schema, PostgreSQL dialect. Every tenant-owned row carries tenant_id.
CREATE TABLE tenants (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE shipments (
    id                      UUID PRIMARY KEY,
    tenant_id               UUID NOT NULL REFERENCES tenants(id),
    carrier                 TEXT NOT NULL,
    tracking_number         TEXT NOT NULL,
    service_level           TEXT,
    origin                  TEXT,
    destination             TEXT,
    recipient               TEXT,
    weight_grams            DOUBLE PRECISION,
    ship_date               DATE,
    promised_delivery_date  DATE,
    reference               TEXT,
    metadata                TEXT NOT NULL,
    auto_created            BOOLEAN NOT NULL,
    cancelled_at            TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    status                  TEXT NOT NULL,
    reason                  TEXT,
    last_location           TEXT,
    first_scan_at           TIMESTAMPTZ,
    delivered_at            TIMESTAMPTZ,
    last_event_at           TIMESTAMPTZ,
    events_count            BIGINT NOT NULL,
    UNIQUE (tenant_id, carrier, tracking_number)
);
CREATE INDEX shipments_tenant_id ON shipments (tenant_id, id);
CREATE INDEX shipments_tenant_status ON shipments (tenant_id, status, id);
CREATE INDEX shipments_tenant_reference ON shipments (tenant_id, reference);

CREATE TABLE tracking_events (
    tenant_id    UUID NOT NULL,
    event_key    TEXT NOT NULL,
    shipment_id  UUID NOT NULL REFERENCES shipments(id),
    log_seq      BIGINT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    body         TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    -- Identity within the shipment: an event key always belongs to one carrier and tracking
    -- number, so this is the tenant-wide identity too, and the index stays clustered by
    -- (time-ordered) shipment instead of scattered by hash.
    PRIMARY KEY (tenant_id, shipment_id, event_key)
);

CREATE TABLE processor_offsets (
    consumer  TEXT PRIMARY KEY,
    position  BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant_id      UUID NOT NULL,
    key            TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    status_code    INTEGER,
    response_body  TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
