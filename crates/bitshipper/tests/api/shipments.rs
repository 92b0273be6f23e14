//! Shipments through the API: create, get, lookup, list with filters and pages, update, cancel.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(shipment_lifecycle, listing_pages_and_filters);

async fn shipment_lifecycle(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("read,write").await;
    let s = app.create_shipment(&key, "1z shp 1").await;
    assert_eq!(s["tracking_number"], "1ZSHP1");
    assert_eq!(s["status"], "pre_transit");
    assert_eq!(s["recipient"]["address"]["city"], "Louisville");
    assert!((s["weight_grams"].as_f64().unwrap() - 1133.98).abs() < 0.01);
    let id = s["id"].as_str().unwrap();

    let got: Value = app
        .get(&format!("/v1/shipments/{id}"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, s);
    let dup = app
        .post(
            "/v1/shipments",
            &key,
            &json!({"carrier":"ups","tracking_number":"1ZSHP1"}),
        )
        .await;
    problem(dup, StatusCode::CONFLICT).await;

    let r = app
        .client
        .patch(app.url(&format!("/v1/shipments/{id}")))
        .bearer_auth(&key)
        .json(&json!({"reference":"PO-2002","metadata":{"warehouse":"west","category":"books"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["reference"], "PO-2002");
    assert_eq!(updated["metadata"]["category"], "books");
    assert_eq!(
        updated["service_level"], "ground",
        "fields not in the patch are kept"
    );

    let bad = app
        .client
        .patch(app.url(&format!("/v1/shipments/{id}")))
        .bearer_auth(&key)
        .json(&json!({"tracking_number":"CHANGED"}))
        .send()
        .await
        .unwrap();
    let p = problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        p["detail"].as_str().unwrap().contains("tracking_number"),
        "{p}"
    );

    let cancelled: Value = app
        .post(&format!("/v1/shipments/{id}/cancel"), &key, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    app.stop().await;
}

async fn listing_pages_and_filters(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("read,write").await;
    for i in 0..5 {
        app.create_shipment(&key, &format!("1ZLIST{i}")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/shipments?limit=2".to_string();
    loop {
        let page: Value = app.get(&path, &key).await.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        seen.extend(
            data.iter()
                .map(|s| s["tracking_number"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/shipments?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["1ZLIST4", "1ZLIST3", "1ZLIST2", "1ZLIST1", "1ZLIST0"]
    );

    let by_status: Value = app
        .get(
            "/v1/shipments?status=pre_transit&carrier=UPS&reference=PO-1001",
            &key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_status["data"].as_array().unwrap().len(), 5);
    let none: Value = app
        .get("/v1/shipments?status=delivered", &key)
        .await
        .json()
        .await
        .unwrap();
    assert!(none["data"].as_array().unwrap().is_empty());
    let future: Value = app
        .get("/v1/shipments?created_from=2099-01-01T00:00:00Z", &key)
        .await
        .json()
        .await
        .unwrap();
    assert!(future["data"].as_array().unwrap().is_empty());

    let p = problem(
        app.get(
            "/v1/shipments?status=lost_in_space&limit=0&colour=red",
            &key,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mut fields = problem_fields(&p);
    fields.sort();
    assert_eq!(fields, ["colour", "limit", "status"]);
    app.stop().await;
}
