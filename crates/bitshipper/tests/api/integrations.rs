//! Provider integrations end to end: signed webhooks in, duplicates collapsing to one event,
//! forged signatures refused and counted, unknown codes kept as `unknown`, raw payloads
//! retrievable, CSV imports through the API and the CLI that add nothing the second time.

use crate::helpers::*;
use crate::on_both;
use bitshipper_providers::signature::sign;
use bitshipper_providers::Provider;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(
    signed_webhooks_become_events_once_and_forgeries_are_refused,
    csv_imports_report_bad_rows_and_add_nothing_twice
);

fn golden(provider: &str, case: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bitshipper-providers/tests/golden")
        .join(provider)
        .join(format!("{case}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected(provider: &str, case: &str) -> Vec<Value> {
    serde_json::from_slice(&golden(provider, &format!("{case}.expected"))).unwrap()
}

async fn endpoint(app: &TestApp, provider: &str) -> (String, String) {
    let r = app
        .post(
            "/v1/webhook-endpoints",
            &app.admin_key,
            &json!({"provider": provider, "name": format!("{provider} test")}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    (
        v["url_path"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

async fn deliver(
    app: &TestApp,
    path: &str,
    header: Option<(&str, String)>,
    body: &[u8],
) -> reqwest::Response {
    let mut r = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some((name, value)) = header {
        r = r.header(name, value);
    }
    r.send().await.unwrap()
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn signed_webhooks_become_events_once_and_forgeries_are_refused(b: TestBackend) {
    let app = spawn_app(b).await;
    let reader = app.key_with("read").await;
    let (path, secret) = endpoint(&app, "easypost").await;
    let body = golden("easypost", "delivered_full_history");
    let want = expected("easypost", "delivered_full_history");
    let signature = || ("x-hmac-signature", sign(Provider::EasyPost, &secret, &body));

    let r = deliver(&app, &path, Some(signature()), &body).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let result: Value = r.json().await.unwrap();
    assert_eq!(result["accepted"], want.len());
    let raw_id = result["raw_payload_id"].as_str().unwrap().to_string();
    let tracking = want[0]["tracking_number"].as_str().unwrap();
    let carrier = want[0]["carrier"].as_str().unwrap();
    let shipment = app
        .wait_for_shipment(&reader, carrier, tracking, |s| {
            s["events_count"] == want.len()
        })
        .await;

    // The same delivery again (providers retry): still one event each.
    let again = deliver(&app, &path, Some(signature()), &body).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        again["raw_payload_id"],
        raw_id.as_str(),
        "the payload is stored once"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let id = shipment["id"].as_str().unwrap();
    let timeline: Value = app
        .get(&format!("/v1/shipments/{id}/events"), &reader)
        .await
        .json()
        .await
        .unwrap();
    let events = timeline["events"].as_array().unwrap();
    assert_eq!(
        events.len(),
        want.len(),
        "a redelivered webhook adds nothing"
    );
    assert!(events
        .iter()
        .all(|e| e["raw_payload_id"] == raw_id.as_str()));
    assert_eq!(
        shipment["status"],
        want.last().unwrap()["status"],
        "the folded status follows the history"
    );

    // The raw payload is kept exactly, for audit (admin only).
    let raw = app
        .get(&format!("/v1/raw-payloads/{raw_id}"), &app.admin_key)
        .await;
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(raw.bytes().await.unwrap().to_vec(), body);
    problem(
        app.get(&format!("/v1/raw-payloads/{raw_id}"), &reader)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // A signature off by one byte: 401 and a metric; nothing stored.
    let mut forged = sign(Provider::EasyPost, &secret, &body).into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let r = deliver(
        &app,
        &path,
        Some(("x-hmac-signature", String::from_utf8(forged).unwrap())),
        &body,
    )
    .await;
    let p = problem(r, StatusCode::UNAUTHORIZED).await;
    assert!(p["type"].as_str().unwrap().ends_with("webhook-signature"));
    problem(
        deliver(&app, &path, None, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(metrics(&app)
        .await
        .contains("bitshipper_webhook_signature_failures_total{provider=\"easypost\"}"));

    // An unknown code is stored as unknown with its raw code visible, and counted.
    let unknown_body = golden("easypost", "unmapped_status");
    let unknown_want = expected("easypost", "unmapped_status");
    let r = deliver(
        &app,
        &path,
        Some((
            "x-hmac-signature",
            sign(Provider::EasyPost, &secret, &unknown_body),
        )),
        &unknown_body,
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let result: Value = r.json().await.unwrap();
    assert!(!result["unmapped_codes"].as_array().unwrap().is_empty());
    let unknown_event = unknown_want
        .iter()
        .find(|e| e["status"] == "unknown")
        .unwrap();
    let s = app
        .wait_for_shipment(
            &reader,
            unknown_event["carrier"].as_str().unwrap(),
            unknown_event["tracking_number"].as_str().unwrap(),
            |s| s["events_count"] == unknown_want.len(),
        )
        .await;
    let timeline: Value = app
        .get(
            &format!("/v1/shipments/{}/events", s["id"].as_str().unwrap()),
            &reader,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["status"] == "unknown" && e["raw_code"] == unknown_event["raw_code"]));
    assert!(metrics(&app)
        .await
        .contains("bitshipper_unmapped_codes_total{provider=\"easypost\""));

    // A truncated payload with a valid signature: 400 naming the problem.
    let truncated = &body[..body.len() / 3];
    let r = deliver(
        &app,
        &path,
        Some((
            "x-hmac-signature",
            sign(Provider::EasyPost, &secret, truncated),
        )),
        truncated,
    )
    .await;
    let p = problem(r, StatusCode::BAD_REQUEST).await;
    assert!(p["type"].as_str().unwrap().ends_with("invalid-payload"));
    assert!(p["errors"][0]["field"].is_string());

    // A provider without a signature scheme authenticates with the URL token.
    let (shippo_path, shippo_secret) = endpoint(&app, "shippo").await;
    let shippo = golden("shippo", "in_transit");
    problem(
        deliver(&app, &shippo_path, None, &shippo).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let with_token = format!("{shippo_path}?token={shippo_secret}");
    assert_eq!(
        deliver(&app, &with_token, None, &shippo).await.status(),
        StatusCode::ACCEPTED
    );

    // ShipEngine signs with RSA: the endpoint keeps its key set; the signature covers
    // `timestamp.body`.
    let (key, jwks) = bitshipper_providers::signature::testing::shipengine_key();
    problem(
        app.post(
            "/v1/webhook-endpoints",
            &app.admin_key,
            &json!({"provider": "shipengine", "name": "se"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let r = app
        .post(
            "/v1/webhook-endpoints",
            &app.admin_key,
            &json!({"provider": "shipengine", "name": "se", "jwks": serde_json::from_str::<Value>(&jwks).unwrap()}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert!(created.get("secret").is_none());
    let se_path = created["url_path"].as_str().unwrap().to_string();
    let se_body = golden("shipengine", "in_transit");
    let timestamp = chrono::Utc::now().to_rfc3339();
    let se_signature =
        bitshipper_providers::signature::testing::shipengine_sign(&key, &timestamp, &se_body);
    let se = |body: &[u8], signature: &str| {
        app.client
            .post(app.url(&se_path))
            .header("x-shipengine-rsa-sha256-key-id", "test-key-1")
            .header("x-shipengine-rsa-sha256-signature", signature.to_string())
            .header("x-shipengine-timestamp", timestamp.clone())
            .body(body.to_vec())
            .send()
    };
    assert_eq!(
        se(&se_body, &se_signature).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let mut altered = se_body.clone();
    altered[10] ^= 1;
    problem(
        se(&altered, &se_signature).await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // Revoked endpoints and unknown providers are not found.
    let list: Value = app
        .get("/v1/webhook-endpoints", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    let endpoint_id = path.rsplit('/').next().unwrap();
    let r = app
        .client
        .delete(app.url(&format!("/v1/webhook-endpoints/{endpoint_id}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    problem(
        deliver(&app, &path, Some(signature()), &body).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        deliver(
            &app,
            &format!("/v1/webhooks/nosuch/{endpoint_id}"),
            None,
            &body,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    app.stop().await;
}

const MAPPING: &str = r#"{"columns": {"carrier": "Carrier", "tracking_number": "Tracking", "occurred_at": "When",
  "raw_code": "Code", "message": "Description", "city": "City", "region": "State", "country": "Country",
  "reference": "Order", "metadata": {"warehouse": "Warehouse"}}}"#;

const CSV: &str = "Carrier,Tracking,When,Code,Description,City,State,Country,Order,Warehouse\n\
ups,1ZCSVA,2026-02-10 08:00:00,M,Label created,Louisville,KY,US,PO-1,east\n\
ups,1ZCSVA,2026-02-11 09:30:00,I,Departed facility,Louisville,KY,US,PO-1,east\n\
ups,1ZCSVA,2026-02-12 14:05:00,D,Delivered,Austin,TX,US,PO-1,east\n\
ups,1ZCSVB,2026-02-12 14:05:00,NOPE,Mystery,Austin,TX,US,PO-2,west\n\
ups,,2026-02-12 14:05:00,I,No tracking number,Austin,TX,US,PO-3,west\n\
ups,1ZCSVC,yesterday,I,Bad time,Austin,TX,US,PO-4,west\n";

async fn csv_imports_report_bad_rows_and_add_nothing_twice(b: TestBackend) {
    let app = spawn_app(b).await;
    let writer = app.key_with("read,write").await;
    let body = json!({"format": "csv", "mapping": serde_json::from_str::<Value>(MAPPING).unwrap(), "csv": CSV});
    let r = app.post("/v1/imports", &writer, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["rows"], 6);
    assert_eq!(first["events"], 4);
    assert_eq!(
        first["shipments_created"], 2,
        "1ZCSVA and 1ZCSVB; bad rows create nothing"
    );
    assert_eq!(
        first["unmapped_codes"],
        json!(["NOPE"]),
        "an unknown code is kept, not refused"
    );
    let lines: Vec<u64> = first["rejected_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [6, 7], "{first}");
    let shipment = app
        .wait_for_shipment(&writer, "ups", "1ZCSVA", |s| s["events_count"] == 3)
        .await;
    assert_eq!(shipment["status"], "delivered");
    assert_eq!(shipment["metadata"]["warehouse"], "east");
    assert_eq!(shipment["reference"], "PO-1");
    let mystery = app
        .wait_for_shipment(&writer, "ups", "1ZCSVB", |s| s["events_count"] == 1)
        .await;
    assert_eq!(mystery["status"], "unknown");

    let second: Value = app
        .post("/v1/imports", &writer, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["shipments_created"], 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let again = app
        .wait_for_shipment(&writer, "ups", "1ZCSVA", |_| true)
        .await;
    assert_eq!(again["events_count"], 3, "importing twice adds nothing");

    // Validation of the request itself.
    let p = problem(
        app.post(
            "/v1/imports",
            &writer,
            &json!({"format": "csv", "csv": CSV}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "mapping");
    let p = problem(
        app.post(
            "/v1/imports",
            &writer,
            &json!({"format": "telex", "payload": {}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "format");

    // The CLI streams the same file from disk, with a report of rejected rows.
    let dir = std::env::temp_dir().join(format!("bs-import-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv_path = dir.join("history.csv");
    std::fs::write(&csv_path, CSV.replace("1ZCSV", "1ZCLI")).unwrap();
    let mapping_path = dir.join("mapping.json");
    std::fs::write(&mapping_path, MAPPING).unwrap();
    let ups = dir.join("ups.json");
    std::fs::write(
        &ups,
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../bitshipper-providers/tests/golden/ups-track/full_history.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bitshipper"))
            .args(args)
            .args(["--database-url", &app.database_url])
            .env(
                "BITSHIPPER_SECURITY__KEY_FILE",
                bitshipper_store::testing::key_file_for(&app.database_url),
            )
            .env("BITSHIPPER_LOG__LEVEL", "warn")
            .output()
            .unwrap()
    };
    let tenant = app.tenant.to_string();
    for round in 0..2 {
        let out = run(&[
            "import",
            "--tenant",
            &tenant,
            "--format",
            "csv",
            "--mapping",
            mapping_path.to_str().unwrap(),
            "--quiet",
            csv_path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let created = if round == 0 {
            "2 shipment(s) created"
        } else {
            "0 shipment(s) created"
        };
        assert!(stdout.contains(created), "{stdout}");
        assert!(stdout.contains("2 rejected"), "{stdout}");
    }
    let report = std::fs::read_to_string(dir.join("history.csv.rejected.csv")).unwrap();
    assert!(report.starts_with("line,reason\n6,"), "{report}");
    let cli_shipment = app
        .wait_for_shipment(&writer, "ups", "1ZCLIA", |s| s["events_count"] == 3)
        .await;
    assert_eq!(cli_shipment["events_count"], 3);
    let out = run(&[
        "import",
        "--tenant",
        &tenant,
        "--format",
        "ups-track",
        "--quiet",
        ups.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "import",
        "--tenant",
        &tenant,
        "--format",
        "csv",
        csv_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "csv without a mapping is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mapping"));
    std::fs::remove_dir_all(dir).ok();
    app.stop().await;
}
