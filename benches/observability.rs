//! Observability benchmark, measured in one run on this machine (figures, not a
//! pass/fail test):
//!
//! (a) log throughput: a container printing as fast as it can; lines per second a
//!     WebSocket client of /ws/logs receives, against `docker logs -f` read in the same
//!     window (target ratio >= 0.8);
//! (b) the stats cycle for 100 running containers (target < 3 s), against
//!     `docker stats --no-stream` of the same containers, and the CPU the collection
//!     costs the server.
//!
//!   scripts/test-services >/dev/null && cargo bench --bench observability
//! LONGIN_BENCH_APPS shrinks (b) for a quick look.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::{Server, apply, cpu_and_rss, start_server, verdict};

/// Seconds each side of (a) is counted for.
const WINDOW: Duration = Duration::from_secs(10);

fn registry() -> String {
    std::env::var("LONGIN_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".to_owned())
}

fn busybox_doc(name: &str, script: &str) -> String {
    format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: {name}}}\nspec:\n  image: {}/longin/busybox:1.0\n  containerPort: 8080\n  replicas: 1\n  terminationGracePeriodSeconds: 1\n  resources: {{memory: 32Mi}}\n  command: [sh, -c, '{script}']\n",
        registry()
    )
}

async fn status(client: &reqwest::Client, server: &Server, token: &str, name: &str) -> Value {
    client
        .get(format!("{}/api/applications/{name}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_running(client: &reqwest::Client, server: &Server, token: &str, names: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(300);
    for name in names {
        loop {
            let a = status(client, server, token, name).await;
            if a["status"]["phase"] == "Running" && a["status"]["readyReplicas"] == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{name} never ran: {a}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn docker_id(client: &reqwest::Client, server: &Server, token: &str, name: &str) -> String {
    let list: Vec<Value> = client
        .get(format!(
            "{}/api/applications/{name}/containers",
            server.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list[0]["dockerId"].as_str().unwrap().to_owned()
}

/// (a): lines per second through /ws/logs and through `docker logs -f`, same window.
async fn log_throughput(client: &reqwest::Client, server: &Server, token: &str) -> (f64, f64, u64) {
    apply(
        client,
        server,
        token,
        busybox_doc(
            "firehose",
            "yes \"a log line of a chatty application, about sixty bytes long\"",
        ),
    )
    .await;
    wait_running(client, server, token, &["firehose".to_owned()]).await;
    let id = docker_id(client, server, token, "firehose").await;

    // docker logs -f, counted by a reading thread.
    let docker_lines = Arc::new(AtomicU64::new(0));
    let mut cli = Command::new("docker")
        .args(["logs", "-f", "--since", "1s", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = cli.stdout.take().unwrap();
    std::thread::spawn({
        let count = docker_lines.clone();
        move || {
            let mut buf = vec![0_u8; 1 << 16];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let lines = buf[..n].iter().filter(|b| **b == b'\n').count();
                count.fetch_add(lines as u64, Ordering::Relaxed);
            }
        }
    });

    // The WebSocket client, counting log messages and what it was told it lost.
    let ws_lines = Arc::new(AtomicU64::new(0));
    let ws_dropped = Arc::new(AtomicU64::new(0));
    let url = format!("{}/ws/logs", server.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "auth", "token": token}).to_string().into(),
    ))
    .await
    .unwrap();
    ws.send(Message::Text(
        json!({"type": "subscribe", "containerId": id, "tail": 0})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let reader = tokio::spawn({
        let (lines, dropped) = (ws_lines.clone(), ws_dropped.clone());
        async move {
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                // Cheap classification: a full parse per line would bill the client.
                if text.starts_with("{\"containerId\"") || text.contains("\"type\":\"log\"") {
                    lines.fetch_add(1, Ordering::Relaxed);
                } else if let Ok(v) = serde_json::from_str::<Value>(&text)
                    && v["type"] == "lagged"
                {
                    dropped.fetch_add(v["dropped"].as_u64().unwrap_or(0), Ordering::Relaxed);
                }
            }
        }
    });

    tokio::time::sleep(Duration::from_secs(2)).await; // both streams under way
    let (d0, w0, x0) = (
        docker_lines.load(Ordering::Relaxed),
        ws_lines.load(Ordering::Relaxed),
        ws_dropped.load(Ordering::Relaxed),
    );
    tokio::time::sleep(WINDOW).await;
    let (d1, w1, x1) = (
        docker_lines.load(Ordering::Relaxed),
        ws_lines.load(Ordering::Relaxed),
        ws_dropped.load(Ordering::Relaxed),
    );
    reader.abort();
    let _ = cli.kill();
    let _ = cli.wait();
    let secs = WINDOW.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rates = ((w1 - w0) as f64 / secs, (d1 - d0) as f64 / secs, x1 - x0);
    // The firehose would otherwise keep a core busy through (b).
    let _ = client
        .delete(format!("{}/api/applications/firehose", server.base))
        .bearer_auth(token)
        .send()
        .await;
    rates
}

/// The server's metrics: (sum, count) of the collection-duration histogram.
async fn collection_histogram(client: &reqwest::Client, server: &Server) -> (f64, f64) {
    let body = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("longin_metrics_collection_duration_seconds_sum"),
        value("longin_metrics_collection_duration_seconds_count"),
    )
}

#[tokio::main]
async fn main() {
    let apps: usize = std::env::var("LONGIN_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let image = format!("{}/longin/busybox:1.0", registry());
    assert!(
        Command::new("docker")
            .args(["pull", "-q", &image])
            .status()
            .unwrap()
            .success(),
        "run scripts/test-services first"
    );
    let client = reqwest::Client::new();
    let interval_s = 5;
    let server = start_server(&[("LONGIN_METRICS_INTERVAL", "5s")]);
    let token = server.ready_and_register(&client).await;
    println!(
        "observability benchmark (SQLite, this machine: {} cores)",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );

    let (ws, docker, dropped) = log_throughput(&client, &server, &token).await;
    let ratio = ws / docker;
    println!(
        "(a) log lines/s over {} s: WebSocket {ws:.0}, docker logs -f {docker:.0}, ratio {ratio:.2} ({}, target >= 0.8); the client was told of {dropped} dropped lines",
        WINDOW.as_secs(),
        if ratio >= 0.8 {
            "meets target"
        } else {
            "MISSES target"
        }
    );

    // (b) 100 quiet containers.
    let names: Vec<String> = (0..apps).map(|i| format!("quiet-{i}")).collect();
    for name in &names {
        apply(&client, &server, &token, busybox_doc(name, "sleep 3600")).await;
    }
    wait_running(&client, &server, &token, &names).await;
    // Cycles of all of them, then a measured window.
    tokio::time::sleep(Duration::from_secs(interval_s * 2)).await;
    let pid = server.child.id();
    let (sum0, count0) = collection_histogram(&client, &server).await;
    let (cpu0, _) = cpu_and_rss(pid);
    let window = 60;
    tokio::time::sleep(Duration::from_secs(window)).await;
    let (cpu1, rss) = cpu_and_rss(pid);
    let (sum1, count1) = collection_histogram(&client, &server).await;
    let cycles = count1 - count0;
    let cycle = (sum1 - sum0) / cycles.max(1.0);
    #[allow(clippy::cast_precision_loss)]
    let cpu_percent = (cpu1 - cpu0) / window as f64 * 100.0;

    let ids: Vec<String> = String::from_utf8(
        Command::new("docker")
            .args([
                "ps",
                "-q",
                "--filter",
                &format!("label=io.longin.instance={}", server.instance),
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .split_whitespace()
    .map(str::to_owned)
    .collect();
    let started = Instant::now();
    let out = Command::new("docker")
        .args(["stats", "--no-stream", "--format", "{{.ID}}"])
        .args(&ids)
        .output()
        .unwrap();
    let baseline = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "docker stats failed");
    println!(
        "(b) stats cycle of {} containers: {cycle:.3} s (mean of {cycles:.0} cycles; {}, target < 3 s), docker stats --no-stream {baseline:.3} s, ratio {:.2}",
        ids.len(),
        verdict(cycle, 3.0),
        cycle / baseline
    );
    println!(
        "    the server over {window} s collecting every {interval_s} s: CPU {cpu_percent:.2} % of one core ({:.0} ms of CPU per cycle, controller included), RSS {:.1} MB",
        (cpu1 - cpu0) * 1000.0 / cycles.max(1.0),
        rss as f64 / 1e6
    );
}
