-- The model registry (versioned artifacts with their metrics, feature schema and training
-- range; one live model per scope: a tenant's own, or the shared one) and each shipment's
-- prediction: the latest, and the first one made (kept to measure accuracy honestly).
CREATE TABLE models (
    version         TEXT PRIMARY KEY,
    tenant_id       UUID,
    status          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    promoted_at     TIMESTAMPTZ,
    trained_from    TIMESTAMPTZ,
    trained_to      TIMESTAMPTZ,
    metrics         TEXT NOT NULL,
    feature_schema  TEXT NOT NULL,
    artifact        BYTEA NOT NULL
);
CREATE INDEX models_scope_status ON models (tenant_id, status);

CREATE TABLE predictions (
    tenant_id            UUID NOT NULL,
    shipment_id          UUID NOT NULL,
    model_version        TEXT NOT NULL,
    scored_at            TIMESTAMPTZ NOT NULL,
    eta_p10              TIMESTAMPTZ NOT NULL,
    eta_p50              TIMESTAMPTZ NOT NULL,
    eta_p90              TIMESTAMPTZ NOT NULL,
    late_risk            DOUBLE PRECISION,
    reasons              TEXT NOT NULL,
    first_model_version  TEXT NOT NULL,
    first_scored_at      TIMESTAMPTZ NOT NULL,
    first_eta_p10        TIMESTAMPTZ NOT NULL,
    first_eta_p50        TIMESTAMPTZ NOT NULL,
    first_eta_p90        TIMESTAMPTZ NOT NULL,
    first_late_risk      DOUBLE PRECISION,
    PRIMARY KEY (tenant_id, shipment_id)
);

ALTER TABLE predictions ENABLE ROW LEVEL SECURITY;
ALTER TABLE predictions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON predictions USING (bitshipper_row_visible(tenant_id)) WITH CHECK (bitshipper_row_visible(tenant_id));

-- The registry is operator data (shared models have no tenant): reached only through the
-- all-tenants paths, like processor_offsets.
GRANT SELECT, INSERT, UPDATE, DELETE ON models, predictions TO bitshipper_app;
