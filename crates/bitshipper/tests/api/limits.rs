//! Rate limits per API key and per address for failed authentication, and security headers.

use crate::helpers::*;
use crate::on_both;
use bitshipper_store::testing::TestBackend;
use reqwest::StatusCode;

on_both!(keys_and_guessers_are_rate_limited);

async fn keys_and_guessers_are_rate_limited(b: TestBackend) {
    let app = spawn_app_with(b, |s| {
        s.limits.requests_per_second_per_key = 1;
        s.limits.failed_auth_per_minute_per_ip = 3;
    })
    .await;
    let key = app.key_with("read").await;
    let other = app.key_with("read").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.get("/v1/shipments", &key).await.status());
    }
    assert_eq!(
        &statuses[..2],
        [StatusCode::OK, StatusCode::OK],
        "a burst of twice the rate passes"
    );
    let r = app.get("/v1/shipments", &key).await;
    let retry: u32 = r
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        app.get("/v1/shipments", &other).await.status(),
        StatusCode::OK,
        "keys are limited apart"
    );

    problem(
        app.get("/v1/shipments", "bsk_live_guess-1").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        app.get("/v1/shipments", "bsk_live_guess-2").await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;

    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        r.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
    assert_eq!(r.headers().get("x-frame-options").unwrap(), "DENY");
    assert_eq!(r.headers().get("referrer-policy").unwrap(), "no-referrer");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"));
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
    let behind_tls = app
        .client
        .get(app.url("/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(behind_tls.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
    app.stop().await;
}
