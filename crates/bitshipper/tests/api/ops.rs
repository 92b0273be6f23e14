//! Health, readiness, metrics, the OpenAPI document and the API page.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::Value;

on_both!(operational_endpoints);

async fn operational_endpoints(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("ingest,read").await;
    app.post_events(&key, vec![event("1ZOPS", "2026-11-20T10:00:00Z", "I")])
        .await;
    app.wait_for_shipment(&key, "ups", "1ZOPS", |s| s["events_count"] == 1)
        .await;

    let health: Value = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["log_lag"], 0);

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "bitshipper_http_requests_total",
        "bitshipper_http_request_duration_seconds_bucket",
        "bitshipper_events_ingested_total",
        "bitshipper_events_applied_total",
        "bitshipper_log_lag_events",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(
        metrics.contains("route=\"/v1/shipments/lookup\""),
        "requests are labelled by route"
    );

    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/events",
        "/v1/shipments",
        "/v1/shipments/{id}",
        "/v1/shipments/{id}/events",
        "/v1/api-keys",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} undocumented");
    }
    assert!(spec["components"]["securitySchemes"]["api_key"].is_object());
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("swagger"));
    app.stop().await;
}
