//! Every error is JSON, and no input produces a 500; plus health probes and OpenAPI.

mod common;

use reqwest::StatusCode;
use serde_json::Value;

use common::{error_code, spawn_app};

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let app = spawn_app().await;
    let (status, body) = error_code(app.get("/api/nothing-here", None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = error_code(
        app.client
            .delete(app.url("/api/auth/login"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    app.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_4xx_json_never_500() {
    let app = spawn_app().await;
    // (path, content type, body, expected status, expected error code)
    type Case = (
        &'static str,
        Option<&'static str>,
        Vec<u8>,
        StatusCode,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "/api/auth/login",
            Some("application/json"),
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "/api/auth/login",
            Some("application/json"),
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "/api/auth/login",
            Some("application/json"),
            b"[1,2]".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "/api/auth/login",
            Some("application/json"),
            br#"{"username": 5}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "/api/auth/login",
            Some("text/plain"),
            br#"{"username":"a"}"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "/api/auth/login",
            None,
            br#"{"username":"a"}"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "/api/auth/register",
            Some("application/json"),
            vec![b'x'; 2 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "/api/auth/register",
            Some("application/json"),
            br#"{"username": "\u0000bad"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "/api/auth/refresh",
            Some("application/json"),
            b"{oops".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "/api/auth/refresh",
            Some("application/json"),
            vec![b' '; 2 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "/api/auth/refresh",
            Some("text/plain"),
            b"token".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (path, content_type, body, expected, code) in cases {
        let mut req = app.client.post(app.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let (status, err) = error_code(req.send().await.unwrap()).await;
        assert_eq!(
            (status, err["error"]["code"].as_str().unwrap()),
            (expected, code),
            "{path} {content_type:?}"
        );
    }
    let huge_password = "p".repeat(5000);
    let res = app
        .post(
            "/api/auth/login",
            &serde_json::json!({"username": "x", "password": huge_password}),
            None,
        )
        .await;
    assert_eq!(error_code(res).await.0, StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let app = spawn_app().await;
    let res = app.get("/healthz", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["store"], "ok");
    app.stop().await;
}

/// The document is served as JSON; that it covers every route the router serves is
/// checked against the router itself (longin-api's
/// `the_document_describes_every_route_the_router_serves_but_the_listed_exceptions`), and
/// that the server keeps to it by schemathesis (scripts/contract-test).
#[tokio::test]
async fn openapi_document_is_served_with_its_schemes_and_schemas() {
    let app = spawn_app().await;
    let res = app.get("/api/openapi.json", None).await;
    assert_eq!(
        res.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc,
        longin_api::openapi(),
        "the served document is the built one"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let app_schema = &doc["components"]["schemas"]["Application"];
    assert_eq!(
        app_schema["required"],
        serde_json::json!(["apiVersion", "kind", "metadata", "spec"])
    );
    app.stop().await;
}

#[tokio::test]
async fn nul_bytes_anywhere_are_refused_without_a_500() {
    let app = spawn_app().await;
    let admin = app.admin("nul-admin").await;
    let token = Some(admin.access_token.as_str());
    let res = app
        .post(
            "/api/auth/login",
            &serde_json::json!({"username": "a\u{0}b", "password": "whatever123"}),
            None,
        )
        .await;
    assert_eq!(error_code(res).await.0, StatusCode::UNAUTHORIZED);
    let res = app
        .post(
            "/api/auth/refresh",
            &serde_json::json!({"refresh_token": "x\u{0}y"}),
            None,
        )
        .await;
    assert_eq!(error_code(res).await.0, StatusCode::UNAUTHORIZED);
    for path in [
        "/api/applications/a%00b",
        "/api/applications?owner=a%00b",
        "/api/applications/ok?owner=a%00b",
    ] {
        assert_eq!(
            error_code(app.get(path, token).await).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let res = app
        .patch(
            "/api/admin/users/a%00b",
            &serde_json::json!({"disabled": true}),
            &admin.access_token,
        )
        .await;
    assert_eq!(error_code(res).await.0, StatusCode::NOT_FOUND);
    for query in ["route=%00", "user_id=a%00", "application_id=%00x"] {
        let res = app
            .get(&format!("/api/admin/api-logs?{query}"), token)
            .await;
        assert_eq!(error_code(res).await.0, StatusCode::BAD_REQUEST, "{query}");
    }
    // Inside documents a NUL is just an escaped character of a JSON value.
    let doc = serde_json::json!({
        "apiVersion": "longin.io/v1", "kind": "Application",
        "metadata": {"name": "nul", "annotations": {"note": "a\u{0}b"}},
        "spec": {"image": "busybox", "containerPort": 80, "env": [{"name": "X", "value": "\u{0}"}]},
    });
    let res = app
        .client
        .put(app.url("/api/applications/apply"))
        .bearer_auth(&admin.access_token)
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}
