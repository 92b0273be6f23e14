//! `bitshipper train`: the delivery models from a tenant's delivered history (or, for
//! development and the documented numbers, from simulated history), with the evaluation report
//! beside the carrier-promise and lane-history baselines.

use anyhow::Context;
use bitshipper_core::TenantId;
use bitshipper_ml::features::ShipmentRecord;
use bitshipper_ml::train::{train_and_evaluate, Report, TrainConfig};
use bitshipper_store::Store;
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
    #[arg(long, default_value_t = 0.35)]
    pub learning_rate: f64,
    /// Where the trained models are written (JSON; what `serve` loads with `--model`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write each split's examples as CSV into this directory (train, calibration,
    /// test), for `scripts/compare-lightgbm`.
    #[arg(long)]
    pub export_features: Option<PathBuf>,
    /// Register the trained models in the store's registry (as a candidate).
    #[arg(long)]
    pub register: bool,
    /// After registering: `auto` puts the new models live only if they beat the live ones on
    /// the same holdout (late-risk AUC and p50 error both better); `always`; `never`.
    #[arg(long, default_value = "auto", requires = "register")]
    pub promote: Promote,
    /// Where the report (JSON) is written.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Promote {
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Registered models, newest first, with their status and headline metrics.
    List,
    /// Put a model live in its scope (the one it replaces is retired); running servers pick
    /// it up within predictions.refresh_seconds.
    Promote { version: String },
}

pub async fn models(command: ModelsCommand, store: &Store) -> anyhow::Result<()> {
    match command {
        ModelsCommand::List => {
            let list = store.list_models().await?;
            if list.is_empty() {
                println!("no models registered; train one with `bitshipper train --register`");
            }
            for m in list {
                let metric = |k: &str| m.metrics["model"][k].as_f64().unwrap_or(f64::NAN);
                println!(
                    "{}  {:<9}  {:<36}  AUC {:.3}  p50 MAE {:.1} h  window {:.1}%  trained {}",
                    m.version,
                    m.status,
                    m.tenant_id.map_or("shared".to_string(), |t| t.to_string()),
                    metric("auc"),
                    metric("eta_mae_hours"),
                    metric("p10_p90_coverage") * 100.0,
                    m.created_at.format("%Y-%m-%d %H:%M"),
                );
            }
        }
        ModelsCommand::Promote { version } => {
            if !store.promote_model(&version).await? {
                anyhow::bail!("no model {version}; `bitshipper models list` shows them");
            }
            println!("{version} is live");
        }
    }
    Ok(())
}

/// Registers the models and, as `promote` says, puts them live; returns the version.
async fn register(
    store: &Store,
    tenant: Option<TenantId>,
    models: &bitshipper_ml::model::Models,
    report: &Report,
    records: &[ShipmentRecord],
    cfg: &TrainConfig,
    promote: Promote,
) -> anyhow::Result<String> {
    let version = format!(
        "m{}-{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let artifact = models.to_json()?;
    store
        .register_model(&bitshipper_store::NewModel {
            version: version.clone(),
            tenant_id: tenant,
            trained_from: Some(report.trained_from),
            trained_to: Some(report.trained_to),
            metrics: serde_json::to_value(report)?,
            feature_schema: models.feature_names.clone(),
            artifact: &artifact,
        })
        .await?;
    println!("registered {version} ({} KiB)", artifact.len() / 1024);
    let live = store.live_models().await?.get(&tenant).cloned();
    let go = match (promote, &live) {
        (Promote::Never, _) => false,
        (Promote::Always, _) | (Promote::Auto, None) => true,
        (Promote::Auto, Some(champion)) => {
            let loaded = store
                .load_model(champion)
                .await?
                .map(|(_, bytes)| bitshipper_ml::model::Models::from_json(&bytes));
            match loaded {
                Some(Ok(champion_models)) => {
                    let theirs =
                        bitshipper_ml::train::evaluate_on_holdout(&champion_models, records, cfg)?;
                    let ours = &report.model;
                    println!(
                        "champion {champion} on the same holdout: AUC {:.3} (new {:.3}), p50 MAE {:.1} h (new {:.1} h)",
                        theirs.auc, ours.auc, theirs.eta_mae_hours, ours.eta_mae_hours
                    );
                    ours.auc > theirs.auc && ours.eta_mae_hours < theirs.eta_mae_hours
                }
                // A champion that cannot be read (an older feature list) is replaced.
                _ => true,
            }
        }
    };
    if go {
        store.promote_model(&version).await?;
        println!("{version} is live");
    } else {
        println!(
            "{version} stays a candidate (`bitshipper models promote {version}` to put it live)"
        );
    }
    Ok(version)
}

/// The demo's models: trained on simulated history like the demo's own, registered as the
/// shared model and put live (the running scorer picks them up and scores what is in transit).
pub async fn train_demo_models(store: &Store, days: u32, seed: u64) -> anyhow::Result<()> {
    let cfg = TrainConfig {
        seed,
        ..TrainConfig::default()
    };
    let (records, models, report) = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || -> anyhow::Result<_> {
            let records = bitshipper_ml::history::simulated(days, 200, seed, &|_, _| ())?;
            let (models, report) = train_and_evaluate(&records, &cfg, &|_| ())?;
            Ok((records, models, report))
        }
    })
    .await??;
    println!(
        "  late-risk AUC {:.3} · p50 error {:.1} h · window held {:.1}% (carrier promise: AUC {:.3}, {:.1} h)",
        report.model.auc,
        report.model.eta_mae_hours,
        report.model.p10_p90_coverage * 100.0,
        report.promise_baseline.auc,
        report.promise_baseline.eta_mae_hours
    );
    register(
        store,
        None,
        &models,
        &report,
        &records,
        &cfg,
        Promote::Always,
    )
    .await?;
    Ok(())
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

/// A tenant's shipments with their events, a page at a time (two queries per page; no
/// personal data is opened).
async fn from_store(store: &Store, tenant: TenantId) -> anyhow::Result<Vec<ShipmentRecord>> {
    let bar = spinner("reading the tenant's shipments");
    let mut records = Vec::new();
    let mut after = None;
    loop {
        let ids = store.shipment_ids(tenant, after, 1_000).await?;
        let Some(last) = ids.last().copied() else {
            break;
        };
        records.extend(
            store
                .scoring_inputs(tenant, &ids)
                .await?
                .into_iter()
                .map(|s| ShipmentRecord {
                    details: s.details,
                    events: s.events,
                }),
        );
        bar.set_message(format!("reading the tenant's shipments: {}", records.len()));
        after = Some(last);
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
    let tenant: Option<TenantId> = args
        .tenant
        .as_deref()
        .map(|t| {
            t.parse()
                .map_err(|_| anyhow::anyhow!("--tenant must be a tenant id (a UUID)"))
        })
        .transpose()?;
    let store = if tenant.is_some() || args.register {
        Some(crate::cli::store(settings).await?)
    } else {
        None
    };
    let records = match (tenant, args.sim_days, &store) {
        (Some(tenant), _, Some(store)) => from_store(store, tenant).await?,
        (None, Some(days), _) => simulated(days, args.sim_per_day, args.seed)?,
        _ => anyhow::bail!("give --tenant ID, or --sim-days N for simulated history"),
    };
    println!(
        "{} shipments read in {:.1} s",
        records.len(),
        started.elapsed().as_secs_f64()
    );
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
    if let (true, Some(store)) = (args.register, &store) {
        register(
            store,
            tenant,
            &models,
            &report,
            &records,
            &cfg,
            args.promote,
        )
        .await?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("report written to {}", path.display());
    }
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
