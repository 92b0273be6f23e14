//! `bitshipper demo`: the whole platform on a laptop in one command — a server with embedded
//! defaults, demo tenants, months of simulated history, and live events streaming in.

use crate::app::{shutdown_signal, RunningApp};
use crate::settings::Settings;
use crate::simulate::{backfill, live, Schedule, Sink};
use anyhow::Context;
use bitshipper_core::{MappingTable, TenantId};
use bitshipper_sim::{Simulation, TenantProfile};
use chrono::{Duration, Utc};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Data directory (created if missing; reused on the next run).
    #[arg(long, default_value = "demo-data")]
    pub data: PathBuf,
    /// Delete the data directory first and start over.
    #[arg(long)]
    pub reset: bool,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Days of history to generate on the first run.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Shipments per day for the first demo tenant (the second ships a third as many).
    #[arg(long, default_value_t = 150)]
    pub shipments_per_day: u32,
    /// Live events per second after the history is in.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Simulated seconds per real second in the lives of live shipments.
    #[arg(long, default_value_t = 720.0)]
    pub speed: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// What a previous run left, so the next one resumes instead of starting over.
#[derive(Debug, Serialize, Deserialize)]
struct DemoState {
    tenants: Vec<DemoTenant>,
    /// Set once the history is completely in.
    backfilled: bool,
    /// Delivery models were trained and put live.
    #[serde(default)]
    trained: bool,
    /// Live shipments started so far (their indexes continue on the next run).
    live_shipments: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct DemoTenant {
    id: TenantId,
    name: String,
    profile: String,
}

fn profiles() -> Vec<(&'static str, TenantProfile, f64)> {
    vec![
        ("outdoor", TenantProfile::outdoor(), 1.0),
        ("books", TenantProfile::books(), 1.0 / 3.0),
    ]
}

fn save(path: &Path, state: &DemoState) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(state)?)
        .with_context(|| format!("writing {}", path.display()))
}

pub async fn run(args: DemoArgs, mut settings: Settings) -> anyhow::Result<()> {
    // One listener for the whole run, installed first: a Ctrl-C that arrives between two
    // phases must not be lost.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    tokio::task::yield_now().await;
    if args.reset && args.data.exists() {
        std::fs::remove_dir_all(&args.data)
            .with_context(|| format!("removing {}", args.data.display()))?;
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let data = args.data.canonicalize()?;
    settings.database_url = format!("sqlite://{}/bitshipper.db", data.display());
    settings.listen = args.listen.clone();
    crate::telemetry::init(&crate::settings::LogSettings {
        level: "warn".into(),
        ..settings.log.clone()
    });
    let app = RunningApp::start(settings).await?;
    let base = format!("http://{}", args.listen.replace("0.0.0.0", "127.0.0.1"));
    let base = if args.listen.ends_with(":0") {
        format!("http://127.0.0.1:{}", app.port())
    } else {
        base
    };

    let state_path = data.join("demo.json");
    let mut state: DemoState = match std::fs::read(&state_path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).context("demo.json is unreadable; run with --reset")?
        }
        Err(_) => {
            println!(
                "Creating demo tenants. Their admin API keys are shown once (also saved in {}):",
                data.join("demo-keys.txt").display()
            );
            let mut tenants = Vec::new();
            let mut keys = String::from("# Demo API keys (admin scope). For the demo only.\n");
            for (code, profile, _) in profiles() {
                let (t, key) = crate::admin::create_tenant(app.store(), &profile.name).await?;
                println!("  {:<20} {}", t.name, key.secret);
                keys.push_str(&format!("{}\t{}\t{}\n", t.name, t.id, key.secret));
                tenants.push(DemoTenant {
                    id: t.id,
                    name: t.name,
                    profile: code.into(),
                });
            }
            write_private(&data.join("demo-keys.txt"), &keys)?;
            let state = DemoState {
                tenants,
                backfilled: false,
                trained: false,
                live_shipments: 0,
            };
            save(&state_path, &state)?;
            state
        }
    };
    let first_key = std::fs::read_to_string(data.join("demo-keys.txt"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| !l.starts_with('#'))
                .and_then(|l| l.split('\t').nth(2))
                .map(String::from)
        })
        .unwrap_or_else(|| "bsk_live_...".into());

    let mapping = Arc::new(MappingTable::builtin()?);
    let today = Utc::now().date_naive();
    let start = today - Duration::days(i64::from(args.days.max(1)) - 1);
    let mut runs = Vec::new();
    for (i, tenant) in state.tenants.iter().enumerate() {
        let (_, profile, share) = profiles()
            .into_iter()
            .find(|(c, _, _)| *c == tenant.profile)
            .context("unknown demo profile")?;
        let per_day = ((f64::from(args.shipments_per_day) * share).round() as u32).max(1);
        let sim = Simulation::new(args.seed + i as u64, profile, start, args.days, per_day)?;
        let sink = Sink::Store {
            store: app.store().clone(),
            appender: app.appender(),
            mapping: mapping.clone(),
            tenant: tenant.id,
        };
        runs.push((sim, sink));
    }

    let since = if state.backfilled {
        println!(
            "Resuming from {}: catching up on the last 14 days...",
            data.display()
        );
        Some(Utc::now() - Duration::days(14))
    } else {
        println!(
            "Backfilling {} days of history (Ctrl-C stops; the next run resumes)...",
            args.days
        );
        None
    };
    let started = std::time::Instant::now();
    let mut streams = Vec::new();
    for ((sim, sink), share) in runs.iter_mut().zip(profiles().iter().map(|p| p.2)) {
        let mut schedule = Schedule::default();
        let (s, e) = tokio::select! {
            r = backfill(sink, sim, Some(&mut schedule), since, true) => r?,
            _ = crate::simulate::stopped(stop.clone()) => { app.stop().await?; return Ok(()); }
        };
        if since.is_none() {
            println!(
                "  {}: {s} shipments, {e} events",
                sim.generator.profile().name
            );
        }
        streams.push((schedule, share));
    }
    if !state.backfilled {
        app.wait_applied(std::time::Duration::from_secs(600)).await;
        println!("History in after {:.0} s.", started.elapsed().as_secs_f64());
        state.backfilled = true;
        save(&state_path, &state)?;
    }

    if !state.trained {
        println!(
            "Training the delivery models on {} days of simulated history...",
            args.days.max(60)
        );
        crate::train::train_demo_models(app.store(), args.days.max(60), args.seed).await?;
        state.trained = true;
        save(&state_path, &state)?;
    }

    println!();
    println!("BitShipper demo is live at {base}");
    println!("  API page:    {base}/docs");
    println!("  OpenAPI:     {base}/openapi.json");
    println!("  Metrics:     {base}/metrics");
    println!("  Try:         curl -s -H 'Authorization: Bearer {first_key}' '{base}/v1/shipments?status=in_transit&limit=5'");
    println!("  Keys:        {}", data.join("demo-keys.txt").display());
    println!("Streaming about {} live events/s. Ctrl-C stops; `bitshipper demo` again resumes, --reset starts over.", args.rate);

    let first_index = 10_000_000 + state.live_shipments;
    let total_share: f64 = profiles().iter().map(|p| p.2).sum();
    let mut live_streams: Vec<_> = runs
        .iter()
        .zip(streams)
        .zip(&state.tenants)
        .map(|(((sim, _), (schedule, share)), tenant)| {
            let sink = Sink::Store {
                store: app.store().clone(),
                appender: app.appender(),
                mapping: mapping.clone(),
                tenant: tenant.id,
            };
            crate::simulate::LiveStream::new(
                sink,
                sim,
                schedule,
                args.rate * share / total_share,
                first_index,
            )
        })
        .collect();
    let sent = live(&mut live_streams, args.speed, stop.clone()).await?;
    tracing::info!(sent, "live stream stopped");
    state.live_shipments += live_streams
        .iter()
        .map(|s| s.next_index - first_index)
        .max()
        .unwrap_or(0);
    save(&state_path, &state)?;
    println!("stopping ({sent} live events sent)");
    app.stop().await
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
