//! The scorer: predictions for shipments in transit, by the live model of each tenant (its
//! own when it has one, else the shared one). The processor hands it the shipments each batch
//! changed; a scheduled pass re-scores every shipment in transit as time passes; live models
//! are re-read from the registry on a schedule, so a promotion takes effect without restart.

use crate::error::PipelineError;
use bitshipper_core::{ShipmentId, Status, TenantId};
use bitshipper_ml::features::ShipmentRecord;
use bitshipper_ml::model::Models;
use bitshipper_store::{PredictionWrite, Store};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Shipments read and scored per store round trip.
const PAGE: u32 = 500;

/// A live model in memory.
#[derive(Debug)]
pub struct LiveModel {
    pub version: String,
    pub models: Models,
}

#[derive(Debug, Clone)]
pub struct ScorerConfig {
    /// How often the registry is checked for a newly promoted model.
    pub refresh_interval: Duration,
    /// How often every shipment in transit is scored again.
    pub rescore_interval: Duration,
}

impl Default for ScorerConfig {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(30),
            rescore_interval: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug)]
pub struct Scorer {
    store: Store,
    config: ScorerConfig,
    live: RwLock<BTreeMap<Option<TenantId>, Arc<LiveModel>>>,
}

impl Scorer {
    pub fn new(store: Store, config: ScorerConfig) -> Self {
        Self {
            store,
            config,
            live: RwLock::new(BTreeMap::new()),
        }
    }

    /// Loads live models whose version changed since the last look; returns how many.
    pub async fn refresh(&self) -> Result<usize, PipelineError> {
        let wanted = self.store.live_models().await?;
        let current: BTreeMap<Option<TenantId>, String> = self
            .live
            .read()
            .map(|m| m.iter().map(|(k, v)| (*k, v.version.clone())).collect())
            .unwrap_or_default();
        let mut loaded = BTreeMap::new();
        for (scope, version) in &wanted {
            if current.get(scope) == Some(version) {
                continue;
            }
            let Some((_, artifact)) = self.store.load_model(version).await? else {
                continue;
            };
            match Models::from_json(&artifact) {
                Ok(models) => {
                    tracing::info!(%version, tenant = ?scope, "live model loaded");
                    loaded.insert(
                        *scope,
                        Arc::new(LiveModel {
                            version: version.clone(),
                            models,
                        }),
                    );
                }
                Err(e) => tracing::error!(%version, error = %e, "live model cannot be loaded"),
            }
        }
        let changed = loaded.len();
        if let Ok(mut live) = self.live.write() {
            live.retain(|scope, _| wanted.contains_key(scope));
            live.extend(loaded);
        }
        Ok(changed)
    }

    /// The model that scores `tenant`'s shipments.
    pub fn model_for(&self, tenant: TenantId) -> Option<Arc<LiveModel>> {
        let live = self.live.read().ok()?;
        live.get(&Some(tenant)).or_else(|| live.get(&None)).cloned()
    }

    /// Scores these shipments of `tenant` and stores the predictions. Each is scored as of
    /// `at`, or else as of its latest event (the moment the processor learned of it).
    /// Finished shipments (delivered, returned, cancelled) keep their last prediction.
    pub async fn score(
        &self,
        tenant: TenantId,
        ids: &[ShipmentId],
        at: Option<DateTime<Utc>>,
    ) -> Result<usize, PipelineError> {
        let Some(live) = self.model_for(tenant) else {
            return Ok(0);
        };
        let mut scored = 0;
        for chunk in ids.chunks(PAGE as usize) {
            let inputs = self.store.scoring_inputs(tenant, chunk).await?;
            let now = Utc::now();
            let records: Vec<(ShipmentId, ShipmentRecord, DateTime<Utc>)> = inputs
                .into_iter()
                .filter(|s| !s.status.is_terminal())
                .filter_map(|s| {
                    let last = s
                        .events
                        .iter()
                        .map(|e| e.occurred_at.with_timezone(&Utc))
                        .max()?;
                    let t = at.unwrap_or(last).min(now);
                    let record = ShipmentRecord {
                        details: s.details,
                        events: s.events,
                    };
                    Some((s.id, record, t))
                })
                .collect();
            let batch: Vec<(&ShipmentRecord, DateTime<Utc>)> =
                records.iter().map(|(_, r, t)| (r, *t)).collect();
            let predictions = live.models.score_batch(&batch);
            let writes: Vec<PredictionWrite> = records
                .iter()
                .zip(predictions)
                .map(|((id, _, _), p)| PredictionWrite {
                    shipment_id: *id,
                    model_version: live.version.clone(),
                    scored_at: p.scored_at,
                    eta_p10: p.eta_p10,
                    eta_p50: p.eta_p50,
                    eta_p90: p.eta_p90,
                    late_risk: p.late_risk,
                    reasons: p.reasons,
                })
                .collect();
            self.store.save_predictions(tenant, &writes).await?;
            scored += writes.len();
        }
        metrics::counter!("bitshipper_predictions_total").increment(scored as u64);
        Ok(scored)
    }

    /// Scores the shipments a processor batch changed.
    /// Finished ones (delivered, returned, cancelled) are not even read.
    pub async fn score_touched(
        &self,
        touched: &[(TenantId, ShipmentId, Status)],
    ) -> Result<usize, PipelineError> {
        let mut by_tenant: HashMap<TenantId, Vec<ShipmentId>> = HashMap::new();
        for (t, id, status) in touched {
            if !status.is_terminal() && self.model_for(*t).is_some() {
                by_tenant.entry(*t).or_default().push(*id);
            }
        }
        let mut scored = 0;
        for (tenant, ids) in by_tenant {
            scored += self.score(tenant, &ids, None).await?;
        }
        Ok(scored)
    }

    /// Scores every shipment in transit as of `now`.
    pub async fn rescore_in_transit(&self, now: DateTime<Utc>) -> Result<usize, PipelineError> {
        let mut scored = 0;
        for tenant in self.store.tenant_ids().await? {
            if self.model_for(tenant).is_none() {
                continue;
            }
            let mut after = None;
            loop {
                let page = self.store.in_transit_shipments(tenant, after, PAGE).await?;
                let Some(last) = page.last().copied() else {
                    break;
                };
                scored += self.score(tenant, &page, Some(now)).await?;
                after = Some(last);
            }
        }
        Ok(scored)
    }

    /// Refreshes models and re-scores on their schedules until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut refresh = tokio::time::interval(self.config.refresh_interval);
        let mut rescore = tokio::time::interval(self.config.rescore_interval);
        rescore.tick().await;
        loop {
            tokio::select! {
                _ = refresh.tick() => {
                    match self.refresh().await {
                        // A new live model re-scores everything in transit now.
                        Ok(n) if n > 0 => rescore.reset_immediately(),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "could not read the model registry"),
                    }
                }
                _ = rescore.tick() => {
                    match self.rescore_in_transit(Utc::now()).await {
                        Ok(n) => tracing::info!(shipments = n, "re-scored shipments in transit"),
                        Err(e) => tracing::warn!(error = %e, "re-scoring failed"),
                    }
                }
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }
}
