//! Predictions end to end: a registered, promoted model scores a shipment after each applied
//! event, the shipment API shows the prediction, a newly promoted model takes over without a
//! restart, and the accuracy report judges delivered shipments.

use crate::helpers::*;
use crate::on_both;
use bitshipper_ml::history::simulated;
use bitshipper_ml::train::{train_and_evaluate, TrainConfig};
use bitshipper_store::testing::TestBackend;
use bitshipper_store::{NewModel, Store};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::OnceLock;

on_both!(
    shipments_are_scored_after_each_event_and_models_swap_live,
    accuracy_requests_are_validated,
    a_tenant_trains_on_its_own_history_and_its_model_serves_it,
);

/// A small model set, trained once for the whole test binary.
fn artifact() -> &'static [u8] {
    static ARTIFACT: OnceLock<Vec<u8>> = OnceLock::new();
    ARTIFACT.get_or_init(|| {
        let records = simulated(40, 40, 3, &|_, _| ()).unwrap();
        let (models, _) = train_and_evaluate(&records, &TrainConfig::default(), &|_| ()).unwrap();
        models.to_json().unwrap()
    })
}

async fn register_live(store: &Store, version: &str) {
    store
        .register_model(&NewModel {
            version: version.into(),
            tenant_id: None,
            trained_from: None,
            trained_to: None,
            metrics: json!({"model": {"auc": 0.7}}),
            feature_schema: vec!["carrier".into()],
            artifact: artifact(),
        })
        .await
        .unwrap();
    assert!(store.promote_model(version).await.unwrap());
}

/// Polls the shipment until its prediction satisfies `check` (at most 10 s).
async fn wait_for_prediction(
    app: &TestApp,
    key: &str,
    id: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s: Value = app
            .get(&format!("/v1/shipments/{id}"), key)
            .await
            .json()
            .await
            .unwrap();
        if check(&s["prediction"]) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such prediction: {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn shipments_are_scored_after_each_event_and_models_swap_live(b: TestBackend) {
    let app = spawn_app_with(b, |s| s.predictions.refresh_seconds = 1).await;
    let key = app.key_with("ingest,read,write").await;
    register_live(&app.store, "m-first").await;
    let shipment = app.create_shipment(&key, "1ZPRED").await;
    let id = shipment["id"].as_str().unwrap().to_string();
    assert!(
        shipment["prediction"].is_null(),
        "nothing to predict before a scan"
    );

    let r = app
        .post_events(
            &key,
            vec![event("1ZPRED", "2026-11-20T08:00:00-05:00", "M")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let s = wait_for_prediction(&app, &key, &id, |p| p["model_version"] == "m-first").await;
    let p = &s["prediction"];
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let (p10, p50, p90) = (
        time(&p["eta"]["p10"]),
        time(&p["eta"]["p50"]),
        time(&p["eta"]["p90"]),
    );
    assert!(p10 <= p50 && p50 <= p90, "{p}");
    assert!(p10 >= time(&json!("2026-11-20T08:00:00-05:00")), "{p}");
    let risk = p["late_risk"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&risk), "{p}");
    let reasons = p["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty() && reasons.len() <= 3, "{p}");
    assert!(reasons
        .iter()
        .all(|r| r.as_str().is_some_and(|r| !r.is_empty())));
    // Lists carry predictions too.
    let page: Value = app
        .get("/v1/shipments?limit=5", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"][0]["prediction"]["model_version"], "m-first");

    // A newly promoted model takes over without a restart.
    register_live(&app.store, "m-second").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    app.post_events(
        &key,
        vec![event("1ZPRED", "2026-11-21T09:00:00-05:00", "I")],
    )
    .await;
    wait_for_prediction(&app, &key, &id, |p| p["model_version"] == "m-second").await;

    // Delivered: the prediction stays as it was, and the accuracy report judges it.
    app.post_events(
        &key,
        vec![event("1ZPRED", "2026-11-23T15:00:00-05:00", "D")],
    )
    .await;
    app.wait_for_shipment(&key, "ups", "1ZPRED", |s| s["status"] == "delivered")
        .await;
    let r = app
        .get(
            "/v1/predictions/accuracy?from=2026-11-01&to=2026-11-30",
            &key,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["prediction"], "first");
    assert_eq!(report["overall"]["shipments"], 1, "{report}");
    assert_eq!(report["overall"]["with_promise"], 1, "{report}");
    assert_eq!(
        report["overall"]["late_rate"], 0.0,
        "delivered before the promised date"
    );
    let held = report["overall"]["window_held"].as_f64().unwrap();
    assert!(held == 0.0 || held == 1.0);
    assert_eq!(report["by_carrier_week"][0]["carrier"], "ups");
    assert_eq!(report["by_carrier_week"][0]["week"], "2026-W48");
    let latest: Value = app
        .get(
            "/v1/predictions/accuracy?from=2026-11-01&to=2026-11-30&prediction=latest",
            &key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(latest["overall"]["shipments"], 1);

    // Another tenant sees none of it.
    let (_, other) = app.other_tenant().await;
    let theirs: Value = app
        .get(
            "/v1/predictions/accuracy?from=2026-11-01&to=2026-11-30",
            &other,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["overall"]["shipments"], 0);
    app.stop().await;
}

async fn accuracy_requests_are_validated(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("read").await;
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-05-01&to=2026-04-01", "from"),
        ("from=2024-01-01&to=2026-01-01", "from"),
        ("prediction=best", "prediction"),
        ("color=blue", "color"),
    ] {
        let r = app
            .get(&format!("/v1/predictions/accuracy?{query}"), &key)
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&p), [field], "{query}: {p}");
    }
    let r = app.get("/v1/predictions/accuracy", &key).await;
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}

/// Simulated history goes in through the API; `bitshipper train --tenant ID --register` reads it
/// back from the store, registers the tenant's own model and puts it live; the scorer then
/// prefers it to the shared one.
async fn a_tenant_trains_on_its_own_history_and_its_model_serves_it(b: TestBackend) {
    let app = spawn_app_with(b, |s| s.predictions.refresh_seconds = 1).await;
    let key = app.key_with("ingest,read,write").await;
    register_live(&app.store, "m-shared").await;
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let sim = bitshipper_sim::Simulation::new(
        11,
        bitshipper_sim::TenantProfile::outdoor(),
        start,
        45,
        12,
    )
    .unwrap();
    let mut events = Vec::new();
    for s in sim.shipments() {
        let r = app.post("/v1/shipments", &key, &s.shipment).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        events.extend(s.events.iter().map(|(_, e)| e.clone()));
    }
    for chunk in events.chunks(500) {
        let r = app.post_events(&key, chunk.to_vec()).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let ready: Value = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["log_lag"] == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history never applied: {ready}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bitshipper"))
        .args(["train", "--tenant", &app.tenant.to_string(), "--register"])
        .args(["--database-url", &app.database_url])
        .env("BITSHIPPER_LOG__LEVEL", "warn")
        .env(
            "BITSHIPPER_SECURITY__KEY_FILE",
            bitshipper_store::testing::key_file_for(&app.database_url),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("model "), "an evaluation report: {stdout}");
    let live = app.store.live_models().await.unwrap();
    let own = live
        .get(&Some(app.tenant))
        .cloned()
        .expect("the tenant's own model is live");
    assert_eq!(live.get(&None).map(String::as_str), Some("m-shared"));
    let (info, _) = app.store.load_model(&own).await.unwrap().unwrap();
    assert_eq!(info.tenant_id, Some(app.tenant));
    assert!(info.trained_from.is_some() && info.trained_to.is_some());
    assert!(info.metrics["model"]["auc"].as_f64().is_some());
    assert!(info
        .feature_schema
        .iter()
        .any(|f| f == "hours_since_last_scan"));

    // Its shipments are now scored by its own model; another tenant's by the shared one.
    let shipment = app.create_shipment(&key, "1ZOWNMODEL").await;
    let id = shipment["id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    app.post_events(
        &key,
        vec![event("1ZOWNMODEL", "2026-02-20T08:00:00-05:00", "M")],
    )
    .await;
    wait_for_prediction(&app, &key, &id, |p| p["model_version"] == own.as_str()).await;
    app.stop().await;
}
