//! Reading logs cannot exhaust the server: history streams instead of being read
//! into memory, a user has a bounded number of log streams open, and a WebSocket
//! client that stops reading is disconnected. Its own test binary: it measures the
//! process's memory and its WebSocket gauge.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use common::ws::WsClient;
use common::{apply, busybox_app, eventually, spawn_platform, wait_for};

/// Lines of 16 KiB (the most the engine keeps in one log line): more than the
/// engine's log rotation keeps here (3 × 10 MB), so a read of them all is as big as
/// a read can be.
const LINES: u32 = 3_000;

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// An app that prints [`LINES`] lines of 16 KiB, then waits.
fn chatterbox() -> String {
    busybox_app(
        "chatterbox",
        1,
        &format!(
            "i=0; while [ $i -lt {LINES} ]; do head -c 16383 /dev/zero | tr \"\\\\000\" x; echo; i=$((i+1)); done; echo done; sleep 3600"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_history_reads_stream_and_a_user_has_a_bounded_number_open() {
    let app = common::spawn_platform_with(|args| args.log_streams_per_user = 16).await;
    let owner = app.register("chatter").await;
    apply(&app, &owner.access_token, &chatterbox()).await;
    wait_for(&app, &owner.access_token, "chatterbox", "Running", 1).await;
    let containers: serde_json::Value = app
        .get(
            "/api/applications/chatterbox/containers",
            Some(&owner.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = containers[0]["id"].as_str().unwrap().to_owned();
    let docker_id = containers[0]["dockerId"]
        .as_str()
        .or(containers[0]["docker_id"].as_str())
        .unwrap()
        .to_owned();
    let logs = format!("/api/containers/{id}/logs?tail=10000");
    eventually(120, "every line printed", || async {
        let text = app
            .get(
                &format!("/api/containers/{id}/logs?tail=1"),
                Some(&owner.access_token),
            )
            .await
            .text()
            .await
            .ok()?;
        text.contains("done").then_some(())
    })
    .await;

    // Two admins besides the owner: 30 concurrent reads of 10 000 lines (160 MB each),
    // none of whose bodies is read yet.
    let readers = [
        owner.access_token.clone(),
        app.admin("reader-one").await.access_token,
        app.admin("reader-two").await.access_token,
    ];
    let before = resident_bytes();
    let mut open = Vec::new();
    for i in 0..30 {
        let res = app.get(&logs, Some(&readers[i % 3])).await;
        assert_eq!(res.status(), StatusCode::OK, "read {i}");
        open.push(res);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let grown = resident_bytes().saturating_sub(before);
    println!("30 open 10 000-line reads: RSS grew by {} MB", grown >> 20);
    assert!(grown < 200 << 20, "RSS grew by {} MB", grown >> 20);

    // The owner has 10 open; 6 more fit, the 17th is refused until one ends.
    let mut more = Vec::new();
    for _ in 0..6 {
        let res = app.get(&logs, Some(&owner.access_token)).await;
        assert_eq!(res.status(), StatusCode::OK);
        more.push(res);
    }
    let (status, body) = common::error_code(app.get(&logs, Some(&owner.access_token)).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    // A read that is read to the end has every line.
    let mut first = open.remove(0);
    let mut lines = 0_usize;
    let mut partial = 0_usize;
    let mut tail = Vec::new();
    while let Some(chunk) = first.chunk().await.unwrap() {
        tail = chunk.iter().rev().take(300).rev().copied().collect();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        partial += chunk.len();
    }
    // Everything the engine kept (its log rotation keeps the last 30 MB or so).
    let kept = std::process::Command::new("docker")
        .args(["logs", "--tail", "10000", &docker_id])
        .output()
        .unwrap()
        .stdout
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    assert!(kept > 1000, "the engine kept {kept} lines");
    assert_eq!(
        lines,
        kept,
        "{partial} bytes, ending {:?}",
        String::from_utf8_lossy(&tail)
    );
    assert!(
        tail.ends_with(b"done\n"),
        "the read ends with the last line"
    );
    drop(open);
    drop(more);
    eventually(10, "places given back", || async {
        let res = app
            .get(
                &format!("/api/containers/{id}/logs?tail=1"),
                Some(&owner.access_token),
            )
            .await;
        (res.status() == StatusCode::OK).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_stops_reading_is_disconnected() {
    let app = spawn_platform().await;
    let owner = app.register("stalled").await;
    apply(&app, &owner.access_token, &chatterbox()).await;
    wait_for(&app, &owner.access_token, "chatterbox", "Running", 1).await;
    let gauge = || async {
        let body = common::scrape(&app.url("/metrics")).await;
        common::sample(&body, "longin_ws_connections{stream=\"logs\"}")
    };
    let mut ws = WsClient::connect_small_buffer(&app, "/ws/logs", 4096).await;
    ws.send(json!({"type": "auth", "token": owner.access_token}))
        .await;
    assert_eq!(ws.recv(10).await.unwrap()["type"], "ready");
    // 1000 lines of 16 KiB (the most a subscription asks for): far more than the
    // socket buffers hold.
    ws.send(json!({"type": "subscribe", "app": "chatterbox", "tail": 1000}))
        .await;
    eventually(10, "the connection counted", || async {
        (gauge().await == Some(1.0)).then_some(())
    })
    .await;
    // Never read again: within the write timeout (30 s) the server gives up on it.
    let started = std::time::Instant::now();
    eventually(60, "the stalled connection closed", || async {
        (gauge().await == Some(0.0)).then_some(())
    })
    .await;
    println!("stalled client closed after {:?}", started.elapsed());
    drop(ws);
    app.stop().await;
}
