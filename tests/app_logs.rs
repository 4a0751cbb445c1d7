//! An application's logs over REST (`/api/applications/{name}/logs`), on the real
//! engine: its replicas' lines merged in time order, filtered by tail, since, stream
//! and replica; followed across a restart in place and a rollout with every line
//! once; and refused as the other log routes refuse.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use common::{TestApp, apply, error_code, eventually, wait_for};

/// Each replica prints `out0 err0 … out2 err2` (err* on stderr) 20 ms apart, then
/// `tickN` every 200 ms.
fn duet(name: &str, replicas: u32) -> String {
    common::busybox_app(
        name,
        replicas,
        "i=0; while [ $i -lt 3 ]; do echo out$i; usleep 20000; echo err$i >&2; usleep 20000; i=$((i+1)); done; n=0; while :; do echo tick$n; n=$((n+1)); sleep 0.2; done",
    )
}

async fn app_logs(app: &TestApp, token: &str, name: &str, query: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/applications/{name}/logs{query}")))
        .bearer_auth(token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap()
}

async fn json_lines(res: reqwest::Response) -> Vec<Value> {
    assert_eq!(res.status(), StatusCode::OK);
    res.text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stamp(line: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_logs_merge_its_replicas_in_time_order_and_filter_as_asked() {
    let app = common::spawn_platform_with(|args| args.log_streams_per_user = 2).await;
    let user = app.register("duo").await;
    let token = &user.access_token;
    apply(&app, token, &duet("duet", 2)).await;
    wait_for(&app, token, "duet", "Running", 2).await;

    // Everything: both replicas, in timestamp order, each line with its replica.
    let lines = eventually(30, "a few ticks of both replicas", || async {
        let lines = json_lines(app_logs(&app, token, "duet", "?tail=10000").await).await;
        let ticked = |r: u64| {
            lines
                .iter()
                .any(|l| l["replica"] == r && l["line"] == "tick2")
        };
        (ticked(0) && ticked(1)).then_some(lines)
    })
    .await;
    let stamps: Vec<_> = lines.iter().map(stamp).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "merged in order: {lines:?}"
    );
    for r in [0_u64, 1] {
        let mine: Vec<&str> = lines
            .iter()
            .filter(|l| l["replica"] == r && l["stream"] == "stderr")
            .map(|l| l["line"].as_str().unwrap())
            .collect();
        assert_eq!(mine, ["err0", "err1", "err2"], "replica {r}");
    }
    assert!(lines.iter().all(|l| l["containerId"].is_string()));

    // tail per container; one replica; the replica count in a header.
    let res = app_logs(&app, token, "duet", "?tail=1").await;
    assert_eq!(res.headers()["longin-replicas"], "2");
    let last = json_lines(res).await;
    assert_eq!(last.len(), 2, "{last:?}");
    let one = json_lines(app_logs(&app, token, "duet", "?tail=10000&replica=1").await).await;
    assert!(
        !one.is_empty() && one.iter().all(|l| l["replica"] == 1),
        "{one:?}"
    );
    let (status, body) = error_code(app_logs(&app, token, "duet", "?replica=7").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body.to_string().contains("no replica 7 (replicas: 0, 1)"),
        "{body}"
    );

    // since: only what came after; text with one stream, prefixed by replica.
    let middle = &lines[lines.len() / 2];
    let since = middle["timestamp"].as_str().unwrap();
    let later =
        json_lines(app_logs(&app, token, "duet", &format!("?tail=10000&since={since}")).await)
            .await;
    assert!(later.iter().all(|l| stamp(l) >= stamp(middle)), "{later:?}");
    assert!(
        later.len() < lines.len() + 20,
        "{} of {}",
        later.len(),
        lines.len()
    );
    let text = app
        .client
        .get(app.url("/api/applications/duet/logs?tail=10000&stream=stderr"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(
        text.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = text.text().await.unwrap();
    let mut seen: Vec<&str> = text.lines().collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            "[r0] err0",
            "[r0] err1",
            "[r0] err2",
            "[r1] err0",
            "[r1] err1",
            "[r1] err2"
        ],
        "{text}"
    );

    // Refused like the other routes: someone else's app, bad parameters, too many.
    let other = app.register("stranger").await;
    let (status, _) = error_code(app_logs(&app, &other.access_token, "duet", "").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = error_code(app_logs(&app, "not-a-token", "duet", "").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) =
        error_code(app_logs(&app, token, "duet", "?tail=10001&since=soon&stream=both").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for field in ["tail", "since", "stream"] {
        assert!(
            body["error"]["fields"][field].is_string(),
            "{field}: {body}"
        );
    }
    let (status, _) = error_code(app_logs(&app, token, "duet", "?tail=-1").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let held: Vec<_> = futures::future::join_all(
        (0..2).map(|_| app_logs(&app, token, "duet", "?tail=0&follow=true")),
    )
    .await;
    assert!(held.iter().all(|r| r.status() == StatusCode::OK));
    let (status, _) = error_code(app_logs(&app, token, "duet", "?tail=1").await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    drop(held);
    eventually(10, "a place free once a follower left", || async {
        (app_logs(&app, token, "duet", "?tail=1").await.status() == StatusCode::OK).then_some(())
    })
    .await;
    app.stop().await;
}

/// Reads a followed NDJSON response until `done` says so (within 90 s).
async fn read_until(
    res: &mut reqwest::Response,
    seen: &mut Vec<Value>,
    why: &str,
    done: impl Fn(&[Value]) -> bool,
) {
    let mut pending = String::new();
    tokio::time::timeout(Duration::from_secs(90), async {
        while !done(seen) {
            let chunk = res
                .chunk()
                .await
                .unwrap()
                .expect("the stream is still open");
            pending.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                seen.push(serde_json::from_str(&line).unwrap());
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{why} within 90 s: {seen:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_app_goes_on_across_a_restart_and_a_rollout_with_every_line_once() {
    let app = common::spawn_platform().await;
    let user = app.register("phoenix").await;
    let token = &user.access_token;
    let script = |word: &str| {
        common::busybox_app(
            "rising",
            1,
            &format!("echo {word}; n=0; while :; do echo tick$n; n=$((n+1)); sleep 0.2; done"),
        )
    };
    apply(&app, token, &script("born")).await;
    wait_for(&app, token, "rising", "Running", 1).await;
    let mut res = app_logs(&app, token, "rising", "?tail=100&follow=true").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["longin-replicas"], "1");
    let mut seen = Vec::new();
    read_until(&mut res, &mut seen, "born and five ticks", |s| {
        s.iter().any(|l| l["line"] == "born") && s.iter().any(|l| l["line"] == "tick5")
    })
    .await;
    let first_id = seen[0]["containerId"].as_str().unwrap().to_owned();

    // Restarted in place: the same container from its new start.
    common::docker(&["stop", "-t", "1", &first_id]);
    read_until(
        &mut res,
        &mut seen,
        "born again in the same container",
        |s| s.iter().filter(|l| l["line"] == "born").count() == 2,
    )
    .await;
    assert!(seen.iter().any(|l| l["type"] == "end"), "{seen:?}");
    let again = seen.iter().rfind(|l| l["line"] == "born").unwrap();
    assert_eq!(
        again["containerId"],
        first_id.as_str(),
        "the same container"
    );

    // A rollout: the new container's lines from its first.
    apply(&app, token, &script("renewed")).await;
    read_until(&mut res, &mut seen, "the new container's first line", |s| {
        s.iter().any(|l| l["line"] == "renewed")
    })
    .await;
    let renewed = seen.iter().find(|l| l["line"] == "renewed").unwrap();
    assert_ne!(renewed["containerId"], first_id.as_str());
    assert_eq!(renewed["replica"], 0);

    // Nothing twice.
    let lines: Vec<&Value> = seen.iter().filter(|l| l["line"].is_string()).collect();
    let unique: HashSet<String> = lines
        .iter()
        .map(|l| format!("{} {} {}", l["containerId"], l["timestamp"], l["line"]))
        .collect();
    assert_eq!(unique.len(), lines.len(), "a line came twice: {seen:?}");
    drop(res);
    app.stop().await;
}

#[tokio::test]
async fn the_route_is_in_the_openapi_document_with_every_status_it_answers() {
    let app = common::spawn_app().await;
    let doc: Value = app
        .get("/api/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let op = &doc["paths"]["/api/applications/{name}/logs"]["get"];
    let statuses: Vec<&str> = op["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("documented: {op}"))
        .keys()
        .map(String::as_str)
        .collect();
    // 500 is declared on every operation by the document builder (api/src/openapi.rs).
    assert_eq!(
        statuses,
        ["200", "400", "401", "403", "404", "429", "500", "503"]
    );
    let params: HashSet<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "name",
        "owner",
        "tail",
        "since",
        "follow",
        "replica",
        "timestamps",
        "stream",
    ] {
        assert!(params.contains(name), "{name}: {op}");
    }
    app.stop().await;
}
