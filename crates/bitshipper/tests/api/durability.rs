//! An acknowledged event is never lost: kill -9 the server right after 202s and restart it;
//! every acknowledged event is applied exactly once. And backpressure: a full pipeline answers
//! 503 with Retry-After, and what it accepted is still applied later.

use crate::helpers::*;
use crate::on_both;
use bitshipper::settings::Role;
use bitshipper_store::testing::{fresh_database_url, TestBackend};
use bitshipper_store::{ShipmentFilter, Store};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

on_both!(
    kill_nine_after_acknowledgement_loses_nothing,
    a_full_pipeline_says_retry_later_and_loses_nothing
);

async fn kill_nine_after_acknowledgement_loses_nothing(b: TestBackend) {
    let url = fresh_database_url(b).await.unwrap();
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let (tenant, key) = bitshipper::admin::create_tenant(&store, "Durable")
        .await
        .unwrap();
    let key = key.secret;
    let (mut child, base) = start_server(&url, &[], &[]).await;
    let client = reqwest::Client::new();

    // 20 concurrent batches of 50 events over 20 shipments; every batch also repeats an event
    // of the previous batch, so redelivery is exercised too.
    let batches: Vec<Vec<Value>> = (0..20)
        .map(|i| {
            let mut events: Vec<Value> = (0..50)
                .map(|j| {
                    event(
                        &format!("1ZKILL{:02}", j % 20),
                        &format!("2026-11-{:02}T{:02}:{:02}:00Z", 10 + i % 10, j % 24, i),
                        "I",
                    )
                })
                .collect();
            if i > 0 {
                events.push(event(
                    &format!("1ZKILL{:02}", 0),
                    &format!("2026-11-{:02}T00:{:02}:00Z", 10 + (i - 1) % 10, i - 1),
                    "I",
                ));
            }
            events
        })
        .collect();
    let posts = batches.iter().map(|events| {
        client
            .post(format!("{base}/v1/events"))
            .bearer_auth(&key)
            .json(&json!({"events": events}))
            .send()
    });
    let mut acknowledged = BTreeSet::new();
    for r in futures::future::join_all(posts).await {
        let r = r.expect("response");
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = r.json().await.unwrap();
        for res in body["results"].as_array().unwrap() {
            acknowledged.insert(res["event_key"].as_str().unwrap().to_string());
        }
    }
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("killed");

    let (mut child, base) = start_server(&url, &[], &[]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready: Value = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["log_lag"] == 0
            && ready["applied_position"] == ready["log_head"]
            && ready["log_head"].as_i64() > Some(0)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "processor never caught up: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let shipments = store
        .list_shipments(
            tenant.id,
            &ShipmentFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(shipments.len(), 20);
    let mut applied = Vec::new();
    for s in &shipments {
        let events = store.list_events(tenant.id, s.id).await.unwrap();
        assert_eq!(
            events.len() as u32,
            s.state.events_count,
            "state agrees with stored events"
        );
        applied.extend(events.into_iter().map(|e| e.event.event_key.0));
    }
    let applied_set: BTreeSet<String> = applied.iter().cloned().collect();
    assert_eq!(applied.len(), applied_set.len(), "no event applied twice");
    assert_eq!(
        applied_set, acknowledged,
        "every acknowledged event applied"
    );
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

async fn a_full_pipeline_says_retry_later_and_loses_nothing(b: TestBackend) {
    // An api-only process: nothing applies events, so the lag grows until ingest refuses.
    let api = spawn_app_with(b, |s| {
        s.roles = vec![Role::Api];
        s.pipeline.max_lag = 3;
    })
    .await;
    let key = api.key_with("ingest,read").await;
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..10 {
        let r = api
            .post_events(
                &key,
                vec![event("1ZBP", &format!("2026-11-20T{i:02}:00:00Z"), "I")],
            )
            .await;
        if r.status() == StatusCode::ACCEPTED {
            accepted += 1;
        } else {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("ingest refuses once the lag passes the limit");
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("5")
    );
    problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(accepted, 4);

    // A processor starts on the same database and applies everything that was accepted.
    let processor = spawn_on(&api.database_url, |s| s.roles = vec![Role::Processor]).await;
    api.wait_for_shipment(&key, "ups", "1ZBP", |s| s["events_count"] == accepted)
        .await;
    processor.stop().await;
    api.stop().await;
}
