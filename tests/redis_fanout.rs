//! Two API processes on one store and one Redis: a client of the second, which runs no
//! controller, gets the metrics and status changes the first one's controller
//! produces — they can only have come through Redis pub/sub.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use serde_json::json;

use common::ws::WsClient;
use common::{app_yaml, apply, registry, spawn_api_sharing, spawn_platform_with, wait_for};

fn redis_url() -> String {
    std::env::var("LONGIN_TEST_REDIS_URL")
        .or_else(|_| std::env::var("LONGIN_TEST_REDIS_SERVICE_URL"))
        .expect("Redis is needed: run under scripts/test, or eval \"$(scripts/test-services)\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_fan_out_through_redis_to_another_api_process() {
    let url = redis_url();
    let prefix = format!("longin-test-fanout-{}:", uuid::Uuid::new_v4().simple());
    // Several API processes on one store need PostgreSQL (a SQLite database is
    // served by one process), whichever store this pass of the suite runs on.
    let database = common::fresh_postgres_url().await;
    let first = spawn_platform_with(|a| {
        a.store.database_url = Some(database.clone());
        a.redis_url = Some(url.clone());
        a.redis_prefix = prefix.clone();
        a.metrics_interval = Duration::from_secs(1);
    })
    .await;
    let second = spawn_api_sharing(&first, |a| {
        a.redis_url = Some(url.clone());
        a.redis_prefix = prefix.clone();
    })
    .await;

    let user = first.register("spread").await;
    let token = &user.access_token;
    let image = format!("{}/longin/httpd:1.0", registry());
    apply(&first, token, &app_yaml("wide", &image, 1, "")).await;
    wait_for(&first, token, "wide", "Running", 1).await;

    let mut ws = WsClient::authenticated(&second, "/ws/metrics", token).await;
    ws.send(json!({"type": "subscribe", "app": "wide"})).await;
    assert_eq!(ws.recv(10).await.unwrap()["type"], "subscribed");
    let metrics = ws.next_of_type("metrics", 10).await;
    assert_eq!(metrics["app"], "wide");
    assert_eq!(metrics["aggregated"]["containerCount"], 1);

    // A change applied through the first process reaches the second's client.
    apply(&first, token, &app_yaml("wide", &image, 2, "")).await;
    ws.next_matching("status", 60, |m| m["readyReplicas"] == 2)
        .await;
    second.stop().await;
    first.stop().await;
}
