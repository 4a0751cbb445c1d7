//! API hot-path benchmark, measured in one run on this machine (figures, not a
//! pass/fail test):
//!
//! (a) server CPU per request, 32 connections at once, for `/healthz` and, beside it,
//!     `GET /api/auth/me`, `GET /api/applications/{name}` and `GET /api/applications`
//!     with 5 and with 100 applications stored; printed as ratios to `/healthz`
//!     (targets: a single app and `/me` <= 3x, the list of 100 <= 15x);
//! (b) latency at a steady 1 000 requests a second (open loop: a request is sent
//!     every millisecond whether or not the last one answered) of a single-app GET,
//!     against `/healthz` in the same run (target: p99 < 10 ms).
//!
//! The server is `longin serve` on its embedded SQLite store, the default install.
//! Its CPU is read from /proc, so the client's own work does not count.
//!
//!   scripts/test-services >/dev/null && cargo bench --bench api
//! LONGIN_BENCH_SECONDS sets the seconds each route is driven per round (default 3).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Server, apply, cpu_and_rss, start_server};

/// Connections driving (a) at once.
const CONNECTIONS: usize = 32;
/// Rounds of (a); each route's figure is its median over the rounds.
const ROUNDS: usize = 3;

fn registry() -> String {
    std::env::var("LONGIN_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned())
}

fn seconds_per_route() -> Duration {
    Duration::from_secs(
        std::env::var("LONGIN_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    )
}

/// An application as users write them: a few env vars, a probe, limits. `replicas: 0`
/// keeps a hundred of them from running a hundred containers that the controller
/// would then watch during the measurement.
fn app_doc(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata:\n  name: {name}\n  labels: {{team: bench, tier: web}}\nspec:\n  image: {}/longin/busybox:1.0\n  containerPort: 8080\n  replicas: {replicas}\n  command: [httpd, -f, -p, '8080', -h, /]\n  env:\n    - {{name: MODE, value: production}}\n    - {{name: LOG_LEVEL, value: info}}\n    - {{name: FEATURE_FLAGS, value: 'a,b,c'}}\n  resources: {{memory: 64Mi, cpu: '0.5'}}\n  healthCheck: {{http: {{path: /}}, periodSeconds: 5}}\n",
        registry()
    )
}

async fn register(client: &reqwest::Client, server: &Server, name: &str) -> String {
    let password = common::PASSWORD;
    let res = client
        .post(format!("{}/api/auth/register", server.base))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": password, "confirm_password": password}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("register {name}: {body}"))
        .to_owned()
}

/// One route to drive: a path and the token to call it with.
#[derive(Clone)]
struct Route {
    label: &'static str,
    url: String,
    token: Option<String>,
}

impl Route {
    /// One request, which must succeed, its body read to the end.
    async fn call(&self, client: &reqwest::Client) {
        let res = self.request(client).send().await.unwrap();
        assert!(
            res.status().is_success(),
            "{}: {}",
            self.label,
            res.status()
        );
        res.bytes().await.unwrap();
    }

    fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let req = client.get(&self.url);
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }
}

/// Drives `route` with `CONNECTIONS` closed-loop clients for `window`; returns the
/// server's CPU seconds per request.
async fn cpu_per_request(
    client: &reqwest::Client,
    pid: u32,
    route: &Route,
    window: Duration,
) -> f64 {
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let (cpu_before, _) = cpu_and_rss(pid);
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, route, done, count) =
            (client.clone(), route.clone(), done.clone(), count.clone());
        workers.push(tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                route.call(&client).await;
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(window).await;
    done.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let (cpu_after, _) = cpu_and_rss(pid);
    (cpu_after - cpu_before) / count.load(Ordering::Relaxed) as f64
}

/// Sends one request every millisecond for `window`, each on its own task; returns the
/// latencies, sorted.
async fn open_loop(client: &reqwest::Client, route: &Route, window: Duration) -> Vec<Duration> {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + window;
    let mut requests = Vec::new();
    while Instant::now() < end {
        tick.tick().await;
        let (client, route) = (client.clone(), route.clone());
        requests.push(tokio::spawn(async move {
            let started = Instant::now();
            route.call(&client).await;
            started.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(requests.len());
    for request in requests {
        latencies.push(request.await.unwrap());
    }
    latencies.sort();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    // A hundred apps are more than the default per-user quota allows.
    let server = start_server(&[
        ("LONGIN_REGISTRATION", "open"),
        ("LONGIN_QUOTA_APPS", "200"),
        ("LONGIN_QUOTA_REPLICAS", "200"),
    ]);
    let pid = server.child.id();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2 * CONNECTIONS)
        .build()
        .unwrap();
    let admin = server.ready_and_register(&client).await;
    let few = register(&client, &server, "few").await;
    let many = register(&client, &server, "many").await;
    apply(&client, &server, &few, app_doc("web", 1)).await;
    for i in 1..5 {
        apply(&client, &server, &few, app_doc(&format!("app{i}"), 0)).await;
    }
    for i in 0..100 {
        apply(&client, &server, &many, app_doc(&format!("app{i}"), 0)).await;
    }
    // The first account is the admin; the figures are for ordinary users.
    drop(admin);
    let base = &server.base;
    let route = |label, path: &str, token: Option<&String>| Route {
        label,
        url: format!("{base}{path}"),
        token: token.cloned(),
    };
    let routes = [
        route("/healthz", "/healthz", None),
        route("GET /api/auth/me", "/api/auth/me", Some(&few)),
        route(
            "GET /api/applications/{name}",
            "/api/applications/web",
            Some(&few),
        ),
        route(
            "GET /api/applications (5 apps)",
            "/api/applications",
            Some(&few),
        ),
        route(
            "GET /api/applications (100 apps)",
            "/api/applications",
            Some(&many),
        ),
    ];
    let targets = [None, Some(3.0), Some(3.0), None, Some(15.0)];
    let list_bytes = routes[4]
        .request(&client)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();

    // Warm up connections, caches and the allocator before anything counts.
    for route in &routes {
        cpu_per_request(&client, pid, route, Duration::from_secs(1)).await;
    }
    let window = seconds_per_route();
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
    for _ in 0..ROUNDS {
        for (route, figure) in routes.iter().zip(&mut figures) {
            figure.push(cpu_per_request(&client, pid, route, window).await);
        }
    }
    let cpu: Vec<f64> = figures.into_iter().map(median).collect();

    println!(
        "\n(a) server CPU per request, {CONNECTIONS} connections, median of {ROUNDS} rounds of {} s",
        window.as_secs()
    );
    println!("| route | CPU per request | ratio to /healthz | target |");
    println!("|---|---|---|---|");
    for ((route, cpu_each), target) in routes.iter().zip(&cpu).zip(targets) {
        let ratio = cpu_each / cpu[0];
        let target = target.map_or_else(String::new, |t| {
            format!("<= {t} {}", if ratio <= t { "✓" } else { "MISSED" })
        });
        println!(
            "| {} | {:.0} µs | {ratio:.2} | {target} |",
            route.label,
            cpu_each * 1e6
        );
    }
    println!(
        "(the list of 100 is {list_bytes} bytes: {:.1} µs per app)",
        (cpu[4] - cpu[0]) * 1e6 / 100.0
    );

    println!("\n(b) latency at 1 000 requests/s, 10 s each");
    println!("| route | p50 | p99 | max | target |");
    println!("|---|---|---|---|---|");
    for (route, target) in [(&routes[0], None), (&routes[2], Some(10.0))] {
        let latencies = open_loop(&client, route, Duration::from_secs(10)).await;
        let p99 = percentile(&latencies, 0.99);
        let target = target.map_or_else(String::new, |t: f64| {
            format!("p99 < {t} ms {}", if p99 < t { "✓" } else { "MISSED" })
        });
        println!(
            "| {} | {:.2} ms | {p99:.2} ms | {:.2} ms | {target} |",
            route.label,
            percentile(&latencies, 0.5),
            latencies.last().unwrap().as_secs_f64() * 1000.0,
        );
    }
    let (_, rss) = cpu_and_rss(pid);
    println!("\nserver RSS at the end: {:.1} MB", rss as f64 / 1e6);
}
