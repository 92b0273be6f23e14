//! Tenant isolation: tenant A's keys get 404 for every shipment, event and key of tenant B. The
//! walk covers every route with an id in the OpenAPI document, so a new route cannot be missed.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both!(foreign_ids_are_not_found_on_every_route);

async fn foreign_ids_are_not_found_on_every_route(b: TestBackend) {
    let app = spawn_app(b).await;
    let (b_tenant, b_admin) = app.other_tenant().await;
    let b_shipment = app.create_shipment(&b_admin, "1ZTENANTB").await;
    app.post_events(
        &b_admin,
        vec![event("1ZTENANTB", "2026-11-20T10:00:00Z", "I")],
    )
    .await;
    app.wait_for_shipment(&b_admin, "ups", "1ZTENANTB", |s| s["events_count"] == 1)
        .await;
    let b_key: Value = app
        .post(
            "/v1/api-keys",
            &b_admin,
            &json!({"name":"b","scopes":["read"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let b_shipment_id = b_shipment["id"].as_str().unwrap();
    let b_key_id = b_key["id"].as_str().unwrap();
    let b_user = app
        .store
        .create_user(
            b_tenant,
            "someone@tenant-b.example",
            bitshipper_core::Role::Viewer,
            "x",
        )
        .await
        .unwrap();
    let b_user_id = b_user.id.to_string();

    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut walked = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        if !path.contains("{id}") {
            continue;
        }
        let id = if path.starts_with("/v1/api-keys") {
            b_key_id
        } else if path.starts_with("/v1/users") {
            b_user_id.as_str()
        } else {
            b_shipment_id
        };
        let url = path.replace("{id}", id);
        for method in ops.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let r = app
                .client
                .request(method.clone(), app.url(&url))
                .bearer_auth(&app.admin_key)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::NOT_FOUND,
                "{method} {url} must not reveal tenant B's data"
            );
            walked += 1;
        }
    }
    assert!(walked >= 6, "walked only {walked} routes");
    // The answers were plain 404s, but the attempts were counted.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for resource in ["shipment", "api_key", "user"] {
        assert!(
            metrics.contains(&format!(
                "bitshipper_cross_tenant_attempts_total{{resource=\"{resource}\"}}"
            )),
            "cross-tenant attempts on {resource} are counted"
        );
    }

    let r = app
        .get(
            "/v1/shipments/lookup?carrier=ups&tracking_number=1ZTENANTB",
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let list: Value = app
        .get("/v1/shipments", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert!(list["data"].as_array().unwrap().is_empty());
    let keys: Value = app
        .get("/v1/api-keys", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1, "only tenant A's own key");

    // Tenant B's data is untouched by A's attempts, and A's events with B's tracking number
    // create A's own shipment.
    app.post_events(
        &app.admin_key,
        vec![event("1ZTENANTB", "2026-11-22T10:00:00Z", "D")],
    )
    .await;
    app.wait_for_shipment(&app.admin_key, "ups", "1ZTENANTB", |s| {
        s["status"] == "delivered"
    })
    .await;
    let b_view: Value = app
        .get(&format!("/v1/shipments/{b_shipment_id}"), &b_admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b_view["status"], "in_transit");
    assert_eq!(b_view["events_count"], 1);
    assert!(b_view["cancelled_at"].is_null());
    assert_eq!(
        app.get(&format!("/v1/api-keys/{b_key_id}"), &b_admin)
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}
