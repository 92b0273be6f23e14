-- The KPI API keeps each tenant's rollups in memory and brings them up to date from the rows
-- changed since its last read (src/kpi_index.rs): find those rows by their stamp.
CREATE INDEX kpi_rollups_changed ON kpi_rollups (tenant_id, updated_at);
