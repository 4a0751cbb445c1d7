//! Personal API tokens over real HTTP, against the store the environment selects: a
//! token acts as its owner everywhere but on the token routes, and stops at once when
//! revoked, expired or its account disabled. (The CLI's `token` commands are tested in
//! tests/cli_client.rs.)

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::Connection as _;

use common::ws::WsClient;
use common::{Session, TestApp, app_yaml, error_code, spawn_app, spawn_app_with};

const DAY_MS: i64 = 86_400_000;

async fn create(app: &TestApp, bearer: &str, body: &Value) -> reqwest::Response {
    app.post("/api/tokens", body, Some(bearer)).await
}

/// Creates the token `name` for `session`'s user; the token.
async fn new_token(app: &TestApp, session: &Session, name: &str) -> String {
    let res = create(app, &session.access_token, &json!({ "name": name })).await;
    assert_eq!(res.status(), StatusCode::CREATED, "create {name}");
    let body: Value = res.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn revoke(app: &TestApp, bearer: &str, name: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/api/tokens/{name}")))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

async fn me(app: &TestApp, bearer: &str) -> reqwest::Response {
    app.get("/api/auth/me", Some(bearer)).await
}

async fn database(app: &TestApp) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap()
}

fn millis(time: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn a_new_token_acts_as_its_owner_on_the_api() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let res = create(&app, &alice.access_token, &json!({"name": "ci"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], "ci");
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("lgn_") && token.len() > 40, "{token}");
    assert_eq!(
        millis(&body["expiresAt"]) - millis(&body["createdAt"]),
        90 * DAY_MS,
        "90 days by default: {body}"
    );

    let res = me(&app, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], alice.user_id);

    // Applications made with the token are the owner's.
    common::apply(&app, &token, &app_yaml("web", "busybox", 1, "")).await;
    for bearer in [&token, &alice.access_token] {
        let list: Value = app
            .get("/api/applications", Some(bearer))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["items"][0]["metadata"]["name"], "web", "{list}");
    }
    let res = app.get("/api/applications/web", Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);

    let res = create(
        &app,
        &alice.access_token,
        &json!({"name": "short", "expiresInDays": 7}),
    )
    .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        millis(&body["expiresAt"]) - millis(&body["createdAt"]),
        7 * DAY_MS
    );
    // `null` is the default, as the document allows.
    let res = create(
        &app,
        &alice.access_token,
        &json!({"name": "default", "expiresInDays": null}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        millis(&body["expiresAt"]) - millis(&body["createdAt"]),
        90 * DAY_MS
    );
    app.stop().await;
}

#[tokio::test]
async fn the_list_names_tokens_and_their_last_use_but_never_a_token() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let laptop = new_token(&app, &alice, "laptop").await;
    let ci = new_token(&app, &alice, "ci").await;
    assert_eq!(me(&app, &ci).await.status(), StatusCode::OK);

    let res = app.get("/api/tokens", Some(&alice.access_token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    for secret in [&laptop, &ci] {
        assert!(!text.contains(&secret[4..]), "a token leaks: {text}");
    }
    assert!(!text.contains("lgn_") && !text.contains("Hash"), "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    let items = list["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ci", "laptop"], "by name");
    for item in items {
        let mut keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["createdAt", "expiresAt", "lastUsedAt", "name"]);
    }
    assert!(items[0]["lastUsedAt"].is_string(), "ci was used: {list}");
    assert!(items[1]["lastUsedAt"].is_null(), "laptop was not: {list}");
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let token = new_token(&app, &alice, "ci").await;
    assert_eq!(me(&app, &token).await.status(), StatusCode::OK);

    let res = revoke(&app, &alice.access_token, "ci").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for path in ["/api/auth/me", "/api/applications"] {
        let (status, body) = error_code(app.get(path, Some(&token)).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
    let (status, _) = error_code(revoke(&app, &alice.access_token, "ci").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "revoked already");
    // The name is free again, and the new token is another.
    let again = new_token(&app, &alice, "ci").await;
    assert_ne!(again, token);
    assert_eq!(me(&app, &token).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &again).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let token = new_token(&app, &alice, "old").await;
    assert_eq!(me(&app, &token).await.status(), StatusCode::OK);

    let mut db = database(&app).await;
    sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE name = $2")
        .bind(longin_store::now_ms() - 1_000)
        .bind("old")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();

    let (status, body) = error_code(me(&app, &token).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    // Still listed, so its owner sees why it stopped working.
    let list: Value = app
        .get("/api/tokens", Some(&alice.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["name"], "old");
    app.stop().await;
}

#[tokio::test]
async fn a_disabled_users_tokens_are_refused_until_the_account_is_enabled() {
    let app = spawn_app().await;
    let admin = app.admin("warden").await;
    let user = app.register("mallory").await;
    let token = new_token(&app, &user, "ci").await;
    assert_eq!(me(&app, &token).await.status(), StatusCode::OK);

    let path = format!("/api/admin/users/{}", user.user_id);
    let disabled = app
        .patch(&path, &json!({"disabled": true}), &admin.access_token)
        .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    let (status, body) = error_code(me(&app, &token).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{body}"
    );
    let enabled = app
        .patch(&path, &json!({"disabled": false}), &admin.access_token)
        .await;
    assert_eq!(enabled.status(), StatusCode::OK);
    // Disabling suspends the tokens; it does not revoke them.
    assert_eq!(me(&app, &token).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_api_token_cannot_create_list_or_revoke_tokens() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let token = new_token(&app, &alice, "ci").await;

    let refused = [
        create(&app, &token, &json!({"name": "successor"})).await,
        app.get("/api/tokens", Some(&token)).await,
        revoke(&app, &token, "ci").await,
    ];
    for res in refused {
        let (status, body) = error_code(res).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("session"),
            "{body}"
        );
    }
    assert_eq!(
        me(&app, &token).await.status(),
        StatusCode::OK,
        "not revoked"
    );
    let list: Value = app
        .get("/api/tokens", Some(&alice.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "nothing minted");
    app.stop().await;
}

#[tokio::test]
async fn a_name_is_unique_per_user_and_a_user_holds_fifty_tokens_at_most() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    new_token(&app, &alice, "ci").await;
    let (status, body) =
        error_code(create(&app, &alice.access_token, &json!({"name": "ci"})).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"]["fields"]["name"].is_string(), "{body}");
    new_token(&app, &bob, "ci").await;

    for i in 1..50 {
        new_token(&app, &alice, &format!("t{i}")).await;
    }
    let (status, body) =
        error_code(create(&app, &alice.access_token, &json!({"name": "one-more"})).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "too_many_tokens");
    assert_eq!(
        revoke(&app, &alice.access_token, "t7").await.status(),
        StatusCode::NO_CONTENT
    );
    new_token(&app, &alice, "one-more").await;
    app.stop().await;
}

#[tokio::test]
async fn bad_fields_are_named() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let long = "x".repeat(64);
    let cases = [
        (json!({}), "name"),
        (json!({"name": null}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "Bad Name"}), "name"),
        (json!({"name": "-ci"}), "name"),
        (json!({"name": long}), "name"),
        (json!({"name": "ci", "expiresInDays": 0}), "expiresInDays"),
        (
            json!({"name": "ci", "expiresInDays": 3651}),
            "expiresInDays",
        ),
        (json!({"name": "ci", "expiresInDays": -5}), "expiresInDays"),
    ];
    for (body, field) in cases {
        let (status, answer) = error_code(create(&app, &alice.access_token, &body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["error"]["fields"][field].is_string(),
            "{body}: {answer}"
        );
    }
    let (status, _) = error_code(
        create(
            &app,
            &alice.access_token,
            &json!({"name": "ci", "scope": "all"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused"
    );
    let (status, _) = error_code(revoke(&app, &alice.access_token, "Not%20A%20Name").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let list: Value = app
        .get("/api/tokens", Some(&alice.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]), "nothing was created");
    app.stop().await;
}

#[tokio::test]
async fn another_user_cannot_revoke_my_token() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let token = new_token(&app, &alice, "ci").await;

    let (status, _) = error_code(revoke(&app, &bob.access_token, "ci").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let theirs: Value = app
        .get("/api/tokens", Some(&bob.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["items"], json!([]));
    assert_eq!(me(&app, &token).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_made_up_token_is_refused_and_counted() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let real = new_token(&app, &alice, "ci").await;
    let forged = format!("lgn_{}", "A".repeat(43));
    let truncated = real[..real.len() - 1].to_owned();
    for token in [forged.as_str(), "lgn_", truncated.as_str()] {
        for path in ["/api/auth/me", "/api/applications"] {
            let (status, body) = error_code(app.get(path, Some(token)).await).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{token} on {path}: {body}"
            );
        }
    }
    assert_eq!(me(&app, &real).await.status(), StatusCode::OK);

    let scrape = common::scrape(&app.url("/metrics")).await;
    for outcome in ["accepted", "refused"] {
        let series = format!("longin_api_token_authentications_total{{outcome=\"{outcome}\"}}");
        assert!(
            common::sample(&scrape, &series).is_some_and(|n| n >= 1.0),
            "{series} in\n{scrape}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn tokens_are_stored_only_as_their_hashes() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let token = new_token(&app, &alice, "ci").await;

    let mut db = database(&app).await;
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT id, user_id, name, token_hash FROM api_tokens")
            .fetch_all(&mut db)
            .await
            .unwrap();
    db.close().await.unwrap();
    assert_eq!(rows.len(), 1);
    let (id, user_id, name, token_hash) = &rows[0];
    for column in [id, user_id, name, token_hash] {
        assert!(!column.contains(&token[4..]), "{column} holds the token");
    }
    assert_eq!(user_id, &alice.user_id);
    assert_eq!(name, "ci");
    assert_eq!(token_hash, &hex::encode(Sha256::digest(token.as_bytes())));
    app.stop().await;
}

#[tokio::test]
async fn a_token_opens_the_live_streams_and_its_revocation_closes_them() {
    let app = spawn_app_with(|c| c.ws_keepalive = Duration::from_millis(500)).await;
    let alice = app.register("alice").await;
    let token = new_token(&app, &alice, "dashboard").await;
    let mut ws = WsClient::authenticated(&app, "/ws/metrics", &token).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv(5).await.unwrap(), json!({"type": "pong"}));

    assert_eq!(
        revoke(&app, &alice.access_token, "dashboard")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let closed = ws.recv(5).await.unwrap();
    assert_eq!(
        (closed["code"].as_str(), closed["message"].as_str()),
        (Some("unauthorized"), Some("the API token was revoked")),
        "{closed}"
    );
    assert_eq!(ws.recv(5).await, None);

    let mut refused = WsClient::connect(&app, "/ws/metrics").await;
    refused.send(json!({"type": "auth", "token": token})).await;
    assert_eq!(refused.recv(5).await.unwrap()["code"], "unauthorized");
    app.stop().await;
}
