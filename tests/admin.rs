//! Roles and the admin API over real HTTP.

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::spawn_app;
use common::{PASSWORD, error_code, spawn_api_sharing, spawn_app_with_args};

#[tokio::test]
async fn non_admins_get_403_and_anonymous_401_on_admin_routes() {
    let app = spawn_app().await;
    let user = app.register("plain").await;
    for path in ["/api/admin/users", "/api/admin/api-logs"] {
        let (status, body) = error_code(app.get(path, Some(&user.access_token)).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(
            app.get(path, None).await.status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let res = app
        .patch(
            &format!("/api/admin/users/{}", user.user_id),
            &json!({"role": "admin"}),
            &user.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no self-promotion");
    app.stop().await;
}

#[tokio::test]
async fn admin_lists_users_with_paging_and_no_hashes() {
    let app = spawn_app().await;
    for name in ["u-one", "u-two", "u-three"] {
        app.register(name).await;
    }
    let admin = app.admin("boss").await;
    let page: Value = app
        .get(
            "/api/admin/users?page=2&per_page=2",
            Some(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    // Three registered, the admin, and the harness's first account.
    assert_eq!(page["total"], 5);
    assert_eq!(page["page"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(!page.to_string().contains("argon2"));
    let (status, body) = error_code(
        app.get("/api/admin/users?per_page=0", Some(&admin.access_token))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["fields"]["per_page"].is_string());
    let (status, _) = error_code(
        app.get("/api/admin/users?page=abc", Some(&admin.access_token))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn promoted_user_becomes_admin_at_once() {
    let app = spawn_app().await;
    let user = app.register("rising").await;
    let admin = app.admin("chief").await;
    assert_eq!(
        app.get("/api/admin/users", Some(&user.access_token))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let res = app
        .patch(
            &format!("/api/admin/users/{}", user.user_id),
            &json!({"role": "admin"}),
            &admin.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["role"], "admin");
    // The same token, issued when the user was not an admin, now passes.
    assert_eq!(
        app.get("/api/admin/users", Some(&user.access_token))
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn disabled_users_tokens_stop_working_at_once() {
    let app = spawn_app().await;
    let user = app.register("mallory").await;
    let admin = app.admin("warden").await;
    // Signed in and busy: the account is in the server's memory (the cache).
    for _ in 0..3 {
        let res = app.get("/api/auth/me", Some(&user.access_token)).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = app
        .patch(
            &format!("/api/admin/users/{}", user.user_id),
            &json!({"disabled": true}),
            &admin.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], true);

    let (status, body) = error_code(app.get("/api/auth/me", Some(&user.access_token)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    let res = app
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .post(
            "/api/auth/login",
            &json!({"username": "mallory", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Enabled again: can sign in, though the revoked sessions stay revoked.
    let res = app
        .patch(
            &format!("/api/admin/users/{}", user.user_id),
            &json!({"disabled": false}),
            &admin.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.login("mallory").await;
    let res = app
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn bad_user_changes_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let user = app.register("subject").await;
    let admin = app.admin("ruler").await;
    let path = format!("/api/admin/users/{}", user.user_id);
    let (status, err) = error_code(
        app.patch(&path, &json!({"role": "superuser"}), &admin.access_token)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"]["fields"]["role"].is_string(), "{err}");
    // An empty patch changes nothing, as a JSON merge patch.
    let res = app.patch(&path, &json!({}), &admin.access_token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = error_code(
        app.patch(&path, &json!({"disabled": "yes"}), &admin.access_token)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = error_code(
        app.patch(&path, &json!({"rol": "admin"}), &admin.access_token)
            .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused"
    );
    let (status, _) = error_code(
        app.patch(
            "/api/admin/users/no-such-id",
            &json!({"disabled": true}),
            &admin.access_token,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An admin cannot lock themselves out.
    let own = format!("/api/admin/users/{}", admin.user_id);
    for body in [json!({"disabled": true}), json!({"role": "user"})] {
        let (status, _) = error_code(app.patch(&own, &body, &admin.access_token).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let me: Value = app
        .get("/api/auth/me", Some(&user.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "user");
    assert_eq!(me["disabled"], false);
    app.stop().await;
}

/// Two API processes on one PostgreSQL store each keep accounts in memory: a user
/// disabled or demoted through one is refused by the other at once (NOTIFY in the
/// write's transaction; the other drops its copy before it answers again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_disabled_through_one_api_process_is_refused_by_another_at_once() {
    let database = common::fresh_postgres_url().await;
    let first = spawn_app_with_args(|a| a.store.database_url = Some(database.clone())).await;
    let second = spawn_api_sharing(&first, |_| {}).await;
    let user = first.register("eve").await;
    let admin = first.admin("sheriff").await;
    let promoted = first.register("deputy").await;
    let patch = |id: &str, body: Value| {
        let (first, token, id) = (&first, admin.access_token.clone(), id.to_owned());
        async move {
            let res = first
                .patch(&format!("/api/admin/users/{id}"), &body, &token)
                .await;
            assert_eq!(res.status(), StatusCode::OK);
        }
    };
    patch(&promoted.user_id, json!({"role": "admin"})).await;
    // Both processes have read (and kept) both accounts.
    for app in [&first, &second] {
        for token in [&user.access_token, &promoted.access_token] {
            assert_eq!(
                app.get("/api/auth/me", Some(token)).await.status(),
                StatusCode::OK
            );
        }
        assert_eq!(
            app.get("/api/admin/users", Some(&promoted.access_token))
                .await
                .status(),
            StatusCode::OK
        );
    }
    for round in 0..20 {
        patch(&user.user_id, json!({"disabled": true})).await;
        patch(&promoted.user_id, json!({"role": "user"})).await;
        // The NOTIFY goes out on commit; allow the other process a moment to hear it,
        // far less than any token lifetime.
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        loop {
            let me = second
                .get("/api/auth/me", Some(&user.access_token))
                .await
                .status();
            let admin_route = second
                .get("/api/admin/users", Some(&promoted.access_token))
                .await
                .status();
            if me == StatusCode::UNAUTHORIZED && admin_route == StatusCode::FORBIDDEN {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the second process still serves a disabled user ({me}) or a demoted admin ({admin_route})"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        patch(&user.user_id, json!({"disabled": false})).await;
        patch(&promoted.user_id, json!({"role": "admin"})).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        while second
            .get("/api/auth/me", Some(&user.access_token))
            .await
            .status()
            != StatusCode::OK
        {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: re-enabled user still refused"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    second.stop().await;
    first.stop().await;
}
