//! Attacks on the API by a client who can register (or not even that): each test is a
//! reproduction of a hole that was open, and asserts it stays shut.

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use common::{PASSWORD, error_code, spawn_app, spawn_app_with, spawn_unclaimed_app};

#[tokio::test]
async fn made_up_methods_mint_no_metric_labels() {
    let app = spawn_app().await;
    for i in 0..5 {
        let method = reqwest::Method::from_bytes(format!("XMETHOD{i}").as_bytes()).unwrap();
        let res = app
            .client
            .request(method, app.url("/api/applications"))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    let body = common::scrape(&app.url("/metrics")).await;
    assert!(!body.contains("XMETHOD"), "a made-up method became a label");
    assert!(
        body.lines()
            .any(|l| l.starts_with("longin_http_request_duration_seconds")
                && l.contains("method=\"OTHER\"")),
        "made-up methods are counted as OTHER"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_get_at_most_the_limit_through() {
    let app = spawn_app().await;
    app.register("victim").await;
    app.register("bystander").await;
    let attempts = (0..100).map(|_| {
        app.client
            .post(app.url("/api/auth/login"))
            .json(&json!({"username": "victim", "password": "wrong password!"}))
            .send()
    });
    let answers = futures::future::join_all(attempts).await;
    let count = |status: StatusCode| {
        answers
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|r| r.status() == status))
            .count()
    };
    let (unauthorized, limited) = (
        count(StatusCode::UNAUTHORIZED),
        count(StatusCode::TOO_MANY_REQUESTS),
    );
    assert!(
        unauthorized <= 10,
        "{unauthorized} guesses verified; the limit is 10"
    );
    assert_eq!(unauthorized + limited, 100, "every attempt is 401 or 429");
    // The account is locked, not the server: another user still signs in.
    app.login("bystander").await;
    app.stop().await;
}

#[tokio::test]
async fn an_overlong_username_is_refused_before_anything_is_keyed_by_it() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/auth/login",
            &json!({"username": "a".repeat(100_000), "password": PASSWORD}),
            None,
        )
        .await;
    let (status, body) = error_code(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["fields"]["username"].is_string(), "{body}");
    app.stop().await;
}

fn registration(username: &str) -> Value {
    json!({
        "username": username,
        "email": format!("{username}@example.com"),
        "password": PASSWORD,
        "confirm_password": PASSWORD,
    })
}

#[tokio::test]
async fn the_first_account_is_the_admin_and_registration_then_closes() {
    let app = spawn_unclaimed_app(|args| {
        args.registration = longin::cli::Registration::Closed;
    })
    .await;
    let res = app
        .post("/api/auth/register", &registration("owner"), None)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["role"], "admin", "{body}");
    let res = app
        .post("/api/auth/register", &registration("stranger"), None)
        .await;
    let (status, body) = error_code(res).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_first_registrations_make_one_admin() {
    let app = spawn_unclaimed_app(|args| {
        args.registration = longin::cli::Registration::Open;
    })
    .await;
    let names: Vec<String> = (0..8).map(|i| format!("racer-{i}")).collect();
    let answers = futures::future::join_all(names.iter().map(|name| {
        app.client
            .post(app.url("/api/auth/register"))
            .json(&registration(name))
            .send()
    }))
    .await;
    let mut admins = 0;
    for answer in answers {
        let res = answer.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        if body["user"]["role"] == "admin" {
            admins += 1;
        }
    }
    assert_eq!(admins, 1, "exactly one first account");
    app.stop().await;
}

#[tokio::test]
async fn answers_are_not_sniffed_and_tokens_are_not_cached() {
    let app = spawn_app().await;
    let res = app.get("/api/nowhere", None).await;
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let res = app
        .post("/api/auth/register", &registration("cacheless"), None)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let res = app
        .post(
            "/api/auth/login",
            &json!({"username": "cacheless", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    app.stop().await;
}

/// 500 connections that dribble a request one byte at a time (slowloris) are cut off
/// once the header deadline passes, and meanwhile a normal request is answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_do_not_delay_others() {
    let app = common::spawn_app_with_args(|args| {
        args.http_header_timeout = Duration::from_secs(3);
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(b"G").await.unwrap();
        slow.push(stream);
    }
    let dribble = tokio::spawn(async move {
        // One byte a second each; count the connections the server has closed.
        let mut closed = 0;
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            closed = 0;
            for stream in &mut slow {
                if stream.write_all(b"E").await.is_err() {
                    closed += 1;
                }
            }
        }
        closed
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let res = app.get("/healthz", None).await;
        assert_eq!(res.status(), StatusCode::OK);
        worst = worst.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        worst < Duration::from_millis(100),
        "slowest answer {worst:?}"
    );
    let closed = dribble.await.unwrap();
    // A write to a socket the peer closed fails from the second write on.
    assert!(
        closed >= 450,
        "only {closed} of 500 slow connections were cut off"
    );
    app.stop().await;
}

#[tokio::test]
async fn image_ids_and_long_grace_periods_are_refused() {
    let app = spawn_app().await;
    let user = app.register("imager").await;
    for image in ["4f1e2d3c5b6a", "sha256:4f1e2d3c5b6a7d8e9f00"] {
        let yaml = common::app_yaml("by-id", image, 1, "");
        let res = common::apply_yaml(&app, &user.access_token, &yaml).await;
        let (status, body) = error_code(res).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{image}: {body}");
        assert!(body["error"]["fields"]["spec.image"].is_string(), "{body}");
    }
    let yaml = "apiVersion: longin.io/v1\nkind: Application\nmetadata: {name: slow}\nspec:\n  image: busybox\n  containerPort: 80\n  terminationGracePeriodSeconds: 301\n";
    let (status, body) = error_code(common::apply_yaml(&app, &user.access_token, yaml).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["fields"]["spec.terminationGracePeriodSeconds"].is_string(),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn quotas_refuse_what_would_pass_them_and_create_nothing() {
    let app = common::spawn_app_with_args(|args| {
        args.quota_apps = 2;
        args.quota_replicas = 3;
        args.quota_memory = 1 << 30;
    })
    .await;
    let user = app.register("tenant").await;
    let token = &user.access_token;
    common::apply(&app, token, &common::app_yaml("one", "busybox", 1, "")).await;
    common::apply(&app, token, &common::app_yaml("two", "busybox", 1, "")).await;

    let res = common::apply_yaml(&app, token, &common::app_yaml("three", "busybox", 1, "")).await;
    let (status, body) = error_code(res).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(
        body["error"]["quota"],
        json!({"resource": "apps", "limit": 2, "requested": 3})
    );
    assert!(
        common::get_application(&app, token, "three")
            .await
            .is_none()
    );

    // Replicas: 1 + 3 > 3.
    let res = common::apply_yaml(&app, token, &common::app_yaml("two", "busybox", 3, "")).await;
    let (status, body) = error_code(res).await;
    assert_eq!(
        (status, &body["error"]["quota"]["resource"]),
        (StatusCode::FORBIDDEN, &json!("replicas"))
    );
    let two = common::get_application(&app, token, "two").await.unwrap();
    assert_eq!(
        two["spec"]["replicas"], 1,
        "the refused apply changed nothing"
    );

    // Memory: 2 × 512Mi = 1Gi is the limit; 600Mi more passes it.
    let big = common::app_yaml("two", "busybox", 1, "  resources: {memory: 600Mi}\n");
    let (status, body) = error_code(common::apply_yaml(&app, token, &big).await).await;
    assert_eq!(
        (status, &body["error"]["quota"]["resource"]),
        (StatusCode::FORBIDDEN, &json!("memory"))
    );

    // An admin raises this user's app quota; the third app now fits.
    let admin = app.admin("quota-admin").await;
    let res = app
        .patch(
            &format!("/api/admin/users/{}", user.user_id),
            &json!({"quota": {"apps": 3, "replicas": 10, "memoryBytes": 2_147_483_648_u64}}),
            &admin.access_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(
        view["quota"],
        json!({"apps": 3, "replicas": 10, "memoryBytes": 2_147_483_648_u64})
    );
    common::apply(&app, token, &common::app_yaml("three", "busybox", 1, "")).await;

    // Admins are exempt unless given figures of their own.
    for i in 0..4 {
        common::apply(
            &app,
            &admin.access_token,
            &common::app_yaml(&format!("admin-{i}"), "busybox", 1, ""),
        )
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn the_data_dir_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = spawn_app_with(|_| {}).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(app.data_dir.path()), 0o700);
    if !app.database_url.starts_with("postgres") {
        assert_eq!(mode(&app.data_dir.path().join("longin.db")), 0o600);
    }
    app.stop().await;
}

#[tokio::test]
async fn secret_values_are_sealed_in_the_database() {
    use sqlx::Connection as _;
    let app = spawn_app().await;
    let user = app.register("sealer").await;
    let yaml = common::app_yaml(
        "vault",
        "busybox",
        1,
        "  env:\n  - {name: API_KEY, value: hunter2-very-secret, secret: true}\n  - {name: MODE, value: plain}\n",
    );
    common::apply(&app, &user.access_token, &yaml).await;
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    let stored: String = sqlx::query_scalar("SELECT spec FROM applications")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(!stored.contains("hunter2-very-secret"), "{stored}");
    assert!(
        stored.contains("sealed:v1:") && stored.contains("plain"),
        "{stored}"
    );
    // The same document again changes nothing: stored and applied are compared open.
    let again = common::apply(&app, &user.access_token, &yaml).await;
    assert!(again.to_string().contains("unchanged"), "{again}");
    let shown = common::get_application(&app, &user.access_token, "vault")
        .await
        .unwrap();
    assert_eq!(shown["metadata"]["generation"], 1);
    assert!(!shown.to_string().contains("hunter2"), "{shown}");
    app.stop().await;
}

/// A SQLite database is served by one process: the server keeps accounts and
/// applications' versions in memory because nobody else writes them. A second
/// process pointed at the same database file would write behind its back, so it
/// refuses to start.
#[tokio::test]
async fn a_second_process_on_one_sqlite_database_refuses_to_start() {
    let first = common::spawn_app_with_args(|a| {
        a.store.database_url =
            Some(longin_store::StoreOptions::sqlite_file(&a.store.data_dir.join("longin.db")).url);
    })
    .await;
    let other_dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_longin"))
        .args([
            "api",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &first.database_url,
        ])
        .env("LONGIN_DATA_DIR", other_dir.path())
        .env("LONGIN_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a second process served the database: {stderr}"
    );
    assert!(
        stderr.contains("in use by another longin process"),
        "{stderr}"
    );
    // The first still answers, and its data is intact.
    first.register("still-here").await;
    first.stop().await;
}
