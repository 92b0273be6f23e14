//! Personal data through the API: shown to authorized callers, never stored or logged in
//! plaintext, and gone everywhere after an erasure while other recipients are untouched.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::{contains_plain_or_hex, raw_dump, TestBackend};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;

on_both!(
    recipients_are_sealed_at_rest_and_erasable,
    erasure_requests_are_validated,
    retention_is_set_audited_and_run
);

const NAME: &str = "Octavia Brightwater";
const EMAIL: &str = "octavia.brightwater@example.net";
const PHONE: &str = "+1 212 555 0147";
const STREET: &str = "19 Lighthouse Lane";

fn octavia_shipment(tracking: &str) -> Value {
    json!({"carrier":"ups","tracking_number":tracking,
           "recipient":{"name":NAME,"email":EMAIL,"phone":PHONE,
                        "address":{"line1":STREET,"city":"Albany","region":"NY","postal_code":"12207","country":"US"}},
           "destination":{"line1":STREET,"city":"Albany","region":"NY","postal_code":"12207","country":"US"}})
}

async fn assert_no_trace(url: &str) {
    // Let the event log and the write-ahead log settle before reading the files.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dump = raw_dump(url).await.unwrap();
    for secret in [NAME, EMAIL, PHONE, STREET] {
        assert!(
            !contains_plain_or_hex(&dump, secret),
            "'{secret}' is readable in the stored data"
        );
    }
}

async fn recipients_are_sealed_at_rest_and_erasable(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("read,write,ingest").await;
    let other = app.create_shipment(&key, "1ZOTHER1").await;
    let r = app
        .client
        .post(app.url("/v1/shipments"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "create-octavia")
        .json(&octavia_shipment("1ZOCT1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["recipient"]["name"], NAME);
    app.create_shipment_with(&key, &octavia_shipment("1ZOCT2"))
        .await;
    let r = app
        .post_events(
            &key,
            vec![event("1ZOCT1", "2026-11-20T08:00:00-05:00", "I")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.wait_for_shipment(&key, "ups", "1ZOCT1", |s| s["events_count"] == 1)
        .await;

    // Authorized readers see the data; search by email finds both shipments.
    let got: Value = app
        .get(&format!("/v1/shipments/{id}"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["recipient"]["email"], EMAIL);
    assert_eq!(got["destination"]["line1"], STREET);
    let page: Value = app
        .get(
            "/v1/shipments?recipient_email=Octavia.Brightwater%40example.net",
            &key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_no_trace(&app.database_url).await;

    // Erase Octavia: both of her shipments lose her data; the other recipient keeps theirs.
    let r = app
        .post(
            "/v1/erasures",
            &app.admin_key,
            &json!({ "recipient_email": EMAIL }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["shipments"], 2);
    assert_eq!(report["keys_destroyed"], 1);
    assert_eq!(report["responses_removed"], 1);
    let got: Value = app
        .get(&format!("/v1/shipments/{id}"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert!(got.get("recipient").is_none_or(Value::is_null), "{got}");
    assert!(got["destination"].get("line1").is_none());
    assert_eq!(got["destination"]["city"], "Albany");
    assert_eq!(got["events_count"], 1, "tracking history stays");
    let kept: Value = app
        .get(
            &format!("/v1/shipments/{}", other["id"].as_str().unwrap()),
            &key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["recipient"], other["recipient"]);
    let audit: Value = app
        .get("/v1/audit", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert!(audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "personal_data.erased"));
    assert_no_trace(&app.database_url).await;
    app.stop().await;
}

async fn erasure_requests_are_validated(b: TestBackend) {
    let app = spawn_app(b).await;
    let reader = app.key_with("read,write").await;
    for (body, field) in [
        (json!({}), "recipient_email"),
        (
            json!({"recipient_email":"a@b.c","shipment_id":"0190b2f4-0000-7000-8000-000000000000"}),
            "recipient_email",
        ),
        (json!({"shipment_id":"nope"}), "shipment_id"),
        (json!({"recipient_email":"  "}), "recipient_email"),
    ] {
        let p = problem(
            app.post("/v1/erasures", &app.admin_key, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    problem(
        app.post("/v1/erasures", &reader, &json!({"recipient_email":"a@b.c"}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let unknown = app
        .post(
            "/v1/erasures",
            &app.admin_key,
            &json!({"recipient_email":"nobody@example.com"}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::OK);
}

/// Runs a real server with debug logging, sends it secrets and personal data, and greps
/// everything it printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_hold_secrets_or_personal_data() {
    let url = bitshipper_store::testing::fresh_database_url(TestBackend::Sqlite)
        .await
        .unwrap();
    let key_file = bitshipper_store::testing::key_file_for(&url);
    let bin = env!("CARGO_BIN_EXE_bitshipper");
    let created = std::process::Command::new(bin)
        .args(["tenants", "create", "Loggers", "--database-url", &url])
        .env("BITSHIPPER_SECURITY__KEY_FILE", &key_file)
        .output()
        .unwrap();
    assert!(created.status.success());
    let stdout = String::from_utf8_lossy(&created.stdout);
    let secret = stdout
        .split_whitespace()
        .find(|w| w.starts_with("bsk_live_"))
        .expect("the key is printed once")
        .to_string();
    let log_path = std::env::temp_dir().join(format!("bs-log-{}.txt", uuid::Uuid::new_v4()));
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
        .env("BITSHIPPER_LOG__LEVEL", "trace,hyper=debug,h2=debug")
        .env("BITSHIPPER_SECURITY__KEY_FILE", &key_file)
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(rest) = text.split("serving on ").nth(1) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("server starts");
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/v1/shipments"))
        .bearer_auth(&secret)
        .json(&octavia_shipment("1ZLOG1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = client
        .get(format!("{base}/v1/shipments?recipient_email={EMAIL}"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let wrong = format!("{secret}x");
    let r = client
        .get(format!("{base}/v1/shipments"))
        .bearer_auth(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    child.kill().await.unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("/v1/shipments"), "requests were logged");
    let kek_file = std::fs::read_to_string(&key_file).unwrap();
    let kek: Value = serde_json::from_str(&kek_file).unwrap();
    let kek_secrets: Vec<String> = kek["keys"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for needle in [&secret[..], &secret[9..], NAME, EMAIL, PHONE, STREET]
        .into_iter()
        .chain(kek_secrets.iter().map(String::as_str))
    {
        assert!(!logs.contains(needle), "the logs contain '{needle}'");
    }
    std::fs::remove_file(&log_path).ok();
}

async fn retention_is_set_audited_and_run(b: TestBackend) {
    let app = spawn_app(b).await;
    let put = |body: Value| {
        app.client
            .put(app.url("/v1/tenant/retention"))
            .bearer_auth(&app.admin_key)
            .json(&body)
            .send()
    };
    let p = problem(
        put(json!({"events_days": 0, "personal_data_days": null}))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "events_days");
    let r = put(json!({"events_days": 400, "personal_data_days": 90}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let got: Value = app
        .get("/v1/tenant/retention", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        got,
        json!({"events_days": 400, "personal_data_days": 90, "raw_payload_days": null})
    );
    let audit: Value = app
        .get("/v1/audit", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert!(audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "tenant.retention_changed"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bitshipper"))
        .args(["retention", "run", "--database-url", &app.database_url])
        .env(
            "BITSHIPPER_SECURITY__KEY_FILE",
            bitshipper_store::testing::key_file_for(&app.database_url),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("retention: "));
}
