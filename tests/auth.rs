//! The auth API over real HTTP, against the store the environment selects.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};

use common::{PASSWORD, error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn register_returns_tokens_user_and_a_strict_refresh_cookie() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/auth/register",
            &json!({"username": "ada", "email": "Ada@Example.com", "password": PASSWORD, "confirm_password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["username"], "ada");
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["role"], "user");
    assert!(
        !body.to_string().contains("argon2"),
        "no password hash leaks: {body}"
    );
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(
        cookie.starts_with(&format!("refreshToken={refresh}; ")),
        "{cookie}"
    );
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/auth",
        "Max-Age=604800",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    // Plain HTTP to 127.0.0.1: a Secure cookie would be dropped by the browser.
    assert!(!cookie.contains("Secure"), "{cookie}");
    app.stop().await;
}

#[tokio::test]
async fn register_lists_every_bad_field_and_creates_nothing() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/auth/register",
            &json!({"username": "No", "email": "not-an-email", "password": "short", "confirm_password": "other"}),
            None,
        )
        .await;
    let (status, body) = error_code(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "validation_failed");
    let fields = body["error"]["fields"].as_object().unwrap();
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["email", "password", "username"],
        "confirm_password is ignored"
    );

    let (status, body) = error_code(app.post("/api/auth/register", &json!({}), None).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["fields"].as_object().unwrap().len(), 3);

    let res = app
        .post(
            "/api/auth/login",
            &json!({"username": "No", "password": "short"}),
            None,
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "nothing was created"
    );
    app.stop().await;
}

#[tokio::test]
async fn duplicate_username_or_email_is_a_conflict_naming_the_field() {
    let app = spawn_app().await;
    app.register("grace").await;
    let res = app
        .post(
            "/api/auth/register",
            &json!({"username": "grace", "email": "other@example.com", "password": PASSWORD, "confirm_password": PASSWORD}),
            None,
        )
        .await;
    let (status, body) = error_code(res).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"]["fields"]["username"].is_string(), "{body}");

    let res = app
        .post(
            "/api/auth/register",
            &json!({"username": "grace2", "email": "GRACE@example.com", "password": PASSWORD, "confirm_password": PASSWORD}),
            None,
        )
        .await;
    let (status, body) = error_code(res).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"]["fields"]["email"].is_string(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn login_returns_tokens_sets_cookie_and_records_last_login() {
    let app = spawn_app().await;
    let registered = app.register("linus").await;
    let res = app
        .post(
            "/api/auth/login",
            &json!({"username": "linus", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("refreshToken=")
    );
    let body: Value = res.json().await.unwrap();
    for key in [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "user",
    ] {
        assert!(body.get(key).is_some(), "{key} in {body}");
    }
    assert!(body["user"]["last_login"].is_string());
    let me: Value = app
        .get("/api/auth/me", body["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], registered.user_id.as_str());
    assert!(me["last_login"].is_string());
    assert!(me.get("password_hash").is_none());
    app.stop().await;
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let app = spawn_app().await;
    app.register("margaret").await;
    let mut timings = [Duration::ZERO; 2];
    let mut bodies = Vec::new();
    for _ in 0..3 {
        for (i, username) in ["margaret", "nobody-here"].into_iter().enumerate() {
            let started = Instant::now();
            let res = app
                .post(
                    "/api/auth/login",
                    &json!({"username": username, "password": "wrong password!"}),
                    None,
                )
                .await;
            timings[i] += started.elapsed();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            bodies.push(res.text().await.unwrap());
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    // Both pay for one argon2 verification; neither answers in a fraction of the other.
    let ratio = timings[1].as_secs_f64() / timings[0].as_secs_f64();
    println!("unknown-user / wrong-password login time ratio: {ratio:.2}");
    assert!((0.33..3.0).contains(&ratio), "ratio {ratio}");
    app.stop().await;
}

#[tokio::test]
async fn missing_login_fields_are_named() {
    let app = spawn_app().await;
    let (status, body) = error_code(
        app.post("/api/auth/login", &json!({"username": ""}), None)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["fields"]["username"].is_string());
    assert!(body["error"]["fields"]["password"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn me_refuses_missing_tampered_expired_and_unsigned_tokens() {
    let app = spawn_app().await;
    let session = app.register("tamper").await;
    assert_eq!(
        app.get("/api/auth/me", Some(&session.access_token))
            .await
            .status(),
        StatusCode::OK
    );

    let (status, _) = error_code(app.get("/api/auth/me", None).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Tampered: the payload says admin, the signature is the user's.
    let parts: Vec<&str> = session.access_token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(
        app.get("/api/auth/me", Some(&forged)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // alg: none with the same claims and no signature.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    assert_eq!(
        app.get("/api/auth/me", Some(&unsigned)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Expired, but properly signed with the server's key.
    let keys =
        longin_api::auth::jwt::JwtKeys::new(app.jwt_secret.as_bytes(), Duration::from_secs(900));
    let mut expired: longin_api::auth::jwt::AccessClaims =
        keys.verify(&session.access_token).unwrap();
    expired.iat -= 7200;
    expired.exp = chrono::Utc::now().timestamp() - 3600;
    let expired = keys.sign(&expired).unwrap();
    let (status, body) = error_code(app.get("/api/auth/me", Some(&expired)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // Signed with the right key but another algorithm.
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &keys.verify(&session.access_token).unwrap(),
        &jsonwebtoken::EncodingKey::from_secret(app.jwt_secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        app.get("/api/auth/me", Some(&hs512)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // The refresh token is no access token.
    assert_eq!(
        app.get("/api/auth/me", Some(&session.refresh_token))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn refresh_rotates_tokens_from_body_or_cookie() {
    let app = spawn_app().await;
    let first = app.register("rotor").await;

    let res = app
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": first.refresh_token}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let second = common::session_from(res.json().await.unwrap());
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(
        app.get("/api/auth/me", Some(&second.access_token))
            .await
            .status(),
        StatusCode::OK
    );

    let res = app
        .client
        .post(app.url("/api/auth/refresh"))
        .header(
            "cookie",
            format!("theme=dark; refreshToken={}", second.refresh_token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let third = common::session_from(res.json().await.unwrap());
    assert_ne!(third.refresh_token, second.refresh_token);

    let (status, _) = error_code(
        app.client
            .post(app.url("/api/auth/refresh"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no token at all");
    let (status, _) = error_code(
        app.post(
            "/api/auth/refresh",
            &json!({"refresh_token": "made-up"}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "unknown token");
    app.stop().await;
}

#[tokio::test]
async fn reused_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let first = app.register("replay").await;
    let other_session = app.login("replay").await;

    let res = app
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": first.refresh_token}),
            None,
        )
        .await;
    let newer = common::session_from(res.json().await.unwrap());

    // An attacker replays the spent token: refused, and the family dies with it.
    let (status, body) = error_code(
        app.post(
            "/api/auth/refresh",
            &json!({"refresh_token": first.refresh_token}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let res = app
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": newer.refresh_token}),
            None,
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the newer token is dead too"
    );

    // Another sign-in of the same user is another family and lives on.
    let res = app
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": other_session.refresh_token}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_replays_of_one_refresh_token_leave_no_live_session() {
    // Eight simultaneous spends of one token: the spend is atomic, so at most one
    // wins; the others are reuse and revoke the family, so whatever the winner got is
    // dead too. (Whether the winner's answer is 200 or 401 depends on who is first.)
    let app = spawn_app().await;
    let session = app.register("racer").await;
    let body = json!({"refresh_token": session.refresh_token});
    let attempts = (0..8).map(|_| app.post("/api/auth/refresh", &body, None));
    let responses = futures::future::join_all(attempts).await;
    let statuses: Vec<StatusCode> = responses.iter().map(reqwest::Response::status).collect();
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    let mut winners = Vec::new();
    for res in responses {
        if res.status() == StatusCode::OK {
            winners.push(common::session_from(res.json().await.unwrap()));
        }
    }
    assert!(winners.len() <= 1, "{statuses:?}");
    for winner in winners {
        let res = app
            .post(
                "/api/auth/refresh",
                &json!({"refresh_token": winner.refresh_token}),
                None,
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "the family was revoked"
        );
    }
    let res = app.post("/api/auth/refresh", &body, None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn logout_revokes_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    let session = app.register("leaver").await;
    let res = app
        .client
        .post(app.url("/api/auth/logout"))
        .header("cookie", format!("refreshToken={}", session.refresh_token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("refreshToken=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
    let res = app
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": session.refresh_token}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Signing out twice is harmless.
    let res = app
        .post(
            "/api/auth/logout",
            &json!({"refresh_token": session.refresh_token}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.stop().await;
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_account_with_retry_after() {
    let app = spawn_app().await;
    app.register("target").await;
    for _ in 0..10 {
        let res = app
            .post(
                "/api/auth/login",
                &json!({"username": "target", "password": "guess guess!"}),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app
        .post(
            "/api/auth/login",
            &json!({"username": "target", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry: u64 = res.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=901).contains(&retry), "Retry-After {retry}");
    let (_, body) = error_code(res).await;
    assert_eq!(body["error"]["code"], "too_many_requests");
    // Other accounts are not locked by someone guessing at this one.
    app.register("bystander").await;
    app.login("bystander").await;
    app.stop().await;
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_client() {
    let app = spawn_app_with(|config| config.client_limit.max_failures = 5).await;
    app.register("victim").await;
    for i in 0..5 {
        let res = app
            .post(
                "/api/auth/login",
                &json!({"username": format!("user{i}"), "password": "guess guess!"}),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app
        .post(
            "/api/auth/login",
            &json!({"username": "victim", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(RETRY_AFTER));
    app.stop().await;
}

#[tokio::test]
async fn hundred_concurrent_registrations_with_distinct_names_all_succeed() {
    let app = spawn_app().await;
    let requests = (0..100).map(|i| {
        let body = json!({"username": format!("user-{i}"), "email": format!("user{i}@example.com"), "password": PASSWORD, "confirm_password": PASSWORD});
        let app = &app;
        async move { app.post("/api/auth/register", &body, None).await }
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(requests)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    let admin = app.admin("counter").await;
    let page: Value = app
        .get("/api/admin/users?per_page=500", Some(&admin.access_token))
        .await
        .json()
        .await
        .unwrap();
    // The hundred, the admin, and the harness's first account.
    assert_eq!(page["total"], 102);
    app.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_registrations_of_one_name_let_exactly_one_through() {
    let app = spawn_app().await;
    let requests = (0..20).map(|i| {
        let body = json!({"username": "contested", "email": format!("c{i}@example.com"), "password": PASSWORD, "confirm_password": PASSWORD});
        let app = &app;
        async move { app.post("/api/auth/register", &body, None).await }
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(requests)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        19,
        "{statuses:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn closed_registration_refuses_sign_ups() {
    let app = spawn_app_with(|config| config.open_registration = false).await;
    let res = app
        .post(
            "/api/auth/register",
            &json!({"username": "late", "email": "late@example.com", "password": PASSWORD, "confirm_password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(error_code(res).await.0, StatusCode::FORBIDDEN);
    app.stop().await;
}
