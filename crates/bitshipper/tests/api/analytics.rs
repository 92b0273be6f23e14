//! Analytics end to end: events posted to the API land in the lake through the running lake
//! writer, `/v1/analytics/kpis` answers from it and, by default, from the processor's rollups,
//! with the same figures; tenant-scoped, bad parameters named in problem+json, a clear 503 for
//! the lake where it is off.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

on_both!(
    kpis_come_from_the_lake_the_writer_fills,
    kpi_requests_are_validated_and_need_a_lake,
);

fn scan(tracking: &str, at: &str, status: &str) -> Value {
    json!({"carrier":"ups","tracking_number":tracking,"occurred_at":at,"status":status,
           "message":"Signed by ADA LOVELACE at front door",
           "location":{"city":"Louisville","region":"KY","country":"US","lat":38.17,"lon":-85.73}})
}

async fn kpis_come_from_the_lake_the_writer_fills(b: TestBackend) {
    let lake = std::env::temp_dir()
        .join("bitshipper-tests")
        .join(format!("lake-{}", uuid::Uuid::new_v4().simple()));
    let location = lake.display().to_string();
    let app = spawn_app_with(b, |s| {
        s.lake.enabled = true;
        s.lake.location = Some(location);
        s.lake.flush_seconds = 1;
    })
    .await;
    let key = app.key_with("ingest,read,write").await;
    for (tracking, delivered) in [
        ("1ZLAKE1", "2026-11-23T15:00:00-05:00"),
        ("1ZLAKE2", "2026-11-26T15:00:00-05:00"),
    ] {
        app.create_shipment(&key, tracking).await;
        let r = app
            .post_events(
                &key,
                vec![
                    scan(tracking, "2026-11-20T08:00:00-05:00", "in_transit"),
                    scan(tracking, delivered, "delivered"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        let r = app
            .get(
                "/v1/analytics/kpis?source=lake&group_by=carrier&from=2026-11-01&to=2026-11-30",
                &key,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        if v["rows"][0]["delivered"] == 2 {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lake never caught up: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let row = &report["rows"][0];
    assert_eq!(row["key"], "ups");
    assert_eq!(row["volume"], 2);
    assert_eq!(row["delivered_with_promise"], 2);
    // Promised 2026-11-24: one on time, one two days late.
    assert_eq!(row["on_time"], 1);
    assert_eq!(row["on_time_rate"], 0.5);
    assert_eq!(row["first_attempt_rate"], 1.0);
    assert_eq!(row["transit_p50_hours"], (79.0 + 151.0) / 2.0);
    assert_eq!(report["source"], "lake");
    // The writer reports its lag.
    let metrics = app.get("/metrics", &key).await.text().await.unwrap();
    assert!(metrics.contains("bitshipper_lake_lag_events"), "{metrics}");
    assert!(
        metrics.contains("bitshipper_lake_rows_written_total"),
        "{metrics}"
    );
    assert!(report["as_of"].is_string(), "{report}");
    // The rollups (the default source) say the same, without waiting for the lake.
    let fresh: Value = app
        .get(
            "/v1/analytics/kpis?group_by=carrier&from=2026-11-01&to=2026-11-30",
            &key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fresh["source"], "rollups");
    assert_eq!(fresh["rows"], report["rows"], "rollups and lake disagree");
    assert!(fresh["as_of"].is_string(), "{fresh}");
    // The rollups (the default source) say the same, without waiting for the lake.
    let fresh: Value = app
        .get(
            "/v1/analytics/kpis?group_by=carrier&from=2026-11-01&to=2026-11-30",
            &key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fresh["source"], "rollups");
    assert_eq!(fresh["rows"], report["rows"], "rollups and lake disagree");
    assert!(fresh["as_of"].is_string(), "{fresh}");

    // Exports stream the same rows, and are audited.
    let r = app
        .get(
            "/v1/exports/events?format=csv&from=2026-11-01&to=2026-11-30",
            &key,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("events-2026-11-01-2026-11-30.csv"));
    let text = r.text().await.unwrap();
    assert_eq!(text.lines().count(), 1 + 4, "{text}");
    assert!(text.lines().next().unwrap().contains("tracking_number"));
    let r = app
        .get(
            "/v1/exports/shipments?format=parquet&from=2026-11-01&to=2026-11-30&status=delivered",
            &key,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    let audit: Value = app
        .get("/v1/audit", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert!(audit.to_string().contains("export.started"), "{audit}");

    // Another tenant sees nothing of it.
    let (_, other_key) = app.other_tenant().await;
    let v: Value = app
        .get(
            "/v1/analytics/kpis?from=2026-11-01&to=2026-11-30",
            &other_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["rows"], json!([]), "{v}");

    // No plaintext personal data in any lake file.
    let mut stack = vec![lake.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                for secret in [
                    "ADA LOVELACE",
                    "Ada Lovelace",
                    "ada@example.com",
                    "1 Main St",
                    "555 0100",
                ] {
                    assert!(
                        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                        "{secret} in {}",
                        path.display()
                    );
                }
            }
        }
    }
    app.stop().await;
}

async fn kpi_requests_are_validated_and_need_a_lake(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("read").await;
    let r = app
        .get(
            "/v1/analytics/kpis?group_by=planet&from=soon&carrier=U%20P%20S&colour=red",
            &key,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["group_by", "from", "carrier", "colour"] {
        assert!(fields.contains(&f), "{f} not named in {problem}");
    }
    // This app runs without a lake: rollups answer; the lake source is a clear 503.
    let r = app.get("/v1/analytics/kpis", &key).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["rows"], json!([]), "{v}");
    let r = app.get("/v1/analytics/kpis?source=lake", &key).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("without a lake"),
        "{problem}"
    );
    let r = app.get("/v1/analytics/kpis?source=warehouse", &key).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Exports: the format is required, the table must exist, and they need the lake.
    let r = app.get("/v1/exports/events?from=2026-01-01", &key).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "format", "{problem}");
    let r = app.get("/v1/exports/parcels?format=csv", &key).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "table", "{problem}");
    let r = app
        .get("/v1/exports/events?format=csv&status=teleported", &key)
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.get("/v1/exports/events?format=csv", &key).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}
