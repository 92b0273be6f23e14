-- KPI rollups the processor keeps in the same transaction as shipment state (see
-- src/rollups.rs and docs/lake.md): counts per tenant, ship day, carrier, service and lane, and
-- transit times as a histogram of whole hours. Each shipment remembers what it contributed so a
-- later change retracts exactly that.
ALTER TABLE shipments ADD COLUMN kpi_contribution TEXT;

CREATE TABLE kpi_rollups (
    tenant_id               UUID NOT NULL,
    day                     DATE NOT NULL,
    carrier                 TEXT NOT NULL,
    service                 TEXT NOT NULL,
    lane                    TEXT NOT NULL,
    volume                  BIGINT NOT NULL,
    delivered               BIGINT NOT NULL,
    delivered_with_promise  BIGINT NOT NULL,
    on_time                 BIGINT NOT NULL,
    exceptions              BIGINT NOT NULL,
    first_attempt           BIGINT NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, day, carrier, service, lane)
);

CREATE TABLE kpi_transit_hours (
    tenant_id  UUID NOT NULL,
    day        DATE NOT NULL,
    carrier    TEXT NOT NULL,
    service    TEXT NOT NULL,
    lane       TEXT NOT NULL,
    hours      BIGINT NOT NULL,
    shipments  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, carrier, service, lane, hours)
);

ALTER TABLE kpi_rollups ENABLE ROW LEVEL SECURITY;
ALTER TABLE kpi_rollups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON kpi_rollups USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));
ALTER TABLE kpi_transit_hours ENABLE ROW LEVEL SECURITY;
ALTER TABLE kpi_transit_hours FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON kpi_transit_hours USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));
