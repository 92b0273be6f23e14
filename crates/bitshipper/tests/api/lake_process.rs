//! Kill -9 the lake writer's process at random points during a growing backfill; after the
//! last restart every event of the log is in the lake exactly once (count, checksum, distinct
//! positions), and no shipment change is written twice.

use crate::helpers::start_server;
use crate::on_both;
use bitshipper_core::{EventInput, MappingTable, TenantId};
use bitshipper_lake::arrow::array::AsArray;
use bitshipper_lake::arrow::datatypes::{DataType, Int64Type};
use bitshipper_lake::{LakeLocation, Warehouse};
use bitshipper_sim::{Simulation, TenantProfile};
use bitshipper_store::testing::{fresh_database_url, TestBackend};
use bitshipper_store::{EventLog, Store};
use chrono::NaiveDate;
use std::time::{Duration, Instant};

on_both!(a_lake_writer_killed_nine_times_writes_every_event_once);

/// Appends a simulated backfill chunk for `tenant` to the log; returns how many events.
async fn backfill(log: &EventLog, tenant: TenantId, seed: u64) -> usize {
    let start = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    let sim = Simulation::new(seed, TenantProfile::outdoor(), start, 2, 60).unwrap();
    let mapping = MappingTable::builtin().unwrap();
    let mut entries = Vec::new();
    for s in sim.shipments() {
        for (_, e) in &s.events {
            let event = EventInput::parse(tenant, e, &mapping, "").unwrap();
            entries.push((tenant, serde_json::to_string(&event).unwrap()));
        }
    }
    for chunk in entries.chunks(500) {
        log.append(chunk).await.unwrap();
    }
    entries.len()
}

async fn scalar(warehouse: &Warehouse, tenant: TenantId, sql: &str) -> i64 {
    let batches = warehouse.query_all(tenant, sql).await.unwrap();
    let column =
        bitshipper_lake::arrow::compute::cast(batches[0].column(0), &DataType::Int64).unwrap();
    column.as_primitive::<Int64Type>().value(0)
}

async fn a_lake_writer_killed_nine_times_writes_every_event_once(b: TestBackend) {
    let url = fresh_database_url(b).await.unwrap();
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let (tenant, _) = bitshipper::admin::create_tenant(&store, "Crash")
        .await
        .unwrap();
    let log = EventLog::open(&url).await.unwrap();
    let dir = std::env::temp_dir().join(format!("bitshipper-lake-kill-{}", uuid::Uuid::new_v4()));
    let lake = dir.join("lake").display().to_string();
    // Small batches, so a kill lands between, inside and after Delta commits.
    let env = [
        ("BITSHIPPER_LAKE__LOCATION", lake.as_str()),
        ("BITSHIPPER_LAKE__BATCH_EVENTS", "150"),
        ("BITSHIPPER_LAKE__FLUSH_SECONDS", "1"),
    ];
    let args = ["--roles", "processor,lake"];
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    let mut appended = 0;
    let mut killed_mid_backfill = 0;
    for round in 0..9 {
        // The backfill grows between kills.
        appended += backfill(&log, tenant.id, 500 + round).await;
        let (mut child, _) = start_server(&url, &args, &env).await;
        tokio::time::sleep(Duration::from_millis(50 + next(900))).await;
        // SIGKILL: no shutdown path runs.
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let landed = scalar(
            &Warehouse::new(LakeLocation::parse(&lake).unwrap()),
            tenant.id,
            "SELECT COUNT(*) FROM events",
        )
        .await;
        eprintln!("round {round}: killed with {landed} of {appended} events in the lake");
        killed_mid_backfill += usize::from(landed > 0 && landed < i64::try_from(appended).unwrap());
    }
    assert!(
        killed_mid_backfill > 0,
        "no kill landed while the writer was behind: the test did not test anything"
    );

    // The last start runs until the lake holds the whole log.
    let (mut child, _) = start_server(&url, &args, &env).await;
    let warehouse = Warehouse::new(LakeLocation::parse(&lake).unwrap());
    let (mut logged, mut expected_sum, mut after) = (0i64, 0i64, 0);
    loop {
        let entries = log.read_after(after, 5000).await.unwrap();
        let Some(last) = entries.last() else { break };
        after = last.seq;
        logged += i64::try_from(entries.len()).unwrap();
        expected_sum += entries.iter().map(|e| e.seq).sum::<i64>();
    }
    assert_eq!(usize::try_from(logged).unwrap(), appended);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let count = scalar(&warehouse, tenant.id, "SELECT COUNT(*) FROM events").await;
        assert!(
            count <= logged,
            "more rows ({count}) than log entries ({logged})"
        );
        if count == logged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lake at {count} of {logged} events"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let sum = scalar(
        &warehouse,
        tenant.id,
        "SELECT CAST(SUM(log_seq) AS BIGINT) FROM events",
    )
    .await;
    assert_eq!(sum, expected_sum, "checksum of log positions");
    let distinct = scalar(
        &warehouse,
        tenant.id,
        "SELECT COUNT(DISTINCT log_seq) FROM events",
    )
    .await;
    assert_eq!(distinct, logged, "no event twice");
    let changes = scalar(&warehouse, tenant.id, "SELECT COUNT(*) FROM shipments").await;
    let distinct_changes = scalar(
        &warehouse,
        tenant.id,
        "SELECT COUNT(*) FROM (SELECT DISTINCT shipment_id, log_seq FROM shipments) d",
    )
    .await;
    assert_eq!(changes, distinct_changes, "no shipment change twice");
    let _ = std::fs::remove_dir_all(&dir);
}
