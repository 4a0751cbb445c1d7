//! kill -9 of `longin serve` in the middle of a rollout: started again, it adopts the
//! containers it finds by label and converges, with no duplicates and no leaked ports.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::Value;

use common::{InstanceContainers, KillOnDrop, docker, eventually};

struct Node {
    data_dir: tempfile::TempDir,
    database_url: String,
    instance: String,
    listen: String,
    ports: (u16, u16),
    /// Extra environment for `longin serve`.
    env: Vec<(&'static str, &'static str)>,
    /// Its host ports, reserved for the test.
    _ports: common::PortBlock,
}

impl Node {
    /// A node on a fresh database, its own instance label, a free API port and a
    /// reserved block of host ports; `longin serve` gets `env` too.
    async fn new(label: &str, env: Vec<(&'static str, &'static str)>) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = common::fresh_database_url(data_dir.path()).await;
        // Reserved: no test running at the same time gets the same ports.
        let ports = common::PortBlock::reserve(20_000, 250);
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        Self {
            database_url,
            instance: format!(
                "longin-test-{label}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..10]
            ),
            listen: listen.to_string(),
            ports: (ports.first, ports.first + 39),
            data_dir,
            env,
            _ports: ports,
        }
    }

    /// Waits until the server answers /readyz.
    async fn ready(&self, client: &reqwest::Client) {
        eventually(60, "server ready", || async {
            client
                .get(self.url("/readyz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status() == StatusCode::OK)
        })
        .await;
    }

    /// Registers `username` and returns its access token.
    async fn register(&self, client: &reqwest::Client, username: &str) -> String {
        common::register_at(client, &self.url(""), username)
            .await
            .access_token
    }

    fn start(&self) -> KillOnDrop {
        KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_longin"))
                .args(["serve", "--listen", &self.listen])
                .env("LONGIN_DATA_DIR", self.data_dir.path())
                .env("DATABASE_URL", &self.database_url)
                .env("LONGIN_INSTANCE", &self.instance)
                .env(
                    "LONGIN_PORT_RANGE",
                    format!("{}-{}", self.ports.0, self.ports.1),
                )
                .env("LONGIN_BIND_ADDRESS", "127.0.0.1")
                .env("LONGIN_NETWORK_POOL", common::network_pool(self.ports.0))
                .env("LONGIN_RESYNC_SECONDS", "2")
                .env(
                    "LONGIN_JWT_SECRET",
                    "crash-recovery-test-secret-0123456789abcdef",
                )
                .env_remove("REDIS_URL")
                .env("LONGIN_LOG", "warn")
                .envs(self.env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }
}

async fn app_state(client: &reqwest::Client, node: &Node, token: &str) -> Option<Value> {
    named_state(client, node, token, "survivor").await
}

async fn named_state(
    client: &reqwest::Client,
    node: &Node,
    token: &str,
    name: &str,
) -> Option<Value> {
    let res = client
        .get(node.url(&format!("/api/applications/{name}")))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    (res.status() == StatusCode::OK).then_some(res.json().await.ok()?)
}

fn doc(image: &str) -> String {
    format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: survivor}}\nspec:\n  image: {image}\n  containerPort: 8080\n  replicas: 3\n  terminationGracePeriodSeconds: 2\n  healthCheck: {{http: {{path: /healthz}}, periodSeconds: 1}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_rollout_then_restart_converges_without_duplicates_or_leaks() {
    let node = Node::new("crash", Vec::new()).await;
    let _containers = InstanceContainers(node.instance.clone());
    let registry = common::registry();
    let client = reqwest::Client::new();

    let mut server = node.start();
    node.ready(&client).await;
    let token = node.register(&client, "survivor").await;
    let apply = |image: String| {
        let (client, token, url) = (
            client.clone(),
            token.clone(),
            node.url("/api/applications/apply"),
        );
        async move {
            let res = client
                .put(url)
                .bearer_auth(token)
                .header("content-type", "application/yaml")
                .body(doc(&image))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }
    };
    apply(format!("{registry}/longin/httpd:1.0")).await;
    eventually(120, "3 replicas of 1.0 running", || async {
        let a = app_state(&client, &node, &token).await?;
        (a["status"]["phase"] == "Running" && a["status"]["readyReplicas"] == 3).then_some(())
    })
    .await;

    // Roll to 2.0 and kill the server as soon as the first new container exists.
    apply(format!("{registry}/longin/httpd:2.0")).await;
    let filter = format!("label=io.longin.instance={}", node.instance);
    eventually(60, "rollout under way", || async {
        let images = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Image}}"]);
        images.contains("httpd:2.0").then_some(())
    })
    .await;
    server.kill();

    let mut server = node.start();
    // Converges after the dead node's lease expires (~15 s) and the rollout finishes;
    // generous under a loaded CI machine, and says where it stood if it does not.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let a = loop {
        let state = app_state(&client, &node, &token).await;
        if let Some(a) = &state {
            let done = a["status"]["phase"] == "Running"
                && a["status"]["readyReplicas"] == 3
                && a["status"]["updatedReplicas"] == 3
                && a["status"]["observedGeneration"] == a["metadata"]["generation"];
            if done {
                break a.clone();
            }
        }
        if std::time::Instant::now() > deadline {
            let containers = docker(&[
                "ps",
                "-a",
                "--filter",
                &filter,
                "--format",
                "{{.Names}} {{.Image}} {{.State}} {{.Ports}}",
            ]);
            panic!(
                "not converged on 2.0 in 180 s; last state {state:?}; containers:\n{containers}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let containers = eventually(30, "exactly 3 containers", || async {
        let lines = docker(&[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "{{.Label \"io.longin.replica\"}} {{.Image}} {{.State}}",
        ]);
        let lines: Vec<String> = lines.lines().map(str::to_owned).collect();
        (lines.len() == 3).then_some(lines)
    })
    .await;
    let mut replicas: Vec<&str> = containers
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    replicas.sort_unstable();
    assert_eq!(
        replicas,
        ["0", "1", "2"],
        "one container per replica: {containers:?}"
    );
    assert!(
        containers
            .iter()
            .all(|l| l.contains("httpd:2.0") && l.ends_with("running")),
        "{containers:?}"
    );

    let host_ports: Vec<u16> = a["status"]["hostPorts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| u16::try_from(p.as_u64().unwrap()).unwrap())
        .collect();
    for port in &host_ports {
        let body = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "longin httpd 2.0");
    }
    let store = longin_store::Store::connect(&longin_store::StoreOptions::new(&node.database_url))
        .await
        .unwrap();
    let mut allocated = eventually(30, "no leaked ports", || async {
        let p = store.allocated_ports().await.unwrap();
        (p.len() == 3).then_some(p)
    })
    .await;
    allocated.sort_unstable();
    let mut expected = host_ports.clone();
    expected.sort_unstable();
    assert_eq!(allocated, expected);
    store.close().await;

    server.kill();
}

/// The time the container last started, as the engine reports it.
fn started_at(id: &str) -> String {
    docker(&["inspect", "-f", "{{.State.StartedAt}}", id])
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_app_stays_failed_across_a_restart_until_longin_restart() {
    let node = Node::new(
        "failed",
        vec![
            ("LONGIN_RESTART_BACKOFF_SECONDS", "1"),
            ("LONGIN_MAX_RESTARTS", "2"),
        ],
    )
    .await;
    let _containers = InstanceContainers(node.instance.clone());
    let registry = common::registry();
    let client = reqwest::Client::new();
    let mut server = node.start();
    node.ready(&client).await;
    let token = node.register(&client, "fragile").await;
    let res = client
        .put(node.url("/api/applications/apply"))
        .bearer_auth(&token)
        .header("content-type", "application/yaml")
        .body(format!(
            "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: crasher}}\nspec:\n  image: {registry}/longin/busybox:1.0\n  containerPort: 8080\n  replicas: 1\n  terminationGracePeriodSeconds: 1\n  command: [sh, -c, 'echo boom; exit 1']\n"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    eventually(60, "crasher Failed", || async {
        let a = named_state(&client, &node, &token, "crasher").await?;
        (a["status"]["phase"] == "Failed").then_some(())
    })
    .await;
    let filter = format!("label=io.longin.instance={}", node.instance);
    let container = docker(&["ps", "-aq", "--filter", &filter])
        .trim()
        .to_owned();
    assert!(
        !container.is_empty() && !container.contains('\n'),
        "{container}"
    );
    let last_start = started_at(&container);

    // kill -9 and start again: the new controller knows no restart counts, yet the
    // stored verdict stands; the container is left as it is.
    server.kill();
    let _server = node.start();
    node.ready(&client).await;
    // It acts once the dead server's lease has expired (~15 s).
    eventually(60, "the new server leads", || async {
        let body = client
            .get(node.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        body.contains("\nlongin_controller_leader 1\n")
            .then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let a = named_state(&client, &node, &token, "crasher")
        .await
        .unwrap();
    assert_eq!(a["status"]["phase"], "Failed", "{a}");
    assert_eq!(
        started_at(&container),
        last_start,
        "the Failed app was restarted"
    );

    // `longin restart` clears it: the container runs again.
    let res = client
        .post(node.url("/api/applications/crasher/restart"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    eventually(60, "restarted after longin restart", || async {
        // Started again: a new container (a restart rolls the replica) or the old one
        // (it may be gone, or exited again, by the time it is looked at).
        let all = docker(&["ps", "-aq", "--filter", &filter]);
        all.split_whitespace()
            .any(|id| {
                id != container
                    || Command::new("docker")
                        .args(["inspect", "-f", "{{.State.StartedAt}}", id])
                        .output()
                        .is_ok_and(|o| {
                            o.status.success()
                                && String::from_utf8_lossy(&o.stdout).trim() != last_start
                        })
            })
            .then_some(())
    })
    .await;
}

/// The revision `rev` of `name`, as the API shows it.
async fn revision_state(
    client: &reqwest::Client,
    node: &Node,
    token: &str,
    name: &str,
    rev: i64,
) -> Option<Value> {
    let res = client
        .get(node.url(&format!("/api/applications/{name}/deployments/{rev}")))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    (res.status() == StatusCode::OK).then_some(res.json().await.ok()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_build_marks_it_interrupted_and_the_previous_revision_serves() {
    use common::git::{Repo, borrowed, web_files};
    let node = Node::new("build", Vec::new()).await;
    let _containers = InstanceContainers(node.instance.clone());
    let registry = common::registry();
    let client = reqwest::Client::new();
    let repo = Repo::new();
    repo.commit("main", &borrowed(&web_files(&registry, "before")), "before");

    let mut server = node.start();
    node.ready(&client).await;
    // The first account is the admin: file:// sources are allowed.
    let token = node.register(&client, "builder").await;
    let doc = format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: built}}\nspec:\n  source: {{git: {{url: '{}'}}}}\n  containerPort: 8080\n  terminationGracePeriodSeconds: 1\n",
        repo.url()
    );
    let res = client
        .put(node.url("/api/applications/apply"))
        .bearer_auth(&token)
        .header("content-type", "application/yaml")
        .body(doc)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    eventually(180, "revision 1 rolled out", || async {
        let d = revision_state(&client, &node, &token, "built", 1).await?;
        (d["status"] == "succeeded").then_some(())
    })
    .await;
    let serving = |port: u64| async move {
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    let before = named_state(&client, &node, &token, "built").await.unwrap();
    let port = before["status"]["hostPorts"][0].as_u64().unwrap();
    assert_eq!(serving(port).await.as_deref(), Some("before"));

    // A build that takes a minute, killed with its server in the middle.
    repo.commit_dockerfile(
        &registry,
        &format!("RUN echo {} && sleep 60\n", uuid::Uuid::new_v4().simple()),
        "slow",
    );
    let res = client
        .post(node.url("/api/applications/built/redeploy"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let rev = res.json::<Value>().await.unwrap()["revision"]
        .as_i64()
        .unwrap();
    eventually(60, "the build running on the engine", || async {
        let running = docker(&["ps", "--no-trunc", "--format", "{{.Command}}"]);
        running.contains("sleep 60").then_some(())
    })
    .await;
    server.kill();

    let _server = node.start();
    node.ready(&client).await;
    let ended = eventually(60, "the build marked interrupted", || async {
        let d = revision_state(&client, &node, &token, "built", rev).await?;
        (d["status"] == "failed").then_some(d)
    })
    .await;
    assert!(
        ended["message"].as_str().unwrap().contains("interrupted"),
        "{ended}"
    );
    let after = named_state(&client, &node, &token, "built").await.unwrap();
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_eq!(after["spec"]["image"], before["spec"]["image"]);
    eventually(60, "the previous revision serving", || async {
        (serving(port).await.as_deref() == Some("before")).then_some(())
    })
    .await;
}
