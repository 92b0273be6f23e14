//! The lake writer: tails the event log from its own position (kept in the lake itself, as Delta
//! transaction identifiers), batches by size and time, and commits each batch exactly once. It
//! never holds back ingest: when the object store is down it falls behind, reports its lag and
//! catches up.

use crate::location::LakeLocation;
use crate::rows::{self, EVENTS, PREDICTIONS, SHIPMENTS};
use crate::table::LakeTable;
use crate::LakeError;
use bitshipper_core::TenantId;
use bitshipper_store::{EventLog, LakeSealer, Store};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Delta application ids: each table's position is the version its last commit recorded.
pub const EVENTS_APP: &str = "bitshipper.lake.events";
pub const SHIPMENTS_APP: &str = "bitshipper.lake.shipments";
pub const PREDICTIONS_APP: &str = "bitshipper.lake.predictions";
/// The name under which the writer reports its log position to the store (log retention waits
/// for it).
pub const LOG_CONSUMER: &str = "lake";

/// A sealer is re-read this often so a rotated tenant key is picked up.
const SEALER_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// Most log events (and log positions, for shipments) in one commit.
    pub batch_events: u32,
    /// A partial batch is written once it has waited this long.
    pub flush_interval: Duration,
    /// How often the writer looks for new work when idle.
    pub poll_interval: Duration,
    /// Compaction and vacuum run this often.
    pub maintenance_interval: Duration,
    /// Files no version younger than this refers to are vacuumed.
    pub vacuum_retention: chrono::Duration,
    /// Predictions are read once they are this old, so rows committed late with an earlier
    /// `scored_at` are not skipped.
    pub predictions_settle: Duration,
    /// The processor's consumer name: shipment rows wait until it has applied their events.
    pub processor_consumer: String,
}

impl Default for WriterSettings {
    fn default() -> Self {
        WriterSettings {
            batch_events: 100_000,
            flush_interval: Duration::from_secs(5),
            poll_interval: Duration::from_millis(500),
            maintenance_interval: Duration::from_secs(3600),
            vacuum_retention: chrono::Duration::days(7),
            predictions_settle: Duration::from_secs(2),
            processor_consumer: "processor".into(),
        }
    }
}

/// Where each table stands: log sequence numbers for events and shipments, microseconds of
/// `scored_at` for predictions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Positions {
    pub events: i64,
    pub shipments: i64,
    pub predictions: i64,
}

/// Rows committed by one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub events: u64,
    pub shipments: u64,
    pub predictions: u64,
    /// Log entries that could not be read as events (skipped, counted).
    pub unreadable: u64,
}

impl Written {
    pub fn is_empty(&self) -> bool {
        self.events + self.shipments + self.predictions + self.unreadable == 0
    }

    fn add(&mut self, other: Written) {
        self.events += other.events;
        self.shipments += other.shipments;
        self.predictions += other.predictions;
        self.unreadable += other.unreadable;
    }
}

pub struct LakeWriter {
    store: Store,
    log: EventLog,
    events: LakeTable,
    shipments: LakeTable,
    predictions: LakeTable,
    settings: WriterSettings,
    /// `None` until read from the tables, and again after a failed commit.
    positions: Option<Positions>,
    last_flush: [Instant; 3],
    sealers: HashMap<TenantId, (LakeSealer, Instant)>,
}

impl std::fmt::Debug for LakeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeWriter")
            .field("positions", &self.positions)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl LakeWriter {
    /// Opens (creating when missing) the lake's tables.
    pub async fn open(
        store: Store,
        log: EventLog,
        location: &LakeLocation,
        settings: WriterSettings,
    ) -> Result<Self, LakeError> {
        Ok(LakeWriter {
            events: LakeTable::open_or_create(location, &EVENTS).await?,
            shipments: LakeTable::open_or_create(location, &SHIPMENTS).await?,
            predictions: LakeTable::open_or_create(location, &PREDICTIONS).await?,
            store,
            log,
            settings,
            positions: None,
            last_flush: [Instant::now(); 3],
            sealers: HashMap::new(),
        })
    }

    /// Each table's position as committed in the lake.
    pub async fn positions(&mut self) -> Result<Positions, LakeError> {
        if let Some(p) = self.positions {
            return Ok(p);
        }
        let p = Positions {
            events: self
                .events
                .committed_version(EVENTS_APP)
                .await?
                .unwrap_or(0),
            shipments: self
                .shipments
                .committed_version(SHIPMENTS_APP)
                .await?
                .unwrap_or(0),
            predictions: self
                .predictions
                .committed_version(PREDICTIONS_APP)
                .await?
                .unwrap_or(0),
        };
        self.positions = Some(p);
        Ok(p)
    }

    /// One round: each table commits at most one batch, if one is due (`force`: whatever is
    /// there). On an error the positions are re-read from the lake before the next round.
    pub async fn step(&mut self, force: bool) -> Result<Written, LakeError> {
        let result = self.step_inner(force).await;
        if result.is_err() {
            self.positions = None;
            metrics::counter!("bitshipper_lake_write_errors_total").increment(1);
        }
        result
    }

    async fn step_inner(&mut self, force: bool) -> Result<Written, LakeError> {
        let mut written = Written::default();
        written.add(self.write_events(force).await?);
        written.add(self.write_shipments(force).await?);
        written.add(self.write_predictions(force).await?);
        Ok(written)
    }

    /// Writes until nothing is left (a backfill, a test, `bitshipper lake sync`).
    pub async fn catch_up(&mut self) -> Result<Written, LakeError> {
        let mut total = Written::default();
        loop {
            let before = self.positions().await?;
            let w = self.step(true).await?;
            total.add(w);
            if w.is_empty() && self.positions().await? == before {
                return Ok(total);
            }
        }
    }

    fn due(&self, table: usize, pending: i64, force: bool) -> bool {
        pending > 0
            && (force
                || pending >= i64::from(self.settings.batch_events)
                || self.last_flush[table].elapsed() >= self.settings.flush_interval)
    }

    async fn sealer(&mut self, tenant: TenantId) -> Result<(), LakeError> {
        let fresh = self
            .sealers
            .get(&tenant)
            .is_some_and(|(_, at)| at.elapsed() < SEALER_TTL);
        if !fresh {
            let sealer = self.store.lake_sealer(tenant).await?;
            self.sealers.insert(tenant, (sealer, Instant::now()));
        }
        Ok(())
    }

    async fn write_events(&mut self, force: bool) -> Result<Written, LakeError> {
        let mut positions = self.positions().await?;
        let head = self.log.head().await?;
        let pending = head - positions.events;
        metrics::gauge!("bitshipper_lake_lag_events", "table" => "events").set(pending as f64);
        if !self.due(0, pending, force) {
            return Ok(Written::default());
        }
        let entries = self
            .log
            .read_after(positions.events, self.settings.batch_events)
            .await?;
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Ok(Written::default());
        };
        let mut parsed = Vec::with_capacity(entries.len());
        let mut unreadable = 0;
        for entry in rows::parse_entries_lenient(&entries) {
            match entry {
                Ok(p) => parsed.push(p),
                Err(e) => {
                    unreadable += 1;
                    tracing::warn!(error = %e, "lake writer skips an unreadable log entry");
                }
            }
        }
        let mut tenants: Vec<TenantId> = parsed.iter().map(|p| p.tenant_id).collect();
        tenants.sort_unstable_by_key(|t| t.0);
        tenants.dedup();
        for tenant in tenants {
            self.sealer(tenant).await?;
        }
        let sealers = &self.sealers;
        let batch = rows::event_batch(&parsed, |t| sealers.get(&t).map(|(s, _)| s), Utc::now())?;
        let rows = batch.num_rows() as u64;
        // A range of unreadable entries only commits nothing: re-reading it after a restart
        // skips it again.
        if rows > 0 {
            self.events.append(batch, EVENTS_APP, last).await?;
        }
        positions.events = last;
        self.positions = Some(positions);
        self.last_flush[0] = Instant::now();
        self.store
            .record_consumer_position(LOG_CONSUMER, positions.events.min(positions.shipments))
            .await?;
        metrics::counter!("bitshipper_lake_rows_written_total", "table" => "events")
            .increment(rows);
        metrics::gauge!("bitshipper_lake_lag_events", "table" => "events")
            .set((head - last).max(0) as f64);
        Ok(Written {
            events: rows,
            unreadable,
            ..Written::default()
        })
    }

    async fn write_shipments(&mut self, force: bool) -> Result<Written, LakeError> {
        let mut positions = self.positions().await?;
        let applied = self
            .store
            .consumer_position(&self.settings.processor_consumer)
            .await?;
        let pending = applied - positions.shipments;
        metrics::gauge!("bitshipper_lake_lag_events", "table" => "shipments")
            .set(pending.max(0) as f64);
        if !self.due(1, pending, force) {
            return Ok(Written::default());
        }
        let through = applied.min(positions.shipments + i64::from(self.settings.batch_events));
        let changed = self
            .store
            .lake_shipments_changed(positions.shipments, through)
            .await?;
        let rows = changed.len() as u64;
        if !changed.is_empty() {
            let batch = rows::shipment_batch(&changed, through, Utc::now())?;
            self.shipments.append(batch, SHIPMENTS_APP, through).await?;
        }
        // A range that changed no shipment (only duplicates) commits nothing: re-reading it
        // after a restart finds nothing again.
        positions.shipments = through;
        self.positions = Some(positions);
        self.last_flush[1] = Instant::now();
        self.store
            .record_consumer_position(LOG_CONSUMER, positions.events.min(positions.shipments))
            .await?;
        metrics::counter!("bitshipper_lake_rows_written_total", "table" => "shipments")
            .increment(rows);
        Ok(Written {
            shipments: rows,
            ..Written::default()
        })
    }

    async fn write_predictions(&mut self, force: bool) -> Result<Written, LakeError> {
        let mut positions = self.positions().await?;
        let settle = chrono::Duration::from_std(self.settings.predictions_settle)
            .unwrap_or_else(|_| chrono::Duration::seconds(2));
        let until = Utc::now() - settle;
        let after = micros_to_time(positions.predictions);
        if !force && self.last_flush[2].elapsed() < self.settings.flush_interval {
            return Ok(Written::default());
        }
        let limit = self.settings.batch_events;
        let mut scored = self
            .store
            .lake_predictions_scored(after, until, limit)
            .await?;
        if scored.len() == limit as usize {
            // Never split one `scored_at` across commits: the next read starts after it.
            let last_at = scored[scored.len() - 1].scored_at;
            if scored[0].scored_at == last_at {
                scored = self
                    .store
                    .lake_predictions_scored(
                        last_at - chrono::Duration::microseconds(1),
                        last_at,
                        u32::MAX,
                    )
                    .await?;
            } else {
                scored.retain(|p| p.scored_at < last_at);
            }
        }
        let Some(last_at) = scored.last().map(|p| p.scored_at) else {
            self.last_flush[2] = Instant::now();
            return Ok(Written::default());
        };
        let version = last_at.timestamp_micros();
        let batch = rows::prediction_batch(&scored, Utc::now())?;
        let rows = batch.num_rows() as u64;
        self.predictions
            .append(batch, PREDICTIONS_APP, version)
            .await?;
        positions.predictions = version;
        self.positions = Some(positions);
        self.last_flush[2] = Instant::now();
        metrics::counter!("bitshipper_lake_rows_written_total", "table" => "predictions")
            .increment(rows);
        metrics::gauge!("bitshipper_lake_lag_seconds", "table" => "predictions")
            .set((Utc::now() - last_at).num_milliseconds().max(0) as f64 / 1000.0);
        Ok(Written {
            predictions: rows,
            ..Written::default()
        })
    }

    /// Compacts small files and vacuums unreferenced ones in every table.
    pub async fn maintain(&mut self) -> Result<(u64, usize), LakeError> {
        let retention = self.settings.vacuum_retention;
        let mut compacted = 0;
        let mut vacuumed = 0;
        for table in [&mut self.events, &mut self.shipments, &mut self.predictions] {
            table.refresh().await?;
            compacted += table.compact().await?;
            vacuumed += table.vacuum(retention).await?;
        }
        // Compaction commits new versions: positions are unchanged, but re-read them anyway.
        self.positions = None;
        Ok((compacted, vacuumed))
    }

    /// Opens the lake (retrying while the object store is unreachable, so a down store never
    /// stops the rest of the process from starting) and runs until `shutdown` resolves.
    pub async fn open_and_run(
        store: Store,
        log: EventLog,
        location: LakeLocation,
        settings: WriterSettings,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(500);
        let writer = loop {
            match LakeWriter::open(store.clone(), log.clone(), &location, settings.clone()).await {
                Ok(w) => break w,
                Err(e) => {
                    metrics::counter!("bitshipper_lake_write_errors_total").increment(1);
                    tracing::warn!(error = %e, retry_in = ?backoff, "lake writer cannot open the lake yet");
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        };
        tracing::info!(lake = %location.root(), "lake writer started");
        writer.run(shutdown).await;
    }

    /// Runs until `shutdown` resolves: writes batches as they come due, backs off on errors
    /// (the log keeps everything meanwhile), maintains the tables on schedule.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = self.settings.poll_interval;
        let mut last_maintenance = Instant::now();
        loop {
            let wait = match self.step(false).await {
                Ok(w) => {
                    backoff = self.settings.poll_interval;
                    if w.is_empty() {
                        self.settings.poll_interval
                    } else {
                        Duration::ZERO
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "lake writer: commit failed; will retry");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    wait
                }
            };
            if last_maintenance.elapsed() >= self.settings.maintenance_interval {
                last_maintenance = Instant::now();
                match self.maintain().await {
                    Ok((compacted, vacuumed)) => {
                        tracing::info!(compacted, vacuumed, "lake maintenance done")
                    }
                    Err(e) => tracing::warn!(error = %e, "lake maintenance failed"),
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}
