//! API keys through the API: create (shown once), list, get, revoke; scopes enforced.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(keys_are_created_listed_and_revoked, scopes_are_enforced);

async fn keys_are_created_listed_and_revoked(b: TestBackend) {
    let app = spawn_app(b).await;
    let r = app
        .post(
            "/v1/api-keys",
            &app.admin_key,
            &json!({"name":"scanner","scopes":["ingest","read"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(
        app.get("/v1/shipments", &secret).await.status(),
        StatusCode::OK
    );

    let list: Value = app
        .get("/v1/api-keys", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let listed = list.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|k| k.get("secret").is_none() && k.get("key_hash").is_none()),
        "secrets are never listed"
    );
    let id = created["id"].as_str().unwrap();
    let one: Value = app
        .get(&format!("/v1/api-keys/{id}"), &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["scopes"], json!(["ingest", "read"]));

    let r = app
        .client
        .delete(app.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(
        app.get("/v1/shipments", &secret).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let one: Value = app
        .get(&format!("/v1/api-keys/{id}"), &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert!(one["revoked_at"].is_string());

    let bad = app
        .post(
            "/v1/api-keys",
            &app.admin_key,
            &json!({"name":"x","scopes":["root"]}),
        )
        .await;
    let p = problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&p), ["scopes[0]"]);
    app.stop().await;
}

async fn scopes_are_enforced(b: TestBackend) {
    let app = spawn_app(b).await;
    let read = app.key_with("read").await;
    let ingest = app.key_with("ingest").await;
    let p = problem(
        app.post_events(&read, vec![event("1Z", "2026-11-20T10:00:00Z", "I")])
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("ingest"));
    problem(
        app.get("/v1/shipments", &ingest).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.post(
            "/v1/shipments",
            &read,
            &json!({"carrier":"ups","tracking_number":"1Z"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(app.get("/v1/api-keys", &read).await, StatusCode::FORBIDDEN).await;
    assert_eq!(
        app.post_events(&ingest, vec![event("1Z", "2026-11-20T10:00:00Z", "I")])
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    app.stop().await;
}
