//! Hostile and arbitrary documents through the real apply endpoint: a YAML alias bomb is
//! refused at once without the server's memory growing, and no input, however odd,
//! makes it panic or answer 5xx.
//!
//! The server runs in this process (an API-only one: no controller, so applied
//! applications start no containers), which is what lets the bomb tests read its memory
//! from /proc/self/status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
// The same strategies as crds' own property tests.
#[path = "../crds/tests/arbitrary/mod.rs"]
mod arbitrary;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::Value;

use common::{TestApp, apply_yaml, error_code, spawn_app};

/// The API's default body limit.
const BODY_LIMIT: usize = 1024 * 1024;

/// Tests in this file run in parallel threads of one process: the bomb tests hold this
/// exclusively while they read the process's memory, the others share it.
static MEMORY: LazyLock<tokio::sync::RwLock<()>> = LazyLock::new(|| tokio::sync::RwLock::new(()));

/// A field of /proc/self/status in KiB: `VmRSS` (resident now) or `VmHWM` (the peak).
fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix(" kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Resets the peak (`VmHWM`) to what is resident now, where the kernel allows it: then
/// the peak after a request is what the request took at its worst, not merely what is
/// left resident once it has been answered.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `a` anchors a list of `items` ones, `b` refers to it `aliases` times: items ×
/// aliases nodes from 2 × items + 3 × aliases bytes.
fn alias_bomb(items: usize, aliases: usize) -> String {
    format!(
        "a: &x [{}]\nb: [{}]\n",
        vec!["1"; items].join(","),
        vec!["*x"; aliases].join(",")
    )
}

/// The bomb of the most nodes that fits in `limit` bytes: half the text for the items,
/// half for the aliases.
fn largest_alias_bomb(limit: usize) -> String {
    // `alias_bomb(i, a)` is 2i + 3a + 13 bytes: "1" and "*x" with commas between.
    let fixed = alias_bomb(1, 1).len() - 5;
    let items = (limit - fixed) / 4;
    let aliases = (limit - fixed - 2 * items) / 3;
    alias_bomb(items, aliases)
}

/// Sends `bomb` and asserts it is refused as too large within 2 s while the server's
/// memory grows by less than 100 MB. Returns what it took: time, and growth in KiB.
async fn assert_bomb_is_refused(bomb: &str) -> (Duration, u64) {
    let _alone = MEMORY.write().await;
    let app = spawn_app().await;
    let user = app.register("bomber").await;
    // A first apply, so that what any request sets up once (connections, the pool)
    // is not counted against the bomb.
    let res = apply_yaml(&app, &user.access_token, "kind: Nothing\n").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let peak_known = reset_peak();
    let before = memory_kib("VmRSS");
    let started = Instant::now();
    // Bounded: a server that expanded the bomb would take minutes and gigabytes.
    let res = tokio::time::timeout(
        Duration::from_secs(10),
        apply_yaml(&app, &user.access_token, bomb),
    )
    .await
    .expect("answered at all");
    let took = started.elapsed();
    let after = memory_kib(if peak_known { "VmHWM" } else { "VmRSS" });
    let growth = after.saturating_sub(before);

    let (status, body) = error_code(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "document_too_large", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too large")),
        "{body}"
    );
    assert!(took < Duration::from_secs(2), "refused after {took:?}");
    assert!(
        growth < 100 * 1024,
        "memory grew by {growth} KiB ({}: {before} → {after} KiB)",
        if peak_known { "peak" } else { "resident" }
    );

    // The server is none the worse: a plain document still applies.
    let res = apply_yaml(
        &app,
        &user.access_token,
        &common::app_yaml("after-the-bomb", "127.0.0.1:5000/demo/hello:1.0", 1, ""),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
    eprintln!(
        "{} bytes refused in {took:?}; memory grew by {growth} KiB ({})",
        bomb.len(),
        if peak_known { "peak" } else { "resident" }
    );
    (took, growth)
}

#[tokio::test(flavor = "multi_thread")]
async fn yaml_alias_bomb_is_refused_without_growing_memory() {
    // 25 KB of text that stands for 25 million nodes (once 1.6 GB of server memory).
    let bomb = alias_bomb(5000, 5000);
    assert!(bomb.len() < 26_000);
    assert_bomb_is_refused(&bomb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn largest_alias_bomb_under_the_body_limit_is_refused_without_growing_memory() {
    // About 262 000 items referred to 175 000 times: 46 billion nodes.
    let bomb = largest_alias_bomb(BODY_LIMIT);
    assert!(
        bomb.len() <= BODY_LIMIT && bomb.len() > BODY_LIMIT - 8,
        "{}",
        bomb.len()
    );
    assert_bomb_is_refused(&bomb).await;
}

/// What the server answered to the bodies of a property.
#[derive(Debug, Default)]
struct Tally {
    accepted: u32,
    /// Refusals by error code.
    refused: BTreeMap<String, u32>,
}

impl Tally {
    fn refused_with(&self, code: &str) -> bool {
        self.refused.contains_key(code)
    }
}

/// Runs `cases` cases of `strategy` against one server, sending each case as the
/// bodies `bodies` makes of it (content type, body), and checks every answer: 2xx with
/// results, or 4xx with an error code; never a 5xx, never a dropped connection.
fn against_the_server<S>(
    strategy: S,
    cases: u32,
    bodies: impl Fn(&S::Value) -> Vec<(&'static str, Vec<u8>)>,
) -> Tally
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let _shared = MEMORY.blocking_read();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    let token = runtime.block_on(app.register("prop")).access_token;
    let tally = RefCell::new(Tally::default());
    let mut runner = TestRunner::new(Config {
        cases,
        // A failure prints its minimal input; nothing is written into the tree.
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&strategy, |input| {
        for (content_type, body) in bodies(&input) {
            let (status, reply) = runtime.block_on(put(&app, &token, content_type, body));
            prop_assert!(
                status.is_success() || status.is_client_error(),
                "{status} {reply} for {content_type} {input:?}"
            );
            if status.is_success() {
                prop_assert!(reply["results"].is_array(), "{reply}");
                tally.borrow_mut().accepted += 1;
            } else {
                let code = reply["error"]["code"].as_str();
                prop_assert!(code.is_some(), "{status} {reply}");
                prop_assert!(reply["error"]["message"].is_string(), "{status} {reply}");
                *tally
                    .borrow_mut()
                    .refused
                    .entry(code.unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
        }
        Ok(())
    });
    runtime.block_on(app.stop());
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    let tally = tally.into_inner();
    eprintln!("{tally:?}");
    // Every body reached the parser: none was turned away before it.
    assert!(!tally.refused_with("unauthorized"), "{tally:?}");
    tally
}

/// `PUT /api/applications/apply`; the status and the body as JSON (`Null` if not JSON,
/// which the checks then refuse).
async fn put(app: &TestApp, token: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let res = app
        .client
        .put(app.url("/api/applications/apply"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the server answers every body");
    let status = res.status();
    let bytes = res.bytes().await.expect("the whole answer");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const YAML: &str = "application/yaml";
const JSON: &str = "application/json";

#[test]
fn arbitrary_yaml_text_is_answered_with_2xx_or_4xx() {
    let text = prop_oneof![
        3 => arbitrary::yaml_text().prop_map(String::into_bytes),
        1 => any::<String>().prop_map(String::into_bytes),
        // Not even UTF-8, sometimes.
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    let tally = against_the_server(text, 128, |text| vec![(YAML, text.clone())]);
    assert!(
        tally.refused_with("malformed_yaml") && tally.refused_with("validation_failed"),
        "{tally:?}"
    );
}

#[test]
fn arbitrary_json_values_are_answered_with_2xx_or_4xx() {
    let tally = against_the_server(arbitrary::json_value(), 96, |value| {
        vec![
            (JSON, value.to_string().into_bytes()),
            (YAML, arbitrary::to_yaml(value).into_bytes()),
        ]
    });
    assert!(tally.refused_with("validation_failed"), "{tally:?}");
}

#[test]
fn mutated_applications_are_answered_with_2xx_or_4xx() {
    // One to three documents in a body, as a YAML stream and as a JSON list.
    let documents = prop::collection::vec(arbitrary::mutated_application(), 1..4);
    let tally = against_the_server(documents, 96, |documents| {
        let yaml: Vec<String> = documents.iter().map(arbitrary::to_yaml).collect();
        vec![
            (YAML, yaml.join("---\n").into_bytes()),
            (
                JSON,
                Value::Array(documents.clone()).to_string().into_bytes(),
            ),
        ]
    });
    // The mutations leave some documents valid and break others: both paths ran.
    assert!(
        tally.accepted > 0 && tally.refused_with("validation_failed"),
        "{tally:?}"
    );
}
