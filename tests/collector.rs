//! The stats collector's figures against containers whose use is known: one that
//! keeps one core busy, one that holds 40 MiB in a tmpfs. In its own test binary and
//! alone under nextest (.config/nextest.toml), so other tests do not steal the core
//! being measured.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use common::{TestApp, apply, eventually, spawn_platform_with, wait_for};

/// A one-replica busybox app running `script`, limited to 128 MiB.
fn busybox_app(name: &str, script: &str) -> String {
    format!(
        "{}  resources: {{memory: 128Mi}}\n",
        common::busybox_app(name, 1, script)
    )
}

/// The last `n` one-second points of `name` that saw its container.
async fn last_points(app: &TestApp, token: &str, name: &str, n: usize) -> Option<Vec<Value>> {
    let res = app
        .get(
            &format!("/api/applications/{name}/metrics?step=1"),
            Some(token),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let series: Value = res.json().await.unwrap();
    let points: Vec<Value> = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["containers"] == 1.0)
        .cloned()
        .collect();
    (points.len() > n).then(|| points[points.len() - n..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_measures_a_busy_core_and_held_memory() {
    let app = spawn_platform_with(|a| a.metrics_interval = Duration::from_secs(1)).await;
    let user = app.register("gauged").await;
    let token = &user.access_token;
    apply(&app, token, &busybox_app("burner", "while :; do :; done")).await;
    apply(
        &app,
        token,
        &busybox_app(
            "holder",
            "head -c 41943040 /dev/zero > /dev/shm/fill && sleep 3600",
        ),
    )
    .await;
    wait_for(&app, token, "burner", "Running", 1).await;
    wait_for(&app, token, "holder", "Running", 1).await;

    // CPU: the mean of five one-second readings, after the first ones settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let points = eventually(30, "five readings of the burner", || {
        last_points(&app, token, "burner", 5)
    })
    .await;
    let cpu: f64 = points
        .iter()
        .map(|p| p["cpuPercent"].as_f64().unwrap())
        .sum::<f64>()
        / 5.0;
    println!("burner: CPU {cpu:.1} % of one core over {points:?}");
    assert!(
        (85.0..=115.0).contains(&cpu),
        "one busy core read as {cpu:.1} %"
    );

    // Memory: 40 MiB in /dev/shm (charged to the container) plus a shell and a sleep.
    let points = eventually(30, "readings of the holder", || {
        last_points(&app, token, "holder", 2)
    })
    .await;
    let memory = points[1]["memoryBytes"].as_f64().unwrap();
    let held = 40.0 * 1024.0 * 1024.0;
    println!("holder: {:.1} MiB", memory / 1024.0 / 1024.0);
    assert!(
        memory >= held && memory <= held * 1.15,
        "40 MiB held read as {:.1} MiB",
        memory / 1024.0 / 1024.0
    );
    assert_eq!(points[1]["memoryLimitBytes"], 128.0 * 1024.0 * 1024.0);
    app.stop().await;
}
