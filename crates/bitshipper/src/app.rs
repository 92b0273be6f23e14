//! The application: wires store, event log, pipeline and HTTP API from `Settings`, and runs
//! them until a shutdown signal. Tests start the real thing on port 0.

use crate::settings::{Role, Settings};
use anyhow::Context;
use bitshipper_api::{AppState, Limits};
use bitshipper_core::MappingTable;
use bitshipper_pipeline::{
    AppenderConfig, Pipeline, PipelineConfig, ProcessorConfig, ScorerConfig,
};
use bitshipper_store::{EventLog, Store};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Idempotency keys are kept at least this long (the API promises 24 hours).
const IDEMPOTENCY_KEEP_HOURS: i64 = 25;

#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    pipeline: Pipeline,
    store: Store,
    port: u16,
    /// Stops the lake writer, and the writer's task (when this process runs the lake role).
    lake_stop: tokio::sync::watch::Sender<bool>,
    lake_task: Option<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Connects and migrates the store, opens the log, starts the pipeline and binds the
    /// listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = bitshipper_api::install_metrics_recorder();
        let store = Store::connect(&settings.database_url)
            .await
            .with_context(|| format!("connecting to {}", redact(&settings.database_url)))?
            .with_key_provider(
                settings
                    .key_provider()
                    .context("loading the key provider")?,
            );
        let applied = store.migrate().await.context("applying migrations")?;
        if applied > 0 {
            tracing::info!(applied, dialect = store.dialect(), "migrations applied");
        }
        let sealed = store
            .seal_legacy_personal_data()
            .await
            .context("sealing personal data stored before encryption at rest")?;
        if sealed > 0 {
            tracing::info!(shipments = sealed, "sealed plaintext personal data");
        }
        let log = EventLog::open(&settings.database_url)
            .await
            .context("opening the event log")?;
        let housekeeping_log = log.clone();
        let lake_log = log.clone();
        let log_keep = chrono::Duration::hours(i64::from(settings.retention.log_keep_hours));
        let p = &settings.pipeline;
        let run_processor = settings.roles.contains(&Role::Processor);
        let pipeline = Pipeline::start(
            store.clone(),
            log,
            PipelineConfig {
                appender: AppenderConfig {
                    queue_capacity: p.queue_capacity,
                    max_batch_events: p.max_commit_events,
                },
                processor: ProcessorConfig {
                    batch_size: p.processor_batch_size,
                    max_lag: p.max_lag,
                    enabled: run_processor,
                    ..ProcessorConfig::default()
                },
                scoring: settings.predictions.enabled.then(|| ScorerConfig {
                    refresh_interval: std::time::Duration::from_secs(
                        settings.predictions.refresh_seconds.max(1),
                    ),
                    rescore_interval: std::time::Duration::from_secs(
                        settings.predictions.rescore_minutes.max(1) * 60,
                    ),
                }),
            },
        )
        .await
        .context("starting the pipeline")?;
        let lake = if settings.lake.enabled {
            Some(
                settings
                    .lake_location()
                    .context("the lake location (lake.location)")?,
            )
        } else {
            None
        };
        let (lake_stop, lake_stopped) = tokio::sync::watch::channel(false);
        let lake_task = match &lake {
            Some(location) if settings.roles.contains(&Role::Lake) => {
                let mut stopped = lake_stopped;
                Some(tokio::spawn(bitshipper_lake::LakeWriter::open_and_run(
                    store.clone(),
                    lake_log,
                    location.clone(),
                    settings.lake.writer_settings(),
                    async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    },
                )))
            }
            _ => None,
        };
        let state = AppState {
            store: store.clone(),
            appender: pipeline.appender.clone(),
            progress: pipeline.progress.clone(),
            mapping: Arc::new(MappingTable::builtin()?),
            providers: Arc::new(
                bitshipper_providers::mapping::Tables::builtin()
                    .context("loading provider mapping tables")?,
            ),
            metrics,
            keys: Arc::new(bitshipper_api::auth::KeyCache::new(
                std::time::Duration::from_secs(settings.limits.key_cache_seconds),
            )),
            sessions: bitshipper_api::SessionPolicy::default(),
            rate_limits: Arc::new(bitshipper_api::ratelimit::RateLimits::new(
                bitshipper_api::ratelimit::RateLimitSettings {
                    per_key_per_second: settings.limits.requests_per_second_per_key,
                    failed_auth_per_minute: settings.limits.failed_auth_per_minute_per_ip,
                },
            )),
            analytics: lake.map(|location| {
                Arc::new(crate::lake::LakeAnalytics::new(location))
                    as Arc<dyn bitshipper_api::AnalyticsSource>
            }),
            limits: Limits {
                max_body_bytes: settings.limits.max_body_bytes,
                max_batch_events: settings.limits.max_batch_events,
                max_page_size: settings.limits.max_page_size,
            },
        };
        // Housekeeping: forget rate-limit state of keys and addresses back at a full allowance,
        // and idempotency records past their 24 hours.
        let limits = state.rate_limits.clone();
        let housekeeping_store = store.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                every.tick().await;
                limits.prune();
                match housekeeping_store
                    .purge_idempotency(chrono::Duration::hours(IDEMPOTENCY_KEEP_HOURS))
                    .await
                {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "old idempotency records removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not purge idempotency records"),
                }
                // Retention runs where the processor runs: once per deployment.
                if run_processor {
                    match housekeeping_store
                        .run_retention(&housekeeping_log, log_keep)
                        .await
                    {
                        Ok(r) => {
                            metrics::counter!("bitshipper_retention_events_deleted_total")
                                .increment(r.events_deleted);
                            metrics::counter!("bitshipper_retention_recipients_erased_total")
                                .increment(r.recipients_erased);
                            metrics::counter!("bitshipper_retention_log_records_deleted_total")
                                .increment(r.log_records_deleted);
                            if r != Default::default() {
                                tracing::info!(report = ?r, "retention applied");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "retention run failed"),
                    }
                }
            }
        });
        let router = if settings.roles.contains(&Role::Api) {
            bitshipper_api::router(state)
        } else {
            bitshipper_api::ops_router(state)
        };
        let listener = TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            router,
            pipeline,
            store,
            port,
            lake_stop,
            lake_task,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The handle that appends events to the durable log.
    pub fn appender(&self) -> bitshipper_pipeline::LogAppender {
        self.pipeline.appender.clone()
    }

    pub fn progress(&self) -> Arc<bitshipper_pipeline::ProcessorProgress> {
        self.pipeline.progress.clone()
    }

    /// Serves until `shutdown` completes, then drains requests and stops the pipeline.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            pipeline,
            store,
            lake_stop,
            lake_task,
            ..
        } = self;
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving http")?;
        tracing::info!("http server stopped; stopping the pipeline");
        pipeline.stop().await;
        let _ = lake_stop.send(true);
        if let Some(task) = lake_task {
            let _ = task.await;
        }
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// An application serving in the background of this process (demo, `sim --store`, bench).
#[derive(Debug)]
pub struct RunningApp {
    store: Store,
    appender: bitshipper_pipeline::LogAppender,
    progress: Arc<bitshipper_pipeline::ProcessorProgress>,
    port: u16,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let app = Application::build(settings).await?;
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        Ok(Self {
            store: app.store().clone(),
            appender: app.appender(),
            progress: app.progress(),
            port: app.port(),
            stop,
            task: tokio::spawn(app.run_until_stopped(async {
                let _ = rx.await;
            })),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn appender(&self) -> bitshipper_pipeline::LogAppender {
        self.appender.clone()
    }

    pub fn progress(&self) -> &bitshipper_pipeline::ProcessorProgress {
        &self.progress
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits until everything appended so far is applied to state.
    pub async fn wait_applied(&self, timeout: std::time::Duration) -> bool {
        self.progress
            .wait_applied(self.progress.head(), timeout)
            .await
    }

    /// Stops serving, drains, and stops the pipeline.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("application task")?
    }
}

/// Hides the password of a database URL in messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
