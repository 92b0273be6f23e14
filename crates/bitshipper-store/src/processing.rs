//! Applying log entries to shipment state: dedupe by event identity, auto-track unknown
//! tracking numbers, re-fold touched shipments, and move the consumer's log position — all in
//! one transaction, so a crash at any point neither loses nor doubles an event. Statements are
//! multi-row so a batch costs a handful of round trips, not several per event.

use crate::log::LogEntry;
use crate::rollups::{contribution, event_flags, Contribution, RollupDeltas, ShipmentFacts};
use crate::shipments::{from_json, to_json};
use crate::tenants::now;
use crate::{on_all_tenants, on_pool, Store, StoreError};
use bitshipper_core::{
    fold, fold_continue, Address, ShipmentId, ShipmentState, TenantId, TrackingEvent,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Rows per multi-row statement; keeps bind parameters far below SQLite's limit.
#[doc(hidden)]
pub const CHUNK_ROWS: usize = 400;

/// What one applied batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Events stored for the first time.
    pub applied: u64,
    /// Events already known (redelivery or duplicates).
    pub duplicates: u64,
    /// Log entries whose payload could not be read (kept in the log; counted, skipped).
    pub unreadable: u64,
    /// Shipments created because an event named an unknown tracking number.
    pub auto_created: u64,
    /// Of the shipments whose state changed, those folded again from all their events (an event arrived out of order);
    /// the others continued from their stored state.
    pub refolded: u64,
    /// Shipments whose state changed, by tenant, with their new status (what the scorer
    /// scores next).
    pub touched: Vec<(TenantId, ShipmentId, bitshipper_core::Status)>,
}

/// A touched shipment as the processor reads it: its state, the facts its KPI contribution is
/// computed from, and the contribution it made last time.
#[derive(sqlx::FromRow)]
pub(crate) struct TouchedRow {
    pub(crate) id: Uuid,
    status: String,
    reason: Option<String>,
    last_location: Option<String>,
    first_scan_at: Option<chrono::DateTime<chrono::Utc>>,
    delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    last_event_at: Option<chrono::DateTime<chrono::Utc>>,
    events_count: i64,
    carrier: String,
    service_level: Option<String>,
    origin: Option<String>,
    destination: Option<String>,
    ship_date: Option<chrono::NaiveDate>,
    promised_delivery_date: Option<chrono::NaiveDate>,
    created_at: chrono::DateTime<chrono::Utc>,
    kpi_contribution: Option<String>,
}

impl TouchedRow {
    fn state(&self) -> Result<ShipmentState, StoreError> {
        Ok(ShipmentState {
            status: self.status.parse().map_err(StoreError::corrupt)?,
            reason: self
                .reason
                .as_deref()
                .map(|s| {
                    s.parse::<bitshipper_core::Reason>()
                        .map_err(StoreError::corrupt)
                })
                .transpose()?,
            last_location: from_json(self.last_location.clone())?,
            first_scan_at: self.first_scan_at,
            delivered_at: self.delivered_at,
            last_event_at: self.last_event_at,
            events_count: u32::try_from(self.events_count).unwrap_or(u32::MAX),
        })
    }

    /// The columns a `TouchedRow` is read from.
    pub(crate) const COLUMNS: &'static str = "id, status, reason, last_location, first_scan_at, delivered_at, last_event_at, events_count,
        carrier, service_level, origin, destination, ship_date, promised_delivery_date, created_at, kpi_contribution";

    /// The shipment's contribution from its stored state alone, `flags` (exception, failed
    /// attempt) taken from all its events: what a rollup rebuild needs.
    pub(crate) fn contribution_from_state(
        &self,
        flags: (bool, bool),
    ) -> Result<Contribution, StoreError> {
        let origin: Option<Address> = from_json(self.origin.clone())?;
        let destination: Option<Address> = from_json(self.destination.clone())?;
        Ok(self.contribution(origin.as_ref(), destination.as_ref(), &self.state()?, flags))
    }

    /// The contribution of this shipment in `state`, its addresses already read.
    fn contribution(
        &self,
        origin: Option<&Address>,
        destination: Option<&Address>,
        state: &ShipmentState,
        (had_exception, had_failed_attempt): (bool, bool),
    ) -> Contribution {
        let facts = ShipmentFacts {
            carrier: &self.carrier,
            service_level: self.service_level.as_deref(),
            origin,
            destination,
            ship_date: self.ship_date,
            promised_delivery_date: self.promised_delivery_date,
            created_at: self.created_at,
        };
        contribution(&facts, state, had_exception, had_failed_attempt)
    }

    fn previous_contribution(&self) -> Result<Option<Contribution>, StoreError> {
        from_json(self.kpi_contribution.clone())
    }
}

/// What the rollups need of a touched shipment, kept until its new state is known.
struct Touched {
    origin: Option<Address>,
    destination: Option<Address>,
    row: TouchedRow,
    /// Exception / failed-attempt seen in this batch's new events (or all events, refolded).
    flags: (bool, bool),
}

impl Touched {
    fn contribution(
        &self,
        state: &ShipmentState,
    ) -> Result<(Option<Contribution>, Contribution), StoreError> {
        let previous = self.row.previous_contribution()?;
        let (prev_x, prev_f) = previous
            .as_ref()
            .map_or((false, false), |c| (c.had_exception, c.had_failed_attempt));
        let next = self.row.contribution(
            self.origin.as_ref(),
            self.destination.as_ref(),
            state,
            (prev_x || self.flags.0, prev_f || self.flags.1),
        );
        Ok((previous, next))
    }
}

/// Numbered placeholders (`$1, $2, ...`) for PostgreSQL, anonymous ones (`?`) for SQLite. Large
/// multi-row statements must not use `$N` on SQLite: binding looks each name up linearly, which
/// makes a statement with N parameters cost O(N²) (measured: 38% of processor time).
#[doc(hidden)]
pub struct Params {
    numbered: bool,
    next: usize,
}

impl Params {
    pub fn new(backend: &crate::Backend) -> Self {
        Params {
            numbered: matches!(backend, crate::Backend::Postgres(_)),
            next: 0,
        }
    }

    pub fn one(&mut self) -> String {
        self.next += 1;
        if self.numbered {
            format!("${}", self.next)
        } else {
            "?".to_string()
        }
    }

    /// `(p, p, ...), (...)` for `rows` rows of `cols` columns.
    pub fn rows(&mut self, rows: usize, cols: usize) -> String {
        let mut s = String::with_capacity(rows * cols * 5);
        for r in 0..rows {
            if r > 0 {
                s.push_str(", ");
            }
            s.push('(');
            for c in 0..cols {
                if c > 0 {
                    s.push_str(", ");
                }
                s.push_str(&self.one());
            }
            s.push(')');
        }
        s
    }

    /// `p, p, ...` for an IN list.
    pub fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.one()).collect::<Vec<_>>().join(", ")
    }
}

struct Incoming<'a> {
    seq: i64,
    payload: &'a str,
    event: TrackingEvent,
}

impl Store {
    /// The log position `consumer` has applied up to (0 when it never ran).
    pub async fn consumer_position(&self, consumer: &str) -> Result<i64, StoreError> {
        let pos: Option<i64> = on_pool!(&self.db, pool => {
            sqlx::query_scalar("SELECT position FROM processor_offsets WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(pool)
                .await?
        });
        Ok(pos.unwrap_or(0))
    }

    /// Applies `entries` (in log order) and records `consumer`'s new position in the same
    /// transaction. Re-applying entries already applied changes nothing.
    #[tracing::instrument(skip_all, fields(consumer, entries = entries.len()))]
    pub async fn apply_log_entries(
        &self,
        consumer: &str,
        entries: &[LogEntry],
    ) -> Result<ApplyOutcome, StoreError> {
        let Some(last) = entries.last() else {
            return Ok(ApplyOutcome::default());
        };
        let position = last.seq;
        let mut outcome = ApplyOutcome::default();
        let received_at = now();

        // Parse, and keep the first occurrence of each event key (log order).
        let mut by_tenant: BTreeMap<TenantId, Vec<Incoming<'_>>> = BTreeMap::new();
        let mut seen: HashSet<(TenantId, &str)> = HashSet::with_capacity(entries.len());
        let mut parsed: Vec<(TenantId, Incoming<'_>)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match serde_json::from_str::<TrackingEvent>(&entry.payload) {
                Ok(event) => parsed.push((
                    entry.tenant_id,
                    Incoming {
                        seq: entry.seq,
                        payload: &entry.payload,
                        event,
                    },
                )),
                Err(err) => {
                    tracing::error!(seq = entry.seq, error = %err, "unreadable log entry skipped");
                    outcome.unreadable += 1;
                }
            }
        }
        let keys: Vec<String> = parsed
            .iter()
            .map(|(_, i)| i.event.event_key.0.clone())
            .collect();
        for ((tenant, incoming), key) in parsed.into_iter().zip(keys.iter()) {
            if seen.insert((tenant, key.as_str())) {
                by_tenant.entry(tenant).or_default().push(incoming);
            } else {
                outcome.duplicates += 1;
            }
        }

        on_all_tenants!(self, pool => {
            let mut tx = sqlx::Acquire::begin(pool).await?;
            // Write first: on SQLite this takes the write lock before any read, so a concurrent
            // writer makes us wait (busy timeout) instead of failing with a stale snapshot.
            sqlx::query(
                "INSERT INTO processor_offsets (consumer, position) VALUES ($1, $2)
                 ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
            )
            .bind(consumer)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            for (tenant, incoming) in &by_tenant {
                let tenant = *tenant;
                // 1. Resolve (carrier, tracking number) to shipment ids, creating unknown ones.
                let wanted: BTreeSet<(&str, &str)> = incoming
                    .iter()
                    .map(|i| (i.event.carrier.as_str(), i.event.tracking_number.as_str()))
                    .collect();
                let mut ids: HashMap<(String, String), Uuid> = HashMap::with_capacity(wanted.len());
                // Grouped by carrier so the (tenant_id, carrier, tracking_number) index serves it.
                let mut by_carrier: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for (c, t) in &wanted {
                    by_carrier.entry(*c).or_default().push(*t);
                }
                for (carrier, numbers) in &by_carrier {
                    for chunk in numbers.chunks(CHUNK_ROWS) {
                        let mut p = Params::new(&self.db);
                        let sql = format!(
                            "SELECT id, carrier, tracking_number FROM shipments WHERE tenant_id = {} AND carrier = {} AND tracking_number IN ({})",
                            p.one(),
                            p.one(),
                            p.list(chunk.len())
                        );
                        let mut q = sqlx::query_as::<_, (Uuid, String, String)>(&sql)
                            .bind(tenant.0)
                            .bind(*carrier);
                        for n in chunk {
                            q = q.bind(*n);
                        }
                        for (id, c, t) in q.fetch_all(&mut *tx).await? {
                            ids.insert((c, t), id);
                        }
                    }
                }
                let missing: Vec<(&str, &str)> = wanted
                    .iter()
                    .filter(|(c, t)| !ids.contains_key(&(c.to_string(), t.to_string())))
                    .copied()
                    .collect();
                for chunk in missing.chunks(CHUNK_ROWS) {
                    let sql = format!(
                        "INSERT INTO shipments (id, tenant_id, carrier, tracking_number, metadata, auto_created, created_at, updated_at, status, events_count) VALUES {}
                         ON CONFLICT (tenant_id, carrier, tracking_number) DO NOTHING RETURNING id, carrier, tracking_number",
                        Params::new(&self.db).rows(chunk.len(), 10)
                    );
                    let mut q = sqlx::query_as::<_, (Uuid, String, String)>(&sql);
                    for (c, t) in chunk {
                        q = q
                            .bind(ShipmentId::new().0)
                            .bind(tenant.0)
                            .bind(*c)
                            .bind(*t)
                            .bind("{}")
                            .bind(true)
                            .bind(received_at)
                            .bind(received_at)
                            .bind("pre_transit")
                            .bind(0_i64);
                    }
                    for (id, c, t) in q.fetch_all(&mut *tx).await? {
                        outcome.auto_created += 1;
                        ids.insert((c, t), id);
                    }
                    // A shipment created concurrently through the API: read its id.
                    for (c, t) in chunk {
                        if let std::collections::hash_map::Entry::Vacant(slot) =
                            ids.entry((c.to_string(), t.to_string()))
                        {
                            let id: Uuid = sqlx::query_scalar(
                                "SELECT id FROM shipments WHERE tenant_id = $1 AND carrier = $2 AND tracking_number = $3",
                            )
                            .bind(tenant.0)
                            .bind(*c)
                            .bind(*t)
                            .fetch_one(&mut *tx)
                            .await?;
                            slot.insert(id);
                        }
                    }
                }

                // 2. Insert the events; the ones returned are new, the rest were known.
                let mut new_events: HashMap<Uuid, Vec<TrackingEvent>> = HashMap::new();
                for chunk in incoming.chunks(CHUNK_ROWS) {
                    let sql = format!(
                        "INSERT INTO tracking_events (tenant_id, event_key, shipment_id, log_seq, occurred_at, body, received_at) VALUES {}
                         ON CONFLICT (tenant_id, shipment_id, event_key) DO NOTHING RETURNING shipment_id, event_key",
                        Params::new(&self.db).rows(chunk.len(), 7)
                    );
                    let mut q = sqlx::query_as::<_, (Uuid, String)>(&sql);
                    for i in chunk {
                        let key = (i.event.carrier.clone(), i.event.tracking_number.clone());
                        let shipment = ids.get(&key).copied().ok_or_else(|| {
                            StoreError::corrupt(format!("no shipment resolved for {}/{}", key.0, key.1))
                        })?;
                        q = q
                            .bind(tenant.0)
                            .bind(&i.event.event_key.0)
                            .bind(shipment)
                            .bind(i.seq)
                            .bind(i.event.occurred_at.with_timezone(&chrono::Utc))
                            .bind(i.payload)
                            .bind(received_at);
                    }
                    let inserted = q.fetch_all(&mut *tx).await?;
                    outcome.applied += inserted.len() as u64;
                    outcome.duplicates += (chunk.len() - inserted.len()) as u64;
                    let by_key: HashMap<&str, &TrackingEvent> =
                        chunk.iter().map(|i| (i.event.event_key.0.as_str(), &i.event)).collect();
                    for (shipment, key) in inserted {
                        let event = by_key.get(key.as_str()).ok_or_else(|| {
                            StoreError::corrupt(format!("inserted event {key} is not in the batch"))
                        })?;
                        new_events.entry(shipment).or_default().push((*event).clone());
                    }
                }

                // 3. New state: continue each fold from the stored state when the new events
                //    are all later (the common, in-order case); otherwise fold every event again.
                let touched: Vec<Uuid> = new_events.keys().copied().collect();
                let mut states: Vec<(Uuid, ShipmentState)> = Vec::with_capacity(touched.len());
                let mut refold: Vec<Uuid> = Vec::new();
                let mut facts: HashMap<Uuid, Touched> = HashMap::with_capacity(touched.len());
                for chunk in touched.chunks(CHUNK_ROWS) {
                    let mut p = Params::new(&self.db);
                    let sql = format!(
                        "SELECT {} FROM shipments WHERE tenant_id = {} AND id IN ({})",
                        TouchedRow::COLUMNS,
                        p.one(),
                        p.list(chunk.len())
                    );
                    let mut q = sqlx::query_as::<_, TouchedRow>(&sql).bind(tenant.0);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for row in q.fetch_all(&mut *tx).await? {
                        let id = row.id;
                        let current = row.state()?;
                        let later = new_events.remove(&id).unwrap_or_default();
                        let flags = event_flags(&later);
                        facts.insert(id, Touched {
                            origin: from_json(row.origin.clone())?,
                            destination: from_json(row.destination.clone())?,
                            row,
                            flags,
                        });
                        match fold_continue(current, later) {
                            Some(state) => states.push((id, state)),
                            None => refold.push(id),
                        }
                    }
                }
                for chunk in refold.chunks(CHUNK_ROWS) {
                    let mut p = Params::new(&self.db);
                    let sql = format!(
                        "SELECT shipment_id, body FROM tracking_events WHERE tenant_id = {} AND shipment_id IN ({})",
                        p.one(),
                        p.list(chunk.len())
                    );
                    let mut q = sqlx::query_as::<_, (Uuid, String)>(&sql).bind(tenant.0);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    let mut events: HashMap<Uuid, Vec<TrackingEvent>> = HashMap::with_capacity(chunk.len());
                    for (id, body) in q.fetch_all(&mut *tx).await? {
                        let e: TrackingEvent = serde_json::from_str(&body).map_err(StoreError::corrupt)?;
                        events.entry(id).or_default().push(e);
                    }
                    outcome.refolded += events.len() as u64;
                    for (id, evs) in events {
                        if let Some(t) = facts.get_mut(&id) {
                            t.flags = event_flags(&evs);
                        }
                        states.push((id, fold(evs)));
                    }
                }
                outcome.touched.extend(
                    states
                        .iter()
                        .map(|(id, state)| (tenant, ShipmentId(*id), state.status)),
                );
                // 4. The rollups: retract each shipment's previous contribution, add its new one.
                let mut deltas = RollupDeltas::default();
                for (shipment_id, state) in states {
                    let contribution = match facts.get(&shipment_id) {
                        Some(t) => {
                            let (previous, next) = t.contribution(&state)?;
                            if previous.as_ref() != Some(&next) {
                                if let Some(previous) = &previous {
                                    deltas.add(previous, -1);
                                }
                                deltas.add(&next, 1);
                            }
                            serde_json::to_string(&next).ok()
                        }
                        None => None,
                    };
                    sqlx::query(
                        "UPDATE shipments SET status = $3, reason = $4, last_location = $5, first_scan_at = $6, delivered_at = $7, last_event_at = $8, events_count = $9, updated_at = $10, kpi_contribution = $11
                         WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant.0)
                    .bind(shipment_id)
                    .bind(state.status.as_str())
                    .bind(state.reason.map(|r| r.as_str()))
                    .bind(to_json(&state.last_location))
                    .bind(state.first_scan_at)
                    .bind(state.delivered_at)
                    .bind(state.last_event_at)
                    .bind(i64::from(state.events_count))
                    .bind(received_at)
                    .bind(contribution)
                    .execute(&mut *tx)
                    .await?;
                }
                crate::upsert_rollups!(&self.db, &mut *tx, tenant, &deltas, received_at);
            }
            tx.commit().await?;
        });
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_only_for_postgres() {
        let mut pg = Params {
            numbered: true,
            next: 0,
        };
        assert_eq!(pg.one(), "$1");
        assert_eq!(pg.rows(2, 2), "($2, $3), ($4, $5)");
        assert_eq!(pg.list(2), "$6, $7");
        let mut lite = Params {
            numbered: false,
            next: 0,
        };
        assert_eq!(lite.rows(1, 3), "(?, ?, ?)");
    }
}
