//! The processor: tails the event log from its stored position and applies batches to shipment
//! state; its position moves in the same transaction as the state it changed.

use crate::error::PipelineError;
use crate::scorer::Scorer;
use bitshipper_store::{EventLog, Store};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{watch, Notify};

pub(crate) const CONSUMER: &str = "processor";

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// Log entries applied per transaction.
    pub batch_size: u32,
    /// How often to look at the log when not woken by an append (other processes may write).
    pub poll_interval: Duration,
    /// Unapplied events beyond which ingest answers 503.
    pub max_lag: i64,
    /// Whether this process applies events (the `processor` role). Without it the process
    /// only watches the position another process's processor reaches.
    pub enabled: bool,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            batch_size: 2_000,
            poll_interval: Duration::from_millis(200),
            max_lag: 500_000,
            enabled: true,
        }
    }
}

/// Shared counters: the log head, the applied position, and a wake-up for the processor.
#[derive(Debug, Default)]
pub struct ProcessorProgress {
    head: AtomicI64,
    position: AtomicI64,
    pub(crate) notify: Notify,
    pub(crate) applied_notify: Notify,
}

impl ProcessorProgress {
    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }
    pub fn position(&self) -> i64 {
        self.position.load(Ordering::Acquire)
    }
    /// Events in the log not yet applied to state.
    pub fn lag(&self) -> i64 {
        (self.head() - self.position()).max(0)
    }
    pub(crate) fn set_head(&self, seq: i64) {
        self.head.fetch_max(seq, Ordering::AcqRel);
        metrics::gauge!("bitshipper_log_head").set(self.head() as f64);
        metrics::gauge!("bitshipper_log_lag_events").set(self.lag() as f64);
    }
    pub(crate) fn set_position(&self, seq: i64) {
        self.position.fetch_max(seq, Ordering::AcqRel);
        metrics::gauge!("bitshipper_log_lag_events").set(self.lag() as f64);
    }

    /// Waits until the processor has applied the log up to `seq` (or `timeout` passes).
    pub async fn wait_applied(&self, seq: i64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.applied_notify.notified();
            if self.position() >= seq {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.position() >= seq;
            }
        }
    }
}

#[derive(Debug)]
pub struct Processor {
    store: Store,
    log: EventLog,
    config: ProcessorConfig,
    progress: std::sync::Arc<ProcessorProgress>,
    scorer: Option<std::sync::Arc<Scorer>>,
}

impl Processor {
    pub fn new(
        store: Store,
        log: EventLog,
        config: ProcessorConfig,
        progress: std::sync::Arc<ProcessorProgress>,
    ) -> Self {
        Self {
            store,
            log,
            config,
            progress,
            scorer: None,
        }
    }

    /// Scores the shipments each batch changes.
    pub fn with_scorer(mut self, scorer: std::sync::Arc<Scorer>) -> Self {
        self.scorer = Some(scorer);
        self
    }

    /// Applies one batch; returns how many log entries it consumed.
    pub async fn step(&self) -> Result<usize, PipelineError> {
        // This processor is the position's only writer: it was read from the store at start
        // and moves only with a committed batch, so memory holds the stored value.
        let position = self.progress.position();
        let entries = self
            .log
            .read_after(position, self.config.batch_size)
            .await?;
        if entries.is_empty() {
            return Ok(0);
        }
        let started = std::time::Instant::now();
        let outcome = self.store.apply_log_entries(CONSUMER, &entries).await?;
        metrics::histogram!("bitshipper_processor_batch_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("bitshipper_events_applied_total").increment(outcome.applied);
        metrics::counter!("bitshipper_events_duplicate_total").increment(outcome.duplicates);
        metrics::counter!("bitshipper_events_unreadable_total").increment(outcome.unreadable);
        metrics::counter!("bitshipper_shipments_auto_created_total")
            .increment(outcome.auto_created);
        metrics::counter!("bitshipper_shipments_refolded_total").increment(outcome.refolded);
        if let Some(last) = entries.last() {
            self.progress.set_head(last.seq);
            self.progress.set_position(last.seq);
        }
        self.progress.applied_notify.notify_waiters();
        // Predictions are derived data: a failure here is logged, and the scheduled re-score
        // brings them up to date; it never holds back the log.
        if let Some(scorer) = &self.scorer {
            let started = std::time::Instant::now();
            if let Err(e) = scorer.score_touched(&outcome.touched).await {
                tracing::warn!(error = %e, "scoring the batch's shipments failed");
                metrics::counter!("bitshipper_scoring_errors_total").increment(1);
            }
            metrics::histogram!("bitshipper_scoring_batch_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        Ok(entries.len())
    }

    /// Follows the position written by a processor in another process (api-only role).
    pub async fn watch(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.store.consumer_position(CONSUMER).await {
                Ok(pos) => {
                    self.progress.set_position(pos);
                    self.progress.applied_notify.notify_waiters();
                }
                Err(e) => tracing::warn!(error = %e, "could not read processor position"),
            }
            match self.log.head().await {
                Ok(head) => self.progress.set_head(head),
                Err(e) => tracing::warn!(error = %e, "could not read log head"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }

    /// Runs until `shutdown` turns true; errors are logged and retried with backoff, never
    /// skipped past (the position only moves with a committed batch).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.step().await {
                Ok(n) if n > 0 => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(_) => {
                    tokio::select! {
                        _ = self.progress.notify.notified() => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "processor batch failed");
                    metrics::counter!("bitshipper_processor_errors_total").increment(1);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
