//! People: login with a session cookie, CSRF on cookie writes, roles checked on every route of
//! the OpenAPI document, invitations, disabling, lockout and the TOTP second factor.

use crate::helpers::*;
use crate::on_both;
use bitshipper_core::Role;
use bitshipper_store::testing::TestBackend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both!(
    sessions_read_need_csrf_to_write_and_roles_gate_every_route,
    invitations_lockout_disabling_and_second_factor
);

const PASSWORD: &str = "amber-lantern-quarry-41";

struct Session {
    cookie: String,
    csrf: String,
    body: Value,
}

async fn add_user(app: &TestApp, email: &str, role: Role) {
    let hash = bitshipper_api::credentials::hash_password(PASSWORD.into())
        .await
        .unwrap();
    app.store
        .create_user(app.tenant, email, role, &hash)
        .await
        .unwrap();
}

async fn login_raw(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn login(app: &TestApp, email: &str) -> Session {
    let r = login_raw(app, json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let set_cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    Session {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
        body,
    }
}

async fn call(
    app: &TestApp,
    s: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
    csrf: bool,
) -> reqwest::Response {
    let mut r = app
        .client
        .request(method, app.url(path))
        .header("cookie", &s.cookie);
    if csrf {
        r = r.header("x-csrf-token", &s.csrf);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

fn rank(role: &str) -> usize {
    ["viewer", "analyst", "admin", "owner"]
        .iter()
        .position(|r| *r == role)
        .unwrap()
}

async fn sessions_read_need_csrf_to_write_and_roles_gate_every_route(b: TestBackend) {
    let app = spawn_app(b).await;
    let writer = app.key_with("read,write").await;
    app.create_shipment(&writer, "1ZSESSION1").await;
    add_user(&app, "owner@acme.example", Role::Owner).await;
    add_user(&app, "admin@acme.example", Role::Admin).await;
    add_user(&app, "analyst@acme.example", Role::Analyst).await;
    add_user(&app, "viewer@acme.example", Role::Viewer).await;

    let wrong = login_raw(
        &app,
        json!({"email":"owner@acme.example","password":"not-the-password"}), // pragma: allowlist secret (a wrong password on purpose)
    )
    .await;
    let p = problem(wrong, StatusCode::UNAUTHORIZED).await;
    assert!(p["type"].as_str().unwrap().ends_with("login-failed"));
    let unknown = login_raw(
        &app,
        json!({"email":"nobody@acme.example","password":PASSWORD}),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    // A session reads; a write without the CSRF token is refused, with it accepted.
    let owner = login(&app, "owner@acme.example").await;
    assert_eq!(owner.body["role"], "owner");
    let list = call(&app, &owner, Method::GET, "/v1/shipments", None, false).await;
    assert_eq!(list.status(), StatusCode::OK);
    let body = json!({"carrier":"ups","tracking_number":"1ZSESSION2"});
    let refused = call(
        &app,
        &owner,
        Method::POST,
        "/v1/shipments",
        Some(body.clone()),
        false,
    )
    .await;
    let p = problem(refused, StatusCode::FORBIDDEN).await;
    assert!(p["type"].as_str().unwrap().ends_with("csrf"));
    let mut forged = Session {
        csrf: "forged".into(),
        cookie: owner.cookie.clone(),
        body: Value::Null,
    };
    let refused = call(
        &app,
        &forged,
        Method::POST,
        "/v1/shipments",
        Some(body.clone()),
        true,
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    forged.csrf = owner.csrf.clone();
    let created = call(
        &app,
        &forged,
        Method::POST,
        "/v1/shipments",
        Some(body),
        true,
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    // Every operation in the document states its minimum role; every role below it gets 403,
    // every role at or above it gets past authorization.
    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = [
        ("viewer", login(&app, "viewer@acme.example").await),
        ("analyst", login(&app, "analyst@acme.example").await),
        ("admin", login(&app, "admin@acme.example").await),
        ("owner", login(&app, "owner@acme.example").await),
    ];
    let mut checked = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let needed = op["x-minimum-role"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} states no minimum role"));
            assert!(op["x-required-scope"].is_string(), "{method} {path}");
            if needed == "none" || path == "/v1/auth/logout" {
                continue;
            }
            let url = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = (method != Method::GET).then(|| json!({}));
            for (role, session) in &sessions {
                let r = call(&app, session, method.clone(), &url, body.clone(), true).await;
                if rank(role) < rank(needed) {
                    assert_eq!(
                        r.status(),
                        StatusCode::FORBIDDEN,
                        "{role} on {method} {path}"
                    );
                } else {
                    assert!(
                        r.status() != StatusCode::FORBIDDEN
                            && r.status() != StatusCode::UNAUTHORIZED,
                        "{role} on {method} {path} got {}",
                        r.status()
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 80, "checked only {checked} route × role pairs");

    // API keys are never owners or people.
    let r = app
        .client
        .put(app.url("/v1/tenant/security"))
        .bearer_auth(&app.admin_key)
        .json(&json!({"require_second_factor": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Logout ends the session.
    let r = call(&app, &owner, Method::POST, "/v1/auth/logout", None, true).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = call(&app, &owner, Method::GET, "/v1/shipments", None, false).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The code of the step `steps_ahead` steps from now.
fn code_at(base32_secret: &str, steps_ahead: u64) -> String {
    let secret = totp_rs::Secret::Encoded(base32_secret.to_string())
        .to_bytes()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, secret)
        .unwrap()
        .generate(now + 30 * steps_ahead)
}

fn current_code(base32_secret: &str) -> String {
    code_at(base32_secret, 0)
}

async fn invitations_lockout_disabling_and_second_factor(b: TestBackend) {
    let app = spawn_app(b).await;
    add_user(&app, "owner@acme.example", Role::Owner).await;
    let owner = login(&app, "owner@acme.example").await;

    // Invitation by one-time link.
    let r = call(
        &app,
        &owner,
        Method::POST,
        "/v1/users/invitations",
        Some(json!({"email":"new.viewer@acme.example","role":"viewer"})),
        true,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let accept = |password: &str| {
        app.client
            .post(app.url("/v1/invitations/accept"))
            .json(&json!({"token": token, "password": password}))
            .send()
    };
    let weak = problem(
        accept("password1").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(weak["errors"][0]["field"], "password");
    assert_eq!(
        accept(PASSWORD).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        accept(PASSWORD).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "an invitation works once"
    );
    let viewer = login(&app, "new.viewer@acme.example").await;
    assert_eq!(viewer.body["role"], "viewer");
    let viewer_id = viewer.body["user_id"].as_str().unwrap().to_string();

    // Disabling a user ends their sessions at once.
    let r = call(
        &app,
        &owner,
        Method::PATCH,
        &format!("/v1/users/{viewer_id}"),
        Some(json!({"disabled": true})),
        true,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = call(&app, &viewer, Method::GET, "/v1/shipments", None, false).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = login_raw(
        &app,
        json!({"email":"new.viewer@acme.example","password":PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Five failures lock the account, even against the right password afterwards.
    add_user(&app, "victim@acme.example", Role::Viewer).await;
    for _ in 0..5 {
        let r = login_raw(
            &app,
            json!({"email":"victim@acme.example","password":"guess-guess-guess"}), // pragma: allowlist secret (a wrong password on purpose)
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login_raw(
        &app,
        json!({"email":"victim@acme.example","password":PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));

    // Changing the login email asks for the password again and ends other sessions.
    add_user(&app, "mover@acme.example", Role::Analyst).await;
    let mover = login(&app, "mover@acme.example").await;
    let other_device = login(&app, "mover@acme.example").await;
    let change = |password: &str, email: &str| {
        call(
            &app,
            &mover,
            Method::POST,
            "/v1/auth/email",
            Some(json!({"current_password": password, "new_email": email})),
            true,
        )
    };
    let p = problem(
        change("wrong-password-here", "moved@acme.example").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await; // pragma: allowlist secret (a wrong password on purpose)
    assert_eq!(p["errors"][0]["field"], "current_password");
    let p = problem(
        change(PASSWORD, "not-an-email").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "new_email");
    problem(
        change(PASSWORD, "owner@acme.example").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        change(PASSWORD, "moved@acme.example").await.status(),
        StatusCode::NO_CONTENT
    );
    let r = call(
        &app,
        &other_device,
        Method::GET,
        "/v1/auth/session",
        None,
        false,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "other sessions end");
    let r = call(&app, &mover, Method::GET, "/v1/auth/session", None, false).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["email"],
        "moved@acme.example"
    );
    login(&app, "moved@acme.example").await;

    // Second factor: setup needs the password again; then login needs the code.
    let r = call(
        &app,
        &owner,
        Method::POST,
        "/v1/auth/totp",
        Some(json!({"current_password":"wrong"})), // pragma: allowlist secret (a wrong password on purpose)
        true,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = call(
        &app,
        &owner,
        Method::POST,
        "/v1/auth/totp",
        Some(json!({"current_password":PASSWORD})),
        true,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let setup: Value = r.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(setup["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let r = call(
        &app,
        &owner,
        Method::POST,
        "/v1/auth/totp/confirm",
        Some(json!({"code":"000000"})),
        true,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Kept, not recomputed below: a 30-second step may end between the two requests.
    let confirmed_with = current_code(&secret);
    let r = call(
        &app,
        &owner,
        Method::POST,
        "/v1/auth/totp/confirm",
        Some(json!({"code": confirmed_with})),
        true,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = login_raw(
        &app,
        json!({"email":"owner@acme.example","password":PASSWORD}),
    )
    .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"][0]["field"], "totp_code");
    // The code that confirmed the setup is spent; the next step's code works (one step of skew).
    let r = login_raw(
        &app,
        json!({"email":"owner@acme.example","password":PASSWORD,"totp_code": confirmed_with}),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a code is accepted once"
    );
    let r = login_raw(
        &app,
        json!({"email":"owner@acme.example","password":PASSWORD,"totp_code": code_at(&secret, 1)}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    // The owner requires a second factor for everyone: a user without one can only set it up.
    let r = call(
        &app,
        &owner,
        Method::PUT,
        "/v1/tenant/security",
        Some(json!({"require_second_factor": true})),
        true,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    add_user(&app, "analyst@acme.example", Role::Analyst).await;
    let analyst = login(&app, "analyst@acme.example").await;
    assert_eq!(analyst.body["second_factor_setup_required"], true);
    let r = call(&app, &analyst, Method::GET, "/v1/shipments", None, false).await;
    let p = problem(r, StatusCode::FORBIDDEN).await;
    assert!(p["type"]
        .as_str()
        .unwrap()
        .ends_with("second-factor-required"));
    let r = call(&app, &analyst, Method::GET, "/v1/auth/session", None, false).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Every one of these steps is in the audit log.
    let audit: Value = app
        .get("/v1/audit?limit=200", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "login.failed",
        "login.locked",
        "login.succeeded",
        "user.invited",
        "user.created",
        "user.updated",
        "user.email_changed",
        "user.second_factor_enabled",
        "tenant.security_changed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}
