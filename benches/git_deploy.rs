//! Git deploy benchmark: a push to the webhook until the new commit serves, against
//! the same steps done by hand in the same run (figures, not a pass/fail test).
//!
//! (a) push → new commit serving, one replica, a small repository, warm layer cache:
//!     Longin (webhook → fetch → context → build → rolling update) vs by hand
//!     (`git fetch` into a bare mirror, `git archive` into a directory, the same
//!     labels appended to the Dockerfile in one LABEL line as Longin does,
//!     `docker build`, `docker run`, first answer of the new page). Target ratio ≤ 1.3.
//! (b) the webhook's answer time over 300 signed deliveries (pushes to another branch:
//!     the signature check, the parse, the delivery's row), p50 and p99. Target p99
//!     < 100 ms.
//!
//! Needs the test services (registry and images):
//!   scripts/test-services >/dev/null && cargo bench --bench git_deploy
//! LONGIN_BENCH_ROUNDS (default 5) sets the rounds of (a).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use common::{apply, free_port, start_server, verdict};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn sh(script: &str) {
    let status = Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
}

/// Commits `page` as index.html and pushes; the sha.
fn commit(work: &Path, page: &str) -> String {
    std::fs::write(work.join("index.html"), page).unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "--quiet", "-m", page]);
    git(work, &["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    git(work, &["rev-parse", "HEAD"])
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn push(url: &str, git_ref: &str, after: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": git_ref, "before": "0".repeat(40), "after": after,
        "created": false, "deleted": false, "forced": false,
        "repository": {"full_name": "bench/web", "clone_url": url},
        "head_commit": {"id": after, "message": "bench", "timestamp": "2026-12-01T00:00:00Z",
                        "author": {"name": "bench", "email": "bench@example.com"}},
    }))
    .unwrap()
}

async fn deliver(
    client: &reqwest::Client,
    hook: &str,
    secret: &str,
    id: &str,
    body: Vec<u8>,
) -> u16 {
    client
        .post(hook)
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", id)
        .header("x-hub-signature-256", sign(secret, &body))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Until one of `ports` answers `page`.
async fn until_serving(client: &reqwest::Client, ports: impl Fn() -> Vec<u64>, page: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        for port in ports() {
            if let Ok(res) = client
                .get(format!("http://127.0.0.1:{port}/"))
                .timeout(Duration::from_millis(200))
                .send()
                .await
                && res.text().await.is_ok_and(|t| t == page)
            {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{page} never served");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main]
async fn main() {
    let registry =
        std::env::var("LONGIN_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned());
    let rounds: usize = std::env::var("LONGIN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let (bare, work, mirror) = (
        dir.path().join("web.git"),
        dir.path().join("work"),
        dir.path().join("mirror.git"),
    );
    for d in [&bare, &work, &mirror] {
        std::fs::create_dir_all(d).unwrap();
    }
    git(&bare, &["init", "--bare", "--quiet", "-b", "main"]);
    git(&mirror, &["init", "--bare", "--quiet"]);
    git(&work, &["init", "--quiet", "-b", "main"]);
    git(&work, &["config", "user.name", "bench"]);
    git(&work, &["config", "user.email", "bench@example.com"]);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    std::fs::write(
        work.join("Dockerfile"),
        format!("FROM {registry}/longin/httpd:1.0\nCOPY index.html /www/index.html\n"),
    )
    .unwrap();
    let url = format!("file://{}", bare.display());
    commit(&work, "page-0");

    let log = std::env::var("LONGIN_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned());
    let server = start_server(&[("LONGIN_LOG", log.as_str())]);
    let client = reqwest::Client::new();
    let token = server.ready_and_register(&client).await;
    apply(
        &client,
        &server,
        &token,
        format!(
            "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: web}}\nspec:\n  source: {{git: {{url: '{url}'}}}}\n  containerPort: 8080\n  terminationGracePeriodSeconds: 1\n"
        ),
    )
    .await;
    let hook: Value = client
        .put(format!("{}/api/applications/web/webhook", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (hook_url, secret) = (
        hook["url"].as_str().unwrap().to_owned(),
        hook["secret"].as_str().unwrap().to_owned(),
    );
    // Every container's port, the new one included while the rollout is under way:
    // the new commit serves from the moment its container answers.
    let ports = || -> Vec<u64> {
        let out = Command::new("curl")
            .args([
                "-s",
                "-H",
                &format!("authorization: Bearer {token}"),
                &format!("{}/api/applications/web/containers", server.base),
            ])
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout)
            .ok()
            .and_then(|c| c.as_array().cloned())
            .map(|c| c.iter().filter_map(|c| c["hostPort"].as_u64()).collect())
            .unwrap_or_default()
    };
    // The first build warms the layer cache (and the base image).
    until_serving(&client, ports, "page-0").await;

    let mut longin = Vec::new();
    let mut by_hand = Vec::new();
    for round in 1..=rounds {
        // Longin: push, deliver, until the new page serves.
        let page = format!("page-{round}");
        let sha = commit(&work, &page);
        let started = Instant::now();
        assert_eq!(
            deliver(
                &client,
                &hook_url,
                &secret,
                &format!("r-{round}"),
                push(&url, "refs/heads/main", &sha)
            )
            .await,
            202
        );
        until_serving(&client, ports, &page).await;
        longin.push(started.elapsed().as_secs_f64());

        // By hand: the same steps, the same engine, the same cache.
        let page = format!("hand-{round}");
        let sha = commit(&work, &page);
        let port = free_port();
        let name = format!("longin-bench-hand-{round}-{}", std::process::id());
        let started = Instant::now();
        // The same image as Longin's: built from the commit, labelled with the same
        // four labels in one LABEL line (what Longin appends to the Dockerfile).
        let ctx = dir.path().join(format!("ctx-{round}"));
        sh(&format!(
            "git -C {m} fetch --quiet --no-tags {b} +refs/heads/main:refs/heads/main && \
             mkdir -p {c} && git -C {m} archive --format=tar {sha} | tar -x -C {c} && \
             printf 'LABEL \"io.longin.installation\"=\"i\" \"io.longin.app-uid\"=\"a\" \"io.longin.commit\"=\"{sha}\" \"io.longin.revision\"=\"{round}\"\\n' >>{c}/Dockerfile && \
             DOCKER_BUILDKIT=0 docker build -q -t {name}:x {c} && \
             docker run -d --name {name} -p 127.0.0.1:{port}:8080 {name}:x",
            m = mirror.display(),
            b = bare.display(),
            c = ctx.display(),
        ));
        until_serving(&client, || vec![u64::from(port)], &page).await;
        by_hand.push(started.elapsed().as_secs_f64());
        sh(&format!("docker rm -f {name} && docker rmi {name}:x"));
        // Longin builds its image of this commit too before the next round, so every
        // round of both starts from the same place.
        assert_eq!(
            deliver(
                &client,
                &hook_url,
                &secret,
                &format!("h-{round}"),
                push(&url, "refs/heads/main", &sha)
            )
            .await,
            202
        );
        until_serving(&client, ports, &page).await;
    }
    let (l, h) = (median(longin.clone()), median(by_hand.clone()));
    println!(
        "(a) push -> new commit serving, median of {rounds} rounds: Longin {l:.3} s, by hand {h:.3} s, ratio {:.2} (target <= 1.3: {})",
        l / h,
        verdict(l / h, 1.3)
    );
    println!("    Longin rounds: {longin:.3?}\n    by hand rounds: {by_hand:.3?}");

    // (b) the webhook's answer time.
    let mut times = Vec::new();
    for i in 0..300 {
        let body = push(&url, "refs/heads/elsewhere", &"c".repeat(40));
        let started = Instant::now();
        assert_eq!(
            deliver(&client, &hook_url, &secret, &format!("w-{i}"), body).await,
            202
        );
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let p99 = times[times.len() * 99 / 100];
    println!(
        "(b) webhook answer over 300 deliveries: p50 {:.2} ms, p99 {p99:.2} ms (target < 100 ms: {})",
        times[times.len() / 2],
        if p99 < 100.0 {
            "meets target"
        } else {
            "MISSES target"
        }
    );
    drop(server);
}
