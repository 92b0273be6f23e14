//! `bitshipper bench`: end-to-end measurements on this machine, each beside a baseline run in
//! the same invocation (a ratio survives a noisy machine; an absolute number does not).
//!
//! - `bench ingest`: batches of events through `POST /v1/events` to a durable `202` and on to
//!   applied shipment state, against a bare axum endpoint that only parses the same JSON.
//! - `bench read`: `GET /v1/shipments/{id}` at a given concurrency, against a bare axum endpoint
//!   that returns the same bytes.
//! - `bench parse`: provider payloads parsed into canonical events per second, per provider,
//!   against decoding the same bytes into a JSON tree alone.
//! - `bench lake`: the lake at 50M events (see `bench_lake.rs`).
//! - `bench import`: a CSV of simulated history through `bitshipper import` (durable and
//!   applied), against reading the same file's rows with the csv crate alone.

use crate::app::Application;
use crate::settings::Settings;
use anyhow::Context;
use axum::routing::{get, post};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchKind,
}

#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// Events/s through POST /v1/events to durable and to applied state.
    Ingest {
        /// Batches to send (each of --batch events).
        #[arg(long, default_value_t = 1000)]
        batches: usize,
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Database URL; default: a fresh SQLite file in a temporary directory.
        #[arg(long)]
        database_url: Option<String>,
        /// A model artifact (`bitshipper train --out FILE`) to put live first, so the
        /// processor also scores every shipment it changes.
        #[arg(long)]
        model: Option<std::path::PathBuf>,
    },
    /// The lake at scale: Delta write rows/s against plain Parquet, KPI API p50/p95 against
    /// /healthz, ten ad-hoc queries against DuckDB on the same files.
    Lake {
        /// Simulated events to write.
        #[arg(long, default_value_t = 50_000_000)]
        events: u64,
        /// Where to put the lake and the database (kept); default: a new temporary directory.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Runs of each ad-hoc query (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// KPI API requests to time.
        #[arg(long, default_value_t = 300)]
        kpi_requests: usize,
    },
    /// The simulator alone: generated events written as JSON lines per second.
    Sim {
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long, default_value_t = 2000)]
        shipments_per_day: u32,
    },
    /// Provider payloads parsed per second, per provider (the golden payloads).
    Parse {
        /// Folder of golden payloads (`<provider>/<case>.json`).
        #[arg(long, default_value = "crates/bitshipper-providers/tests/golden")]
        golden: std::path::PathBuf,
        /// Seconds per provider and per side.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
    /// CSV rows imported per second (generated from the simulator).
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Requests/s and latency of GET /v1/shipments/{id}.
    Read {
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long)]
        database_url: Option<String>,
    },
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.which {
        BenchKind::Ingest {
            batches,
            batch,
            concurrency,
            database_url,
            model,
        } => ingest(batches, batch, concurrency, database_url, model).await,
        BenchKind::Read {
            connections,
            seconds,
            database_url,
        } => read(connections, seconds, database_url).await,
        BenchKind::Sim {
            days,
            shipments_per_day,
        } => sim(days, shipments_per_day),
        BenchKind::Parse { golden, seconds } => parse(&golden, seconds),
        BenchKind::Lake {
            events,
            dir,
            runs,
            kpi_requests,
        } => crate::bench_lake::run(events, dir, runs, kpi_requests).await,
        BenchKind::Import { rows, database_url } => import(rows, database_url).await,
    }
}

/// Runs `f` repeatedly for about `seconds`; returns (iterations, elapsed seconds).
fn repeat(seconds: f64, mut f: impl FnMut()) -> (u64, f64) {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed().as_secs_f64() < seconds {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    (n, t.elapsed().as_secs_f64())
}

fn parse(golden: &std::path::Path, seconds: f64) -> anyhow::Result<()> {
    use bitshipper_providers::{Provider, ProviderTable};
    println!("bench parse: golden payloads of each provider, about {seconds} s per side");
    println!(
        "{:<12} {:>8} {:>14} {:>14} {:>16} {:>8}",
        "provider", "payloads", "payloads/s", "events/s", "JSON tree only/s", "ratio"
    );
    for p in Provider::ALL {
        let dir = golden.join(p.id());
        let mut bodies = Vec::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.to_string_lossy().ends_with(".json")
                && !path.to_string_lossy().ends_with(".expected.json")
            {
                bodies.push(std::fs::read(&path)?);
            }
        }
        anyhow::ensure!(!bodies.is_empty(), "no payloads in {}", dir.display());
        let table = ProviderTable::builtin(*p)?;
        let mut events = 0usize;
        let (n, secs) = repeat(seconds, || {
            for b in &bodies {
                events += bitshipper_providers::parse(*p, &table, b)
                    .map(|e| e.len())
                    .unwrap_or(0);
            }
        });
        let (m, base_secs) = repeat(seconds, || {
            for b in &bodies {
                let v: Result<Value, _> = serde_json::from_slice(b);
                std::hint::black_box(v.is_ok());
            }
        });
        let per_s = (n as f64 * bodies.len() as f64) / secs;
        let base_per_s = (m as f64 * bodies.len() as f64) / base_secs;
        println!(
            "{:<12} {:>8} {:>14.0} {:>14.0} {:>16.0} {:>7.2}x",
            p.id(),
            bodies.len(),
            per_s,
            events as f64 / secs,
            base_per_s,
            base_per_s / per_s
        );
    }
    Ok(())
}

async fn import(rows: u64, database_url: Option<String>) -> anyhow::Result<()> {
    use bitshipper_sim::{Simulation, TenantProfile};
    let dir = std::env::temp_dir().join(format!(
        "bitshipper-bench-import-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    let csv_path = dir.join("history.csv");
    // History from the simulator, written as a carrier export would be.
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).context("date")?;
    let sim = Simulation::new(7, TenantProfile::outdoor(), start, 365, 3000)?;
    let mut out = csv::Writer::from_path(&csv_path)?;
    out.write_record([
        "carrier",
        "tracking_number",
        "occurred_at",
        "code",
        "message",
        "city",
        "region",
        "country",
    ])?;
    let mut written = 0u64;
    'outer: for s in sim.shipments() {
        for (_, e) in &s.events {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            let loc = |k: &str| e["location"][k].as_str().unwrap_or_default().to_string();
            out.write_record([
                text("carrier"),
                text("tracking_number"),
                text("occurred_at"),
                text("raw_code"),
                text("message"),
                loc("city"),
                loc("region"),
                loc("country"),
            ])?;
            written += 1;
            if written >= rows {
                break 'outer;
            }
        }
    }
    out.flush()?;
    drop(out);
    let size = std::fs::metadata(&csv_path)?.len();
    println!(
        "bench import: {written} CSV rows ({:.0} MB) from the simulator",
        size as f64 / 1e6
    );

    // Baseline: the csv crate reading every row, nothing else.
    let t = Instant::now();
    let mut reader = csv::Reader::from_path(&csv_path)?;
    let mut n = 0u64;
    for r in reader.records() {
        std::hint::black_box(r?);
        n += 1;
    }
    let base = t.elapsed().as_secs_f64();
    println!(
        "  csv crate alone:     {n} rows in {base:.2} s = {:.0} rows/s",
        n as f64 / base
    );

    let url = database_url.unwrap_or_else(|| format!("sqlite://{}/state.db", dir.display()));
    let mut settings = Settings::load(None)?;
    settings.database_url = url;
    settings.security.key_file = Some(dir.join("kek.json").display().to_string());
    let store = bitshipper_store::Store::connect(&settings.database_url)
        .await?
        .with_key_provider(settings.key_provider()?);
    store.migrate().await?;
    let (tenant, _) = crate::admin::create_tenant(&store, "Bench import").await?;
    store.close().await;
    let mapping_path = dir.join("mapping.toml");
    std::fs::write(
        &mapping_path,
        "[columns]\ncarrier = \"carrier\"\ntracking_number = \"tracking_number\"\noccurred_at = \"occurred_at\"\nraw_code = \"code\"\nmessage = \"message\"\ncity = \"city\"\nregion = \"region\"\ncountry = \"country\"\n",
    )?;
    let t = Instant::now();
    let summary = crate::import::run(
        crate::import::ImportArgs {
            tenant: tenant.id.to_string(),
            format: "csv".into(),
            mapping: Some(mapping_path),
            rejected: None,
            quiet: true,
            files: vec![csv_path],
        },
        &settings,
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  bitshipper import:   {} rows ({} events, {} rejected) durable and applied in {secs:.2} s = {:.0} rows/s ({:.1}x the csv crate's time)",
        summary.rows,
        summary.events,
        summary.rejected,
        summary.rows as f64 / secs,
        secs / base
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

struct Started {
    base: String,
    key: String,
    app: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    /// Whether this process applies events (not with BITSHIPPER_ROLES='["api"]').
    processor: bool,
}

async fn start(database_url: Option<String>, model: Option<&[u8]>) -> anyhow::Result<Started> {
    let url = match database_url {
        Some(u) => u,
        None => {
            let dir = std::env::temp_dir().join(format!(
                "bitshipper-bench-{}",
                uuid::Uuid::new_v4().simple()
            ));
            format!("sqlite://{}/state.db", dir.display())
        }
    };
    // BITSHIPPER_* settings apply (e.g. BITSHIPPER_PIPELINE__PROCESSOR_BATCH_SIZE); the address
    // and database are the bench's own.
    let mut settings = Settings::load(None)?;
    settings.listen = "127.0.0.1:0".into();
    settings.database_url = url;
    // The bench is the only client; a per-key limit would measure the limiter.
    settings.limits.requests_per_second_per_key = 0;
    // Ingest figures stay comparable with earlier runs: the lake writer has its own bench
    // (`bench lake`).
    settings.lake.enabled = false;
    let processor = settings.roles.contains(&crate::settings::Role::Processor);
    if let Some(artifact) = model {
        // Registered before the application starts, so its scorer loads it at once.
        bitshipper_ml::model::Models::from_json(artifact)?;
        let store = bitshipper_store::Store::connect(&settings.database_url).await?;
        store.migrate().await?;
        store
            .register_model(&bitshipper_store::NewModel {
                version: "bench".into(),
                tenant_id: None,
                trained_from: None,
                trained_to: None,
                metrics: json!({}),
                feature_schema: Vec::new(),
                artifact,
            })
            .await?;
        store.promote_model("bench").await?;
    }
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    let (_, key) = crate::admin::create_tenant(&store, "bench").await?;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let app = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Started {
        base,
        key: key.secret,
        app,
        stop,
        processor,
    })
}

/// A realistic ~500-byte event.
fn bench_event(i: usize) -> Value {
    let codes = ["M", "P", "I", "W", "O", "D"];
    json!({
        "carrier": "ups",
        "tracking_number": format!("1ZBENCH{:08}", i / 6),
        "occurred_at": format!("2026-11-{:02}T{:02}:{:02}:00-05:00", 10 + (i % 6), i % 24, i % 60),
        "raw_code": codes[i % 6],
        "reason": "arrived_at_facility",
        "message": "Arrived at Facility — package scanned on inbound trailer at the regional hub; sort in progress, next scan expected at departure from the outbound door (lane LOU-ATL, trailer 4471)",
        "event_id": format!("bench-{i:012}"),
        "location": {"city": "Louisville", "region": "KY", "country": "US", "postal_code": "40213", "lat": 38.17, "lon": -85.73}
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct LoadResult {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
}

/// Runs `clients` workers until `next_request` returns `None`, timing every request; a request
/// resolves to whether it succeeded.
async fn drive<F, Fut>(clients: usize, next_request: F) -> LoadResult
where
    F: Fn() -> Option<Fut> + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let next_request = Arc::new(next_request);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let next_request = next_request.clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0);
            while let Some(request) = next_request() {
                let t = Instant::now();
                if request.await {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for t in tasks {
        if let Ok((l, e)) = t.await {
            latencies.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    LoadResult {
        requests: latencies.len(),
        elapsed,
        latencies,
        errors,
    }
}

async fn succeeded(r: reqwest::Result<reqwest::Response>) -> bool {
    match r {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

/// Sends each body once, `concurrency` at a time.
async fn post_all(
    url: String,
    key: String,
    bodies: Arc<Vec<String>>,
    concurrency: usize,
) -> LoadResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap_or_default();
    let next = AtomicUsize::new(0);
    drive(concurrency, move || {
        let body = bodies.get(next.fetch_add(1, Ordering::Relaxed))?.clone();
        let request = client
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
            .send();
        Some(async move { succeeded(request.await).await })
    })
    .await
}

/// GETs `url` from `connections` clients for `seconds`.
async fn get_for(url: String, key: String, connections: usize, seconds: u64) -> LoadResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    drive(connections, move || {
        if Instant::now() >= deadline {
            return None;
        }
        let request = client.get(&url).bearer_auth(&key).send();
        Some(async move { succeeded(request.await).await })
    })
    .await
}

async fn bare_server(
    router: axum::Router,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((format!("http://{addr}"), task))
}

async fn ingest(
    batches: usize,
    batch: usize,
    concurrency: usize,
    database_url: Option<String>,
    model: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let model = model
        .map(|path| std::fs::read(&path).with_context(|| format!("reading {}", path.display())))
        .transpose()?;
    let bodies: Vec<String> = (0..batches)
        .map(|b| {
            let events: Vec<Value> = (0..batch).map(|i| bench_event(b * batch + i)).collect();
            json!({ "events": events }).to_string()
        })
        .collect();
    let event_bytes = bench_event(0).to_string().len();
    let total_events = batches * batch;
    let bodies = Arc::new(bodies);
    println!("bench ingest: {batches} batches x {batch} events (~{event_bytes} B each), {concurrency} concurrent clients");

    // Baseline: a bare axum endpoint that parses the same JSON and does nothing.
    let bare = axum::Router::new().route(
        "/v1/events",
        post(|body: axum::body::Bytes| async move {
            let parsed: Result<Value, _> = serde_json::from_slice(&body);
            let n = parsed
                .ok()
                .and_then(|v| v["events"].as_array().map(Vec::len))
                .unwrap_or(0);
            (
                axum::http::StatusCode::ACCEPTED,
                format!("{{\"accepted\":{n}}}"),
            )
        }),
    );
    let (bare_base, bare_task) = bare_server(bare).await?;
    let baseline = post_all(
        format!("{bare_base}/v1/events"),
        String::new(),
        bodies.clone(),
        concurrency,
    )
    .await;
    bare_task.abort();

    let s = start(database_url, model.as_deref()).await?;
    let progress_start = Instant::now();
    let result = post_all(
        format!("{}/v1/events", s.base),
        s.key.clone(),
        bodies,
        concurrency,
    )
    .await;
    let acked = result.elapsed;
    // Wait for the processor to apply everything.
    let client = reqwest::Client::new();
    let at_ack: Value = client
        .get(format!("{}/readyz", s.base))
        .send()
        .await?
        .json()
        .await?;
    let backlog = total_events as i64 - at_ack["applied_position"].as_i64().unwrap_or(0);
    let applied_at = loop {
        if !s.processor {
            break Duration::MAX;
        }
        let ready: Value = client
            .get(format!("{}/readyz", s.base))
            .send()
            .await?
            .json()
            .await?;
        if ready["log_lag"] == 0 && ready["applied_position"].as_i64() >= Some(total_events as i64)
        {
            break progress_start.elapsed();
        }
        if progress_start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("processor did not catch up within 10 minutes: {ready}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let metrics = client
        .get(format!("{}/metrics", s.base))
        .send()
        .await?
        .text()
        .await?;
    let metric = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (batch_sum, batch_count) = (
        metric("bitshipper_processor_batch_seconds_sum"),
        metric("bitshipper_processor_batch_seconds_count"),
    );
    let (commit_sum, commit_count) = (
        metric("bitshipper_log_commit_seconds_sum"),
        metric("bitshipper_log_commit_seconds_count"),
    );
    let (scored, scoring_sum, scoring_count) = (
        metric("bitshipper_predictions_total"),
        metric("bitshipper_scoring_batch_seconds_sum"),
        metric("bitshipper_scoring_batch_seconds_count"),
    );
    let _ = s.stop.send(());
    let _ = s.app.await;
    if scored > 0.0 {
        println!(
            "scoring in the processor: {scored:.0} predictions in {scoring_count:.0} batches, {:.1} ms per batch ({:.1} µs per prediction, store reads and writes included)",
            scoring_sum / scoring_count.max(1.0) * 1000.0,
            scoring_sum / scored * 1e6
        );
    }

    let eps = |r: &LoadResult| (r.requests * batch) as f64 / r.elapsed.as_secs_f64();
    println!();
    println!("| run | events/s | batches/s | p50 | p99 | errors |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| bare axum, parse only | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {} |",
        eps(&baseline),
        baseline.requests as f64 / baseline.elapsed.as_secs_f64(),
        percentile(&baseline.latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&baseline.latencies, 0.99).as_secs_f64() * 1e3,
        baseline.errors
    );
    println!(
        "| BitShipper, durable 202 | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {} |",
        eps(&result),
        result.requests as f64 / acked.as_secs_f64(),
        percentile(&result.latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&result.latencies, 0.99).as_secs_f64() * 1e3,
        result.errors
    );
    println!(
        "| BitShipper, applied to state | {:.0} | | | | |",
        total_events as f64 / applied_at.as_secs_f64()
    );
    println!();
    println!("ratio durable/bare: {:.3}", eps(&result) / eps(&baseline));
    let drain = applied_at
        .saturating_sub(acked)
        .min(Duration::from_secs(1_000_000));
    println!(
        "processor alone (after ingest ended): {backlog} events in {:.2} s = {:.0} events/s",
        drain.as_secs_f64(),
        backlog as f64 / drain.as_secs_f64().max(1e-9)
    );
    println!(
        "log commits: {commit_count:.0}, mean {:.2} ms, {:.0} events each; processor batches: {batch_count:.0}, mean {:.2} ms",
        commit_sum / commit_count.max(1.0) * 1e3,
        total_events as f64 / commit_count.max(1.0),
        batch_sum / batch_count.max(1.0) * 1e3
    );
    Ok(())
}

async fn read(
    connections: usize,
    seconds: u64,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let s = start(database_url, None).await?;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/v1/shipments", s.base))
        .bearer_auth(&s.key)
        .json(&json!({"carrier":"ups","tracking_number":"1ZREADBENCH","service_level":"ground","reference":"PO-1",
                      "recipient":{"name":"Ada","email":"ada@example.com"},"metadata":{"warehouse":"east"}}))
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"]
        .as_str()
        .context("created shipment has an id")?
        .to_string();
    let body = client
        .get(format!("{}/v1/shipments/{id}", s.base))
        .bearer_auth(&s.key)
        .send()
        .await?
        .text()
        .await?;
    println!(
        "bench read: GET /v1/shipments/{{id}}, {connections} connections, {seconds} s each run"
    );

    let bare = axum::Router::new().route(
        "/v1/shipments/{id}",
        get(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    );
    let (bare_base, bare_task) = bare_server(bare).await?;
    let baseline = get_for(
        format!("{bare_base}/v1/shipments/{id}"),
        String::new(),
        connections,
        seconds,
    )
    .await;
    bare_task.abort();
    let result = get_for(
        format!("{}/v1/shipments/{id}", s.base),
        s.key.clone(),
        connections,
        seconds,
    )
    .await;
    let _ = s.stop.send(());
    let _ = s.app.await;

    let rps = |r: &LoadResult| r.requests as f64 / r.elapsed.as_secs_f64();
    println!();
    println!("| run | requests/s | p50 | p99 | errors |");
    println!("|---|---|---|---|---|");
    for (name, r) in [
        ("bare axum, same bytes", &baseline),
        ("BitShipper GET shipment", &result),
    ] {
        println!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} |",
            rps(r),
            percentile(&r.latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&r.latencies, 0.99).as_secs_f64() * 1e3,
            r.errors
        );
    }
    println!();
    println!(
        "ratio BitShipper/bare: {:.3}",
        rps(&result) / rps(&baseline)
    );
    Ok(())
}

/// Generator + JSONL writer against writing the same, already generated shipments (the
/// serialization floor), to a sink that discards the bytes.
fn sim(days: u32, per_day: u32) -> anyhow::Result<()> {
    use bitshipper_sim::{write_jsonl, Simulation, TenantProfile};
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).context("date")?;
    let sim = Simulation::new(1, TenantProfile::outdoor(), start, days, per_day)?;
    let cutoff = chrono::Utc::now() + chrono::Duration::days(3650);
    println!(
        "bench sim: {days} days x ~{per_day} shipments/day, JSON lines to a discarding writer"
    );

    let t = Instant::now();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::sink());
    let mut events = 0u64;
    let mut bytes = 0u64;
    for s in sim.shipments() {
        events += write_jsonl(&mut out, "bench", &s, cutoff)?;
    }
    let generate_and_write = t.elapsed();

    let all: Vec<_> = sim.shipments().collect();
    let t = Instant::now();
    let mut counter = CountingSink::default();
    for s in &all {
        write_jsonl(&mut counter, "bench", s, cutoff)?;
    }
    let write_only = t.elapsed();
    bytes += counter.0;

    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!();
    println!("| run | events/s | MB/s |");
    println!("|---|---|---|");
    println!(
        "| serialize already-generated events (floor) | {:.0} | {:.0} |",
        rate(write_only),
        bytes as f64 / write_only.as_secs_f64() / 1e6
    );
    println!(
        "| generate + serialize | {:.0} | {:.0} |",
        rate(generate_and_write),
        bytes as f64 / generate_and_write.as_secs_f64() / 1e6
    );
    println!();
    println!(
        "{events} events, {} shipments; ratio generate+write / write-only: {:.3}",
        all.len(),
        rate(generate_and_write) / rate(write_only)
    );
    Ok(())
}

#[derive(Default)]
struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
