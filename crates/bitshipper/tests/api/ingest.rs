//! Ingest through `POST /v1/events` to folded shipment state.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

on_both!(
    a_batch_shows_as_folded_state_within_a_second,
    out_of_order_and_duplicate_batches_fold_to_the_same_state,
    the_timeline_keeps_normalized_status_and_raw_code,
);

async fn a_batch_shows_as_folded_state_within_a_second(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("ingest,read").await;
    let r = app
        .post_events(
            &key,
            vec![
                event("1ZFAST", "2026-11-20T08:00:00-05:00", "M"),
                event("1ZFAST", "2026-11-20T14:03:00-05:00", "I"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let started = Instant::now();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(0))
    );
    let s = app
        .wait_for_shipment(&key, "ups", "1ZFAST", |s| s["status"] == "in_transit")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        s["auto_created"], true,
        "an event for an unknown tracking number creates the shipment"
    );
    assert_eq!(s["events_count"], 2);
    assert_eq!(s["reason"], "in_transit");
    assert_eq!(s["last_location"]["city"], "Louisville");
    app.stop().await;
}

async fn out_of_order_and_duplicate_batches_fold_to_the_same_state(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("ingest,read,write").await;
    let created = app.create_shipment(&key, "1ZORDER").await;
    let life = [
        event("1ZORDER", "2026-11-20T08:00:00-05:00", "M"),
        event("1ZORDER", "2026-11-20T18:00:00-05:00", "P"),
        event("1ZORDER", "2026-11-21T06:00:00-05:00", "I"),
        event("1ZORDER", "2026-11-22T09:00:00-05:00", "O"),
        event("1ZORDER", "2026-11-22T15:30:00-05:00", "D"),
    ];
    // Delivered first, then the rest, with a duplicate of each in a later batch.
    for batch in [
        vec![life[4].clone(), life[1].clone()],
        vec![life[3].clone(), life[0].clone(), life[4].clone()],
        vec![life[2].clone(), life[1].clone(), life[2].clone()],
    ] {
        assert_eq!(
            app.post_events(&key, batch).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let s = app
        .wait_for_shipment(&key, "ups", "1ZORDER", |s| s["events_count"] == 5)
        .await;
    assert_eq!(
        s["id"], created["id"],
        "events attach to the shipment created through the API"
    );
    assert_eq!(s["auto_created"], false);
    assert_eq!(s["status"], "delivered");
    assert_eq!(s["delivered_at"], "2026-11-22T20:30:00Z");
    assert_eq!(s["first_scan_at"], "2026-11-20T23:00:00Z");
    app.stop().await;
}

async fn the_timeline_keeps_normalized_status_and_raw_code(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("ingest,read").await;
    let mut explicit = event("1ZTL", "2026-11-21T10:00:00Z", "X");
    explicit["status"] = "exception".into();
    explicit["reason"] = "weather".into();
    explicit["event_id"] = "prov-evt-1".into();
    app.post_events(
        &key,
        vec![event("1ZTL", "2026-11-20T10:00:00Z", "P"), explicit],
    )
    .await;
    let s = app
        .wait_for_shipment(&key, "ups", "1ZTL", |s| s["events_count"] == 2)
        .await;
    assert_eq!(
        (s["status"].as_str(), s["reason"].as_str()),
        (Some("exception"), Some("weather"))
    );
    let t: Value = app
        .get(
            &format!("/v1/shipments/{}/events", s["id"].as_str().unwrap()),
            &key,
        )
        .await
        .json()
        .await
        .unwrap();
    let events = t["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0]["status"].as_str(), events[0]["raw_code"].as_str()),
        (Some("in_transit"), Some("P"))
    );
    assert_eq!(events[1]["event_id"], "prov-evt-1");
    assert!(events[1]["received_at"].is_string());
    app.stop().await;
}
