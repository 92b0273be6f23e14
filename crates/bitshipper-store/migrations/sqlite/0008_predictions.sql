-- The model registry (versioned artifacts with their metrics, feature schema and training
-- range; one live model per scope: a tenant's own, or the shared one) and each shipment's
-- prediction: the latest, and the first one made (kept to measure accuracy honestly).
CREATE TABLE models (
    version         TEXT PRIMARY KEY,
    tenant_id       BLOB,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    promoted_at     TEXT,
    trained_from    TEXT,
    trained_to      TEXT,
    metrics         TEXT NOT NULL,
    feature_schema  TEXT NOT NULL,
    artifact        BLOB NOT NULL
);
CREATE INDEX models_scope_status ON models (tenant_id, status);

CREATE TABLE predictions (
    tenant_id            BLOB NOT NULL,
    shipment_id          BLOB NOT NULL,
    model_version        TEXT NOT NULL,
    scored_at            TEXT NOT NULL,
    eta_p10              TEXT NOT NULL,
    eta_p50              TEXT NOT NULL,
    eta_p90              TEXT NOT NULL,
    late_risk            REAL,
    reasons              TEXT NOT NULL,
    first_model_version  TEXT NOT NULL,
    first_scored_at      TEXT NOT NULL,
    first_eta_p10        TEXT NOT NULL,
    first_eta_p50        TEXT NOT NULL,
    first_eta_p90        TEXT NOT NULL,
    first_late_risk      REAL,
    PRIMARY KEY (tenant_id, shipment_id)
);
