//! What the benchmarks share: a `longin serve` child process, and reading a
//! process's CPU and memory.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const PASSWORD: &str = "benchmark password";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub instance: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_label(&format!("io.longin.instance={}", self.instance));
    }
}

pub fn remove_label(label: &str) {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .expect("docker ps");
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .output();
    }
    // And the owners' networks Longin made for them.
    let out = Command::new("docker")
        .args(["network", "ls", "-q", "--filter", &format!("label={label}")])
        .output()
        .expect("docker network ls");
    for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = Command::new("docker").args(["network", "rm", id]).output();
    }
}

/// Ports here stay below 32768, Linux's ephemeral range, where outgoing connections
/// could hold them.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `longin serve` on SQLite in a fresh data dir, with `env` added.
pub fn start_server(env: &[(&str, &str)]) -> Server {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let instance = format!("longin-bench-{}", std::process::id());
    let child = Command::new(env!("CARGO_BIN_EXE_longin"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("LONGIN_DATA_DIR", data.path())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("LONGIN_INSTANCE", &instance)
        .env("LONGIN_PORT_RANGE", "12000-12999")
        .env("LONGIN_BIND_ADDRESS", "127.0.0.1")
        .env("LONGIN_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        // LONGIN_BENCH_SERVER_LOG=FILE keeps the server's log (with LONGIN_LOG=info in
        // the environment given, its timings), to see where a figure's time goes.
        .stderr(match std::env::var_os("LONGIN_BENCH_SERVER_LOG") {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("the server log")),
            None => Stdio::null(),
        })
        .spawn()
        .expect("start longin serve");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        instance,
        _data: data,
    }
}

pub async fn apply(client: &reqwest::Client, server: &Server, token: &str, yaml: String) -> Value {
    let res = client
        .put(format!("{}/api/applications/apply", server.base))
        .bearer_auth(token)
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success(),
        "apply: {}",
        res.text().await.unwrap()
    );
    res.json().await.unwrap()
}

/// (user+system CPU seconds, RSS bytes) of a process, from /proc.
pub fn cpu_and_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // After the command name: state is field 3; utime and stime are fields 14 and 15.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, rss_kb * 1024)
}

pub fn verdict(ratio: f64, target: f64) -> &'static str {
    if ratio <= target {
        "meets target"
    } else {
        "MISSES target"
    }
}

impl Server {
    /// Waits until the server is ready, registers a user and returns its token.
    pub async fn ready_and_register(&self, client: &reqwest::Client) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "server never ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let res = client
            .post(format!("{}/api/auth/register", self.base))
            .json(&json!({"username": "bench", "email": "bench@example.com", "password": PASSWORD, "confirm_password": PASSWORD}))
            .send()
            .await
            .unwrap();
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}
