//! `--engine swarm` on a real three-node Docker Swarm the test makes itself (each node
//! a dockerd in a network namespace of its own: `common/swarm.rs`), with `longin serve`
//! as a separate process whose `DOCKER_HOST` is the manager. Images are pulled by each
//! node from the registry, as on the host.
//!
//! Covered: replicas land on different nodes and every endpoint serves; a spec change
//! rolls out one replica at a time with no moment without a serving replica; a probe
//! that fails rolls the update back and says so; a node whose engine dies is seen in
//! status and its replica rescheduled; the logs of every replica on every node are
//! read and followed through the manager; delete removes the service and its containers
//! on every node; `GET /api/admin/nodes` and `longin nodes`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use common::swarm::Swarm;
use common::{KillOnDrop, PortBlock, Session};

/// `longin serve --engine swarm` against a swarm's manager.
struct Platform {
    base: String,
    client: reqwest::Client,
    admin: Session,
    log: std::path::PathBuf,
    _process: KillOnDrop,
    _ports: PortBlock,
    _data: tempfile::TempDir,
}

impl Platform {
    async fn start(swarm: &Swarm) -> Self {
        let agent_image = tokio::task::spawn_blocking(common::swarm::agent_image)
            .await
            .unwrap();
        let data = tempfile::tempdir().unwrap();
        let database_url = common::fresh_database_url(data.path()).await;
        let ports = PortBlock::reserve(20_000, 250);
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = data.path().join("serve.log");
        let instance = format!(
            "longin-swarm-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_longin"));
        command
            .arg("serve")
            .env("LONGIN_DATA_DIR", data.path())
            .env("DATABASE_URL", &database_url)
            .env("LONGIN_LISTEN", listen.to_string())
            .env("LONGIN_ENGINE", "swarm")
            .env("DOCKER_HOST", swarm.docker_host())
            .env("LONGIN_INSTANCE", &instance)
            .env(
                "LONGIN_PORT_RANGE",
                format!("{}-{}", ports.first, ports.first + 39),
            )
            .env("LONGIN_NETWORK_POOL", common::network_pool(ports.first))
            .env("LONGIN_RESYNC_SECONDS", "3")
            .env("LONGIN_METRICS_INTERVAL", "1s")
            .env("LONGIN_REGISTRY", common::registry())
            .env("LONGIN_AGENT_IMAGE", agent_image)
            .env("LONGIN_AGENT_DOCKER_HOST", common::swarm::NODE_ENGINE_TCP)
            .env("LONGIN_BACKUP_SCHEDULE", "off")
            .env(
                "LONGIN_JWT_SECRET",
                format!("swarm-test-{}", uuid::Uuid::new_v4().simple()),
            )
            .env("LONGIN_LOG", "info,longin_controller=debug")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Ok(redis) = std::env::var("LONGIN_TEST_REDIS_URL") {
            command
                .env("REDIS_URL", redis)
                .env("LONGIN_REDIS_PREFIX", format!("{instance}:"));
        }
        let process = KillOnDrop(command.spawn().unwrap());
        let base = format!("http://{listen}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        common::eventually(60, "longin serve to answer", || async {
            client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        })
        .await;
        // The first account claims the installation: an admin.
        let admin = common::register_at(&client, &base, "ops").await;
        Self {
            base,
            client,
            admin,
            log,
            _process: process,
            _ports: ports,
            _data: data,
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn apply(&self, yaml: &str) {
        let res = self
            .client
            .put(format!("{}/api/applications/apply", self.base))
            .bearer_auth(&self.admin.access_token)
            .header("content-type", "application/yaml")
            .body(yaml.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.admin.access_token)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn app(&self, name: &str) -> Option<Value> {
        let (status, body) = self.get(&format!("/api/applications/{name}")).await;
        (status == StatusCode::OK).then_some(body)
    }

    /// Waits until `check` holds of the application's status, or fails with it.
    async fn until(
        &self,
        secs: u64,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let app = self.app(name).await.unwrap_or(Value::Null);
            if check(&app["status"]) {
                return app;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {secs} s waiting for {name}: {what}\nstatus: {:#}\nserver log:\n{}",
                app["status"],
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn app_yaml(name: &str, image: &str, replicas: u32, health_path: &str) -> String {
    format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: {name}}}\nspec:\n  image: {image}\n  containerPort: 8080\n  replicas: {replicas}\n  terminationGracePeriodSeconds: 1\n  healthCheck:\n    http: {{path: {health_path}}}\n    periodSeconds: 1\n    timeoutSeconds: 1\n    failureThreshold: 2\n"
    )
}

fn image(tag: &str) -> String {
    format!("{}/longin/httpd:{tag}", common::registry())
}

/// What an endpoint serves now (its page's first line), if it answers.
async fn serves(client: &reqwest::Client, endpoint: &Value) -> Option<String> {
    let url = format!(
        "http://{}:{}/",
        endpoint["address"].as_str()?,
        endpoint["port"].as_u64()?
    );
    let res = client
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let text = res.text().await.ok()?;
    Some(text.lines().next().unwrap_or_default().to_owned())
}

fn endpoints(status: &Value) -> Vec<Value> {
    status["endpoints"].as_array().cloned().unwrap_or_default()
}

fn ready_on_distinct_nodes(status: &Value, want: usize) -> bool {
    let all = endpoints(status);
    let ready: Vec<&str> = all
        .iter()
        .filter(|e| e["ready"] == true)
        .filter_map(|e| e["node"].as_str())
        .collect();
    let distinct: std::collections::HashSet<&str> = ready.iter().copied().collect();
    status["phase"] == "Running" && status["readyReplicas"] == want && distinct.len() == want
}

/// Every ready endpoint's answer.
async fn answers(client: &reqwest::Client, status: &Value) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for e in endpoints(status).iter().filter(|e| e["ready"] == true) {
        out.push(serves(client, e).await);
    }
    out
}

/// The application's service and containers on every node.
fn leftovers(swarm: &Swarm) -> Vec<String> {
    let mut found = Vec::new();
    let services = swarm.nodes[0].docker(&[
        "service",
        "ls",
        "-q",
        "--filter",
        "label=io.longin.managed-by=longin",
    ]);
    found.extend(services.split_whitespace().map(|s| format!("service {s}")));
    for node in &swarm.nodes {
        let containers =
            node.docker(&["ps", "-aq", "--filter", "label=io.longin.managed-by=longin"]);
        found.extend(
            containers
                .split_whitespace()
                .map(|c| format!("container {c} on {}", node.name)),
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_spread_over_nodes_roll_out_without_downtime_and_delete_everywhere() {
    let swarm = tokio::task::spawn_blocking(|| Swarm::start(3))
        .await
        .unwrap();
    let platform = Platform::start(&swarm).await;

    // The nodes, as an admin sees them.
    let (status, nodes) = platform.get("/api/admin/nodes").await;
    assert_eq!(status, StatusCode::OK, "{nodes}");
    assert_eq!(nodes["engine"], "swarm");
    assert_eq!(nodes["publishMode"], "host");
    let listed = nodes["nodes"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{nodes:#}");
    for node in listed {
        let hostname = node["hostname"].as_str().unwrap();
        let made = swarm.node(hostname);
        assert_eq!(node["address"], made.address.as_str(), "{node}");
        assert_eq!(node["state"], "ready");
        assert_eq!(node["availability"], "active");
    }
    assert_eq!(listed.iter().filter(|n| n["role"] == "manager").count(), 1);

    platform
        .apply(&app_yaml("web", &image("1.0"), 2, "/"))
        .await;
    let app = platform
        .until(120, "web", "2 ready replicas on 2 nodes", |s| {
            ready_on_distinct_nodes(s, 2)
        })
        .await;
    let status = &app["status"];
    let port = status["hostPorts"][0].as_u64().unwrap();
    assert_eq!(
        status["hostPorts"].as_array().unwrap().len(),
        1,
        "one port per app: {status}"
    );
    for e in endpoints(status) {
        assert_eq!(e["port"], port);
        assert_eq!(
            serves(&platform.client, &e).await.as_deref(),
            Some("longin httpd 1.0"),
            "{e}"
        );
    }
    // Where the replicas run, nodes count them.
    let (_, nodes) = platform.get("/api/admin/nodes").await;
    let running: u64 = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["replicasRunning"].as_u64().unwrap())
        .sum();
    assert_eq!(running, 2, "{nodes:#}");

    // A new image rolls out one replica at a time; some replica serves throughout.
    platform
        .apply(&app_yaml("web", &image("2.0"), 2, "/"))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    let mut looks = 0;
    loop {
        let app = platform.app("web").await.unwrap();
        let status = &app["status"];
        let served = answers(&platform.client, status).await;
        looks += 1;
        assert!(
            served.iter().any(Option::is_some),
            "no replica served during the rollout (look {looks}): {status:#}"
        );
        if ready_on_distinct_nodes(status, 2)
            && status["updatedReplicas"] == 2
            && served
                .iter()
                .all(|s| s.as_deref() == Some("longin httpd 2.0"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rollout did not finish: {status:#}\n{}",
            platform.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(looks > 1, "the rollout was not watched");

    // Delete: gone from the API only once gone from every node.
    let res = platform
        .client
        .delete(format!("{}/api/applications/web", platform.base))
        .bearer_auth(&platform.admin.access_token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    common::eventually(90, "the application to be gone", || async {
        platform.app("web").await.is_none().then_some(())
    })
    .await;
    // The service is gone at once; the nodes remove its stopped containers shortly after.
    assert!(
        !leftovers(&swarm).iter().any(|l| l.starts_with("service")),
        "{:?}",
        leftovers(&swarm)
    );
    let started = std::time::Instant::now();
    common::eventually(60, "no container left on any node", || async {
        leftovers(&swarm).is_empty().then_some(())
    })
    .await;
    eprintln!(
        "containers gone {} ms after the delete",
        started.elapsed().as_millis()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_probe_rolls_the_update_back_and_the_old_replicas_keep_serving() {
    let swarm = tokio::task::spawn_blocking(|| Swarm::start(3))
        .await
        .unwrap();
    let platform = Platform::start(&swarm).await;
    platform
        .apply(&app_yaml("api", &image("1.0"), 2, "/"))
        .await;
    platform
        .until(120, "api", "2 ready replicas", |s| {
            ready_on_distinct_nodes(s, 2)
        })
        .await;

    // 2.0 behind a probe of a page it does not have: every new replica fails it.
    platform
        .apply(&app_yaml("api", &image("2.0"), 2, "/missing"))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    let app = loop {
        let app = platform.app("api").await.unwrap();
        let status = &app["status"];
        let served = answers(&platform.client, status).await;
        assert!(
            served.iter().any(Option::is_some),
            "no replica served during the failed update: {status:#}"
        );
        let rolled_back = status["conditions"].as_array().unwrap().iter().any(|c| {
            c["type"] == "Progressing" && c["status"] == "False" && c["reason"] == "RolledBack"
        });
        if rolled_back && status["readyReplicas"] == 2 {
            break app;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rollback: {status:#}\n{}",
            platform.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let status = &app["status"];
    assert_eq!(status["phase"], "Failed", "{status:#}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("rolled it back"),
        "{status:#}"
    );
    for e in endpoints(status) {
        assert_eq!(
            serves(&platform.client, &e).await.as_deref(),
            Some("longin httpd 1.0"),
            "{e}"
        );
    }
    // It stays rolled back: the controller does not push the failed spec again.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let service = swarm.nodes[0].docker(&[
        "service",
        "inspect",
        "-f",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.UpdateStatus.State}}",
        &format!("lgn-{}", app["metadata"]["uid"].as_str().unwrap()),
    ]);
    assert!(service.contains("httpd:1.0"), "{service}");
    assert!(service.contains("rollback_completed"), "{service}");

    // A fixed spec rolls out.
    platform
        .apply(&app_yaml("api", &image("2.0"), 2, "/"))
        .await;
    platform
        .until(150, "api", "2.0 running after the fix", |s| {
            ready_on_distinct_nodes(s, 2) && s["updatedReplicas"] == 2
        })
        .await;

    // Built from git on the manager, pushed to --registry, pulled by every node.
    let repo = common::git::Repo::new();
    let files = common::git::web_files(&common::registry(), "built on the manager");
    let commit = repo.commit("main", &common::git::borrowed(&files), "first page");
    platform
        .apply(&format!(
            "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: site}}\nspec:\n  source: {{git: {{url: '{}', branch: main}}}}\n  containerPort: 8080\n  replicas: 2\n  terminationGracePeriodSeconds: 1\n  healthCheck: {{http: {{path: /}}, periodSeconds: 1, failureThreshold: 2}}\n",
            repo.url()
        ))
        .await;
    let app = platform
        .until(240, "site", "2 ready replicas of the built image", |s| {
            ready_on_distinct_nodes(s, 2)
        })
        .await;
    let uid = app["metadata"]["uid"].as_str().unwrap();
    let built = format!("longin/{uid}:{}", &commit[..12]);
    let (_, revision) = platform.get("/api/applications/site/deployments/1").await;
    assert_eq!(revision["status"], "succeeded", "{revision:#}");
    assert_eq!(revision["image"], built.as_str(), "{revision:#}");
    for e in endpoints(&app["status"]) {
        assert_eq!(
            serves(&platform.client, &e).await.as_deref(),
            Some("built on the manager"),
            "{e}"
        );
    }
    let pushed = format!("{}/{built}", common::registry());
    let service = swarm.nodes[0].docker(&[
        "service",
        "inspect",
        "-f",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        &format!("lgn-{uid}"),
    ]);
    assert!(service.starts_with(&pushed), "{service}");
    // Each worker with a replica pulled it from the registry (the manager built it).
    let on_workers: Vec<Value> = endpoints(&app["status"])
        .into_iter()
        .filter(|e| e["node"] != swarm.nodes[0].name.as_str())
        .collect();
    assert!(!on_workers.is_empty(), "two replicas, one manager: {app:#}");
    for e in on_workers {
        let node = swarm.node(e["node"].as_str().unwrap());
        let images = node.docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert!(images.contains(&pushed), "{} has {images}", node.name);
    }
    let log = platform
        .client
        .get(format!(
            "{}/api/applications/site/deployments/1/log",
            platform.base
        ))
        .bearer_auth(&platform.admin.access_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(log.contains(&format!("==> pushing {pushed}")), "{log}");
    // The build clean-up keeps the registry name of an image it keeps: the manager's
    // replica runs by it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let images = swarm.nodes[0].docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains(&pushed), "the manager has {images}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_engine_dies_is_seen_and_its_replica_rescheduled() {
    let mut swarm = tokio::task::spawn_blocking(|| Swarm::start(3))
        .await
        .unwrap();
    let platform = Platform::start(&swarm).await;
    platform.apply(&app_yaml("db", &image("1.0"), 2, "/")).await;
    let app = platform
        .until(120, "db", "2 ready replicas", |s| {
            ready_on_distinct_nodes(s, 2)
        })
        .await;
    // Logs of every replica, wherever it runs, read through the manager.
    platform
        .apply(&format!(
            "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: talker}}\nspec:\n  image: {}/longin/busybox:1.0\n  containerPort: 8080\n  replicas: 3\n  resources: {{memory: 128Mi}}\n  terminationGracePeriodSeconds: 1\n  command: [sh, -c, 'head -c 20971520 /dev/zero > /dev/shm/fill; i=0; while :; do echo \"tick $i\"; i=$((i+1)); sleep 1; done']\n",
            common::registry()
        ))
        .await;
    let talker = platform
        .until(
            120,
            "talker",
            "a ready replica on each of the 3 nodes",
            |s| ready_on_distinct_nodes(s, 3),
        )
        .await;
    let lines = common::eventually(30, "lines of all three replicas", || async {
        let res = platform
            .client
            .get(format!(
                "{}/api/applications/talker/logs?tail=5",
                platform.base
            ))
            .bearer_auth(&platform.admin.access_token)
            .header("accept", "application/x-ndjson")
            .send()
            .await
            .ok()?;
        let text = res.text().await.ok()?;
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let replicas: std::collections::HashSet<i64> = lines
            .iter()
            .filter(|l| l["line"].as_str().is_some_and(|t| t.starts_with("tick ")))
            .filter_map(|l| l["replica"].as_i64())
            .collect();
        (replicas.len() == 3).then_some(lines)
    })
    .await;
    assert!(
        lines.iter().all(|l| l["timestamp"].is_string()),
        "{lines:?}"
    );
    // Each line names the node its replica runs on, as the endpoints do.
    let node_of: std::collections::HashMap<i64, String> = endpoints(&talker["status"])
        .iter()
        .map(|e| {
            (
                e["replica"].as_i64().unwrap(),
                e["node"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let ticks: Vec<&Value> = lines
        .iter()
        .filter(|l| l["line"].as_str().is_some_and(|t| t.starts_with("tick ")))
        .collect();
    for line in &ticks {
        let replica = line["replica"].as_i64().unwrap();
        assert_eq!(
            line["node"].as_str(),
            node_of.get(&replica).map(String::as_str),
            "{line}"
        );
    }
    let nodes: std::collections::HashSet<&str> =
        ticks.iter().filter_map(|l| l["node"].as_str()).collect();
    assert_eq!(nodes.len(), 3, "lines from every node: {ticks:?}");
    // Followed: new lines of every replica arrive.
    let mut res = platform
        .client
        .get(format!(
            "{}/api/applications/talker/logs?tail=0&follow=true",
            platform.base
        ))
        .bearer_auth(&platform.admin.access_token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut followed = std::collections::HashSet::new();
    let mut buffer = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while followed.len() < 3 {
        let chunk = tokio::time::timeout_at(deadline.into(), res.chunk())
            .await
            .expect("followed lines of every replica within 30 s")
            .unwrap()
            .expect("the follow does not end");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find('\n') {
            let line: Value = serde_json::from_str(&buffer[..end]).unwrap_or(Value::Null);
            buffer.drain(..=end);
            if line["line"]
                .as_str()
                .is_some_and(|t| t.starts_with("tick "))
            {
                followed.insert(line["replica"].as_i64().unwrap());
            }
        }
    }
    drop(res);

    // Metrics of every replica on every node, read by the node agents Longin deployed:
    // three containers, each holding 20 MiB in /dev/shm.
    let series = common::eventually(60, "a metrics point of all three replicas", || async {
        let (status, series) = platform
            .get("/api/applications/talker/metrics?step=1")
            .await;
        assert_eq!(status, StatusCode::OK, "{series}");
        series["points"]
            .as_array()?
            .iter()
            .any(|p| p["containers"] == 3.0)
            .then_some(series)
    })
    .await;
    let point = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|p| p["containers"] == 3.0)
        .unwrap();
    let memory = point["memoryBytes"].as_f64().unwrap();
    assert!(
        memory >= 3.0 * 20.0 * 1024.0 * 1024.0,
        "three replicas holding 20 MiB each read as {:.1} MiB: {point}",
        memory / 1024.0 / 1024.0
    );
    assert_eq!(
        point["memoryLimitBytes"],
        3.0 * 128.0 * 1024.0 * 1024.0,
        "{point}"
    );
    // The nodes API says the agent runs on every node.
    let (_, nodes) = platform.get("/api/admin/nodes").await;
    assert!(
        nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["agentRunning"] == true),
        "{nodes:#}"
    );
    // An agent answers only the installation's token.
    let worker = &swarm.nodes[1];
    let report = format!("http://{}:4040/v1/report", worker.address);
    let health = platform
        .client
        .get(format!("http://{}:4040/healthz", worker.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the worker's agent runs");
    let anonymous = platform.client.get(&report).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let guessed = platform
        .client
        .get(&report)
        .bearer_auth("0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(guessed.status(), StatusCode::UNAUTHORIZED);
    // Nor does a user's API token open it.
    let user_token = platform
        .client
        .get(&report)
        .bearer_auth(&platform.admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(user_token.status(), StatusCode::UNAUTHORIZED);

    // A worker with a replica dies (the manager keeps the swarm's quorum).
    let victim_host = endpoints(&app["status"])
        .iter()
        .filter_map(|e| e["node"].as_str().map(str::to_owned))
        .find(|n| *n != swarm.nodes[0].name)
        .expect("a replica on a worker");
    let victim = swarm
        .nodes
        .iter()
        .position(|n| n.name == victim_host)
        .unwrap();
    swarm.kill_node(victim);

    // Status says so: not every replica ready, or the replica already moved.
    let (_, nodes) = {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, nodes) = platform.get("/api/admin/nodes").await;
            let down = nodes["nodes"].as_array().is_some_and(|n| {
                n.iter()
                    .any(|n| n["hostname"] == victim_host.as_str() && n["state"] == "down")
            });
            if down {
                break (status, nodes);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node not reported down: {nodes:#}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    assert_eq!(
        nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["hostname"] == victim_host.as_str())
            .unwrap()["replicasRunning"],
        0,
        "{nodes:#}"
    );
    let app = platform
        .until(
            120,
            "db",
            "the replica rescheduled off the dead node",
            |s| {
                ready_on_distinct_nodes(s, 2)
                    && endpoints(s)
                        .iter()
                        .all(|e| e["node"] != victim_host.as_str())
            },
        )
        .await;
    for e in endpoints(&app["status"]) {
        assert_eq!(
            serves(&platform.client, &e).await.as_deref(),
            Some("longin httpd 1.0"),
            "{e}"
        );
    }
}
