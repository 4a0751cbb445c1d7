//! Engine calls are bounded by `--engine-timeout`, except that a stop also gets the
//! container's grace period: the engine answers a stop only once the container is down.
//! Alone in its test binary: it reads the process-wide `longin_reconciles_total`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use common::{
    TestApp, apply, busybox_app, eventually, get_application, spawn_platform_with, wait_for,
};

async fn failed_reconciles(app: &TestApp) -> f64 {
    common::sample(
        &common::scrape(&app.url("/metrics")).await,
        "longin_reconciles_total{result=\"error\"}",
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_that_takes_its_whole_grace_period_is_not_a_timeout() {
    let app = spawn_platform_with(|args| args.engine_timeout = Duration::from_secs(2)).await;
    let user = app.register("patient").await;
    let token = &user.access_token;
    // Ignores SIGTERM, so its stop lasts the whole 6 s grace period: three engine
    // timeouts.
    let yaml = busybox_app("stubborn", 1, "trap \"\" TERM; while :; do sleep 1; done").replace(
        "terminationGracePeriodSeconds: 2",
        "terminationGracePeriodSeconds: 6",
    );
    apply(&app, token, &yaml).await;
    wait_for(&app, token, "stubborn", "Running", 1).await;
    let errors_before = failed_reconciles(&app).await;

    let started = Instant::now();
    let res = app
        .client
        .delete(app.url("/api/applications/stubborn"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    eventually(60, "application gone", || async {
        get_application(&app, token, "stubborn")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    let took = started.elapsed();

    // It really waited out the grace period (the SIGKILL came after it) …
    assert!(took >= Duration::from_secs(5), "deleted in {took:?}");
    // … and no reconcile failed on the way: the stop was not cut at 2 s and retried.
    assert_eq!(failed_reconciles(&app).await, errors_before);
    app.stop().await;
}
