//! `bitshipper bench lake`: the lake at scale, each figure beside a baseline from the same run.
//!
//! 1. Simulated events (default 50M) and their shipments are written to the lake's Delta tables
//!    in the lake writer's batches: rows/s, against writing the same Arrow batches as plain
//!    Parquet files (no Delta log, no sealing).
//! 2. The shipments' KPI contributions are loaded into the rollups, then `GET
//!    /v1/analytics/kpis` is timed over a mix of groupings and ranges (p50/p95), against
//!    `GET /healthz` on the same server (the HTTP floor).
//!    Both tables are compacted first, as the writer's scheduled maintenance would.
//! 3. Ten ad-hoc SQL queries run in BitShipper's warehouse and in DuckDB over the same Parquet
//!    files (`scripts/bench_duckdb.py`), median of `--runs`; and in plain DataFusion
//!    (`scripts/bench_datafusion.py`) when its Python package is installed.
//!
//! Steps 1 and 2's loading are kept in `--dir` (`bench.json`): a later run with the same
//! directory reuses them and times only the KPI API and the queries.

use crate::app::RunningApp;
use crate::settings::{Role, Settings};
use anyhow::Context;
use bitshipper_core::{EventInput, MappingTable, NewShipment, ShipmentId, ShipmentInput};
use bitshipper_lake::rows::{self, ParsedEntry, EVENTS, SHIPMENTS};
use bitshipper_lake::{LakeLocation, LakeTable, Warehouse};
use bitshipper_sim::{Simulation, TenantProfile};
use bitshipper_store::rollups::{contribution, event_flags, RollupDeltas, ShipmentFacts};
use bitshipper_store::{LakeShipment, KPI_COMMIT_OVERLAP};
use chrono::{NaiveDate, Utc};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EVENT_BATCH: usize = 200_000;
const SHIPMENT_BATCH: usize = 100_000;
const SIM_DAYS: u32 = 365;

/// The ten ad-hoc queries, in SQL both engines accept (over the views `events`, `shipments`).
pub const QUERIES: [(&str, &str); 10] = [
    ("count events", "SELECT COUNT(*) FROM events"),
    ("events by status", "SELECT status, COUNT(*) AS n FROM events GROUP BY status ORDER BY n DESC"),
    ("distinct parcels by carrier", "SELECT carrier, COUNT(DISTINCT tracking_number) AS n FROM events GROUP BY carrier ORDER BY carrier"),
    ("events per day, last 90 days", "SELECT event_date, COUNT(*) AS n FROM events WHERE event_date >= DATE '2026-08-01' GROUP BY event_date ORDER BY event_date"),
    ("exceptions by region, top 10", "SELECT region, COUNT(*) AS n FROM events WHERE status = 'exception' GROUP BY region ORDER BY n DESC, region LIMIT 10"),
    ("mean events per shipment by carrier", "SELECT carrier, AVG(events_count) AS a FROM shipments GROUP BY carrier ORDER BY carrier"),
    ("busiest lanes, delivered share", "SELECT lane, COUNT(*) AS n, AVG(CASE WHEN delivered_at IS NOT NULL THEN 1.0 ELSE 0.0 END) AS d FROM shipments GROUP BY lane ORDER BY n DESC, lane LIMIT 20"),
    ("mean transit hours by service", "SELECT service_level, AVG((date_part('epoch', delivered_at) - date_part('epoch', first_scan_at)) / 3600.0) AS h FROM shipments WHERE delivered_at IS NOT NULL GROUP BY service_level ORDER BY service_level"),
    ("failed attempts by carrier (join)", "SELECT s.carrier, COUNT(*) AS n FROM shipments s JOIN events e ON e.carrier = s.carrier AND e.tracking_number = s.tracking_number WHERE e.status = 'failed_attempt' GROUP BY s.carrier ORDER BY s.carrier"),
    ("most-scanned parcels", "SELECT tracking_number, COUNT(*) AS n FROM events GROUP BY tracking_number ORDER BY n DESC, tracking_number LIMIT 10"),
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    percentile(&d, 0.5)
}

struct Written {
    rows: u64,
    delta: Duration,
    parquet: Duration,
}

/// Writes `batch` to the Delta table (timed) and as a plain Parquet file (timed: the baseline).
async fn write_both(
    table: &mut LakeTable,
    batch: bitshipper_lake::arrow::record_batch::RecordBatch,
    version: i64,
    baseline_dir: &Path,
    totals: &mut Written,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let file =
        std::fs::File::create(baseline_dir.join(format!("{}-{version}.parquet", table.spec.name)))?;
    let mut w = bitshipper_lake::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
    w.write(&batch)?;
    w.close()?;
    totals.parquet += started.elapsed();
    let started = Instant::now();
    totals.rows += batch.num_rows() as u64;
    table.append(batch, "bitshipper.bench", version).await?;
    totals.delta += started.elapsed();
    Ok(())
}

pub async fn run(
    events_target: u64,
    dir: Option<PathBuf>,
    runs: usize,
    kpi_requests: usize,
) -> anyhow::Result<()> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "bitshipper-bench-lake-{}",
            uuid::Uuid::new_v4().simple()
        )),
    };
    std::fs::create_dir_all(&dir)?;
    let lake_dir = dir.join("lake");
    let baseline_dir = dir.join("plain-parquet");
    std::fs::create_dir_all(&baseline_dir)?;
    let mut settings = Settings::load(None)?;
    settings.listen = "127.0.0.1:0".into();
    settings.database_url = format!("sqlite://{}/bench.db", dir.display());
    settings.security.key_file = Some(dir.join("kek.json").display().to_string());
    settings.limits.requests_per_second_per_key = 0;
    settings.lake.location = Some(lake_dir.display().to_string());
    settings.roles = vec![Role::Api];
    let app = RunningApp::start(settings).await?;
    let store = app.store().clone();
    let prepared_file = dir.join("bench.json");
    let prepared: Prepared = if prepared_file.exists() {
        println!(
            "(reusing the lake, rollups and tenant in {})",
            dir.display()
        );
        serde_json::from_slice(&std::fs::read(&prepared_file)?)?
    } else {
        let prepared = prepare(&store, &lake_dir, &baseline_dir, events_target).await?;
        std::fs::write(&prepared_file, serde_json::to_vec(&prepared)?)?;
        prepared
    };
    print!("{}", prepared.report);
    let tenant_id = bitshipper_core::TenantId(prepared.tenant_id);
    let location = LakeLocation::parse(&lake_dir.display().to_string())?;

    // KPI API, rollups, over HTTP.
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", app.port());
    let groupings = ["all", "carrier", "service", "lane", "day", "week"];
    let ranges = [
        ("2026-10-03", "2026-10-30"),
        ("2026-08-01", "2026-10-30"),
        ("2025-11-01", "2026-10-30"),
    ];
    // The first request loads the tenant's rollups into the API's memory; rows stamped within
    // the commit overlap of a refresh are re-read by the next, so a bulk load just made is
    // waited out (as a server's steady state would have it) before timing.
    let settled = prepared.rollups_loaded_at + chrono::Duration::from_std(KPI_COMMIT_OVERLAP)?;
    if let Ok(wait) = (settled - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let timed_kpis = |url: String| {
        let request = client.get(&url).bearer_auth(&prepared.api_key);
        async move {
            let started = Instant::now();
            let r = request.send().await?;
            anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
            r.bytes().await?;
            anyhow::Ok(started.elapsed())
        }
    };
    let first = timed_kpis(format!("{base}/v1/analytics/kpis?group_by=all")).await?;
    let mut kpi = Vec::with_capacity(kpi_requests);
    let mut floor = Vec::with_capacity(kpi_requests);
    for i in 0..kpi_requests {
        let (from, to) = ranges[i % ranges.len()];
        let url = format!(
            "{base}/v1/analytics/kpis?group_by={}&from={from}&to={to}",
            groupings[i % groupings.len()]
        );
        kpi.push(timed_kpis(url).await?);
        let started = Instant::now();
        client
            .get(format!("{base}/healthz"))
            .send()
            .await?
            .bytes()
            .await?;
        floor.push(started.elapsed());
    }
    kpi.sort();
    floor.sort();
    println!();
    println!("| KPI API ({kpi_requests} requests: 6 groupings x 28/90/365 days) | p50 | p95 |");
    println!("|---|---|---|");
    println!(
        "| GET /v1/analytics/kpis (rollups) | {} | {} |",
        ms(percentile(&kpi, 0.5)),
        ms(percentile(&kpi, 0.95))
    );
    println!(
        "| GET /healthz (same server, baseline) | {} | {} |",
        ms(percentile(&floor, 0.5)),
        ms(percentile(&floor, 0.95))
    );
    println!(
        "\nThe first KPI request after start loads the tenant's rollups into memory: {}.",
        ms(first)
    );

    // Ad-hoc SQL: BitShipper's warehouse against DuckDB on the same files.
    let warehouse = Warehouse::new(location);
    let mut ours = Vec::new();
    for (name, sql) in QUERIES {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            warehouse
                .query_all(tenant_id, sql)
                .await
                .with_context(|| format!("query {name}"))?;
            times.push(started.elapsed());
        }
        ours.push(median(times));
    }
    let queries_file = dir.join("queries.json");
    std::fs::write(
        &queries_file,
        serde_json::to_vec(&QUERIES.map(|(n, q)| serde_json::json!({"name": n, "sql": q})))?,
    )?;
    let theirs = python_timings("bench_duckdb.py", &lake_dir, &queries_file, runs)?;
    // Plain DataFusion on the same files, when its Python package is installed: what our
    // warehouse costs over its engine, apart from what the engine costs over DuckDB.
    let plain = python_timings("bench_datafusion.py", &lake_dir, &queries_file, runs)
        .map_err(|e| println!("\n(plain DataFusion column skipped: {e:#})"))
        .ok();
    println!();
    println!("| ad-hoc query (median of {runs}) | BitShipper (DataFusion) | DuckDB, same Parquet | ratio | plain DataFusion, same Parquet |");
    println!("|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for (i, (((name, _), o), t)) in QUERIES.iter().zip(&ours).zip(&theirs).enumerate() {
        let ratio = o.as_secs_f64() / t.max(1e-9);
        ratios.push(ratio);
        let plain = plain
            .as_ref()
            .and_then(|p| p.get(i))
            .map_or("-".to_string(), |p| format!("{:.1} ms", p * 1000.0));
        println!(
            "| {name} | {} | {:.1} ms | {ratio:.2} | {plain} |",
            ms(*o),
            t * 1000.0
        );
    }
    let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
    let total_ours: f64 = ours.iter().map(Duration::as_secs_f64).sum();
    let total_theirs: f64 = theirs.iter().sum();
    let total_plain = plain.as_ref().map_or("-".to_string(), |p| {
        format!("{:.1} ms", p.iter().sum::<f64>() * 1000.0)
    });
    println!(
        "| all ten | {:.1} ms | {:.1} ms | {:.2} (geometric mean of ratios {geo:.2}) | {total_plain} |",
        total_ours * 1000.0,
        total_theirs * 1000.0,
        total_ours / total_theirs.max(1e-9)
    );
    app.stop().await?;
    println!("\n(lake and baseline files are in {})", dir.display());
    Ok(())
}

/// Runs `scripts/NAME LAKE_DIR QUERIES_JSON RUNS`; its median seconds per query.
fn python_timings(
    name: &str,
    lake_dir: &Path,
    queries_file: &Path,
    runs: usize,
) -> anyhow::Result<Vec<f64>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name);
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(lake_dir)
        .arg(queries_file)
        .arg(runs.max(1).to_string())
        .output()
        .with_context(|| format!("running scripts/{name}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or_default()
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn humantime(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// What [`prepare`] leaves for the timed parts, kept in the bench directory as `bench.json` so
/// a later run with the same `--dir` skips the (long) generation.
#[derive(serde::Serialize, serde::Deserialize)]
struct Prepared {
    tenant_id: uuid::Uuid,
    api_key: String,
    /// The write figures, printed again on reuse.
    report: String,
    rollups_loaded_at: chrono::DateTime<Utc>,
}

/// Simulates `events_target` events, writes them (and their shipments) to the lake and as plain
/// Parquet, and loads the shipments' contributions into the rollups.
async fn prepare(
    store: &bitshipper_store::Store,
    lake_dir: &Path,
    baseline_dir: &Path,
    events_target: u64,
) -> anyhow::Result<Prepared> {
    let mut out = String::new();
    let (tenant, key) = crate::admin::create_tenant(store, "Bench").await?;
    let tenant_id = tenant.id;
    let sealer = store.lake_sealer(tenant_id).await?;
    let location = LakeLocation::parse(&lake_dir.display().to_string())?;
    let mut events_table = LakeTable::open_or_create(&location, &EVENTS).await?;
    let mut shipments_table = LakeTable::open_or_create(&location, &SHIPMENTS).await?;

    // Roughly 8 events a shipment: size the simulation to reach the target within a year.
    let per_day = u32::try_from(events_target / 8 / u64::from(SIM_DAYS) + 1).unwrap_or(u32::MAX);
    let start = NaiveDate::from_ymd_opt(2025, 11, 1).context("date")?;
    let sim = Simulation::new(42, TenantProfile::outdoor(), start, SIM_DAYS, per_day)?;
    let mapping = MappingTable::builtin()?;
    let bar = indicatif::ProgressBar::new(events_target);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} events {bar:40} {pos}/{len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let wall = Instant::now();
    let mut events: Vec<ParsedEntry> = Vec::with_capacity(EVENT_BATCH + 64);
    let mut shipments: Vec<LakeShipment> = Vec::with_capacity(SHIPMENT_BATCH + 1);
    let mut deltas = RollupDeltas::default();
    let mut ev_written = Written {
        rows: 0,
        delta: Duration::ZERO,
        parquet: Duration::ZERO,
    };
    let mut sh_written = Written {
        rows: 0,
        delta: Duration::ZERO,
        parquet: Duration::ZERO,
    };
    let mut seq: i64 = 0;
    let mut shipment_count: u64 = 0;
    for s in sim.shipments() {
        if seq as u64 >= events_target {
            break;
        }
        let input: ShipmentInput = serde_json::from_value(s.shipment.clone())?;
        let new = NewShipment::try_from(input)?;
        let mut parsed = Vec::with_capacity(s.events.len());
        for (_, e) in &s.events {
            parsed.push(EventInput::parse(tenant_id, e, &mapping, "")?);
        }
        let flags = event_flags(&parsed);
        let state = bitshipper_core::fold(parsed.clone());
        let created_at = s.events.first().map(|(t, _)| *t).unwrap_or_else(Utc::now);
        let facts = ShipmentFacts {
            carrier: &new.carrier,
            service_level: new.service_level.as_deref(),
            origin: new.origin.as_ref(),
            destination: new.destination.as_ref(),
            ship_date: new.ship_date,
            promised_delivery_date: new.promised_delivery_date,
            created_at,
        };
        deltas.add(&contribution(&facts, &state, flags.0, flags.1), 1);
        shipment_count += 1;
        for event in parsed {
            seq += 1;
            events.push(ParsedEntry {
                seq,
                tenant_id,
                event,
            });
        }
        shipments.push(LakeShipment {
            tenant_id,
            shipment_id: ShipmentId::new(),
            carrier: new.carrier,
            tracking_number: new.tracking_number,
            service_level: new.service_level,
            origin: new.origin,
            destination: new.destination.map(|d| bitshipper_core::Address {
                line1: None,
                line2: None,
                ..d
            }),
            recipient_token: None,
            reference: None,
            weight_grams: new.weight_grams,
            ship_date: new.ship_date,
            promised_delivery_date: new.promised_delivery_date,
            auto_created: false,
            status: state.status.as_str().to_string(),
            reason: state.reason.map(|r| r.as_str().to_string()),
            first_scan_at: state.first_scan_at,
            delivered_at: state.delivered_at,
            last_event_at: state.last_event_at,
            events_count: i64::from(state.events_count),
            created_at,
            updated_at: created_at,
            cancelled_at: None,
        });
        if events.len() >= EVENT_BATCH {
            let batch = rows::event_batch(&events, |_| Some(&sealer), Utc::now())?;
            write_both(&mut events_table, batch, seq, baseline_dir, &mut ev_written).await?;
            events.clear();
            bar.set_position(seq as u64);
        }
        if shipments.len() >= SHIPMENT_BATCH {
            let batch = rows::shipment_batch(&shipments, seq, Utc::now())?;
            write_both(
                &mut shipments_table,
                batch,
                seq,
                baseline_dir,
                &mut sh_written,
            )
            .await?;
            shipments.clear();
        }
    }
    if !events.is_empty() {
        let batch = rows::event_batch(&events, |_| Some(&sealer), Utc::now())?;
        write_both(&mut events_table, batch, seq, baseline_dir, &mut ev_written).await?;
    }
    if !shipments.is_empty() {
        let batch = rows::shipment_batch(&shipments, seq, Utc::now())?;
        write_both(
            &mut shipments_table,
            batch,
            seq,
            baseline_dir,
            &mut sh_written,
        )
        .await?;
    }
    bar.finish_and_clear();
    let generated = wall.elapsed();
    let started = Instant::now();
    store.add_to_rollups(tenant_id, &deltas).await?;
    let rollup_load = started.elapsed();
    let rollup_rows = deltas.count_rows().len();
    drop(deltas);

    out.push_str(&format!(
        "## bench lake: {seq} events, {shipment_count} shipments ({} in all)\n\n",
        humantime(generated)
    ));
    out.push_str(
        "| write | rows | Delta (rows/s) | plain Parquet, same batches (rows/s) | ratio |\n",
    );
    out.push_str("|---|---|---|---|---|\n");
    for (name, w) in [("events", &ev_written), ("shipments", &sh_written)] {
        let delta = w.rows as f64 / w.delta.as_secs_f64().max(1e-9);
        let plain = w.rows as f64 / w.parquet.as_secs_f64().max(1e-9);
        out.push_str(&format!(
            "| {name} | {} | {:.0} | {:.0} | {:.2} |\n",
            w.rows,
            delta,
            plain,
            plain / delta
        ));
    }
    out.push_str(&format!(
        "\nrollups: {rollup_rows} rows loaded in {}\n",
        humantime(rollup_load)
    ));
    // Compaction, as the writer's scheduled maintenance does, before anything reads: the
    // queries below (ours and DuckDB's) read the compacted files.
    for table in [&mut events_table, &mut shipments_table] {
        let started = Instant::now();
        let removed = table.compact().await?;
        out.push_str(&format!(
            "compacted {}: {removed} small files rewritten in {}\n",
            table.spec.name,
            humantime(started.elapsed())
        ));
    }
    Ok(Prepared {
        tenant_id: tenant_id.0,
        api_key: key.secret,
        report: out,
        rollups_loaded_at: Utc::now(),
    })
}
