//! Dashboard benchmark: how soon the applications page is interactive with 100
//! applications, against the same page with one, in the same run and browser
//! (figures, not a pass/fail test).
//!
//! "Interactive" is the page's own `longin:apps-interactive` mark: the rows are in the
//! DOM, a frame has been drawn with them, and the main thread has answered a task
//! after it (so a click would be handled). It is read from the Performance API,
//! relative to the navigation's start, so WebDriver's own latency is not in it.
//! Target: under 500 ms with 100 applications.
//!
//! Needs the test services (chromium, chromedriver):
//!   scripts/test-services >/dev/null && cargo bench --bench dashboard
//! LONGIN_BENCH_ROUNDS (default 7) sets the rounds per size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::{PASSWORD, start_server, verdict};

fn app(name: &str) -> String {
    format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: {name}, labels: {{team: web}}}}\nspec:\n  image: 127.0.0.1:5000/longin/httpd:1.0\n  containerPort: 8080\n  replicas: 0\n"
    )
}

/// Milliseconds from navigation to interactive, for each of `rounds` loads of `/`.
async fn loads(b: &Browser, rows: usize, rounds: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..rounds {
        b.goto("/").await;
        let ms = b
            .until(
                20,
                "the applications page's interactive mark",
                &format!(
                    "return document.querySelectorAll('#apps-body tr[data-app]').length === {rows}
                        && performance.getEntriesByName('longin:apps-interactive')[0]?.startTime"
                ),
            )
            .await;
        out.push(ms.as_f64().unwrap());
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("LONGIN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = start_server(&[("LONGIN_QUOTA_APPS", "200")]);
        let client = reqwest::Client::new();
        let token = server.ready_and_register(&client).await;
        common::apply(&client, &server, &token, app("app-000")).await;

        let b = Browser::start(&server.base, "bench-dashboard", 1280, 900).await;
        b.sign_in("bench", PASSWORD).await;
        // Warm: the files are cached after the first load, as for a returning user.
        loads(&b, 1, 2).await;
        let one = median(loads(&b, 1, rounds).await);

        let docs: Vec<String> = (1..100).map(|i| app(&format!("app-{i:03}"))).collect();
        common::apply(&client, &server, &token, docs.join("---\n")).await;
        // (loads() waits for exactly 100 rows: the apply made them all.)
        loads(&b, 100, 1).await;
        let hundred = median(loads(&b, 100, rounds).await);

        let ratio = hundred / one;
        println!("applications page, navigation → interactive (median of {rounds}):");
        println!("  1 application:    {one:7.1} ms");
        println!(
            "  100 applications: {hundred:7.1} ms  (ratio {ratio:.2})  target < 500 ms: {}",
            verdict(hundred, 500.0)
        );
        b.assert_clean(&[]).await;
        drop(b);
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
}
