//! `longin backup` while applications are being applied, `longin restore` into a fresh
//! data dir (and, on PostgreSQL, a fresh database), and a server started on it: every
//! user, application and secret is there, and the controller adopts the running
//! containers instead of recreating them.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{InstanceContainers, KillOnDrop, docker, eventually};

struct Install {
    instance: String,
    ports: (u16, u16),
    pool: String,
}

impl Install {
    fn serve(&self, data_dir: &Path, database_url: &str, listen: &str) -> KillOnDrop {
        KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_longin"))
                .args(["serve", "--listen", listen])
                .env("LONGIN_DATA_DIR", data_dir)
                .env("DATABASE_URL", database_url)
                .env("LONGIN_INSTANCE", &self.instance)
                .env(
                    "LONGIN_PORT_RANGE",
                    format!("{}-{}", self.ports.0, self.ports.1),
                )
                .env("LONGIN_NETWORK_POOL", &self.pool)
                .env("LONGIN_BIND_ADDRESS", "127.0.0.1")
                .env("LONGIN_RESYNC_SECONDS", "2")
                .env("LONGIN_BACKUP_SCHEDULE", "off")
                .env_remove("LONGIN_JWT_SECRET")
                .env_remove("REDIS_URL")
                .env("LONGIN_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

fn longin(args: &[&str], data_dir: &Path, database_url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_longin"))
        .args(args)
        .env("LONGIN_DATA_DIR", data_dir)
        .env("DATABASE_URL", database_url)
        .env("LONGIN_LOG", "warn")
        .output()
        .unwrap()
}

fn free_listen() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

async fn ready(client: &reqwest::Client, base: &str) {
    eventually(60, "server ready", || async {
        let res = client.get(format!("{base}/readyz")).send().await.ok()?;
        (res.status() == StatusCode::OK).then_some(())
    })
    .await;
}

async fn apply(client: &reqwest::Client, base: &str, token: &str, yaml: &str) -> StatusCode {
    client
        .put(format!("{base}/api/applications/apply"))
        .bearer_auth(token)
        .header("content-type", "application/yaml")
        .body(yaml.to_owned())
        .send()
        .await
        .unwrap()
        .status()
}

async fn application(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> Option<Value> {
    let res = client
        .get(format!("{base}/api/applications/{name}"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    (res.status() == StatusCode::OK).then_some(res.json().await.ok()?)
}

fn keeper_ids(instance: &str) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label=io.longin.instance={instance}"),
        "--filter",
        "label=io.longin.app-name=keeper",
    ]);
    let mut ids: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_everything_and_adopts_the_containers() {
    let block = common::PortBlock::reserve(20_000, 250);
    let install = Install {
        instance: format!(
            "longin-test-backup-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ),
        ports: (block.first, block.first + 39),
        pool: common::network_pool(block.first),
    };
    let _containers = InstanceContainers(install.instance.clone());
    let client = reqwest::Client::new();
    let first_dir = tempfile::tempdir().unwrap();
    let first_db = common::fresh_database_url(first_dir.path()).await;
    let listen = free_listen();
    let base = format!("http://{listen}");
    let mut server = install.serve(first_dir.path(), &first_db, &listen);
    ready(&client, &base).await;
    let owner = common::register_at(&client, &base, "keeper-owner").await;
    let token = owner.access_token.clone();
    let image = format!("{}/longin/httpd:1.0", common::registry());
    let keeper = format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: keeper}}\nspec:\n  image: {image}\n  containerPort: 8080\n  replicas: 2\n  env:\n  - {{name: TOKEN, value: s3cret-value, secret: true}}\n"
    );
    assert_eq!(apply(&client, &base, &token, &keeper).await, StatusCode::OK);
    eventually(120, "keeper running", || async {
        let a = application(&client, &base, &token, "keeper").await?;
        (a["status"]["phase"] == "Running" && a["status"]["readyReplicas"] == 2).then_some(())
    })
    .await;
    let running = keeper_ids(&install.instance);
    assert_eq!(running.len(), 2);

    // Applies go on while the backup is taken (stopped apps: no containers).
    let churning = Arc::new(AtomicBool::new(true));
    let churn = tokio::spawn({
        let (client, base, token, churning) = (
            client.clone(),
            base.clone(),
            token.clone(),
            churning.clone(),
        );
        async move {
            let mut applied = 0_u32;
            while churning.load(Ordering::SeqCst) && applied < 200 {
                let yaml = format!(
                    "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: churn-{applied}}}\nspec: {{image: busybox, containerPort: 80, replicas: 0}}\n"
                );
                assert_eq!(apply(&client, &base, &token, &yaml).await, StatusCode::OK);
                applied += 1;
            }
            applied
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let backup = first_dir.path().join("the-backup.tar");
    let out = longin(
        &["backup", "--file", backup.to_str().unwrap()],
        first_dir.path(),
        &first_db,
    );
    assert!(
        out.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    churning.store(false, Ordering::SeqCst);
    let churned = churn.await.unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The machine dies; its containers keep running.
    server.kill();

    let second_dir = tempfile::tempdir().unwrap();
    let restored_dir = second_dir.path().join("data");
    let second_db = common::fresh_database_url(second_dir.path()).await;
    // A fresh SQLite URL points into the new data dir itself.
    let second_db = second_db.replace(
        &second_dir.path().join("longin.db").display().to_string(),
        &restored_dir.join("longin.db").display().to_string(),
    );
    let out = longin(
        &["restore", backup.to_str().unwrap()],
        &restored_dir,
        &second_db,
    );
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = longin(
        &["restore", backup.to_str().unwrap()],
        &restored_dir,
        &second_db,
    );
    assert!(
        !again.status.success(),
        "a restore over existing data is refused"
    );

    let listen = free_listen();
    let base = format!("http://{listen}");
    let _restored = install.serve(&restored_dir, &second_db, &listen);
    ready(&client, &base).await;
    // The JWT secret came along: a token issued before still works; so does signing in.
    let me = client
        .get(format!("{base}/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let res = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "keeper-owner", "password": common::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let a = eventually(60, "keeper running after the restore", || async {
        let a = application(&client, &base, &token, "keeper").await?;
        (a["status"]["phase"] == "Running" && a["status"]["readyReplicas"] == 2).then_some(a)
    })
    .await;
    assert_eq!(
        a["spec"]["env"][0],
        json!({"name": "TOKEN", "secret": true}),
        "{a}"
    );
    // Adopted, not recreated: the same containers, across several resyncs.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(
        keeper_ids(&install.instance),
        running,
        "containers were recreated"
    );
    let env = docker(&["inspect", "-f", "{{json .Config.Env}}", &running[0]]);
    assert!(env.contains("TOKEN=s3cret-value"), "{env}");

    // The copy is consistent: the apps it has are exactly the first k applied.
    let list: Value = client
        .get(format!("{base}/api/applications"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["items"]
        .as_array()
        .or_else(|| list.as_array())
        .unwrap();
    let churns: Vec<u32> = items
        .iter()
        .filter_map(|a| {
            a["metadata"]["name"]
                .as_str()?
                .strip_prefix("churn-")?
                .parse()
                .ok()
        })
        .collect();
    let k = u32::try_from(churns.len()).unwrap();
    assert!(
        churns.iter().all(|i| *i < k),
        "a gap in the applies: {churns:?}"
    );
    println!("the backup holds {k} of {churned} applies made around it");
}
