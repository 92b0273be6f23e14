-- The KPI API keeps each tenant's rollups in memory and brings them up to date from the rows
-- changed since its last read (src/kpi_index.rs): find those rows by their stamp.
CREATE INDEX kpi_rollups_changed ON kpi_rollups (tenant_id, updated_at);

-- A tenant's transit histogram is read in key order: store the table clustered by its key
-- (WITHOUT ROWID) instead of a rowid table behind a separate key index, which made a full read
-- one random page access per row (8.5 s instead of 3 s for 2.7M rows, docs/benchmarks.md).
CREATE TABLE kpi_transit_hours_clustered (
    tenant_id  BLOB NOT NULL,
    day        TEXT NOT NULL,
    carrier    TEXT NOT NULL,
    service    TEXT NOT NULL,
    lane       TEXT NOT NULL,
    hours      BIGINT NOT NULL,
    shipments  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, carrier, service, lane, hours)
) WITHOUT ROWID;
INSERT INTO kpi_transit_hours_clustered (tenant_id, day, carrier, service, lane, hours, shipments)
    SELECT tenant_id, day, carrier, service, lane, hours, shipments FROM kpi_transit_hours;
DROP TABLE kpi_transit_hours;
ALTER TABLE kpi_transit_hours_clustered RENAME TO kpi_transit_hours;
