//! `bitshipper train`: the delivery models from a tenant's delivered history (or, for
//! development and the documented numbers, from simulated history), with the evaluation report
//! beside the carrier-promise and lane-history baselines.

use anyhow::Context;
use bitshipper_core::TenantId;
use bitshipper_ml::features::ShipmentRecord;
use bitshipper_ml::train::{train_and_evaluate, Report, TrainConfig};
use bitshipper_store::{ShipmentFilter, Store};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Train on this tenant's delivered shipments.
    #[arg(long, conflicts_with = "sim_days")]
    pub tenant: Option<String>,
    /// Train on this many days of simulated history instead.
    #[arg(long)]
    pub sim_days: Option<u32>,
    /// Simulated shipments per day.
    #[arg(long, default_value_t = 600)]
    pub sim_per_day: u32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Most boosting rounds per model (each stops earlier when its validation loss does).
    #[arg(long, default_value_t = 400)]
    pub rounds: usize,
    /// Shrinkage of each tree's output (higher: fewer trees, faster scoring).
    #[arg(long, default_value_t = 0.25)]
    pub learning_rate: f64,
    /// Where the trained models are written (JSON; what `serve` loads with `--model`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write each split's examples as CSV into this directory (train, calibration,
    /// test), for `scripts/compare-lightgbm`.
    #[arg(long)]
    pub export_features: Option<PathBuf>,
    /// Where the report (JSON) is written.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Simulated history as records, with a progress bar.
fn simulated(days: u32, per_day: u32, seed: u64) -> anyhow::Result<Vec<ShipmentRecord>> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos}/{len} shipments ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("simulating");
    let records = bitshipper_ml::history::simulated(days, per_day, seed, &|i, total| {
        if i % 1024 == 1 {
            bar.set_length(total);
            bar.set_position(i);
        }
    })?;
    bar.finish_and_clear();
    Ok(records)
}

/// A tenant's shipments with their events, page by page.
async fn from_store(store: &Store, tenant: TenantId) -> anyhow::Result<Vec<ShipmentRecord>> {
    let bar = spinner("reading delivered shipments");
    let mut records = Vec::new();
    let mut filter = ShipmentFilter {
        limit: 500,
        ..Default::default()
    };
    loop {
        let page = store.list_shipments(tenant, &filter).await?;
        let Some(last) = page.last().map(|s| s.id) else {
            break;
        };
        for s in page {
            let events = store
                .list_events(tenant, s.id)
                .await?
                .into_iter()
                .map(|e| e.event)
                .collect();
            records.push(ShipmentRecord {
                details: s.details,
                events,
            });
        }
        bar.set_message(format!("reading shipments: {}", records.len()));
        filter.after = Some(last);
    }
    bar.finish_and_clear();
    Ok(records)
}

fn print(report: &Report) {
    let row = |name: &str, s: &bitshipper_ml::train::Scores| {
        println!(
            "  {name:<22} {:>7.3} {:>7.3} {:>8.3} {:>6.3} {:>9.3} {:>7.3} {:>10.1} {:>9.1}%",
            s.auc,
            s.brier,
            s.log_loss,
            s.calibration_error,
            s.late_precision,
            s.late_recall,
            s.eta_mae_hours,
            s.p10_p90_coverage * 100.0
        )
    };
    println!(
        "shipments {} · examples: train {} · calibration {} · test {} (shipped from {})",
        report.shipments,
        report.train_examples,
        report.calibration_examples,
        report.test_examples,
        report.test_from
    );
    println!(
        "  {:<22} {:>7} {:>7} {:>8} {:>6} {:>9} {:>7} {:>10} {:>10}",
        "", "AUC", "Brier", "logloss", "ECE", "late prec", "recall", "ETA MAE h", "p10-p90"
    );
    row("model", &report.model);
    row("carrier promise", &report.promise_baseline);
    row("lane history", &report.lane_baseline);
    for (carrier, s) in &report.by_carrier {
        row(&format!("model, {carrier}"), s);
    }
    println!(
        "  interval widened by {:.1} h on each side (conformal, 80% target)",
        report.interval_widening_hours
    );
    let stages: Vec<String> = report
        .stage_seconds
        .iter()
        .map(|(k, v)| format!("{k} {v:.1} s"))
        .collect();
    println!("  time: {}", stages.join(" · "));
    let trees: Vec<String> = report
        .trees
        .iter()
        .map(|(k, (t, n))| format!("{k} {t} ({n} nodes)"))
        .collect();
    println!("  trees: {}", trees.join(" · "));
}

pub async fn run(args: TrainArgs, settings: &crate::settings::Settings) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let records = match (&args.tenant, args.sim_days) {
        (Some(t), _) => {
            let tenant: TenantId = t
                .parse()
                .map_err(|_| anyhow::anyhow!("--tenant must be a tenant id (a UUID)"))?;
            let store = Store::connect(&settings.database_url)
                .await?
                .with_key_provider(settings.key_provider()?);
            store.migrate().await?;
            from_store(&store, tenant).await?
        }
        (None, Some(days)) => simulated(days, args.sim_per_day, args.seed)?,
        (None, None) => anyhow::bail!("give --tenant ID, or --sim-days N for simulated history"),
    };
    let cfg = TrainConfig {
        seed: args.seed,
        rounds: args.rounds,
        learning_rate: args.learning_rate,
        export_dir: args.export_features.clone(),
        ..TrainConfig::default()
    };
    let bar = spinner(&format!("training on {} shipments", records.len()));
    let (models, report) = train_and_evaluate(&records, &cfg, &|stage| {
        bar.set_message(format!("{} shipments: {stage}", records.len()))
    })?;
    bar.finish_and_clear();
    print(&report);
    if let Some(path) = &args.out {
        std::fs::write(path, models.to_json()?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("models written to {}", path.display());
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("report written to {}", path.display());
    }
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
