//! The model registry and stored predictions: versioned model artifacts with their metrics,
//! one live model per scope (a tenant's own, or the shared one) swapped by promotion; each
//! shipment's latest prediction and its first, what the scorer reads to score (shipment
//! details without personal data, and events), and delivered shipments beside their
//! predictions for the accuracy report.

use crate::processing::{Params, CHUNK_ROWS};
use crate::shipments::from_json;
use crate::tenants::now;
use crate::{on_all_tenants, on_tenant, Store, StoreError};
use bitshipper_core::{Address, NewShipment, ShipmentId, Status, TenantId, TrackingEvent};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Where a model is in its life.
pub const MODEL_CANDIDATE: &str = "candidate";
pub const MODEL_LIVE: &str = "live";
pub const MODEL_RETIRED: &str = "retired";

/// A registered model, without its artifact.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    pub version: String,
    /// `None`: shared by every tenant without a model of its own.
    pub tenant_id: Option<TenantId>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub promoted_at: Option<DateTime<Utc>>,
    pub trained_from: Option<DateTime<Utc>>,
    pub trained_to: Option<DateTime<Utc>>,
    pub metrics: serde_json::Value,
    pub feature_schema: Vec<String>,
}

/// A model to register.
#[derive(Debug, Clone)]
pub struct NewModel<'a> {
    pub version: String,
    pub tenant_id: Option<TenantId>,
    pub trained_from: Option<DateTime<Utc>>,
    pub trained_to: Option<DateTime<Utc>>,
    pub metrics: serde_json::Value,
    pub feature_schema: Vec<String>,
    pub artifact: &'a [u8],
}

/// One prediction as the scorer writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionWrite {
    pub shipment_id: ShipmentId,
    pub model_version: String,
    pub scored_at: DateTime<Utc>,
    pub eta_p10: DateTime<Utc>,
    pub eta_p50: DateTime<Utc>,
    pub eta_p90: DateTime<Utc>,
    pub late_risk: Option<f64>,
    pub reasons: Vec<String>,
}

/// A shipment's stored prediction: the latest, and the first ever made.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPrediction {
    pub latest: PredictionWrite,
    pub first: PredictionWrite,
}

/// What the scorer needs of a shipment: its description (no personal data) and events.
#[derive(Debug, Clone)]
pub struct ScoringInput {
    pub id: ShipmentId,
    pub details: NewShipment,
    pub status: Status,
    pub events: Vec<TrackingEvent>,
}

/// A delivered shipment beside its predictions.
#[derive(Debug, Clone)]
pub struct DeliveredPrediction {
    pub carrier: String,
    pub delivered_at: DateTime<Utc>,
    pub promised_delivery_date: Option<NaiveDate>,
    pub prediction: StoredPrediction,
}

#[derive(sqlx::FromRow)]
struct ModelRow {
    version: String,
    tenant_id: Option<Uuid>,
    status: String,
    created_at: DateTime<Utc>,
    promoted_at: Option<DateTime<Utc>>,
    trained_from: Option<DateTime<Utc>>,
    trained_to: Option<DateTime<Utc>>,
    metrics: String,
    feature_schema: String,
}

/// A model row followed by its artifact.
#[derive(sqlx::FromRow)]
struct ModelWithArtifact {
    #[sqlx(flatten)]
    info: ModelRow,
    artifact: Vec<u8>,
}

const MODEL_COLUMNS: &str =
    "version, tenant_id, status, created_at, promoted_at, trained_from, trained_to, metrics, feature_schema";

fn model_info(r: ModelRow) -> Result<ModelInfo, StoreError> {
    Ok(ModelInfo {
        version: r.version,
        tenant_id: r.tenant_id.map(TenantId),
        status: r.status,
        created_at: r.created_at,
        promoted_at: r.promoted_at,
        trained_from: r.trained_from,
        trained_to: r.trained_to,
        metrics: serde_json::from_str(&r.metrics).map_err(StoreError::corrupt)?,
        feature_schema: serde_json::from_str(&r.feature_schema).map_err(StoreError::corrupt)?,
    })
}

#[derive(sqlx::FromRow)]
struct PredictionRow {
    shipment_id: Uuid,
    model_version: String,
    scored_at: DateTime<Utc>,
    eta_p10: DateTime<Utc>,
    eta_p50: DateTime<Utc>,
    eta_p90: DateTime<Utc>,
    late_risk: Option<f64>,
    reasons: String,
    first_model_version: String,
    first_scored_at: DateTime<Utc>,
    first_eta_p10: DateTime<Utc>,
    first_eta_p50: DateTime<Utc>,
    first_eta_p90: DateTime<Utc>,
    first_late_risk: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct DeliveredRow {
    carrier: String,
    delivered_at: DateTime<Utc>,
    promised_delivery_date: Option<NaiveDate>,
    #[sqlx(flatten)]
    prediction: PredictionRow,
}

const PREDICTION_COLUMNS: &str = "p.shipment_id, p.model_version, p.scored_at, p.eta_p10, p.eta_p50, p.eta_p90, p.late_risk, p.reasons, p.first_model_version, p.first_scored_at, p.first_eta_p10, p.first_eta_p50, p.first_eta_p90, p.first_late_risk";

fn stored_prediction(r: PredictionRow) -> Result<StoredPrediction, StoreError> {
    let id = ShipmentId(r.shipment_id);
    Ok(StoredPrediction {
        latest: PredictionWrite {
            shipment_id: id,
            model_version: r.model_version,
            scored_at: r.scored_at,
            eta_p10: r.eta_p10,
            eta_p50: r.eta_p50,
            eta_p90: r.eta_p90,
            late_risk: r.late_risk,
            reasons: serde_json::from_str(&r.reasons).map_err(StoreError::corrupt)?,
        },
        first: PredictionWrite {
            shipment_id: id,
            model_version: r.first_model_version,
            scored_at: r.first_scored_at,
            eta_p10: r.first_eta_p10,
            eta_p50: r.first_eta_p50,
            eta_p90: r.first_eta_p90,
            late_risk: r.first_late_risk,
            reasons: Vec::new(),
        },
    })
}

/// The terminal statuses as an SQL list: shipments in them are no longer scored.
fn terminal_statuses_sql() -> String {
    Status::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Registers a model as a candidate.
    pub async fn register_model(&self, model: &NewModel<'_>) -> Result<(), StoreError> {
        let metrics = serde_json::to_string(&model.metrics).map_err(StoreError::corrupt)?;
        let schema = serde_json::to_string(&model.feature_schema).map_err(StoreError::corrupt)?;
        on_all_tenants!(self, pool => {
            sqlx::query(&format!(
                "INSERT INTO models ({MODEL_COLUMNS}, artifact) VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8, $9)"
            ))
            .bind(&model.version)
            .bind(model.tenant_id.map(|t| t.0))
            .bind(MODEL_CANDIDATE)
            .bind(now())
            .bind(model.trained_from)
            .bind(model.trained_to)
            .bind(&metrics)
            .bind(&schema)
            .bind(model.artifact)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Makes `version` the live model of its scope and retires the one it replaces; false
    /// when there is no such model.
    pub async fn promote_model(&self, version: &str) -> Result<bool, StoreError> {
        let at = now();
        let found = on_all_tenants!(self, pool => {
            let mut tx = sqlx::Acquire::begin(pool).await?;
            let scope: Option<(Option<Uuid>,)> =
                sqlx::query_as("SELECT tenant_id FROM models WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((tenant,)) = scope {
                sqlx::query(
                    "UPDATE models SET status = $1 WHERE status = $2 AND version <> $3
                       AND ((tenant_id IS NULL AND $4 IS NULL) OR tenant_id = $4)",
                )
                .bind(MODEL_RETIRED)
                .bind(MODEL_LIVE)
                .bind(version)
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE models SET status = $1, promoted_at = $2 WHERE version = $3")
                    .bind(MODEL_LIVE)
                    .bind(at)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            scope.is_some()
        });
        Ok(found)
    }

    /// Every registered model, newest first.
    pub async fn list_models(&self) -> Result<Vec<ModelInfo>, StoreError> {
        let rows: Vec<ModelRow> = on_all_tenants!(self, pool => {
            sqlx::query_as(&format!("SELECT {MODEL_COLUMNS} FROM models ORDER BY created_at DESC, version DESC"))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(model_info).collect()
    }

    /// A model with its artifact.
    pub async fn load_model(
        &self,
        version: &str,
    ) -> Result<Option<(ModelInfo, Vec<u8>)>, StoreError> {
        let row: Option<ModelWithArtifact> = on_all_tenants!(self, pool => {
            sqlx::query_as(&format!("SELECT {MODEL_COLUMNS}, artifact FROM models WHERE version = $1"))
                .bind(version)
                .fetch_optional(pool)
                .await?
        });
        row.map(|r| model_info(r.info).map(|m| (m, r.artifact)))
            .transpose()
    }

    /// The live model of each scope (`None` is the shared one), by version.
    pub async fn live_models(&self) -> Result<BTreeMap<Option<TenantId>, String>, StoreError> {
        let rows: Vec<(Option<Uuid>, String)> = on_all_tenants!(self, pool => {
            sqlx::query_as("SELECT tenant_id, version FROM models WHERE status = $1")
                .bind(MODEL_LIVE)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(t, v)| (t.map(TenantId), v))
            .collect())
    }

    /// Tenants not erased.
    pub async fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows: Vec<(Uuid,)> = on_all_tenants!(self, pool => {
            sqlx::query_as("SELECT id FROM tenants WHERE erased_at IS NULL ORDER BY id")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(id,)| TenantId(id)).collect())
    }

    /// Shipments still on their way (not delivered, returned, cancelled or expired, with at
    /// least one event), a page at a time after `after`.
    pub async fn in_transit_shipments(
        &self,
        tenant: TenantId,
        after: Option<ShipmentId>,
        limit: u32,
    ) -> Result<Vec<ShipmentId>, StoreError> {
        let only = format!(
            "AND status NOT IN ({}) AND cancelled_at IS NULL AND events_count > 0",
            terminal_statuses_sql()
        );
        self.shipment_id_page(tenant, &only, after, limit).await
    }

    /// All of a tenant's shipment ids, a page at a time after `after` (for training).
    pub async fn shipment_ids(
        &self,
        tenant: TenantId,
        after: Option<ShipmentId>,
        limit: u32,
    ) -> Result<Vec<ShipmentId>, StoreError> {
        self.shipment_id_page(tenant, "", after, limit).await
    }

    /// One page of ids in id order, narrowed by a fixed SQL condition.
    async fn shipment_id_page(
        &self,
        tenant: TenantId,
        condition: &str,
        after: Option<ShipmentId>,
        limit: u32,
    ) -> Result<Vec<ShipmentId>, StoreError> {
        let sql = format!(
            "SELECT id FROM shipments WHERE tenant_id = $1 {condition} AND ($2 IS NULL OR id > $2)
             ORDER BY id LIMIT $3"
        );
        let rows: Vec<(Uuid,)> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(&sql)
                .bind(tenant.0)
                .bind(after.map(|a| a.0))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(id,)| ShipmentId(id)).collect())
    }

    /// Shipments with their events, for scoring and training: no personal data is opened (the recipient
    /// stays sealed; addresses keep only what is stored in the clear).
    pub async fn scoring_inputs(
        &self,
        tenant: TenantId,
        ids: &[ShipmentId],
    ) -> Result<Vec<ScoringInput>, StoreError> {
        type Row = (
            Uuid,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<f64>,
            Option<NaiveDate>,
            Option<NaiveDate>,
            String,
            String,
        );
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK_ROWS) {
            let mut p = Params::new(&self.db);
            let shipments_sql = format!(
                "SELECT id, carrier, tracking_number, service_level, origin, destination, weight_grams, ship_date, promised_delivery_date, metadata, status
                 FROM shipments WHERE tenant_id = {} AND id IN ({})",
                p.one(),
                p.list(chunk.len())
            );
            let mut p = Params::new(&self.db);
            let events_sql = format!(
                "SELECT shipment_id, body FROM tracking_events WHERE tenant_id = {} AND shipment_id IN ({})",
                p.one(),
                p.list(chunk.len())
            );
            let (rows, bodies): (Vec<Row>, Vec<(Uuid, String)>) = on_tenant!(self, tenant, pool => {
                let mut tx = sqlx::Acquire::begin(pool).await?;
                let mut q = sqlx::query_as::<_, Row>(&shipments_sql).bind(tenant.0);
                for id in chunk {
                    q = q.bind(id.0);
                }
                let rows = q.fetch_all(&mut *tx).await?;
                let mut q = sqlx::query_as::<_, (Uuid, String)>(&events_sql).bind(tenant.0);
                for id in chunk {
                    q = q.bind(id.0);
                }
                let bodies = q.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                (rows, bodies)
            });
            let mut events: HashMap<Uuid, Vec<TrackingEvent>> = HashMap::new();
            for (id, body) in bodies {
                events
                    .entry(id)
                    .or_default()
                    .push(serde_json::from_str(&body).map_err(StoreError::corrupt)?);
            }
            for r in rows {
                let mut evs = events.remove(&r.0).unwrap_or_default();
                evs.sort_by(bitshipper_core::fold::timeline_order);
                out.push(ScoringInput {
                    id: ShipmentId(r.0),
                    details: NewShipment {
                        carrier: r.1,
                        tracking_number: r.2,
                        service_level: r.3,
                        origin: from_json::<Address>(r.4)?,
                        destination: from_json::<Address>(r.5)?,
                        recipient: None,
                        weight_grams: r.6,
                        ship_date: r.7,
                        promised_delivery_date: r.8,
                        reference: None,
                        metadata: serde_json::from_str(&r.9).map_err(StoreError::corrupt)?,
                    },
                    status: r.10.parse().map_err(StoreError::corrupt)?,
                    events: evs,
                });
            }
        }
        Ok(out)
    }

    /// Stores predictions as each shipment's latest; a shipment's first prediction is kept.
    pub async fn save_predictions(
        &self,
        tenant: TenantId,
        predictions: &[PredictionWrite],
    ) -> Result<(), StoreError> {
        if predictions.is_empty() {
            return Ok(());
        }
        on_tenant!(self, tenant, pool => {
            let mut tx = sqlx::Acquire::begin(pool).await?;
            for chunk in predictions.chunks(CHUNK_ROWS / 2) {
                let sql = format!(
                    "INSERT INTO predictions (tenant_id, shipment_id, model_version, scored_at, eta_p10, eta_p50, eta_p90, late_risk, reasons,
                        first_model_version, first_scored_at, first_eta_p10, first_eta_p50, first_eta_p90, first_late_risk) VALUES {}
                     ON CONFLICT (tenant_id, shipment_id) DO UPDATE SET model_version = excluded.model_version,
                        scored_at = excluded.scored_at, eta_p10 = excluded.eta_p10, eta_p50 = excluded.eta_p50,
                        eta_p90 = excluded.eta_p90, late_risk = excluded.late_risk, reasons = excluded.reasons",
                    Params::new(&self.db).rows(chunk.len(), 15)
                );
                let mut q = sqlx::query(&sql);
                for p in chunk {
                    let reasons = serde_json::to_string(&p.reasons).map_err(StoreError::corrupt)?;
                    q = q
                        .bind(tenant.0)
                        .bind(p.shipment_id.0)
                        .bind(&p.model_version)
                        .bind(p.scored_at)
                        .bind(p.eta_p10)
                        .bind(p.eta_p50)
                        .bind(p.eta_p90)
                        .bind(p.late_risk)
                        .bind(reasons)
                        .bind(&p.model_version)
                        .bind(p.scored_at)
                        .bind(p.eta_p10)
                        .bind(p.eta_p50)
                        .bind(p.eta_p90)
                        .bind(p.late_risk);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stored predictions of these shipments.
    pub async fn predictions(
        &self,
        tenant: TenantId,
        ids: &[ShipmentId],
    ) -> Result<HashMap<ShipmentId, StoredPrediction>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK_ROWS) {
            let mut p = Params::new(&self.db);
            let sql = format!(
                "SELECT {PREDICTION_COLUMNS} FROM predictions p WHERE p.tenant_id = {} AND p.shipment_id IN ({})",
                p.one(),
                p.list(chunk.len())
            );
            let rows: Vec<PredictionRow> = on_tenant!(self, tenant, pool => {
                let mut q = sqlx::query_as::<_, PredictionRow>(&sql).bind(tenant.0);
                for id in chunk {
                    q = q.bind(id.0);
                }
                q.fetch_all(pool).await?
            });
            for r in rows {
                let p = stored_prediction(r)?;
                out.insert(p.latest.shipment_id, p);
            }
        }
        Ok(out)
    }

    /// Shipments delivered in `[from, to)` that were predicted, with their predictions.
    pub async fn delivered_with_predictions(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DeliveredPrediction>, StoreError> {
        let sql = format!(
            "SELECT s.carrier, s.delivered_at, s.promised_delivery_date, {PREDICTION_COLUMNS}
             FROM predictions p JOIN shipments s ON s.tenant_id = p.tenant_id AND s.id = p.shipment_id
             WHERE p.tenant_id = $1 AND s.status = 'delivered' AND s.delivered_at >= $2 AND s.delivered_at < $3
             ORDER BY s.delivered_at"
        );
        let rows: Vec<DeliveredRow> = on_tenant!(self, tenant, pool => {
            sqlx::query_as(&sql)
                .bind(tenant.0)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(DeliveredPrediction {
                    carrier: r.carrier,
                    delivered_at: r.delivered_at,
                    promised_delivery_date: r.promised_delivery_date,
                    prediction: stored_prediction(r.prediction)?,
                })
            })
            .collect()
    }
}
