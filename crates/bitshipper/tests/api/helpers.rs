//! Starting the application for a test and talking to it.

use bitshipper::settings::Settings;
use bitshipper::Application;
use bitshipper_core::TenantId;
use bitshipper_store::testing::{fresh_database_url, TestBackend};
use bitshipper_store::Store;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// Declares `sqlite::name` and `postgres::name` tests calling `name(TestBackend)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(bitshipper_store::testing::TestBackend::Sqlite).await } )+ }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(bitshipper_store::testing::TestBackend::Postgres).await } )+ }
    };
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub tenant: TenantId,
    pub admin_key: String,
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn spawn_app(backend: TestBackend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(
    backend: TestBackend,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let database_url = fresh_database_url(backend).await.expect("test database");
    spawn_on(&database_url, configure).await
}

/// Starts an application on an existing database.
pub async fn spawn_on(database_url: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        database_url: database_url.to_string(),
        ..Settings::default()
    };
    settings.security.key_file = Some(
        bitshipper_store::testing::key_file_for(database_url)
            .display()
            .to_string(),
    );
    // The lake has its own tests (crates/bitshipper-lake, tests/api/analytics.rs); elsewhere it
    // would only add a writer per test app.
    settings.lake.enabled = false;
    configure(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .expect("application runs");
    });
    let (tenant, key) = bitshipper::admin::create_tenant(&store, "Test Tenant")
        .await
        .expect("tenant");
    TestApp {
        base,
        client: reqwest::Client::new(),
        store,
        tenant: tenant.id,
        admin_key: key.secret,
        database_url: database_url.to_string(),
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the application and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A second tenant with its own admin key.
    pub async fn other_tenant(&self) -> (TenantId, String) {
        let (t, k) = bitshipper::admin::create_tenant(&self.store, "Other Tenant")
            .await
            .expect("tenant");
        (t.id, k.secret)
    }

    pub async fn key_with(&self, scopes: &str) -> String {
        let scopes = bitshipper_core::scope::parse_scopes(scopes).expect("scopes");
        self.store
            .create_api_key(self.tenant, "test", &scopes, None)
            .await
            .expect("key")
            .secret
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_events(&self, key: &str, events: Vec<Value>) -> Response {
        self.post("/v1/events", key, &json!({ "events": events }))
            .await
    }

    pub async fn create_shipment(&self, key: &str, tracking: &str) -> Value {
        let r = self
            .post(
                "/v1/shipments",
                key,
                &json!({"carrier":"ups","tracking_number":tracking,"service_level":"ground",
                        "recipient":{"name":"Ada Lovelace","email":"ada@example.com","phone":"+1 502 555 0100",
                                     "address":{"line1":"1 Main St","city":"Louisville","region":"KY","postal_code":"40213","country":"US"}},
                        "weight":{"value":2.5,"unit":"lb"},"ship_date":"2026-11-20","promised_delivery_date":"2026-11-24",
                        "reference":"PO-1001","metadata":{"warehouse":"east"}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.expect("json")
    }

    /// Creates a shipment from a whole body; panics unless 201.
    pub async fn create_shipment_with(&self, key: &str, body: &Value) -> Value {
        let r = self.post("/v1/shipments", key, body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.expect("json")
    }

    /// Polls the shipment until `check` holds (at most 5 s).
    pub async fn wait_for_shipment(
        &self,
        key: &str,
        carrier: &str,
        tracking: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let r = self
                .get(
                    &format!("/v1/shipments/lookup?carrier={carrier}&tracking_number={tracking}"),
                    key,
                )
                .await;
            if r.status() == StatusCode::OK {
                let v: Value = r.json().await.expect("json");
                if check(&v) {
                    return v;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "shipment {tracking} never reached the expected state"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

pub fn event(tracking: &str, at: &str, code: &str) -> Value {
    json!({"carrier":"ups","tracking_number":tracking,"occurred_at":at,"raw_code":code,
           "message":"scan","location":{"city":"Louisville","region":"KY","country":"US","postal_code":"40213","lat":38.17,"lon":-85.73}})
}

pub async fn problem(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let v: Value = r.json().await.expect("problem json");
    assert_eq!(v["status"], status.as_u16());
    assert!(v["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("https://bitshipper.dev/problems/")));
    v
}

/// The fields named by a problem's `errors`.
pub fn problem_fields(p: &Value) -> Vec<String> {
    p["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `bitshipper serve` as a separate process on `url` with `args` and `env` added;
/// returns it (killed on drop) and its base URL once it serves.
pub async fn start_server(url: &str, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bitshipper"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
        .args(args)
        .envs(env.iter().copied())
        .env("BITSHIPPER_LOG__LEVEL", "warn")
        .env(
            "BITSHIPPER_SECURITY__KEY_FILE",
            bitshipper_store::testing::key_file_for(url),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if let Some(rest) = line.split("serving on ").nth(1) {
                return rest.split_whitespace().next().expect("url").to_string();
            }
        }
        panic!("server exited before serving");
    })
    .await
    .expect("server announces its address");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}
