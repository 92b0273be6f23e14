-- KPI rollups the processor keeps in the same transaction as shipment state (see
-- src/rollups.rs and docs/lake.md): counts per tenant, ship day, carrier, service and lane, and
-- transit times as a histogram of whole hours. Each shipment remembers what it contributed so a
-- later change retracts exactly that.
ALTER TABLE shipments ADD COLUMN kpi_contribution TEXT;

CREATE TABLE kpi_rollups (
    tenant_id               BLOB NOT NULL,
    day                     TEXT NOT NULL,
    carrier                 TEXT NOT NULL,
    service                 TEXT NOT NULL,
    lane                    TEXT NOT NULL,
    volume                  BIGINT NOT NULL,
    delivered               BIGINT NOT NULL,
    delivered_with_promise  BIGINT NOT NULL,
    on_time                 BIGINT NOT NULL,
    exceptions              BIGINT NOT NULL,
    first_attempt           BIGINT NOT NULL,
    updated_at              TEXT NOT NULL,
    PRIMARY KEY (tenant_id, day, carrier, service, lane)
);

CREATE TABLE kpi_transit_hours (
    tenant_id  BLOB NOT NULL,
    day        TEXT NOT NULL,
    carrier    TEXT NOT NULL,
    service    TEXT NOT NULL,
    lane       TEXT NOT NULL,
    hours      BIGINT NOT NULL,
    shipments  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, carrier, service, lane, hours)
);
