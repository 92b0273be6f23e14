//! Group commit: many concurrent ingest requests share one log transaction (one fsync), and each
//! is answered only after that transaction is durable.

use crate::error::PipelineError;
use crate::processor::ProcessorProgress;
use bitshipper_core::TenantId;
use bitshipper_store::EventLog;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct AppenderConfig {
    /// Requests waiting for the next commit before callers get `Busy`.
    pub queue_capacity: usize,
    /// Most events written in one transaction.
    pub max_batch_events: usize,
}

impl Default for AppenderConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 512,
            max_batch_events: 10_000,
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<i64>, String>>;

struct AppendRequest {
    entries: Vec<(TenantId, String)>,
    reply: Reply,
}

/// Cheap to clone; every clone feeds the same writer task.
#[derive(Debug, Clone)]
pub struct LogAppender {
    tx: mpsc::Sender<AppendRequest>,
    progress: Arc<ProcessorProgress>,
    max_lag: i64,
}

impl std::fmt::Debug for AppendRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendRequest")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl LogAppender {
    pub(crate) fn start(
        log: EventLog,
        config: AppenderConfig,
        progress: Arc<ProcessorProgress>,
        max_lag: i64,
        shutdown: watch::Receiver<bool>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let task = tokio::spawn(writer(log, rx, config, progress.clone(), shutdown));
        (
            Self {
                tx,
                progress,
                max_lag,
            },
            task,
        )
    }

    /// Appends entries durably; returns their log sequence numbers once committed. Refuses at
    /// once with `Busy` when the queue is full or the processor lags too far behind.
    pub async fn append(
        &self,
        entries: Vec<(TenantId, String)>,
    ) -> Result<Vec<i64>, PipelineError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if self.progress.lag() > self.max_lag {
            metrics::counter!("bitshipper_ingest_backpressure_total", "cause" => "processor_lag")
                .increment(1);
            return Err(PipelineError::Busy {
                retry_after_secs: 5,
            });
        }
        let permit = self.tx.try_reserve().map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                metrics::counter!("bitshipper_ingest_backpressure_total", "cause" => "queue_full")
                    .increment(1);
                PipelineError::Busy {
                    retry_after_secs: 1,
                }
            }
            mpsc::error::TrySendError::Closed(_) => PipelineError::Stopped,
        })?;
        let (reply, answer) = oneshot::channel();
        permit.send(AppendRequest { entries, reply });
        match answer.await {
            Ok(Ok(seqs)) => Ok(seqs),
            Ok(Err(message)) => Err(PipelineError::Store(bitshipper_store::StoreError::Corrupt(
                format!("log append failed: {message}"),
            ))),
            Err(_) => Err(PipelineError::Stopped),
        }
    }
}

async fn writer(
    log: EventLog,
    mut rx: mpsc::Receiver<AppendRequest>,
    config: AppenderConfig,
    progress: Arc<ProcessorProgress>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            req = rx.recv() => match req {
                Some(req) => req,
                None => break,
            },
            _ = shutdown.changed() => break,
        };
        // Everything already waiting joins this commit, up to the batch limit.
        let mut batch = vec![first];
        let mut events = batch[0].entries.len();
        while events < config.max_batch_events {
            match rx.try_recv() {
                Ok(req) => {
                    events += req.entries.len();
                    batch.push(req);
                }
                Err(_) => break,
            }
        }
        let all: Vec<(TenantId, String)> = batch
            .iter()
            .flat_map(|r| r.entries.iter().cloned())
            .collect();
        let started = Instant::now();
        let result = log.append(&all).await;
        metrics::histogram!("bitshipper_log_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(seqs) => {
                metrics::counter!("bitshipper_log_appended_total").increment(seqs.len() as u64);
                if let Some(last) = seqs.last() {
                    progress.set_head(*last);
                }
                progress.notify.notify_one();
                let mut rest = seqs.as_slice();
                for req in batch {
                    let (mine, tail) = rest.split_at(req.entries.len().min(rest.len()));
                    rest = tail;
                    let _ = req.reply.send(Ok(mine.to_vec()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = all.len(), "event log append failed");
                metrics::counter!("bitshipper_log_append_errors_total").increment(1);
                for req in batch {
                    let _ = req.reply.send(Err(e.to_string()));
                }
            }
        }
    }
}
