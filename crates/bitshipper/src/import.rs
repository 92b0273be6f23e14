//! `bitshipper import`: history from files into a tenant. Carrier tracking responses and
//! aggregator payloads (`--format ups-track`, `easypost`, ...) keep their raw payload;
//! CSV (`--format csv --mapping FILE`) streams rows, reports rejected rows with their line
//! numbers, and creates shipments where shipment columns are mapped. Importing the same file
//! twice adds nothing: events are identified by content and shipments by tracking number.

use anyhow::Context;
use bitshipper_api::ingest::{Ingest, IngestSummary};
use bitshipper_core::{MappingTable, TenantId};
use bitshipper_providers::csv_import::{CsvMapping, CsvRows};
use bitshipper_providers::Provider;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The tenant to import into.
    #[arg(long)]
    pub tenant: String,
    /// csv, or a provider format: ups-track, fedex-track, usps-track, dhl-track, easypost,
    /// shippo, aftership, 17track, shipengine.
    #[arg(long)]
    pub format: String,
    /// Column mapping for CSV (TOML or JSON; see docs/integrations.md).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Where to write rejected CSV rows (default: FILE.rejected.csv beside each file).
    #[arg(long)]
    pub rejected: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Files to import.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

fn bar(len: u64, quiet: bool, name: &str) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>20} [{bar:40}] {bytes}/{total_bytes} ({eta} left) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(name.chars().take(20).collect::<String>());
    bar
}

/// Runs an import against an application started in this process.
pub async fn run(
    args: ImportArgs,
    settings: &crate::settings::Settings,
) -> anyhow::Result<IngestSummary> {
    let tenant: TenantId = args
        .tenant
        .parse()
        .map_err(|_| anyhow::anyhow!("--tenant must be a tenant id (a UUID)"))?;
    let format = args.format.trim().to_ascii_lowercase();
    let csv_mapping = if format == "csv" {
        let path = args
            .mapping
            .as_ref()
            .context("--format csv needs --mapping FILE (see docs/integrations.md)")?;
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Some(CsvMapping::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?)
    } else {
        None
    };
    let provider = match &csv_mapping {
        Some(_) => None,
        None => Some(Provider::from_id(&format).with_context(|| {
            format!("unknown --format '{format}': use csv, ups-track, fedex-track, usps-track, dhl-track, easypost, shippo, aftership, 17track or shipengine")
        })?),
    };
    for f in &args.files {
        anyhow::ensure!(f.is_file(), "{} is not a file", f.display());
    }

    let mut s = settings.clone();
    s.listen = "127.0.0.1:0".into();
    let app = crate::app::RunningApp::start(s).await?;
    anyhow::ensure!(
        app.store().get_tenant(tenant).await?.is_some(),
        "no tenant {tenant}"
    );
    let mapping = MappingTable::builtin()?;
    let appender = app.appender();
    let mut ingest = Ingest::new(app.store(), &appender, &mapping, tenant, true);
    let outcome: anyhow::Result<()> = async {
        for file in &args.files {
            match (&csv_mapping, provider) {
                (Some(m), _) => import_csv(&mut ingest, file, m.clone(), &args).await?,
                (None, Some(p)) => {
                    let body = std::fs::read(file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let table = bitshipper_providers::ProviderTable::builtin(p)?;
                    ingest
                        .payload(p, &table, &body, None)
                        .await
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                }
                (None, None) => anyhow::bail!("no format chosen"),
            }
        }
        ingest.flush().await.map_err(|e| anyhow::anyhow!("{e}"))
    }
    .await;
    let summary = ingest.summary.clone();
    for e in &ingest.errors {
        eprintln!("rejected event: {}: {}", e.field, e.reason);
    }
    app.wait_applied(std::time::Duration::from_secs(3600)).await;
    app.stop().await?;
    outcome?;
    Ok(summary)
}

/// Counts bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

async fn import_csv(
    ingest: &mut Ingest<'_>,
    file: &Path,
    mapping: CsvMapping,
    args: &ImportArgs,
) -> anyhow::Result<()> {
    let handle =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let len = handle.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = bar(
        len,
        args.quiet,
        &file.file_name().unwrap_or_default().to_string_lossy(),
    );
    let reader = Counting {
        inner: std::io::BufReader::with_capacity(1 << 20, handle),
        bar: progress.clone(),
    };
    let rows =
        CsvRows::new(reader, mapping).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let before = ingest.rejected.len();
    ingest
        .csv(rows)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    progress.finish_and_clear();
    let rejected = &ingest.rejected[before..];
    if !rejected.is_empty() {
        let path = args.rejected.clone().unwrap_or_else(|| {
            let mut p = file.as_os_str().to_owned();
            p.push(".rejected.csv");
            PathBuf::from(p)
        });
        let mut out =
            csv::Writer::from_path(&path).with_context(|| format!("writing {}", path.display()))?;
        out.write_record(["line", "reason"])?;
        for r in rejected {
            out.write_record([r.line.to_string(), r.reason.clone()])?;
        }
        out.flush()?;
        eprintln!(
            "{}: {} row(s) rejected, listed in {}",
            file.display(),
            rejected.len(),
            path.display()
        );
    }
    Ok(())
}
