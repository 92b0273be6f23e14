//! KPI rollups kept by the processor, per tenant × ship day × carrier × service × lane: counts
//! and a histogram of transit times in whole hours. They change in the same transaction as the
//! shipments they count: a touched shipment's previous contribution (kept on its row) is
//! retracted and its new one added, so refolds, late events and redelivery never drift them.
//! Definitions match the lake's KPI query (docs/lake.md); a test holds them equal.

use crate::{on_tenant, Store, StoreError};
use bitshipper_core::analytics::{GroupBy, KpiQuery, KpiReport, KpiRow};
use bitshipper_core::{Address, ShipmentState, Status, TenantId, TrackingEvent};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// What one shipment adds to the rollups (stored on its row as JSON, to be retracted later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Contribution {
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
pub(crate) struct ShipmentFacts<'a> {
    pub carrier: &'a str,
    pub service_level: Option<&'a str>,
    pub origin: Option<&'a Address>,
    pub destination: Option<&'a Address>,
    pub ship_date: Option<NaiveDate>,
    pub promised_delivery_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

/// Whether `events` include an exception / a failed delivery attempt.
pub(crate) fn event_flags<'a>(events: impl IntoIterator<Item = &'a TrackingEvent>) -> (bool, bool) {
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

pub(crate) fn contribution(
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
pub(crate) struct RollupDeltas {
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

    /// Rows of `(day, carrier, service, lane, counts...)` with a net change.
    #[allow(clippy::type_complexity)]
    pub fn count_rows(&self) -> Vec<(&RollupKey, [i64; 6])> {
        self.counts
            .iter()
            .filter(|(_, c)| **c != Counts::default())
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

/// The weight between two ranks, truncated to six decimals as DataFusion's `percentile_cont`
/// does, so rollups and the lake agree to the last bit.
pub fn interpolation_weight(fraction: f64) -> f64 {
    (fraction * 1_000_000.0).floor() / 1_000_000.0
}

/// `percentile_cont`: linear interpolation between the closest ranks of a histogram of
/// (value, count) sorted by value.
fn percentile_cont(histogram: &BTreeMap<i64, i64>, p: f64) -> Option<f64> {
    let n: i64 = histogram.values().sum();
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
        histogram.keys().next_back().copied().unwrap_or_default() as f64
    };
    let (a, b) = (value_at(lo), value_at(hi));
    Some(a + (b - a) * interpolation_weight(rank - lo as f64))
}

fn group_key(
    group_by: GroupBy,
    day: NaiveDate,
    carrier: &str,
    service: &str,
    lane: &str,
) -> String {
    match group_by {
        GroupBy::All => "all".into(),
        GroupBy::Carrier => carrier.into(),
        GroupBy::Service => service.into(),
        GroupBy::Lane => lane.into(),
        GroupBy::Day => day.to_string(),
        GroupBy::Week => (day
            - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday())))
        .to_string(),
    }
}

type TransitRow = (NaiveDate, String, String, String, i64, i64);
type CountRow = (
    NaiveDate,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    DateTime<Utc>,
);

impl Store {
    /// KPIs from the rollups: current as of the processor's last batch.
    pub async fn kpis_from_rollups(
        &self,
        tenant: TenantId,
        query: &KpiQuery,
    ) -> Result<KpiReport, StoreError> {
        let mut filters = String::new();
        let mut values: Vec<&str> = Vec::new();
        for (column, value) in [
            ("carrier", &query.carrier),
            ("service", &query.service),
            ("lane", &query.lane),
        ] {
            if let Some(v) = value {
                values.push(v);
                filters.push_str(&format!(" AND {column} = ${}", 3 + values.len()));
            }
        }
        let counts_sql = format!(
            "SELECT day, carrier, service, lane, volume, delivered, delivered_with_promise, on_time, exceptions, first_attempt, updated_at
             FROM kpi_rollups WHERE tenant_id = $1 AND day >= $2 AND day <= $3{filters}"
        );
        let transit_sql = format!(
            "SELECT day, carrier, service, lane, hours, shipments
             FROM kpi_transit_hours WHERE tenant_id = $1 AND day >= $2 AND day <= $3 AND shipments <> 0{filters}"
        );
        let (counts, transit): (Vec<CountRow>, Vec<TransitRow>) = on_tenant!(self, tenant, pool => {
            let mut tx = sqlx::Acquire::begin(pool).await?;
            let mut q = sqlx::query_as::<_, CountRow>(&counts_sql)
                .bind(tenant.0)
                .bind(query.from)
                .bind(query.to);
            for v in &values {
                q = q.bind(*v);
            }
            let counts = q.fetch_all(&mut *tx).await?;
            let mut q = sqlx::query_as(&transit_sql)
                .bind(tenant.0)
                .bind(query.from)
                .bind(query.to);
            for v in &values {
                q = q.bind(*v);
            }
            let transit = q.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            (counts, transit)
        });
        let mut groups: BTreeMap<String, ([i64; 6], BTreeMap<i64, i64>)> = BTreeMap::new();
        let mut as_of: Option<DateTime<Utc>> = None;
        for r in counts {
            if r.4 == 0 {
                continue;
            }
            as_of = as_of.max(Some(r.10));
            let g = groups
                .entry(group_key(query.group_by, r.0, &r.1, &r.2, &r.3))
                .or_default();
            for (i, v) in [r.4, r.5, r.6, r.7, r.8, r.9].into_iter().enumerate() {
                g.0[i] += v;
            }
        }
        for (day, carrier, service, lane, hours, n) in transit {
            let g = groups
                .entry(group_key(query.group_by, day, &carrier, &service, &lane))
                .or_default();
            *g.1.entry(hours).or_default() += n;
        }
        let rows = groups
            .into_iter()
            .filter(|(_, (c, _))| c[0] > 0)
            .map(|(key, (c, hist))| {
                let u = |v: i64| u64::try_from(v).unwrap_or(0);
                KpiRow {
                    key,
                    volume: u(c[0]),
                    delivered: u(c[1]),
                    delivered_with_promise: u(c[2]),
                    on_time: u(c[3]),
                    on_time_rate: None,
                    transit_p50_hours: percentile_cont(&hist, 0.5),
                    transit_p90_hours: percentile_cont(&hist, 0.9),
                    exceptions: u(c[4]),
                    exception_rate: None,
                    first_attempt: u(c[5]),
                    first_attempt_rate: None,
                }
                .with_rates()
            })
            .collect();
        Ok(KpiReport {
            group_by: query.group_by,
            from: query.from,
            to: query.to,
            source: bitshipper_core::analytics::KpiSource::Rollups,
            as_of,
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_sql() {
        let h: BTreeMap<i64, i64> = [(79, 1), (151, 1)].into_iter().collect();
        assert_eq!(percentile_cont(&h, 0.5), Some(115.0));
        let h: BTreeMap<i64, i64> = [(10, 3), (20, 1)].into_iter().collect();
        // values 10 10 10 20: rank 0.9*3 = 2.7 -> 10 + 0.7*10
        assert_eq!(percentile_cont(&h, 0.9), Some(17.0));
        assert_eq!(percentile_cont(&BTreeMap::new(), 0.5), None);
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
