//! The lake from the binary: analytics for the API from the warehouse, and the operator
//! commands `bitshipper query` (read-only SQL over one tenant's views) and `bitshipper lake
//! sync|maintain|status`.

use crate::settings::Settings;
use anyhow::Context;
use bitshipper_core::analytics::{ExportFormat, ExportRequest, KpiQuery, KpiReport};
use bitshipper_core::TenantId;
use bitshipper_lake::{analytics, export, LakeLocation, LakeWriter, Warehouse};
use clap::{Subcommand, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use std::io::Write;

/// The API's analytics, answered by the warehouse over the lake.
#[derive(Debug)]
pub struct LakeAnalytics {
    warehouse: Warehouse,
}

impl LakeAnalytics {
    pub fn new(location: LakeLocation) -> Self {
        LakeAnalytics {
            warehouse: Warehouse::new(location),
        }
    }
}

#[async_trait::async_trait]
impl bitshipper_api::AnalyticsSource for LakeAnalytics {
    async fn kpis(&self, tenant: TenantId, query: &KpiQuery) -> Result<KpiReport, String> {
        analytics::kpis(&self.warehouse, tenant, query)
            .await
            .map_err(|e| e.to_string())
    }

    async fn export(
        &self,
        tenant: TenantId,
        request: &ExportRequest,
    ) -> Result<bitshipper_api::state::ExportStream, String> {
        let stream = export::export_stream(&self.warehouse, tenant, request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Box::pin(
            export::encode(stream, request.format).map(|chunk| chunk.map_err(|e| e.to_string())),
        ))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    /// An aligned table (at most `--limit` rows).
    Table,
    /// CSV with a header, streamed.
    Csv,
    /// Parquet (zstd), streamed row group by row group; redirect it to a file.
    Parquet,
    /// One JSON object per line, streamed.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Write everything the log, the state and the predictions hold that the lake lacks, then exit.
    Sync,
    /// Compact small files and vacuum files no longer referenced.
    Maintain,
    /// Where each table stands against the log.
    Status,
}

/// `bitshipper query`: one read-only statement over the tenant's views `events`, `shipments`,
/// `shipments_current` and `predictions`.
pub async fn query(
    settings: &Settings,
    tenant: TenantId,
    sql: &str,
    format: OutputFormat,
    limit: usize,
) -> anyhow::Result<()> {
    let warehouse = Warehouse::new(settings.lake_location().context("the lake location")?);
    let mut stream = warehouse
        .query(tenant, sql)
        .await
        .context("the query was refused")?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        OutputFormat::Table => {
            let mut batches = Vec::new();
            let mut rows = 0;
            while let Some(batch) = stream.try_next().await? {
                let take = batch.num_rows().min(limit - rows);
                batches.push(batch.slice(0, take));
                rows += take;
                if rows >= limit {
                    break;
                }
            }
            let table = bitshipper_lake::arrow::util::pretty::pretty_format_batches(&batches)?;
            writeln!(out, "{table}")?;
            writeln!(
                out,
                "{rows} row(s){}",
                if rows >= limit {
                    format!(" (stopped at --limit {limit})")
                } else {
                    String::new()
                }
            )?;
        }
        OutputFormat::Csv | OutputFormat::Parquet => {
            let format = if matches!(format, OutputFormat::Csv) {
                ExportFormat::Csv
            } else {
                ExportFormat::Parquet
            };
            let mut chunks = std::pin::pin!(export::encode(stream, format));
            while let Some(chunk) = chunks.try_next().await? {
                out.write_all(&chunk)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = bitshipper_lake::arrow::json::LineDelimitedWriter::new(&mut out);
            while let Some(batch) = stream.try_next().await? {
                writer.write(&batch)?;
            }
            writer.finish()?;
        }
    }
    out.flush()?;
    Ok(())
}

pub async fn lake(settings: &Settings, command: LakeCommand) -> anyhow::Result<()> {
    let location = settings.lake_location().context("the lake location")?;
    let store = crate::cli::store(settings).await?;
    let log = bitshipper_store::EventLog::open(&settings.database_url)
        .await
        .context("opening the event log")?;
    let mut writer = LakeWriter::open(
        store.clone(),
        log.clone(),
        &location,
        settings.lake.writer_settings(),
    )
    .await
    .with_context(|| format!("opening the lake at {}", location.root()))?;
    match command {
        LakeCommand::Status => {
            let p = writer.positions().await?;
            let head = log.head().await?;
            let applied = store.consumer_position("processor").await?;
            println!("lake:         {}", location.root());
            println!("log head:     {head}");
            println!(
                "events:       through log position {} ({} behind)",
                p.events,
                head - p.events
            );
            println!(
                "shipments:    through log position {} ({} behind the processor at {applied})",
                p.shipments,
                applied - p.shipments
            );
            let predictions = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(p.predictions)
                .filter(|_| p.predictions > 0)
                .map_or("none yet".to_string(), |t| t.to_rfc3339());
            println!("predictions:  scored through {predictions}");
        }
        LakeCommand::Sync => {
            let start = writer.positions().await?;
            let head = log.head().await?;
            let bar = indicatif::ProgressBar::new(u64::try_from(head - start.events).unwrap_or(0));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} events {bar:40} {pos}/{len} ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let mut total = bitshipper_lake::Written::default();
            loop {
                let before = writer.positions().await?;
                let w = writer.step(true).await?;
                total.events += w.events;
                total.shipments += w.shipments;
                total.predictions += w.predictions;
                total.unreadable += w.unreadable;
                let now = writer.positions().await?;
                bar.set_position(u64::try_from(now.events - start.events).unwrap_or(0));
                if w.is_empty() && now == before {
                    break;
                }
            }
            bar.finish_and_clear();
            println!(
                "lake synced: {} events, {} shipment rows, {} predictions written ({} unreadable log entries skipped)",
                total.events, total.shipments, total.predictions, total.unreadable
            );
        }
        LakeCommand::Maintain => {
            let (compacted, vacuumed) = writer.maintain().await?;
            println!("compaction replaced {compacted} files; vacuum deleted {vacuumed} files");
        }
    }
    store.close().await;
    Ok(())
}
