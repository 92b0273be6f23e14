//! The audit log through the API and the CLI: key changes are recorded, only admins read it,
//! each tenant sees its own chain, and `bitshipper audit verify` checks it.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(key_changes_are_audited_and_verifiable);

async fn key_changes_are_audited_and_verifiable(b: TestBackend) {
    let app = spawn_app(b).await;
    let created: Value = app
        .post(
            "/v1/api-keys",
            &app.admin_key,
            &json!({"name": "scanner", "scopes": ["ingest"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let r = app
        .client
        .delete(app.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let page: Value = app
        .get("/v1/audit?limit=2", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let entries = page["data"].as_array().unwrap();
    assert_eq!(entries[0]["action"], "api_key.revoked");
    assert_eq!(entries[0]["target"], format!("api_key:{id}"));
    assert_eq!(entries[1]["action"], "api_key.created");
    assert_eq!(entries[1]["details"]["scopes"], json!(["ingest"]));
    assert!(entries[1]["actor"]
        .as_str()
        .unwrap()
        .starts_with("api_key:"));
    assert_eq!(entries[0]["prev_hash"], entries[1]["hash"]);
    assert!(
        !entries[1]
            .to_string()
            .contains(created["secret"].as_str().unwrap()),
        "secrets never reach the audit log"
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get(&format!("/v1/audit?cursor={cursor}"), &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<_> = rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        ["api_key.created", "tenant.created"],
        "tenant creation and its first key come first"
    );

    let reader = app.key_with("read").await;
    problem(app.get("/v1/audit", &reader).await, StatusCode::FORBIDDEN).await;
    let (_, other) = app.other_tenant().await;
    let theirs: Value = app.get("/v1/audit", &other).await.json().await.unwrap();
    assert!(theirs["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["target"] != format!("api_key:{id}")));
    problem(
        app.get("/v1/audit?cursor=x&limit=999", &app.admin_key)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bitshipper"))
        .args(["audit", "verify", "--database-url", &app.database_url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("intact"), "{text}");
    app.stop().await;
}
