//! Prometheus' /metrics and the metrics REST endpoint, on a real server with the
//! controller and the stats collector running against the Docker engine.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use common::{
    app_yaml, apply, error_code, eventually, registry, sample, spawn_app_with, spawn_platform_with,
    wait_for,
};

async fn scrape(app: &common::TestApp) -> String {
    common::scrape(&app.url("/metrics")).await
}

/// `promtool check metrics` on a scrape: format and Prometheus' naming conventions.
fn promtool_check_metrics(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test-services installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape ---\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_apps_pass_promtool_and_forget_deleted_apps() {
    let app = spawn_platform_with(|a| a.metrics_interval = Duration::from_secs(1)).await;
    let user = app.register("metered").await;
    let image = format!("{}/longin/httpd:1.0", registry());
    apply(&app, &user.access_token, &app_yaml("web", &image, 2, "")).await;
    wait_for(&app, &user.access_token, "web", "Running", 2).await;

    let body = eventually(30, "a metrics cycle of both replicas", || async {
        let body = scrape(&app).await;
        (sample(&body, r#"longin_app_containers{app="metered/web"}"#) == Some(2.0)).then_some(body)
    })
    .await;
    assert_eq!(
        sample(&body, r#"longin_app_desired_replicas{app="metered/web"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&body, r#"longin_app_ready_replicas{app="metered/web"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&body, r#"longin_app_failed{app="metered/web"}"#),
        Some(0.0)
    );
    let memory = sample(&body, r#"longin_app_memory_usage_bytes{app="metered/web"}"#).unwrap();
    assert!(memory > 0.0, "memory {memory}");
    // Two replicas of the default 512Mi limit.
    assert_eq!(
        sample(&body, r#"longin_app_memory_limit_bytes{app="metered/web"}"#),
        Some(2.0 * 512.0 * 1024.0 * 1024.0)
    );
    assert!(sample(&body, "longin_data_disk_available_bytes").unwrap() > 0.0);
    for family in [
        "longin_build_info{version=",
        "longin_reconciles_total{result=\"success\"}",
        "longin_reconcile_duration_seconds_bucket{le=",
        "longin_controller_queue_depth",
        "longin_http_request_duration_seconds_bucket{method=\"PUT\",route=\"/api/applications/apply\",status=\"200\",le=",
    ] {
        assert!(body.contains(family), "{family} missing from:\n{body}");
    }
    assert!(!body.contains(&user.user_id), "user ids are no labels");
    promtool_check_metrics(&body);

    // The chart series: points with both containers and their memory.
    let res = app
        .get(
            "/api/applications/web/metrics?step=1",
            Some(&user.access_token),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let series: Value = res.json().await.unwrap();
    assert_eq!(series["app"], "web");
    assert_eq!(series["step"], 1);
    let points = series["points"].as_array().unwrap();
    assert!(
        points
            .iter()
            .any(|p| p["containers"] == 2.0 && p["memoryBytes"].as_f64().unwrap() > 0.0),
        "{series}"
    );
    // Someone else's application does not exist for them; a bad window names its field.
    let other = app.register("nosy").await;
    let res = app
        .get("/api/applications/web/metrics", Some(&other.access_token))
        .await;
    assert_eq!(error_code(res).await.0, StatusCode::NOT_FOUND);
    let res = app
        .get(
            "/api/applications/web/metrics?since=yesterday&step=0",
            Some(&user.access_token),
        )
        .await;
    let (status, body) = error_code(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["fields"]["since"].is_string(), "{body}");
    assert!(body["error"]["fields"]["step"].is_string(), "{body}");

    // Deleted: its series go with it.
    let res = app
        .client
        .delete(app.url("/api/applications/web"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    eventually(60, "the deleted app gone from /metrics", || async {
        (!scrape(&app).await.contains("metered/web")).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn metrics_token_guards_the_scrape() {
    let app = spawn_app_with(|c| c.metrics_token = Some("scrape-secret".to_owned())).await;
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(error_code(res).await.0, StatusCode::UNAUTHORIZED);
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-secreT")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await.0, StatusCode::UNAUTHORIZED);
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}
