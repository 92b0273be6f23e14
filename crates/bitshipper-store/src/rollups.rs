//! KPI rollups kept by the processor, per tenant × ship day × carrier × service × lane: counts
//! and a histogram of transit times in whole hours. They change in the same transaction as the
//! shipments they count: a touched shipment's previous contribution (kept on its row) is
//! retracted and its new one added, so refolds, late events and redelivery never drift them.
//! Definitions match the lake's KPI query (docs/lake.md); a test holds them equal.

use crate::{on_tenant, Store, StoreError};
use bitshipper_core::{Address, ShipmentState, Status, TenantId, TrackingEvent};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What one shipment adds to the rollups (stored on its row as JSON, to be retracted later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    pub day: NaiveDate,
    pub carrier: String,
    pub service: String,
    pub lane: String,
    pub delivered: bool,
    pub with_promise: bool,
    pub on_time: bool,
    /// Whether any event of the shipment so far was an exception / a failed attempt (kept
    /// so a later batch, which sees only its own events, can carry them on).
    pub had_exception: bool,
    pub had_failed_attempt: bool,
    pub transit_hours: Option<i64>,
}

/// The shipment facts a contribution is computed from.
#[derive(Debug)]
pub struct ShipmentFacts<'a> {
    pub carrier: &'a str,
    pub service_level: Option<&'a str>,
    pub origin: Option<&'a Address>,
    pub destination: Option<&'a Address>,
    pub ship_date: Option<NaiveDate>,
    pub promised_delivery_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

/// Whether `events` include an exception / a failed delivery attempt.
pub fn event_flags<'a>(events: impl IntoIterator<Item = &'a TrackingEvent>) -> (bool, bool) {
    events.into_iter().fold((false, false), |(x, f), e| {
        (
            x || e.status == Status::Exception,
            f || e.status == Status::FailedAttempt,
        )
    })
}

/// A lane as analytics name it: origin region `>` destination region (empty when unknown).
pub fn lane_name(origin: Option<&Address>, destination: Option<&Address>) -> Option<String> {
    let from = origin.and_then(|a| a.region.as_deref())?;
    let to = destination.and_then(|a| a.region.as_deref())?;
    Some(format!("{from}>{to}"))
}

pub fn contribution(
    facts: &ShipmentFacts<'_>,
    state: &ShipmentState,
    had_exception: bool,
    had_failed_attempt: bool,
) -> Contribution {
    let day = state
        .first_scan_at
        .map(|t| t.date_naive())
        .or(facts.ship_date)
        .unwrap_or(facts.created_at.date_naive());
    let delivered = state.delivered_at;
    Contribution {
        day,
        carrier: facts.carrier.to_string(),
        service: facts.service_level.unwrap_or_default().to_string(),
        lane: lane_name(facts.origin, facts.destination).unwrap_or_default(),
        delivered: delivered.is_some(),
        with_promise: delivered.is_some() && facts.promised_delivery_date.is_some(),
        on_time: match (delivered, facts.promised_delivery_date) {
            (Some(d), Some(p)) => d.date_naive() <= p,
            _ => false,
        },
        had_exception,
        had_failed_attempt,
        transit_hours: match (delivered, state.first_scan_at) {
            (Some(d), Some(f)) => Some((d - f).num_seconds().div_euclid(3600)),
            _ => None,
        },
    }
}

type RollupKey = (NaiveDate, String, String, String);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counts {
    volume: i64,
    delivered: i64,
    with_promise: i64,
    on_time: i64,
    exceptions: i64,
    first_attempt: i64,
}

/// Changes to the rollups accumulated over one batch, applied with one statement per table.
#[derive(Debug, Default)]
pub struct RollupDeltas {
    counts: HashMap<RollupKey, Counts>,
    transit: HashMap<(RollupKey, i64), i64>,
}

impl RollupDeltas {
    /// Adds (`sign` = 1) or retracts (`sign` = -1) a contribution.
    pub fn add(&mut self, c: &Contribution, sign: i64) {
        let key = (c.day, c.carrier.clone(), c.service.clone(), c.lane.clone());
        let n = self.counts.entry(key.clone()).or_default();
        let b = |v: bool| i64::from(v) * sign;
        n.volume += sign;
        n.delivered += b(c.delivered);
        n.with_promise += b(c.with_promise);
        n.on_time += b(c.on_time);
        n.exceptions += b(c.had_exception);
        n.first_attempt += b(c.delivered && !c.had_failed_attempt);
        if let Some(h) = c.transit_hours {
            *self.transit.entry((key, h)).or_default() += sign;
        }
    }

    /// Rows of `(day, carrier, service, lane, counts...)` with a net change, including every
    /// cell whose transit histogram changed (its counts row is stamped: readers find changed
    /// cells by that stamp, see `kpi_index`).
    #[allow(clippy::type_complexity)]
    pub fn count_rows(&self) -> Vec<(&RollupKey, [i64; 6])> {
        let transit_changed: std::collections::HashSet<&RollupKey> = self
            .transit
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|((k, _), _)| k)
            .collect();
        self.counts
            .iter()
            .filter(|(k, c)| **c != Counts::default() || transit_changed.contains(k))
            .map(|(k, c)| {
                (
                    k,
                    [
                        c.volume,
                        c.delivered,
                        c.with_promise,
                        c.on_time,
                        c.exceptions,
                        c.first_attempt,
                    ],
                )
            })
            .collect()
    }

    pub fn transit_rows(&self) -> Vec<(&RollupKey, i64, i64)> {
        self.transit
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|((k, h), n)| (k, *h, *n))
            .collect()
    }
}

/// Adds `deltas` to the rollup tables through `conn` (a transaction of either dialect): one
/// multi-row upsert per table and chunk. A macro because the statement is the same for both
/// dialects but the connection types are not.
#[macro_export]
#[doc(hidden)]
macro_rules! upsert_rollups {
    ($db:expr, $conn:expr, $tenant:expr, $deltas:expr, $at:expr) => {{
        let conn = $conn;
        let count_rows = $deltas.count_rows();
        for chunk in count_rows.chunks($crate::processing::CHUNK_ROWS) {
            let sql = format!(
                "INSERT INTO kpi_rollups (tenant_id, day, carrier, service, lane, volume, delivered, delivered_with_promise, on_time, exceptions, first_attempt, updated_at) VALUES {}
                 ON CONFLICT (tenant_id, day, carrier, service, lane) DO UPDATE SET
                   volume = kpi_rollups.volume + excluded.volume,
                   delivered = kpi_rollups.delivered + excluded.delivered,
                   delivered_with_promise = kpi_rollups.delivered_with_promise + excluded.delivered_with_promise,
                   on_time = kpi_rollups.on_time + excluded.on_time,
                   exceptions = kpi_rollups.exceptions + excluded.exceptions,
                   first_attempt = kpi_rollups.first_attempt + excluded.first_attempt,
                   updated_at = excluded.updated_at",
                $crate::processing::Params::new($db).rows(chunk.len(), 12)
            );
            let mut q = sqlx::query(&sql);
            for ((day, carrier, service, lane), n) in chunk {
                q = q.bind($tenant.0).bind(*day).bind(carrier).bind(service).bind(lane);
                for v in n {
                    q = q.bind(*v);
                }
                q = q.bind($at);
            }
            q.execute(&mut *conn).await?;
        }
        let transit_rows = $deltas.transit_rows();
        for chunk in transit_rows.chunks($crate::processing::CHUNK_ROWS) {
            let sql = format!(
                "INSERT INTO kpi_transit_hours (tenant_id, day, carrier, service, lane, hours, shipments) VALUES {}
                 ON CONFLICT (tenant_id, day, carrier, service, lane, hours) DO UPDATE SET
                   shipments = kpi_transit_hours.shipments + excluded.shipments",
                $crate::processing::Params::new($db).rows(chunk.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for ((day, carrier, service, lane), hours, n) in chunk {
                q = q
                    .bind($tenant.0)
                    .bind(*day)
                    .bind(carrier)
                    .bind(service)
                    .bind(lane)
                    .bind(*hours)
                    .bind(*n);
            }
            q.execute(&mut *conn).await?;
        }
    }};
}

/// The weight between two ranks, truncated to six decimals as DataFusion's `percentile_cont`
/// does, so rollups and the lake agree to the last bit.
pub fn interpolation_weight(fraction: f64) -> f64 {
    (fraction * 1_000_000.0).floor() / 1_000_000.0
}

/// `percentile_cont`: linear interpolation between the closest ranks of a histogram of
/// (value, count) pairs sorted by value.
pub(crate) fn percentile_cont(histogram: &[(i64, i64)], p: f64) -> Option<f64> {
    let n: i64 = histogram.iter().map(|(_, c)| c).sum();
    if n <= 0 {
        return None;
    }
    let rank = p * (n - 1) as f64;
    let (lo, hi) = (rank.floor() as i64, rank.ceil() as i64);
    let value_at = |r: i64| {
        let mut seen = 0;
        for (v, c) in histogram {
            seen += c;
            if r < seen {
                return *v as f64;
            }
        }
        histogram.last().map_or(0, |(v, _)| *v) as f64
    };
    let (a, b) = (value_at(lo), value_at(hi));
    Some(a + (b - a) * interpolation_weight(rank - lo as f64))
}

/// What [`Store::rebuild_rollups`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RollupRebuild {
    pub shipments: u64,
    pub cells: u64,
}

/// Shipments read per page of a rebuild.
const REBUILD_PAGE: i64 = 5000;

impl Store {
    /// Recomputes a tenant's rollups, and every shipment's remembered contribution, from
    /// shipment state and events: for data applied before migration 0010, or as a repair. One
    /// transaction that first takes the processor's offset row, which every processor batch
    /// updates first: batches wait for the rebuild and never interleave with it.
    pub async fn rebuild_rollups(&self, tenant: TenantId) -> Result<RollupRebuild, StoreError> {
        use futures::TryStreamExt;
        let at = Utc::now();
        let mut report = RollupRebuild::default();
        crate::on_all_tenants!(self, pool => {
            let mut tx = sqlx::Acquire::begin(pool).await?;
            sqlx::query(
                "INSERT INTO processor_offsets (consumer, position) VALUES ('processor', 0)
                 ON CONFLICT (consumer) DO UPDATE SET position = processor_offsets.position",
            )
            .execute(&mut *tx)
            .await?;
            for table in ["kpi_rollups", "kpi_transit_hours"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1"))
                    .bind(tenant.0)
                    .execute(&mut *tx)
                    .await?;
            }
            // Which shipments ever had an exception or a failed attempt.
            let mut flags: HashMap<uuid::Uuid, (bool, bool)> = HashMap::new();
            {
                let mut rows = sqlx::query_as::<_, (uuid::Uuid, String)>(
                    "SELECT shipment_id, body FROM tracking_events WHERE tenant_id = $1",
                )
                .bind(tenant.0)
                .fetch(&mut *tx);
                while let Some((id, body)) = rows.try_next().await? {
                    if body.contains("exception") || body.contains("failed_attempt") {
                        let event: TrackingEvent =
                            serde_json::from_str(&body).map_err(StoreError::corrupt)?;
                        let (x, f) = event_flags([&event]);
                        let entry = flags.entry(id).or_default();
                        *entry = (entry.0 || x, entry.1 || f);
                    }
                }
            }
            // Shipments with events (as the processor counts them), a page at a time.
            let mut deltas = RollupDeltas::default();
            let mut after: Option<uuid::Uuid> = None;
            loop {
                let sql = format!(
                    "SELECT {} FROM shipments WHERE tenant_id = $1 AND events_count > 0{} ORDER BY id LIMIT {REBUILD_PAGE}",
                    crate::processing::TouchedRow::COLUMNS,
                    if after.is_some() { " AND id > $2" } else { "" }
                );
                let mut q = sqlx::query_as::<_, crate::processing::TouchedRow>(&sql).bind(tenant.0);
                if let Some(after) = after {
                    q = q.bind(after);
                }
                let page = q.fetch_all(&mut *tx).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                for row in &page {
                    let next = row.contribution_from_state(flags.get(&row.id).copied().unwrap_or_default())?;
                    deltas.add(&next, 1);
                    sqlx::query("UPDATE shipments SET kpi_contribution = $1 WHERE tenant_id = $2 AND id = $3")
                        .bind(serde_json::to_string(&next).map_err(StoreError::corrupt)?)
                        .bind(tenant.0)
                        .bind(row.id)
                        .execute(&mut *tx)
                        .await?;
                    report.shipments += 1;
                }
            }
            report.cells = deltas.count_rows().len() as u64;
            crate::upsert_rollups!(&self.db, &mut *tx, tenant, deltas, at);
            tx.commit().await?;
        });
        self.kpi_index.forget(tenant);
        Ok(report)
    }

    /// Adds contributions computed outside the processor (a benchmark's or a rebuild's bulk
    /// load) to the tenant's rollups in one transaction.
    pub async fn add_to_rollups(
        &self,
        tenant: TenantId,
        deltas: &RollupDeltas,
    ) -> Result<(), StoreError> {
        let at = Utc::now();
        on_tenant!(self, tenant, pool => {
            let mut tx = sqlx::Acquire::begin(pool).await?;
            crate::upsert_rollups!(&self.db, &mut *tx, tenant, deltas, at);
            tx.commit().await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_sql() {
        assert_eq!(percentile_cont(&[(79, 1), (151, 1)], 0.5), Some(115.0));
        // values 10 10 10 20: rank 0.9*3 = 2.7 -> 10 + 0.7*10
        assert_eq!(percentile_cont(&[(10, 3), (20, 1)], 0.9), Some(17.0));
        assert_eq!(percentile_cont(&[], 0.5), None);
    }

    #[test]
    fn retracting_what_was_added_leaves_nothing() {
        let c = Contribution {
            day: NaiveDate::from_ymd_opt(2026, 11, 20).expect("date"),
            carrier: "ups".into(),
            service: "ground".into(),
            lane: "KY>CA".into(),
            delivered: true,
            with_promise: true,
            on_time: false,
            had_exception: true,
            had_failed_attempt: false,
            transit_hours: Some(50),
        };
        let mut d = RollupDeltas::default();
        d.add(&c, 1);
        assert_eq!(d.count_rows().len(), 1);
        d.add(&c, -1);
        assert!(d.count_rows().is_empty());
        assert!(d.transit_rows().is_empty());
    }
}
