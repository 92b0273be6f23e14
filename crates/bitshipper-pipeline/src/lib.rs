//! The embedded pipeline: a group-commit appender in front of the durable event log, and a
//! processor that tails the log and applies events to shipment state. Bounded queues between
//! them; when full, callers are told to retry rather than the pipeline growing without bound.

mod appender;
mod error;
mod processor;
mod scorer;

pub use appender::{AppenderConfig, LogAppender};
pub use error::PipelineError;
pub use processor::{Processor, ProcessorConfig, ProcessorProgress};
pub use scorer::{LiveModel, Scorer, ScorerConfig};

use bitshipper_store::{EventLog, Store};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Settings of the whole embedded pipeline.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    pub appender: AppenderConfig,
    pub processor: ProcessorConfig,
    /// Predictions by the live models (with the processor role only).
    pub scoring: Option<ScorerConfig>,
}

/// A running pipeline: the handle the API appends through, and its tasks.
#[derive(Debug)]
pub struct Pipeline {
    pub appender: LogAppender,
    pub progress: Arc<ProcessorProgress>,
    /// The scorer, when this process scores.
    pub scorer: Option<Arc<Scorer>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the appender and processor tasks on the current runtime.
    pub async fn start(
        store: Store,
        log: EventLog,
        config: PipelineConfig,
    ) -> Result<Self, PipelineError> {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let progress = Arc::new(ProcessorProgress::default());
        progress.set_head(log.head().await?);
        progress.set_position(store.consumer_position(processor::CONSUMER).await?);
        let (appender, appender_task) = LogAppender::start(
            log.clone(),
            config.appender.clone(),
            progress.clone(),
            config.processor.max_lag,
            shutdown_rx.clone(),
        );
        let enabled = config.processor.enabled;
        let mut tasks = vec![appender_task];
        let mut processor = Processor::new(store.clone(), log, config.processor, progress.clone());
        let scorer = match (enabled, config.scoring) {
            (true, Some(scoring)) => {
                // Its loop loads the live models at once and re-scores what is in transit.
                let scorer = Arc::new(Scorer::new(store, scoring));
                tasks.push(tokio::spawn(scorer.clone().run(shutdown_rx.clone())));
                processor = processor.with_scorer(scorer.clone());
                Some(scorer)
            }
            _ => None,
        };
        tasks.push(if enabled {
            tokio::spawn(processor.run(shutdown_rx))
        } else {
            tokio::spawn(processor.watch(shutdown_rx))
        });
        Ok(Self {
            appender,
            progress,
            scorer,
            shutdown,
            tasks,
        })
    }

    /// Stops accepting, lets the processor finish its current batch, and waits for the tasks.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
