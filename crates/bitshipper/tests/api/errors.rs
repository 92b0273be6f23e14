//! Every kind of bad input gets the right 4xx problem naming the problem, and the valid events
//! of a mixed batch are still accepted.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(
    bad_event_input_is_refused_field_by_field,
    bad_requests_of_every_kind,
    mixed_batches_keep_the_valid_events
);

async fn bad_event_input_is_refused_field_by_field(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("ingest").await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T10:00:00"}),
            vec!["events[0].occurred_at", "events[0].status"],
        ),
        (
            json!({"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T10:00:00Z","status":"teleported"}),
            vec!["events[0].status"],
        ),
        (
            json!({"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T10:00:00Z","raw_code":"ZZ9"}),
            vec!["events[0].raw_code"],
        ),
        (
            json!({"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T10:00:00Z","status":"delivered","reason":"abducted"}),
            vec!["events[0].reason"],
        ),
        (
            json!({"carrier":42,"tracking_number":["x"],"occurred_at":true,"status":"delivered"}),
            vec![
                "events[0].carrier",
                "events[0].tracking_number",
                "events[0].occurred_at",
            ],
        ),
        (
            json!({"status":"delivered"}),
            vec![
                "events[0].carrier",
                "events[0].tracking_number",
                "events[0].occurred_at",
            ],
        ),
        (
            json!({"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T10:00:00Z","status":"delivered","location":{"lat":"north","lon":1}}),
            vec!["events[0].location.lat"],
        ),
        (json!("just a string"), vec!["events[0]"]),
    ];
    for (event, fields) in cases {
        let p = problem(
            app.post_events(&key, vec![event.clone()]).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(problem_fields(&p), fields, "for {event}");
        assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    app.stop().await;
}

async fn bad_requests_of_every_kind(b: TestBackend) {
    let app = spawn_app_with(b, |s| s.limits.max_batch_events = 10).await;
    let key = app.key_with("ingest,read,write").await;
    let post_raw = |body: &'static str, ct: &'static str| {
        app.client
            .post(app.url("/v1/events"))
            .bearer_auth(&key)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let p = problem(
        post_raw("{\"events\": [", "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("line 1"), "{p}");
    problem(
        post_raw("{}", "text/plain").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let p = problem(
        post_raw("{}", "application/json").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&p), ["events"]);
    let p = problem(
        post_raw("{\"events\":[],\"extra\":1}", "application/json")
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&p), ["extra"]);

    let too_many: Vec<Value> = (0..11)
        .map(|i| event(&format!("1Z{i}"), "2026-11-20T10:00:00Z", "I"))
        .collect();
    let p = problem(
        app.post_events(&key, too_many).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("at most 10"), "{p}");

    let huge = json!({"events":[{"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T10:00:00Z","status":"delivered","message":"x".repeat(2 * 1024 * 1024)}]});
    problem(
        app.post("/v1/events", &key, &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    // Shipment bodies: wrong types and missing fields name the field.
    let p = problem(
        app.post("/v1/shipments", &key, &json!({"carrier":"ups"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("tracking_number"),
        "{p}"
    );
    let p = problem(
        app.post(
            "/v1/shipments",
            &key,
            &json!({"carrier":"ups","tracking_number":"1Z","weight":{"value":"heavy","unit":"kg"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&p), ["weight.value"]);
    let p = problem(
        app.post(
            "/v1/shipments",
            &key,
            &json!({"carrier":"ups","tracking_number":"1Z","ship_date":"yesterday"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&p), ["ship_date"]);
    let p = problem(
        app.post(
            "/v1/shipments",
            &key,
            &json!({"carrier":"ups","tracking_number":"1Z","recipient":{"email":"not-an-email"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&p), ["recipient.email"]);
    let p = problem(
        app.get("/v1/shipments/lookup?carrier=ups", &key).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&p), ["tracking_number"]);

    // Authentication.
    let r = app
        .client
        .get(app.url("/v1/shipments"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
    problem(r, StatusCode::UNAUTHORIZED).await;
    problem(
        app.get("/v1/shipments", "bsk_live_not-a-real-key").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let r = app
        .client
        .get(app.url("/v1/shipments"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED).await;

    // Unknown ids and routes, wrong methods.
    problem(
        app.get("/v1/shipments/not-a-uuid", &key).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get(&format!("/v1/shipments/{}", uuid::Uuid::now_v7()), &key)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/v1/nothing-here", &key).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let r = app
        .client
        .put(app.url("/v1/events"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
    app.stop().await;
}

async fn mixed_batches_keep_the_valid_events(b: TestBackend) {
    let app = spawn_app(b).await;
    let key = app.key_with("ingest,read").await;
    let r = app
        .post_events(
            &key,
            vec![
                event("1ZMIX", "2026-11-20T10:00:00Z", "P"),
                json!({"carrier":"ups","tracking_number":"1ZMIX","occurred_at":"not a time","status":"delivered"}),
                event("1ZMIX", "2026-11-21T10:00:00Z", "O"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[1]["result"], "rejected");
    assert_eq!(results[1]["index"], 1);
    assert_eq!(results[1]["errors"][0]["field"], "events[1].occurred_at");
    assert_eq!(results[2]["result"], "accepted");
    app.wait_for_shipment(&key, "ups", "1ZMIX", |s| {
        s["status"] == "out_for_delivery" && s["events_count"] == 2
    })
    .await;
    app.stop().await;
}
