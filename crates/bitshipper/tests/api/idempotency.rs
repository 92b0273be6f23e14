//! `Idempotency-Key`: same key and body replay the first answer; other body 422; in progress 409;
//! keys are per tenant.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(idempotent_posts);

async fn idempotent_posts(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("ingest,read,write").await;
    let send = |k: &'static str, body: Value| {
        app.client
            .post(app.url("/v1/shipments"))
            .bearer_auth(&key)
            .header("idempotency-key", k)
            .json(&body)
            .send()
    };
    let first = send(
        "order-1",
        json!({"carrier":"ups","tracking_number":"1ZIDEM"}),
    )
    .await
    .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send(
        "order-1",
        json!({"carrier":"ups","tracking_number":"1ZIDEM"}),
    )
    .await
    .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "replayed, not a 409 duplicate"
    );
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    problem(
        send(
            "order-1",
            json!({"carrier":"ups","tracking_number":"1ZOTHER"}),
        )
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // A retry while the first is still running.
    app.store
        .begin_idempotency(app.tenant, "order-2", "in-flight")
        .await
        .unwrap();
    problem(
        send(
            "order-2",
            json!({"carrier":"ups","tracking_number":"1ZBUSY"}),
        )
        .await
        .unwrap(),
        StatusCode::CONFLICT,
    )
    .await;

    // Events: the replay appends nothing new.
    let batch = json!({"events":[event("1ZIDEV", "2026-11-20T10:00:00Z", "I")]});
    let post = || {
        app.client
            .post(app.url("/v1/events"))
            .bearer_auth(&key)
            .header("idempotency-key", "batch-1")
            .json(&batch)
            .send()
    };
    let head = || async {
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["log_head"]
            .as_i64()
            .unwrap()
    };
    let a: Value = post().await.unwrap().json().await.unwrap();
    let head_after_first = head().await;
    let b2: Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(a, b2);
    assert_eq!(
        head().await,
        head_after_first,
        "a replay appends nothing to the log"
    );

    // The same key in another tenant is another request.
    let (_, other) = app.other_tenant().await;
    let r = app
        .client
        .post(app.url("/v1/shipments"))
        .bearer_auth(&other)
        .header("idempotency-key", "order-1")
        .json(&json!({"carrier":"ups","tracking_number":"1ZIDEM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let theirs: Value = r.json().await.unwrap();
    assert_ne!(theirs["id"], first["id"]);

    let r = app
        .client
        .post(app.url("/v1/shipments"))
        .bearer_auth(&key)
        .header("idempotency-key", "")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST).await;
    app.stop().await;
}
