//! Fifty clients following one container share one engine log stream, which closes
//! when the last of them leaves. Alone in its test binary: it reads the process-wide
//! `longin_log_streams_open` gauge.

#![allow(clippy::unwrap_used)]

mod common;

use serde_json::json;

use common::ws::WsClient;
use common::{apply, eventually, spawn_platform, wait_for};

async fn open_streams(app: &common::TestApp) -> Option<f64> {
    common::sample(
        &common::scrape(&app.url("/metrics")).await,
        "longin_log_streams_open",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_followers_share_one_engine_stream() {
    let app = spawn_platform().await;
    let user = app.register("crowd").await;
    let token = &user.access_token;
    apply(
        &app,
        token,
        &common::busybox_app(
            "stage",
            1,
            "n=0; while :; do echo line$n; n=$((n+1)); usleep 100000; done",
        ),
    )
    .await;
    wait_for(&app, token, "stage", "Running", 1).await;
    let containers: Vec<serde_json::Value> = app
        .get("/api/containers", Some(token))
        .await
        .json()
        .await
        .unwrap();
    let id = containers[0]["dockerId"].as_str().unwrap().to_owned();

    let mut followers = Vec::new();
    for _ in 0..50 {
        let mut ws = WsClient::authenticated(&app, "/ws/logs", token).await;
        ws.send(json!({"type": "subscribe", "containerId": id, "tail": 0}))
            .await;
        followers.push(ws);
    }
    // Every follower gets the same lines.
    let mut seen = Vec::new();
    for ws in &mut followers {
        let first = ws.next_of_type("log", 10).await;
        seen.push(first["line"].as_str().unwrap().to_owned());
    }
    // A line none has read yet: one past the newest first line.
    let newest = seen
        .iter()
        .map(|l| l[4..].parse::<u64>().unwrap())
        .max()
        .unwrap();
    let target = format!("line{}", newest + 1);
    for ws in &mut followers {
        ws.next_matching("log", 10, |m| m["line"] == target.as_str())
            .await;
    }
    assert_eq!(
        open_streams(&app).await,
        Some(1.0),
        "one engine stream for 50 followers"
    );

    drop(followers);
    eventually(
        10,
        "the engine stream closed after the last follower left",
        || async { (open_streams(&app).await == Some(0.0)).then_some(()) },
    )
    .await;
    app.stop().await;
}
