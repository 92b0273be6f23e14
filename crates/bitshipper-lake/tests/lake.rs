//! The lake end to end on real components: SQLite and PostgreSQL stores, a local directory and
//! an S3-compatible server (`BITSHIPPER_TEST_S3_ENDPOINT`, started by `scripts/test`), Python's
//! `deltalake` and `duckdb` reading what we wrote.

use bitshipper_core::analytics::{GroupBy, KpiQuery, KpiRow, KpiSource};
use bitshipper_core::{
    EventInput, MappingTable, NewShipment, ShipmentInput, Status, TenantId, TrackingEvent,
};
use bitshipper_lake::{analytics, LakeLocation, LakeWriter, Warehouse, WriterSettings};
use bitshipper_sim::{Simulation, TenantProfile};
use bitshipper_store::testing::{fresh_database_url, TestBackend};
use bitshipper_store::{EventLog, Store};
use chrono::NaiveDate;
use deltalake::arrow::array::AsArray;
use deltalake::arrow::datatypes::Int64Type;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

struct Fixture {
    store: Store,
    log: EventLog,
    tenant: TenantId,
    other: TenantId,
    /// Every event message sent (to look for plaintext in the lake).
    messages: Vec<String>,
}

/// Where a test's lake lives.
#[derive(Debug, Clone, Copy)]
enum LakeKind {
    Local,
    S3,
}

fn lake_location(kind: LakeKind) -> LakeLocation {
    let name = format!("bs-lake-{}", uuid::Uuid::new_v4().simple());
    match kind {
        LakeKind::Local => {
            let dir = std::env::temp_dir().join("bitshipper-tests").join(name);
            LakeLocation::parse(dir.to_str().expect("utf-8 path")).expect("local lake")
        }
        LakeKind::S3 => {
            let endpoint = std::env::var("BITSHIPPER_TEST_S3_ENDPOINT")
                .expect("BITSHIPPER_TEST_S3_ENDPOINT names the S3-compatible test server (scripts/test starts one)");
            let bucket = std::env::var("BITSHIPPER_TEST_S3_BUCKET")
                .unwrap_or_else(|_| "bitshipper-test".into());
            let env = [
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()));
            LakeLocation::parse_with(&format!("s3://{bucket}/{name}"), env).expect("s3 lake")
        }
    }
}

fn s3_configured() -> bool {
    if std::env::var("BITSHIPPER_TEST_S3_ENDPOINT").is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI must run the S3 lake tests: set BITSHIPPER_TEST_S3_ENDPOINT (scripts/test does)"
    );
    eprintln!(
        "BITSHIPPER_TEST_S3_ENDPOINT is not set: skipping the S3 variant (scripts/test runs it)"
    );
    false
}

async fn store(backend: TestBackend) -> (Store, EventLog) {
    let url = fresh_database_url(backend).await.expect("test database");
    let store = Store::connect(&url)
        .await
        .expect("connect")
        .with_key_provider(std::sync::Arc::new(
            bitshipper_store::LocalKeyProvider::ephemeral(),
        ))
        .with_kpi_commit_overlap(Duration::ZERO);
    store.migrate().await.expect("migrate");
    let log = EventLog::open(&url).await.expect("log");
    (store, log)
}

/// Shipments and their events for `tenant` from the simulator, appended to the log in chunks
/// of `chunk` events; returns the messages sent.
async fn simulate(
    store: &Store,
    log: &EventLog,
    tenant: TenantId,
    seed: u64,
    days: u32,
    per_day: u32,
) -> Vec<String> {
    let start = NaiveDate::from_ymd_opt(2026, 9, 1).expect("date");
    let sim = Simulation::new(seed, TenantProfile::outdoor(), start, days, per_day).expect("sim");
    let mapping = MappingTable::builtin().expect("mapping");
    let mut entries = Vec::new();
    let mut messages = Vec::new();
    for s in sim.shipments() {
        let input: ShipmentInput = serde_json::from_value(s.shipment.clone()).expect("shipment");
        store
            .create_shipment(tenant, NewShipment::try_from(input).expect("valid"))
            .await
            .expect("create");
        for (_, e) in &s.events {
            let event = EventInput::parse(tenant, e, &mapping, "").expect("event");
            if let Some(m) = &event.message {
                messages.push(m.clone());
            }
            entries.push((tenant, serde_json::to_string(&event).expect("json")));
        }
    }
    for chunk in entries.chunks(700) {
        log.append(chunk).await.expect("append");
    }
    messages
}

/// Applies the whole log as the processor would.
async fn apply_all(store: &Store, log: &EventLog) {
    loop {
        let position = store
            .consumer_position("processor")
            .await
            .expect("position");
        let entries = log.read_after(position, 2000).await.expect("read");
        if entries.is_empty() {
            return;
        }
        store
            .apply_log_entries("processor", &entries)
            .await
            .expect("apply");
    }
}

async fn fixture(backend: TestBackend) -> Fixture {
    let (store, log) = store(backend).await;
    let tenant = store.create_tenant("Acme").await.expect("tenant").id;
    let other = store.create_tenant("Other").await.expect("tenant").id;
    let mut messages = simulate(&store, &log, tenant, 7, 12, 25).await;
    messages.extend(simulate(&store, &log, other, 8, 5, 10).await);
    apply_all(&store, &log).await;
    Fixture {
        store,
        log,
        tenant,
        other,
        messages,
    }
}

fn small_batches() -> WriterSettings {
    WriterSettings {
        batch_events: 400,
        flush_interval: Duration::from_millis(50),
        poll_interval: Duration::from_millis(20),
        predictions_settle: Duration::ZERO,
        ..WriterSettings::default()
    }
}

async fn scalar_i64(warehouse: &Warehouse, tenant: TenantId, sql: &str) -> i64 {
    let batches = warehouse.query_all(tenant, sql).await.expect(sql);
    let column = deltalake::arrow::compute::cast(
        batches[0].column(0),
        &deltalake::arrow::datatypes::DataType::Int64,
    )
    .expect("cast");
    column.as_primitive::<Int64Type>().value(0)
}

/// Count and sum of sequence numbers of the log's events, per tenant.
async fn log_checksums(log: &EventLog) -> HashMap<TenantId, (i64, i64)> {
    let mut out: HashMap<TenantId, (i64, i64)> = HashMap::new();
    let mut after = 0;
    loop {
        let entries = log.read_after(after, 5000).await.expect("read");
        let Some(last) = entries.last() else {
            return out;
        };
        after = last.seq;
        for e in entries {
            let c = out.entry(e.tenant_id).or_default();
            c.0 += 1;
            c.1 += e.seq;
        }
    }
}

async fn lake_checksums(warehouse: &Warehouse, tenant: TenantId) -> (i64, i64) {
    (
        scalar_i64(warehouse, tenant, "SELECT COUNT(*) FROM events").await,
        scalar_i64(
            warehouse,
            tenant,
            "SELECT COALESCE(SUM(log_seq), 0) FROM events",
        )
        .await,
    )
}

async fn every_event_lands_once(backend: TestBackend, kind: LakeKind) {
    let f = fixture(backend).await;
    let location = lake_location(kind);
    let mut writer = LakeWriter::open(f.store.clone(), f.log.clone(), &location, small_batches())
        .await
        .expect("writer");
    let written = writer.catch_up().await.expect("catch up");
    let head = f.log.head().await.expect("head");
    assert_eq!(written.events as i64, head, "every log event written once");
    assert_eq!(written.unreadable, 0);
    // A second pass finds nothing to do.
    assert!(writer.catch_up().await.expect("again").is_empty());

    let warehouse = Warehouse::new(location.clone());
    let expected = log_checksums(&f.log).await;
    for tenant in [f.tenant, f.other] {
        assert_eq!(
            lake_checksums(&warehouse, tenant).await,
            expected[&tenant],
            "tenant {tenant:?}"
        );
        let stored = f
            .store
            .lake_shipments_changed(0, head)
            .await
            .expect("shipments");
        let stored = stored.iter().filter(|s| s.tenant_id == tenant).count() as i64;
        let current =
            scalar_i64(&warehouse, tenant, "SELECT COUNT(*) FROM shipments_current").await;
        assert_eq!(current, stored, "one current row per shipment");
    }
    // Tenant scoping: no view shows another tenant's rows, whatever the SQL says.
    let sneaky = format!(
        "SELECT COUNT(*) FROM events WHERE tenant_id = '{}' OR tenant_id <> ''",
        f.other.0
    );
    assert_eq!(
        scalar_i64(&warehouse, f.tenant, &sneaky).await,
        expected[&f.tenant].0
    );
    // Read-only: no DDL, DML or statements, no other tables.
    for sql in [
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'",
        "INSERT INTO events SELECT * FROM events",
        "SET datafusion.execution.batch_size = 1",
        "SELECT * FROM information_schema.tables",
    ] {
        assert!(
            warehouse.query_all(f.tenant, sql).await.is_err(),
            "{sql} must be refused"
        );
    }

    // Personal data: messages and coordinates are sealed; the tenant's key opens them.
    let batches = warehouse
        .query_all(
            f.tenant,
            "SELECT message_sealed FROM events WHERE message_sealed IS NOT NULL LIMIT 5",
        )
        .await
        .expect("sealed");
    let column = deltalake::arrow::compute::cast(
        batches[0].column(0),
        &deltalake::arrow::datatypes::DataType::Utf8,
    )
    .expect("cast");
    let sealed = column.as_string::<i32>().value(0).to_string();
    assert!(sealed.starts_with("sealed:v"), "{sealed}");
    let opened = f
        .store
        .open_from_lake(f.tenant, "events.message", &sealed)
        .await
        .expect("opens");
    assert!(f.messages.contains(&opened));
    if let LakeKind::Local = kind {
        let bytes = all_file_bytes(&location.root().to_file_path().expect("path"));
        for m in f.messages.iter().filter(|m| m.len() >= 12).take(50) {
            assert!(
                !contains(&bytes, m.as_bytes()),
                "plaintext message {m:?} found in the lake"
            );
        }
    }
    // Erasure by key destruction: after the tenant is erased its sealed values never open.
    f.store.erase_tenant(f.tenant).await.expect("erase");
    assert!(f
        .store
        .open_from_lake(f.tenant, "events.message", &sealed)
        .await
        .is_err());
}

fn all_file_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(all_file_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).expect("file"));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_lands_once_sqlite_local() {
    every_event_lands_once(TestBackend::Sqlite, LakeKind::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_lands_once_postgres_local() {
    every_event_lands_once(TestBackend::Postgres, LakeKind::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_lands_once_sqlite_s3() {
    if s3_configured() {
        every_event_lands_once(TestBackend::Sqlite, LakeKind::S3).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_lands_once_postgres_s3() {
    if s3_configured() {
        every_event_lands_once(TestBackend::Postgres, LakeKind::S3).await;
    }
}

/// The writer is stopped dead at random points (its task aborted mid-await: between writing
/// data files and committing, between committing and remembering) while the log grows; after
/// each restart it resumes from the lake's own record, and in the end every event is there
/// exactly once.
async fn killed_writer_resumes_exactly_once(backend: TestBackend, kind: LakeKind) {
    let (store, log) = store(backend).await;
    let tenant = store.create_tenant("Acme").await.expect("tenant").id;
    let location = lake_location(kind);
    let mut rng_state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % bound
    };
    for round in 0..12u64 {
        // The backfill goes on: more events arrive between kills.
        simulate(&store, &log, tenant, 100 + round, 2, 15).await;
        apply_all(&store, &log).await;
        let writer = LakeWriter::open(store.clone(), log.clone(), &location, small_batches())
            .await
            .expect("writer");
        let task = tokio::spawn(writer.run(std::future::pending()));
        tokio::time::sleep(Duration::from_millis(5 + next(400))).await;
        task.abort();
        let _ = task.await;
    }
    let mut writer = LakeWriter::open(store.clone(), log.clone(), &location, small_batches())
        .await
        .expect("writer");
    writer.catch_up().await.expect("catch up");
    let warehouse = Warehouse::new(location);
    let expected = log_checksums(&log).await;
    assert_eq!(lake_checksums(&warehouse, tenant).await, expected[&tenant]);
    let distinct = scalar_i64(
        &warehouse,
        tenant,
        "SELECT COUNT(DISTINCT log_seq) FROM events",
    )
    .await;
    assert_eq!(distinct, expected[&tenant].0, "no event twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_resumes_exactly_once_sqlite_local() {
    killed_writer_resumes_exactly_once(TestBackend::Sqlite, LakeKind::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_resumes_exactly_once_postgres_s3() {
    if s3_configured() {
        killed_writer_resumes_exactly_once(TestBackend::Postgres, LakeKind::S3).await;
    }
}

/// The KPIs as defined in docs/lake.md, computed in plain Rust from the store's shipments and
/// the log's events: the reference the lake's SQL (and the processor's rollups) must equal.
async fn reference_kpis(f: &Fixture, query: &KpiQuery) -> BTreeMap<String, KpiRow> {
    let head = f.log.head().await.expect("head");
    let shipments = f
        .store
        .lake_shipments_changed(0, head)
        .await
        .expect("shipments");
    let mut flags: HashMap<(String, String), (bool, bool)> = HashMap::new();
    let mut after = 0;
    loop {
        let entries = f.log.read_after(after, 5000).await.expect("read");
        let Some(last) = entries.last() else { break };
        after = last.seq;
        for e in entries.iter().filter(|e| e.tenant_id == f.tenant) {
            let ev: TrackingEvent = serde_json::from_str(&e.payload).expect("event");
            let flag = flags
                .entry((ev.carrier.clone(), ev.tracking_number.clone()))
                .or_default();
            flag.0 |= ev.status == Status::Exception;
            flag.1 |= ev.status == Status::FailedAttempt;
        }
    }
    let mut groups: BTreeMap<String, (KpiRow, Vec<f64>)> = BTreeMap::new();
    for s in shipments.iter().filter(|s| s.tenant_id == f.tenant) {
        let day = s
            .first_scan_at
            .map(|t| t.date_naive())
            .or(s.ship_date)
            .unwrap_or(s.created_at.date_naive());
        if day < query.from || day > query.to {
            continue;
        }
        let key = match query.group_by {
            GroupBy::Carrier => s.carrier.clone(),
            GroupBy::All => "all".into(),
            other => panic!("reference does not group by {other:?}"),
        };
        let (row, transit) = groups.entry(key.clone()).or_insert_with(|| {
            (
                KpiRow {
                    key,
                    volume: 0,
                    delivered: 0,
                    delivered_with_promise: 0,
                    on_time: 0,
                    on_time_rate: None,
                    transit_p50_hours: None,
                    transit_p90_hours: None,
                    exceptions: 0,
                    exception_rate: None,
                    first_attempt: 0,
                    first_attempt_rate: None,
                },
                Vec::new(),
            )
        });
        let (had_exception, had_failed) = flags
            .get(&(s.carrier.clone(), s.tracking_number.clone()))
            .copied()
            .unwrap_or_default();
        row.volume += 1;
        row.exceptions += u64::from(had_exception);
        if let Some(delivered) = s.delivered_at {
            row.delivered += 1;
            row.first_attempt += u64::from(!had_failed);
            if let Some(promised) = s.promised_delivery_date {
                row.delivered_with_promise += 1;
                row.on_time += u64::from(delivered.date_naive() <= promised);
            }
            if let Some(first) = s.first_scan_at {
                transit.push((delivered - first).num_seconds().div_euclid(3600) as f64);
            }
        }
    }
    groups
        .into_iter()
        .map(|(k, (mut row, mut transit))| {
            transit.sort_by(f64::total_cmp);
            row.transit_p50_hours = percentile_cont(&transit, 0.5);
            row.transit_p90_hours = percentile_cont(&transit, 0.9);
            (k, row.with_rates())
        })
        .collect()
}

/// Linear interpolation between closest ranks (SQL's `percentile_cont`; the weight truncated to
/// six decimals, as DataFusion does).
fn percentile_cont(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let weight = bitshipper_store::rollups::interpolation_weight(rank - lo as f64);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * weight)
}

/// A lake KPI query over the fixture's whole range, unfiltered.
fn lake_query(group_by: GroupBy) -> KpiQuery {
    KpiQuery {
        source: KpiSource::Lake,
        group_by,
        from: NaiveDate::from_ymd_opt(2026, 8, 1).expect("date"),
        to: NaiveDate::from_ymd_opt(2026, 12, 31).expect("date"),
        carrier: None,
        service: None,
        lane: None,
    }
}

/// The rollups' KPIs equal the lake's for every grouping, key by key.
async fn rollups_equal_lake(f: &Fixture, warehouse: &Warehouse) {
    for group_by in [
        GroupBy::All,
        GroupBy::Carrier,
        GroupBy::Service,
        GroupBy::Lane,
        GroupBy::Day,
        GroupBy::Week,
    ] {
        let query = lake_query(group_by);
        let lake = analytics::kpis(warehouse, f.tenant, &query)
            .await
            .expect("lake kpis");
        let rollups = f
            .store
            .kpis_from_rollups(f.tenant, &query)
            .await
            .expect("rollup kpis");
        assert!(!lake.rows.is_empty());
        assert_eq!(rollups.rows.len(), lake.rows.len(), "{group_by:?}");
        for (r, l) in rollups.rows.iter().zip(&lake.rows) {
            assert_eq!(
                (
                    &r.key,
                    r.volume,
                    r.delivered,
                    r.delivered_with_promise,
                    r.on_time,
                    r.exceptions,
                    r.first_attempt
                ),
                (
                    &l.key,
                    l.volume,
                    l.delivered,
                    l.delivered_with_promise,
                    l.on_time,
                    l.exceptions,
                    l.first_attempt
                ),
                "{group_by:?}"
            );
            for (a, b) in [
                (r.transit_p50_hours, l.transit_p50_hours),
                (r.transit_p90_hours, l.transit_p90_hours),
            ] {
                match (a, b) {
                    (Some(a), Some(b)) => {
                        assert!((a - b).abs() < 1e-9, "{group_by:?} {}: {a} vs {b}", r.key)
                    }
                    (a, b) => assert_eq!(a, b, "{group_by:?} {}", r.key),
                }
            }
        }
    }
}

async fn kpis_from_the_lake_match_the_reference(backend: TestBackend) {
    let f = fixture(backend).await;
    let location = lake_location(LakeKind::Local);
    let mut writer = LakeWriter::open(f.store.clone(), f.log.clone(), &location, small_batches())
        .await
        .expect("writer");
    writer.catch_up().await.expect("catch up");
    let warehouse = Warehouse::new(location);
    for group_by in [GroupBy::All, GroupBy::Carrier] {
        let query = lake_query(group_by);
        let report = analytics::kpis(&warehouse, f.tenant, &query)
            .await
            .expect("kpis");
        assert!(report.as_of.is_some());
        let expected = reference_kpis(&f, &query).await;
        assert_eq!(report.rows.len(), expected.len(), "{group_by:?}");
        assert!(report.rows.iter().map(|r| r.volume).sum::<u64>() > 100);
        for row in &report.rows {
            let want = &expected[&row.key];
            assert_eq!(
                (
                    row.volume,
                    row.delivered,
                    row.delivered_with_promise,
                    row.on_time,
                    row.exceptions,
                    row.first_attempt
                ),
                (
                    want.volume,
                    want.delivered,
                    want.delivered_with_promise,
                    want.on_time,
                    want.exceptions,
                    want.first_attempt
                ),
                "{group_by:?} {}",
                row.key
            );
            for (got, want) in [
                (row.transit_p50_hours, want.transit_p50_hours),
                (row.transit_p90_hours, want.transit_p90_hours),
            ] {
                let (got, want) = (got.expect("p"), want.expect("p"));
                assert!(
                    (got - want).abs() < 1e-6,
                    "{} transit {got} vs {want}",
                    row.key
                );
            }
        }
    }
    // The processor's rollups give the same KPIs as the lake for the same cutoff (both have
    // everything the log holds), for every grouping.
    rollups_equal_lake(&f, &warehouse).await;
    // More shipments on the same days change cells the KPI index already holds; with no commit
    // overlap (only rows stamped after its last read are re-read) it still follows every change.
    simulate(&f.store, &f.log, f.tenant, 9, 12, 25).await;
    apply_all(&f.store, &f.log).await;
    writer.catch_up().await.expect("catch up again");
    rollups_equal_lake(&f, &warehouse).await;
    // Data applied before rollups existed: no rollups, no remembered contributions. A rebuild
    // restores the same figures, and the processor carries on from it exactly.
    bitshipper_store::testing::forget_rollups(&f.store, f.tenant)
        .await
        .expect("wipe");
    let rebuilt = f.store.rebuild_rollups(f.tenant).await.expect("rebuild");
    assert!(rebuilt.shipments > 100 && rebuilt.cells > 10, "{rebuilt:?}");
    rollups_equal_lake(&f, &warehouse).await;
    simulate(&f.store, &f.log, f.tenant, 10, 12, 10).await;
    apply_all(&f.store, &f.log).await;
    writer.catch_up().await.expect("catch up after the rebuild");
    rollups_equal_lake(&f, &warehouse).await;
    // Filters narrow; a filter on one carrier gives that carrier's row alone.
    let all = analytics::kpis(&warehouse, f.tenant, &lake_query(GroupBy::Carrier))
        .await
        .expect("kpis");
    let first = &all.rows[0];
    let only = analytics::kpis(
        &warehouse,
        f.tenant,
        &KpiQuery {
            carrier: Some(first.key.clone()),
            ..lake_query(GroupBy::Week)
        },
    )
    .await
    .expect("kpis");
    assert_eq!(
        only.rows.iter().map(|r| r.volume).sum::<u64>(),
        first.volume
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_from_the_lake_match_the_reference_sqlite() {
    kpis_from_the_lake_match_the_reference(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_from_the_lake_match_the_reference_postgres() {
    kpis_from_the_lake_match_the_reference(TestBackend::Postgres).await;
}

/// Python's `deltalake` and DuckDB read the same rows and sums from our tables as our own
/// queries (needs `scripts/requirements-test.txt`; scripts/test installs it).
async fn python_reads_the_same_tables(backend: TestBackend, kind: LakeKind) {
    let f = fixture(backend).await;
    let location = lake_location(kind);
    let mut writer = LakeWriter::open(f.store.clone(), f.log.clone(), &location, small_batches())
        .await
        .expect("writer");
    writer.catch_up().await.expect("catch up");
    let warehouse = Warehouse::new(location.clone());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/lake_interop.py");
    let root = location
        .root()
        .as_str()
        .trim_start_matches("file://")
        .to_string();
    let endpoint = std::env::var("BITSHIPPER_TEST_S3_ENDPOINT").unwrap_or_default();
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(&root)
        .arg(f.tenant.0.to_string())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "lake_interop.py failed (pip install -r scripts/requirements-test.txt): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let ours = serde_json::json!({
        "events": {
            "count": scalar_i64(&warehouse, f.tenant, "SELECT COUNT(*) FROM events").await,
            "sum_log_seq": scalar_i64(&warehouse, f.tenant, "SELECT SUM(log_seq) FROM events").await,
        },
        "shipments": {
            "count": scalar_i64(&warehouse, f.tenant, "SELECT COUNT(*) FROM shipments").await,
            "sum_log_seq": scalar_i64(&warehouse, f.tenant, "SELECT SUM(log_seq) FROM shipments").await,
            "sum_events_count": scalar_i64(&warehouse, f.tenant, "SELECT SUM(events_count) FROM shipments").await,
        },
        "predictions": {
            "count": scalar_i64(&warehouse, f.tenant, "SELECT COUNT(*) FROM predictions").await,
        },
    });
    assert!(ours["events"]["count"].as_i64().expect("n") > 100);
    assert_eq!(theirs["deltalake"], ours, "deltalake (Python) disagrees");
    if let LakeKind::Local = kind {
        assert_eq!(theirs["duckdb"], ours, "DuckDB disagrees");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reads_the_same_tables_sqlite_local() {
    python_reads_the_same_tables(TestBackend::Sqlite, LakeKind::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reads_the_same_tables_postgres_s3() {
    if s3_configured() {
        python_reads_the_same_tables(TestBackend::Postgres, LakeKind::S3).await;
    }
}

/// Exports stream the same rows as a query, as CSV and as Parquet that reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stream_csv_and_parquet() {
    use bitshipper_core::analytics::{ExportFormat, ExportRequest, ExportTable};
    use bitshipper_lake::export;
    use futures::TryStreamExt;
    let f = fixture(TestBackend::Sqlite).await;
    let location = lake_location(LakeKind::Local);
    let mut writer = LakeWriter::open(f.store.clone(), f.log.clone(), &location, small_batches())
        .await
        .expect("writer");
    writer.catch_up().await.expect("catch up");
    let warehouse = Warehouse::new(location);
    let all_events = scalar_i64(&warehouse, f.tenant, "SELECT COUNT(*) FROM events").await;
    let all_shipments = scalar_i64(
        &warehouse,
        f.tenant,
        "SELECT COUNT(*) FROM shipments_current",
    )
    .await;
    for (table, expected) in [
        (ExportTable::Events, all_events),
        (ExportTable::Shipments, all_shipments),
    ] {
        for format in [ExportFormat::Csv, ExportFormat::Parquet] {
            let request = ExportRequest {
                table,
                format,
                from: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
                to: NaiveDate::from_ymd_opt(2026, 12, 31).expect("date"),
                carrier: None,
                status: None,
            };
            let stream = export::export_stream(&warehouse, f.tenant, &request)
                .await
                .expect("export");
            let chunks: Vec<Vec<u8>> = export::encode(stream, format)
                .try_collect()
                .await
                .expect("encode");
            assert!(!chunks.is_empty());
            let bytes: Vec<u8> = chunks.concat();
            let rows = match format {
                ExportFormat::Csv => {
                    let mut reader = csv::Reader::from_reader(bytes.as_slice());
                    assert!(reader
                        .headers()
                        .expect("header")
                        .iter()
                        .any(|h| h == "tracking_number"));
                    reader.records().count() as i64
                }
                ExportFormat::Parquet => {
                    let reader = deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                        bytes::Bytes::from(bytes),
                    )
                    .expect("parquet")
                    .build()
                    .expect("reader");
                    reader.map(|b| b.expect("batch").num_rows() as i64).sum()
                }
            };
            assert_eq!(rows, expected, "{table:?} {format:?}");
        }
    }
    // A filter narrows the export.
    let request = ExportRequest {
        table: ExportTable::Events,
        format: ExportFormat::Csv,
        from: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        to: NaiveDate::from_ymd_opt(2026, 12, 31).expect("date"),
        carrier: None,
        status: Some("delivered".into()),
    };
    let stream = export::export_stream(&warehouse, f.tenant, &request)
        .await
        .expect("export");
    let bytes: Vec<u8> = export::encode(stream, ExportFormat::Csv)
        .try_collect::<Vec<_>>()
        .await
        .expect("encode")
        .concat();
    let delivered = csv::Reader::from_reader(bytes.as_slice()).records().count() as i64;
    let want = scalar_i64(
        &warehouse,
        f.tenant,
        "SELECT COUNT(*) FROM events WHERE status = 'delivered'",
    )
    .await;
    assert_eq!(delivered, want);
    assert!(delivered > 0 && delivered < all_events);
}

/// Compaction rewrites the writer's many small files into few, vacuum removes the replaced
/// ones once past retention, and neither changes a row or the writer's positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_compacts_and_vacuums_without_changing_rows() {
    let f = fixture(TestBackend::Sqlite).await;
    let location = lake_location(LakeKind::Local);
    let settings = WriterSettings {
        vacuum_retention: chrono::Duration::zero(),
        ..small_batches()
    };
    let mut writer = LakeWriter::open(f.store.clone(), f.log.clone(), &location, settings)
        .await
        .expect("writer");
    writer.catch_up().await.expect("catch up");
    let warehouse = Warehouse::new(location.clone());
    let before = lake_checksums(&warehouse, f.tenant).await;
    let positions = writer.positions().await.expect("positions");
    let parquet_files = |dir: &std::path::Path| {
        fn walk(d: &std::path::Path, n: &mut usize) {
            for e in std::fs::read_dir(d).expect("dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, n);
                } else if p.extension().is_some_and(|x| x == "parquet") {
                    *n += 1;
                }
            }
        }
        let mut n = 0;
        walk(dir, &mut n);
        n
    };
    let root = location.root().to_file_path().expect("path");
    let files_before = parquet_files(&root.join("events"));
    let (compacted, vacuumed) = writer.maintain().await.expect("maintain");
    assert!(compacted > 0, "small files were compacted");
    assert!(vacuumed > 0, "replaced files were vacuumed");
    assert!(parquet_files(&root.join("events")) < files_before);
    let warehouse = Warehouse::new(location);
    assert_eq!(lake_checksums(&warehouse, f.tenant).await, before);
    assert_eq!(writer.positions().await.expect("positions"), positions);
    assert!(writer.catch_up().await.expect("again").is_empty());
}

/// A TCP relay to the S3 server that can be cut (connections refused and open ones dropped).
struct Relay {
    endpoint: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    async fn start(target: &str) -> Relay {
        use std::sync::atomic::{AtomicBool, Ordering};
        let target = target.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let up = std::sync::Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let (flag, target) = (flag.clone(), target.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let cut = async {
                        while flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Relay { endpoint, up }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
    }
}

/// When the object store goes down the log keeps taking events (ingest never waits for the
/// lake), the writer fails and falls behind; when it comes back the writer catches up, and
/// every event is in the lake exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_falls_behind_while_s3_is_down_and_catches_up() {
    if !s3_configured() {
        return;
    }
    let (store, log) = store(TestBackend::Sqlite).await;
    let tenant = store.create_tenant("Acme").await.expect("tenant").id;
    let endpoint = std::env::var("BITSHIPPER_TEST_S3_ENDPOINT").expect("endpoint");
    let relay = Relay::start(&endpoint).await;
    let bucket =
        std::env::var("BITSHIPPER_TEST_S3_BUCKET").unwrap_or_else(|_| "bitshipper-test".into());
    let env = [
        ("AWS_ENDPOINT_URL", relay.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let location = LakeLocation::parse_with(
        &format!("s3://{bucket}/bs-outage-{}", uuid::Uuid::new_v4().simple()),
        env,
    )
    .expect("location")
    .with_option("max_retries", "1")
    .with_option("retry_timeout", "2s");
    simulate(&store, &log, tenant, 1, 2, 15).await;
    apply_all(&store, &log).await;
    let mut writer = LakeWriter::open(store.clone(), log.clone(), &location, small_batches())
        .await
        .expect("writer");
    writer.catch_up().await.expect("first catch up");
    let landed = writer.positions().await.expect("positions").events;

    relay.set_up(false);
    // Ingest goes on: the log takes more events and the processor applies them.
    simulate(&store, &log, tenant, 2, 2, 15).await;
    apply_all(&store, &log).await;
    assert!(
        writer.step(true).await.is_err(),
        "the store is down: the commit must fail"
    );
    assert!(log.head().await.expect("head") > landed);

    relay.set_up(true);
    writer.catch_up().await.expect("catch up after the outage");
    let warehouse = Warehouse::new(location);
    let expected = log_checksums(&log).await;
    assert_eq!(lake_checksums(&warehouse, tenant).await, expected[&tenant]);
}

/// An entry that is not an event (corruption) is skipped and counted, alone in its batch or
/// not; everything around it lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_log_entries_are_skipped_and_counted() {
    let (store, log) = store(TestBackend::Sqlite).await;
    let tenant = store.create_tenant("Acme").await.expect("tenant").id;
    simulate(&store, &log, tenant, 3, 1, 5).await;
    log.append(&[(tenant, "{\"not\":\"an event\"}".to_string())])
        .await
        .expect("append");
    simulate(&store, &log, tenant, 4, 1, 5).await;
    let location = lake_location(LakeKind::Local);
    let settings = WriterSettings {
        batch_events: 1,
        ..small_batches()
    };
    let mut writer = LakeWriter::open(store.clone(), log.clone(), &location, settings)
        .await
        .expect("writer");
    let written = writer.catch_up().await.expect("catch up");
    assert_eq!(written.unreadable, 1);
    let head = log.head().await.expect("head");
    assert_eq!(written.events as i64, head - 1);
    assert_eq!(writer.positions().await.expect("positions").events, head);
    let warehouse = Warehouse::new(location);
    assert_eq!(
        scalar_i64(&warehouse, tenant, "SELECT COUNT(*) FROM events").await,
        head - 1
    );
}
