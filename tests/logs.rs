//! Containers and their logs over REST, on the real engine: ownership, order, streams
//! told apart, tail, and following without gaps or repeats.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use common::{TestApp, apply, error_code, eventually, spawn_platform, wait_for};

/// A busybox app that prints `out0 err0 … out4 err4` (err* on stderr) 20 ms apart,
/// then `tickN` every 200 ms. Apart in time, because the engine reads stdout and
/// stderr through two pipes: lines written at once to both keep their order within
/// each stream only.
pub fn talker(name: &str) -> String {
    common::busybox_app(
        name,
        1,
        "i=0; while [ $i -lt 5 ]; do echo out$i; usleep 20000; echo err$i >&2; usleep 20000; i=$((i+1)); done; n=0; while :; do echo tick$n; n=$((n+1)); sleep 0.2; done",
    )
}

async fn logs(
    app: &TestApp,
    token: &str,
    id: &str,
    query: &str,
    ndjson: bool,
) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url(&format!("/api/containers/{id}/logs{query}")))
        .bearer_auth(token);
    if ndjson {
        req = req.header("accept", "application/x-ndjson");
    }
    req.send().await.unwrap()
}

fn tick(line: &str) -> Option<u64> {
    line.strip_prefix("tick")?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_ordered_tagged_owned_and_followed_without_gaps() {
    let app = spawn_platform().await;
    let user = app.register("talkative").await;
    let token = &user.access_token;
    apply(&app, token, &talker("talker")).await;
    wait_for(&app, token, "talker", "Running", 1).await;

    let res = app.get("/api/containers", Some(token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["application"], "talker");
    assert_eq!(list[0]["owner"], "talkative");
    let docker_id = list[0]["dockerId"].as_str().unwrap().to_owned();
    let short = &docker_id[..12];
    let res = app
        .get(&format!("/api/containers/{short}"), Some(token))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["dockerId"],
        docker_id.as_str()
    );

    // Someone else: not found, on every route; and their list is empty.
    let other = app.register("eavesdropper").await;
    for path in [
        format!("/api/containers/{short}"),
        format!("/api/containers/{docker_id}/logs"),
    ] {
        let res = app.get(&path, Some(&other.access_token)).await;
        assert_eq!(error_code(res).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let res = app.get("/api/containers", Some(&other.access_token)).await;
    assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 0);
    let res = app
        .get("/api/containers?all=true", Some(&other.access_token))
        .await;
    assert_eq!(error_code(res).await.0, StatusCode::FORBIDDEN);

    // JSON lines: in order, stdout and stderr told apart.
    let lines: Vec<Value> = eventually(30, "the first ten lines", || async {
        let body = logs(&app, token, short, "?tail=10000", true)
            .await
            .text()
            .await
            .unwrap();
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines.len() >= 10).then_some(lines)
    })
    .await;
    let first: Vec<(String, String)> = lines[..10]
        .iter()
        .map(|l| {
            (
                l["stream"].as_str().unwrap().to_owned(),
                l["line"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Each stream in the order written. Across the two streams the engine's order is
    // its own: it reads stdout and stderr from two pipes at once and timestamps each
    // line as it reads it, so under load err1 can come before out1 — what Longin
    // promises is the engine's timestamp order, checked below.
    for (stream, prefix) in [("stdout", "out"), ("stderr", "err")] {
        let of_stream: Vec<&str> = first
            .iter()
            .filter(|(s, _)| s == stream)
            .map(|(_, line)| line.as_str())
            .collect();
        let expected: Vec<String> = (0..5).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(of_stream, expected, "{stream} in order: {first:?}");
    }
    let stamps: Vec<chrono::DateTime<chrono::FixedOffset>> = lines
        .iter()
        .map(|l| {
            chrono::DateTime::parse_from_rfc3339(l["timestamp"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("timestamp of {l}: {e}"))
        })
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "lines in timestamp order: {stamps:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["containerId"] == docker_id.as_str() && l["timestamp"].is_string())
    );

    // Text, one stream, timestamps.
    let body = logs(&app, token, short, "?tail=10000&stream=stderr", false)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(body, "err0\nerr1\nerr2\nerr3\nerr4\n");
    // The last line, stamped: once the ticks have begun (they start 200 ms after err4).
    let body = eventually(10, "a tick as the last line", || async {
        let body = logs(&app, token, short, "?tail=1&timestamps=true", false)
            .await
            .text()
            .await
            .ok()?;
        let (_, text) = body.trim_end().split_once(' ')?;
        tick(text).is_some().then_some(body)
    })
    .await;
    let (time, _) = body.trim_end().split_once(' ').unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{body}");
    assert_eq!(body.lines().count(), 1, "{body}");
    let res = logs(&app, token, short, "?tail=-1&stream=both", false).await;
    let (status, err) = error_code(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");

    // Follow: the last lines, then new ones, each tick exactly once.
    let res = logs(&app, token, short, "?tail=3&follow=true", false).await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res;
    let mut text = String::new();
    let ticks = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let chunk = body.chunk().await.unwrap().unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
            let ticks: Vec<u64> = text.lines().filter_map(tick).collect();
            if ticks.len() >= 13 {
                return ticks;
            }
        }
    })
    .await
    .expect("13 ticks within 20 s");
    let from = ticks[0];
    assert_eq!(
        ticks,
        (from..from + ticks.len() as u64).collect::<Vec<_>>(),
        "{text}"
    );
    drop(body);
    app.stop().await;
}
