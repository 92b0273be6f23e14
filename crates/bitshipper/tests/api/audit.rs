//! The audit log through the API and the CLI: key changes are recorded, only admins read it,
//! each tenant sees its own chain, and `bitshipper audit verify` checks it.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(key_changes_are_audited_and_verifiable);

async fn key_changes_are_audited_and_verifiable(b: TestBackend) {
    // Keys are looked up on every request, so a revocation by the CLI (another process) shows
    // at once; with the cache it would within `key_cache_seconds`.
    let app = spawn_app_with(b, |s| s.limits.key_cache_seconds = 0).await;
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

    // Operators manage keys from the command line too; that is audited as well.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bitshipper"))
            .args(args)
            .args(["--database-url", &app.database_url])
            .env(
                "BITSHIPPER_SECURITY__KEY_FILE",
                bitshipper_store::testing::key_file_for(&app.database_url),
            )
            .output()
            .unwrap()
    };
    let reader_id = app
        .store
        .list_api_keys(app.tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.scopes == [bitshipper_core::Scope::Read])
        .unwrap()
        .id
        .to_string();
    let tenant = app.tenant.to_string();
    let listed = cli(&["keys", "list", "--tenant", &tenant]);
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && listing.contains(&reader_id) && listing.contains("revoked"),
        "{listing}"
    );
    assert!(cli(&["keys", "revoke", "--tenant", &tenant, &reader_id])
        .status
        .success());
    assert!(
        !cli(&["keys", "revoke", "--tenant", &tenant, &reader_id])
            .status
            .success(),
        "revoking twice is an error"
    );
    problem(
        app.get("/v1/shipments", &reader).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let page: Value = app
        .get("/v1/audit?limit=1", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"][0]["action"], "api_key.revoked");
    assert_eq!(page["data"][0]["actor"], "cli");

    let out = cli(&["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("intact"), "{text}");
    app.stop().await;
}
