//! The request audit log: written off the request path, queried by admins.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{error_code, spawn_app};

/// Polls the audit log until `accept` holds for the page (the writer flushes in batches).
async fn wait_for_logs(
    app: &common::TestApp,
    token: &str,
    query: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let page: Value = app
            .get(&format!("/api/admin/api-logs{query}"), Some(token))
            .await
            .json()
            .await
            .unwrap();
        if accept(&page) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("audit log never matched for {query}");
}

#[tokio::test]
async fn requests_are_logged_with_route_template_status_duration_and_user() {
    let app = spawn_app().await;
    let user = app.register("audited").await;
    let admin = app.admin("auditor").await;
    let res = app
        .get("/api/auth/me?secret=hunter2", Some(&user.access_token))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .patch(
            "/api/admin/users/some-id",
            &json!({"disabled": true}),
            &admin.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let page = wait_for_logs(&app, &admin.access_token, "?route=/api/auth/me", |p| {
        p["total"] == 1
    })
    .await;
    let row = &page["items"][0];
    assert_eq!(row["method"], "GET");
    assert_eq!(row["status"], 200);
    assert_eq!(row["user_id"], user.user_id.as_str());
    assert!(row["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(row["created_at"].is_string());

    let page = wait_for_logs(&app, &admin.access_token, "?method=patch", |p| {
        p["total"] == 1
    })
    .await;
    assert_eq!(
        page["items"][0]["route"], "/api/admin/users/{id}",
        "the template, not the id"
    );
    assert_eq!(page["items"][0]["status"], 404);

    let all = wait_for_logs(&app, &admin.access_token, "?per_page=500", |p| {
        p["total"].as_i64() >= Some(4)
    })
    .await;
    assert!(
        !all.to_string().contains("hunter2"),
        "query strings are never stored"
    );
    app.stop().await;
}

#[tokio::test]
async fn audit_log_filters_and_pages() {
    let app = spawn_app().await;
    let admin = app.admin("pager").await;
    for _ in 0..5 {
        assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.get("/no/such/route", None).await.status(),
        StatusCode::NOT_FOUND
    );
    let page = wait_for_logs(
        &app,
        &admin.access_token,
        "?route=/healthz&per_page=2&page=2",
        // All five written (a page past the end would report its total separately).
        |p| p["total"] == 5 && p["items"].as_array().is_some_and(|i| i.len() == 2),
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let unmatched = wait_for_logs(
        &app,
        &admin.access_token,
        "?status=404&route=unmatched",
        |p| p["total"] == 1,
    )
    .await;
    assert_eq!(unmatched["items"][0]["user_id"], Value::Null);

    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let page: Value = app
        .get(
            &format!("/api/admin/api-logs?since={}", urlencode(&future)),
            Some(&admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 0);

    let (status, body) = error_code(
        app.get(
            "/api/admin/api-logs?since=yesterday",
            Some(&admin.access_token),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["fields"]["since"].is_string());
    let (status, _) = error_code(
        app.get("/api/admin/api-logs?status=abc", Some(&admin.access_token))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn a_request_on_an_application_deleted_since_is_logged_with_the_rest_of_its_batch() {
    let app = spawn_app().await;
    let admin = app.admin("deleter").await;
    let yaml = common::app_yaml("gone", "127.0.0.1:5000/longin/httpd:1.0", 1, "");
    let res = common::apply_yaml(&app, &admin.access_token, &yaml).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Without a controller the delete is immediate: the DELETE's own record (and the
    // apply's) name an application row that is gone by the time they are written.
    let res = app
        .client
        .delete(app.url("/api/applications/gone"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let res = app.get("/api/auth/me", Some(&admin.access_token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = wait_for_logs(&app, &admin.access_token, "?per_page=500", |p| {
        let routes: Vec<&str> = p["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["route"].as_str())
            .collect();
        routes.contains(&"/api/applications/{name}") && routes.contains(&"/api/auth/me")
    })
    .await;
    let deleted = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "/api/applications/{name}")
        .unwrap();
    assert_eq!(deleted["method"], "DELETE");
    assert_eq!(
        deleted["application_id"],
        Value::Null,
        "the reference is gone with the row"
    );
    app.stop().await;
}

#[tokio::test]
async fn queued_records_are_written_on_shutdown() {
    let app =
        common::spawn_app_with(|config| config.audit_flush_interval = Duration::from_secs(3600))
            .await;
    for _ in 0..3 {
        app.get("/healthz", None).await;
    }
    let url = app.database_url.clone();
    let _data = app.stop_keeping_data().await;
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(url))
        .await
        .unwrap();
    let (rows, total) = store
        .list_api_logs(
            &longin_store::api_logs::ApiLogFilter {
                route: Some("/healthz".into()),
                ..Default::default()
            },
            10,
            0,
        )
        .await
        .unwrap();
    assert_eq!(total, 3, "{rows:?}");
}

#[tokio::test]
async fn old_records_are_pruned_by_retention() {
    let app = common::spawn_app_with(|config| {
        config.audit_retention = Duration::from_millis(200);
        config.prune_interval = Duration::from_millis(100);
    })
    .await;
    let admin = app.admin("janitor").await;
    app.get("/healthz", None).await;
    // The record appears, then ages out.
    wait_for_logs(&app, &admin.access_token, "?route=/healthz", |p| {
        p["total"] == 1
    })
    .await;
    wait_for_logs(&app, &admin.access_token, "?route=/healthz", |p| {
        p["total"] == 0
    })
    .await;
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
