//! The live streams over WebSocket: authentication, ownership, metrics and status
//! pushed as they happen, logs in order with stderr tagged, the admin stream, and a
//! slow client that lags while a normal one keeps up.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::ws::WsClient;
use common::{app_yaml, apply, registry, spawn_app, spawn_platform_with, wait_for};

#[tokio::test]
async fn strangers_and_other_users_learn_nothing() {
    let app = spawn_app().await;
    let owner = app.register("keeper").await;
    let image = format!("{}/longin/httpd:1.0", registry());
    apply(
        &app,
        &owner.access_token,
        &app_yaml("secret", &image, 1, ""),
    )
    .await;

    // No auth first: an error, then the server closes.
    let mut ws = WsClient::connect(&app, "/ws/metrics").await;
    ws.send(json!({"type": "subscribe", "app": "secret"})).await;
    let reply = ws.recv(10).await.unwrap();
    assert_eq!(
        (reply["type"].as_str(), reply["code"].as_str()),
        (Some("error"), Some("unauthorized")),
        "{reply}"
    );
    assert_eq!(ws.recv(10).await, None, "closed after the error");
    // A bad token, on every stream.
    for path in ["/ws/metrics", "/ws/logs", "/ws/admin"] {
        let mut ws = WsClient::connect(&app, path).await;
        ws.send(json!({"type": "auth", "token": "not-a-token"}))
            .await;
        assert_eq!(ws.recv(10).await.unwrap()["code"], "unauthorized", "{path}");
        assert_eq!(ws.recv(10).await, None);
    }

    // Someone else's app answers exactly like an app that does not exist.
    let other = app.register("prier").await;
    let mut ws = WsClient::authenticated(&app, "/ws/metrics", &other.access_token).await;
    ws.send(json!({"type": "subscribe", "app": "secret"})).await;
    let theirs = ws.recv(10).await.unwrap();
    ws.send(json!({"type": "subscribe", "app": "nothere"}))
        .await;
    let missing = ws.recv(10).await.unwrap();
    assert_eq!(theirs["code"], "not_found", "{theirs}");
    assert_eq!(
        theirs["message"].as_str().unwrap().replace("secret", "X"),
        missing["message"].as_str().unwrap().replace("nothere", "X")
    );
    ws.send(json!({"type": "subscribe", "app": "keeper/secret"}))
        .await;
    assert_eq!(ws.recv(10).await.unwrap()["code"], "forbidden");
    // The connection is still usable; bad messages are explained.
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv(10).await.unwrap(), json!({"type": "pong"}));
    ws.send(json!({"type": "subscribe"})).await;
    assert_eq!(ws.recv(10).await.unwrap()["code"], "bad_request");
    let mut logs = WsClient::authenticated(&app, "/ws/logs", &other.access_token).await;
    logs.send(json!({"type": "subscribe", "app": "secret"}))
        .await;
    assert_eq!(logs.recv(10).await.unwrap()["code"], "not_found");
    logs.send(json!({"type": "subscribe", "containerId": "0123456789abcdef"}))
        .await;
    assert_eq!(logs.recv(10).await.unwrap()["code"], "not_found");

    // The admin stream: refused to a user, open to an admin.
    let mut ws = WsClient::connect(&app, "/ws/admin").await;
    ws.send(json!({"type": "auth", "token": owner.access_token}))
        .await;
    assert_eq!(ws.recv(10).await.unwrap()["code"], "forbidden");
    assert_eq!(ws.recv(10).await, None);
    let admin = app.admin("root").await;
    WsClient::authenticated(&app, "/ws/admin", &admin.access_token).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_status_are_pushed_live_to_owners_and_admins() {
    let interval = Duration::from_secs(1);
    let app = spawn_platform_with(|a| a.metrics_interval = interval).await;
    let user = app.register("watcher").await;
    let token = &user.access_token;
    let image = format!("{}/longin/httpd:1.0", registry());
    apply(&app, token, &app_yaml("live", &image, 1, "")).await;
    wait_for(&app, token, "live", "Running", 1).await;
    let admin = app.admin("overseer").await;
    let mut admin_ws = WsClient::authenticated(&app, "/ws/admin", &admin.access_token).await;

    // Collected at least once already (a container's first reading only primes its
    // CPU figure), so the next cycle is due within one interval.
    common::eventually(10, "a first metrics cycle of live", || async {
        let series: Value = app
            .get("/api/applications/live/metrics?step=1", Some(token))
            .await
            .json()
            .await
            .ok()?;
        (!series["points"].as_array()?.is_empty()).then_some(())
    })
    .await;
    let mut ws = WsClient::authenticated(&app, "/ws/metrics", token).await;
    ws.send(json!({"type": "subscribe", "app": "live"})).await;
    assert_eq!(
        ws.recv(10).await.unwrap(),
        json!({"type": "subscribed", "app": "live"})
    );
    let status = ws.next_of_type("status", 5).await;
    assert_eq!(
        (status["app"].as_str(), status["phase"].as_str()),
        (Some("live"), Some("Running"))
    );

    // Metrics cycles arrive once per interval.
    let subscribed = Instant::now();
    let first = ws.next_of_type("metrics", 5).await;
    let waited = subscribed.elapsed();
    let second = ws.next_of_type("metrics", 5).await;
    let between = subscribed.elapsed() - waited;
    println!("first metrics after {waited:?}, next {between:?} later (interval {interval:?})");
    // Within one interval (and a little for the cycle itself).
    let slack = Duration::from_millis(500);
    assert!(waited <= interval + slack, "first push after {waited:?}");
    assert!(between <= interval + slack, "pushes {between:?} apart");
    for m in [&first, &second] {
        assert_eq!(m["app"], "live");
        assert_eq!(m["aggregated"]["containerCount"], 1);
        assert!(m["aggregated"]["totalMemory"].as_u64().unwrap() > 0, "{m}");
        let c = &m["containerMetrics"][0];
        assert!(
            c["cpuPercent"].is_number() && c["memoryLimitBytes"].is_number(),
            "{m}"
        );
        assert!(m["timestamp"].is_string());
    }

    // A change of the app: its status changes reach the owner and the admin as they
    // happen.
    apply(&app, token, &app_yaml("live", &image, 2, "")).await;
    let scaled = ws
        .next_matching("status", 60, |m| m["readyReplicas"] == 2)
        .await;
    assert_eq!(scaled["phase"], "Running");
    let seen_by_admin = admin_ws
        .next_matching("status", 60, |m| {
            m["app"] == "live" && m["readyReplicas"] == 2
        })
        .await;
    assert_eq!(seen_by_admin["appId"], scaled["appId"]);
    app.stop().await;
}

/// A busybox app printing numbered ~1 KiB lines as fast as `usleep 1000` lets it.
fn chatter(name: &str) -> String {
    common::busybox_app(
        name,
        1,
        "pad=$(printf \"%01000d\" 0); n=0; while :; do echo \"$n $pad\"; n=$((n+1)); usleep 1000; done",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_stream_in_order_and_a_slow_client_lags_alone() {
    let app = common::spawn_platform().await;
    let user = app.register("listener").await;
    let token = &user.access_token;
    // Ordered, tagged lines (20 ms apart: across stdout and stderr the engine keeps
    // the order of lines apart in time only), then `end` when the container stops.
    apply(
        &app,
        token,
        &common::busybox_app("brief", 1, "for i in 0 1 2 3 4; do echo out$i; usleep 20000; echo err$i >&2; usleep 20000; done; sleep 3600"),
    )
    .await;
    wait_for(&app, token, "brief", "Running", 1).await;
    let mut ws = WsClient::authenticated(&app, "/ws/logs", token).await;
    ws.send(json!({"type": "subscribe", "app": "brief"})).await;
    assert_eq!(ws.recv(10).await.unwrap()["type"], "subscribed");
    let mut lines = Vec::new();
    while lines.len() < 10 {
        let m = ws.next_of_type("log", 10).await;
        lines.push((
            m["stream"].as_str().unwrap().to_owned(),
            m["line"].as_str().unwrap().to_owned(),
        ));
        assert!(
            m["containerId"].is_string() && m["timestamp"].is_string(),
            "{m}"
        );
    }
    let expected: Vec<(String, String)> = (0..5)
        .flat_map(|i| {
            [
                ("stdout".to_owned(), format!("out{i}")),
                ("stderr".to_owned(), format!("err{i}")),
            ]
        })
        .collect();
    assert_eq!(lines, expected);
    // Someone else cannot follow that container, by id or by prefix.
    let containers: Vec<Value> = app
        .get("/api/containers", Some(token))
        .await
        .json()
        .await
        .unwrap();
    let id = containers[0]["dockerId"].as_str().unwrap().to_owned();
    let other = app.register("snoop").await;
    let mut snoop = WsClient::authenticated(&app, "/ws/logs", &other.access_token).await;
    snoop
        .send(json!({"type": "subscribe", "containerId": id}))
        .await;
    let refused = snoop.recv(10).await.unwrap();
    assert_eq!(refused["code"], "not_found", "{refused}");
    assert!(
        !refused.to_string().contains("brief"),
        "names nothing: {refused}"
    );
    snoop
        .send(json!({"type": "subscribe", "containerId": &id[..12]}))
        .await;
    assert_eq!(snoop.recv(10).await.unwrap()["code"], "not_found");
    app.client
        .post(app.url("/api/applications/brief/stop"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let end = ws.next_of_type("end", 30).await;
    assert!(end["reason"].is_string(), "{end}");

    // Two followers of a chatty container: one reads, one does not for a while.
    apply(&app, token, &chatter("chatty")).await;
    wait_for(&app, token, "chatty", "Running", 1).await;
    let mut slow = WsClient::connect_small_buffer(&app, "/ws/logs", 4096).await;
    slow.send(json!({"type": "auth", "token": token})).await;
    assert_eq!(slow.recv(10).await.unwrap()["type"], "ready");
    slow.send(json!({"type": "subscribe", "app": "chatty", "tail": 0}))
        .await;
    let mut normal = WsClient::authenticated(&app, "/ws/logs", token).await;
    normal
        .send(json!({"type": "subscribe", "app": "chatty", "tail": 0}))
        .await;
    let mut numbers = Vec::new();
    let reading = Instant::now();
    // 12 s, and on a loaded machine (a slower chatter) until enough lines went by for
    // the slow client's socket buffers and its 1024 queued lines to have filled: the
    // kernel alone can hold a few thousand 1 KB lines.
    while reading.elapsed() < Duration::from_secs(12)
        || (numbers.len() < 8000 && reading.elapsed() < Duration::from_secs(60))
    {
        let m = normal.recv(10).await.unwrap();
        match m["type"].as_str().unwrap() {
            "log" => numbers.push(
                m["line"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            ),
            "subscribed" => {}
            other => panic!("the reading client got {other}: {m}"),
        }
    }
    assert!(numbers.len() > 1000, "only {} lines in 12 s", numbers.len());
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "the reading client missed or repeated lines"
    );
    // The slow client now reads: somewhere in what waited is a `lagged` with a count.
    let mut lagged = None;
    for _ in 0..5000 {
        let m: Value = slow.recv(10).await.unwrap();
        if m["type"] == "lagged" {
            lagged = Some(m);
            break;
        }
    }
    let lagged = lagged.expect("the slow client was told it lagged");
    assert!(lagged["dropped"].as_u64().unwrap() > 0, "{lagged}");
    println!(
        "reader got {} lines in order; slow client: {lagged}",
        numbers.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn disabled_or_demoted_users_lose_their_streams() {
    let app = common::spawn_app_with(|c| c.ws_keepalive = Duration::from_millis(500)).await;
    let root = app.admin("root").await;
    let user = app.register("leaver").await;
    let deputy = app.register("deputy").await;
    let res = app
        .patch(
            &format!("/api/admin/users/{}", deputy.user_id),
            &json!({"role": "admin"}),
            &root.access_token,
        )
        .await;
    assert!(res.status().is_success());

    let mut user_ws = WsClient::authenticated(&app, "/ws/metrics", &user.access_token).await;
    let mut deputy_ws = WsClient::authenticated(&app, "/ws/admin", &deputy.access_token).await;
    // An admin may follow other users' apps on the metrics and logs streams too.
    let mut deputy_metrics =
        WsClient::authenticated(&app, "/ws/metrics", &deputy.access_token).await;
    // Still there after a few keepalive periods (pings answered by the client).
    user_ws.send(json!({"type": "ping"})).await;
    assert_eq!(user_ws.recv(5).await.unwrap(), json!({"type": "pong"}));

    app.patch(
        &format!("/api/admin/users/{}", user.user_id),
        &json!({"disabled": true}),
        &root.access_token,
    )
    .await;
    app.patch(
        &format!("/api/admin/users/{}", deputy.user_id),
        &json!({"role": "user"}),
        &root.access_token,
    )
    .await;
    let closed = user_ws.recv(5).await.unwrap();
    assert_eq!(
        (closed["code"].as_str(), closed["message"].as_str()),
        (Some("unauthorized"), Some("account is disabled"))
    );
    assert_eq!(user_ws.recv(5).await, None);
    assert_eq!(deputy_ws.recv(5).await.unwrap()["code"], "forbidden");
    assert_eq!(deputy_ws.recv(5).await, None);
    assert_eq!(deputy_metrics.recv(5).await.unwrap()["code"], "forbidden");
    assert_eq!(deputy_metrics.recv(5).await, None);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_log_subscription_follows_replacement_containers() {
    let app = common::spawn_platform().await;
    let user = app.register("phoenix").await;
    let token = &user.access_token;
    apply(
        &app,
        token,
        &common::busybox_app("reborn", 1, "echo born; sleep 3600"),
    )
    .await;
    wait_for(&app, token, "reborn", "Running", 1).await;
    let mut ws = WsClient::authenticated(&app, "/ws/logs", token).await;
    ws.send(json!({"type": "subscribe", "app": "reborn", "tail": 10}))
        .await;
    let first = ws.next_matching("log", 10, |m| m["line"] == "born").await;
    let first_id = first["containerId"].as_str().unwrap().to_owned();

    common::docker(&["rm", "-f", &first_id]);
    let end = ws.next_of_type("end", 20).await;
    assert_eq!(end["containerId"], first_id.as_str());
    let second = ws
        .next_matching("log", 60, |m| {
            m["line"] == "born" && m["containerId"] != first_id.as_str()
        })
        .await;
    let second_id = second["containerId"].as_str().unwrap().to_owned();
    println!("followed on into {second_id}");

    // Restarted in place (same container, a new start): followed from its restart.
    common::docker(&["stop", "-t", "1", &second_id]);
    let end = ws.next_of_type("end", 20).await;
    assert_eq!(end["containerId"], second_id.as_str());
    ws.next_matching("log", 60, |m| {
        m["line"] == "born" && m["containerId"] == second_id.as_str()
    })
    .await;
    app.stop().await;
}
