//! Test harness: `spawn_app()` starts a real Longin server on port 0 with a fresh
//! database: a SQLite file in a temp dir, or, when `LONGIN_TEST_DATABASE_URL` is set, a
//! new PostgreSQL database; with `LONGIN_TEST_REDIS_URL`, sessions and sign-in limits
//! in Redis under a random key prefix. Tracing is muted unless `TEST_LOG` is set.

#![allow(dead_code, clippy::unwrap_used)]

pub mod git;
pub mod swarm;
pub mod ws;

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use longin::cli::{Registration, ServeArgs, StoreArgs};
use longin::server::{Role, Server};
use longin_api::ApiConfig;

pub const PASSWORD: &str = "correct horse battery";

/// A running server and what tests need to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The HTTPS listener (kubectl's), when the test asked for one with `tls_listen`.
    pub tls: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub jwt_secret: String,
    /// The secrets key (`LONGIN_SECRETS_KEY`), shared by processes of one installation.
    pub secrets_key: String,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub data_dir: tempfile::TempDir,
    /// The controller's instance label: `io.longin.instance=<instance>`.
    pub instance: String,
    /// Stops the server and removes this instance's containers when the test ends,
    /// passed or panicked; declared before `_ports` so that it runs first.
    teardown: Teardown,
    /// This test's host ports, reserved until it ends.
    pub _ports: PortBlock,
}

/// Ends an in-process server: cancels it, waits for it, then removes its instance's
/// containers. A test that panics never reaches `stop()`; without the wait, its
/// controller (still running on the runtime's workers) recreates what the removal just
/// removed, and those containers outlive the test holding ports of a block that the
/// next test reserves — which then waits in vain for its own replicas.
struct Teardown {
    cancel: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Dropped after `drop` below has stopped the server.
    _containers: InstanceContainers,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        self.cancel.cancel();
        let Some(server) = self.server.take() else {
            return;
        };
        // Only a multi-thread runtime runs the server while this thread blocks; on a
        // current-thread one nothing else runs now and its tasks die with it.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while multi_thread && !server.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        server.abort();
    }
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
}

fn init_tracing() {
    // `TEST_LOG=1` logs at info; any other value is a filter, e.g.
    // `TEST_LOG=longin_controller=debug,info`.
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let filter = if filter == "1" {
            "info".to_owned()
        } else {
            filter
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// The database URL for a fresh test database of the configured backend.
pub async fn fresh_database_url(data_dir: &std::path::Path) -> String {
    match std::env::var("LONGIN_TEST_DATABASE_URL") {
        Ok(_) => fresh_postgres_url().await,
        Err(_) => {
            assert!(
                !(std::env::var("CI").is_ok_and(|v| v == "true")
                    && std::env::var("LONGIN_TEST_STORE_LABEL").is_ok_and(|v| v == "postgres")),
                "CI asked for PostgreSQL tests but LONGIN_TEST_DATABASE_URL is not set"
            );
            longin_store::StoreOptions::sqlite_file(&data_dir.join("longin.db")).url
        }
    }
}

/// A fresh PostgreSQL database whichever store the suite runs on: for tests of what
/// only PostgreSQL supports (several API processes on one store). Its server is the
/// suite's (`LONGIN_TEST_DATABASE_URL`) or, in the SQLite pass, the service's
/// (`LONGIN_TEST_POSTGRES_SERVICE_URL`, exported by scripts/test).
pub async fn fresh_postgres_url() -> String {
    let admin_url = std::env::var("LONGIN_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("LONGIN_TEST_POSTGRES_SERVICE_URL"))
        .expect(
            "PostgreSQL is needed: run under scripts/test, or eval \"$(scripts/test-services)\"",
        );
    let name = format!("longin_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to the PostgreSQL service");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin_url.rsplit_once('/').expect("url has a database").0;
    format!("{base}/{name}")
}

/// Starts the API alone (`longin api`): for tests of the API that need no engine.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the API alone, with settings `configure` may adjust.
pub async fn spawn_app_with(configure: impl FnOnce(&mut ApiConfig)) -> TestApp {
    spawn(configure, |_| {}, Role::ApiOnly).await
}

/// The account the harness creates first in every fresh database, as an operator
/// claims a new installation, so that the accounts tests register are plain users
/// (the first account registered would be the admin).
pub const HARNESS_ADMIN: &str = "harness-admin";

/// Starts the API alone with server settings `configure_args` may adjust.
pub async fn spawn_app_with_args(configure_args: impl FnOnce(&mut ServeArgs)) -> TestApp {
    spawn(|_| {}, configure_args, Role::ApiOnly).await
}

/// Starts the API alone with no account at all: the first registration claims it.
pub async fn spawn_unclaimed_app(configure_args: impl FnOnce(&mut ServeArgs)) -> TestApp {
    spawn_inner(|_| {}, configure_args, Role::ApiOnly, false).await
}

/// Starts API and controller (`longin serve`) on the real Docker engine, as a
/// separate instance (its own container label) with its own 40-port range, so tests
/// running in parallel never touch each other's containers or ports.
pub async fn spawn_platform() -> TestApp {
    spawn_platform_with(|_| {}).await
}

/// Starts an API-only server on `other`'s database and JWT secret (so tokens work on
/// both), with server settings `configure` may adjust: a second API process.
pub async fn spawn_api_sharing(other: &TestApp, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let database_url = other.database_url.clone();
    let jwt_secret = other.jwt_secret.clone();
    let secrets_key = other.secrets_key.clone();
    let mut app = spawn(
        |_| {},
        |args| {
            args.store.database_url = Some(database_url.clone());
            args.jwt_secret = Some(jwt_secret.clone());
            args.store.secrets_key = Some(secrets_key.clone());
            configure(args);
        },
        Role::ApiOnly,
    )
    .await;
    app.database_url = database_url;
    app.jwt_secret = jwt_secret;
    app.secrets_key = other.secrets_key.clone();
    app
}

/// Starts API and controller with server settings `configure` may adjust.
pub async fn spawn_platform_with(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    spawn(|_| {}, configure, Role::All).await
}

async fn spawn(
    configure: impl FnOnce(&mut ApiConfig),
    configure_args: impl FnOnce(&mut ServeArgs),
    role: Role,
) -> TestApp {
    spawn_inner(configure, configure_args, role, true).await
}

async fn spawn_inner(
    configure: impl FnOnce(&mut ApiConfig),
    configure_args: impl FnOnce(&mut ServeArgs),
    role: Role,
    claimed: bool,
) -> TestApp {
    init_tracing();
    let data_dir = tempfile::tempdir().expect("tempdir");
    let database_url = fresh_database_url(data_dir.path()).await;
    let redis_url = std::env::var("LONGIN_TEST_REDIS_URL").ok();
    let jwt_secret = format!("test-secret-{}", uuid::Uuid::new_v4().simple());
    let secrets_key = format!("test-secrets-key-{}", uuid::Uuid::new_v4().simple());
    let instance = format!(
        "longin-test-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    // A block of 40 ports in 20000-29999 for this test's replicas, reserved so that
    // no test running at the same time gets the same one.
    let ports = PortBlock::reserve(20_000, 250);
    let block = ports.first;
    let mut args = ServeArgs {
        store: StoreArgs {
            data_dir: data_dir.path().to_owned(),
            database_url: Some(database_url.clone()),
            secrets_key: Some(secrets_key.clone()),
        },
        listen: "127.0.0.1:0".parse().expect("addr"),
        tls_listen: None,
        tls_cert: None,
        tls_key: None,
        tls_sans: Vec::new(),
        redis_url: redis_url.clone(),
        redis_prefix: format!("longin-test-{}:", uuid::Uuid::new_v4().simple()),
        jwt_secret: Some(jwt_secret.clone()),
        registration: Registration::Open,
        api_log_retention_days: 30,
        login_max_failures_per_account: 10,
        login_max_failures_per_client: 50,
        // API-only servers start no containers: the default pool is safe to share.
        port_range: if role == Role::All {
            longin_store::applications::PortRange {
                first: block,
                last: block + 39,
            }
        } else {
            longin_store::applications::PortRange::default()
        },
        bind_address: "127.0.0.1".parse().expect("ip"),
        instance: instance.clone(),
        resync_seconds: 5,
        progress_deadline_seconds: 600,
        restart_backoff_seconds: 10,
        max_restarts: 5,
        metrics_interval: Duration::from_secs(30),
        engine_timeout: Duration::from_secs(120),
        metrics_retention_days: 7,
        metrics_token: None,
        http_header_timeout: Duration::from_secs(10),
        pull_policy: longin::cli::PullPolicy::Always,
        network_pool: longin::cli::parse_network_pool(&network_pool(block)).unwrap(),
        log_streams_per_user: 64,
        // The backup tests run `longin backup` themselves.
        backup_schedule: longin::cli::BackupSchedule(None),
        backup_retention_days: 30,
        quota_apps: 20,
        quota_replicas: 40,
        quota_memory: 20 << 30,
        max_connections: 4096,
        build_concurrency: 1,
        build_timeout: Duration::from_secs(600),
        keep_images: 5,
        engine: longin_controller::EngineKind::Docker,
        swarm_publish: longin_controller::services::PublishMode::Host,
        agent_image: None,
        agent_port: longin_controller::agent::DEFAULT_PORT,
        agent_docker_host: "unix:///var/run/docker.sock".to_owned(),
        registry: None,
    };
    configure_args(&mut args);
    // A test may have put the server on another database (the PostgreSQL service).
    let database_url = args.store.database_url.clone().unwrap_or(database_url);
    let mut config = args.api_config();
    config.audit_flush_interval = Duration::from_millis(50);
    configure(&mut config);
    let server = Server::build(&args, config, role)
        .await
        .expect("build server");
    let addr = server.local_addr().expect("addr");
    let tls = server.tls_addr();
    let store = &server.context().store;
    if claimed && !store.has_users().await.unwrap() {
        store
            .create_user(&longin_store::users::NewUser {
                username: HARNESS_ADMIN,
                email: "harness-admin@example.com",
                password_hash: "x",
                role: longin_store::users::Role::Admin,
            })
            .await
            .unwrap();
    }
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(server.run(cancel.clone()));
    TestApp {
        addr,
        tls,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client"),
        jwt_secret,
        secrets_key: args.store.secrets_key.clone().unwrap_or_default(),
        database_url,
        redis_url,
        data_dir,
        teardown: Teardown {
            cancel,
            server: Some(handle),
            _containers: InstanceContainers(instance.clone()),
        },
        _ports: ports,
        instance,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops the server gracefully; the data dir lives on as long as the returned guard.
    /// Containers this instance left behind are removed.
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        self.teardown.cancel.cancel();
        if let Some(handle) = self.teardown.server.take() {
            handle.await.expect("join").expect("server ended cleanly");
        }
        remove_instance_containers(&self.instance);
        self.data_dir
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request")
    }

    pub async fn patch(&self, path: &str, body: &Value, token: &str) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Registers `username` and returns its session.
    pub async fn register(&self, username: &str) -> Session {
        register_at(&self.client, &self.url(""), username).await
    }

    /// Signs `username` in with the test password.
    pub async fn login(&self, username: &str) -> Session {
        let res = self
            .post(
                "/api/auth/login",
                &json!({"username": username, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "login {username}");
        session_from(res.json().await.expect("json"))
    }

    /// This installation's generated id (the `io.longin.installation` label).
    pub async fn installation_id(&self) -> String {
        let store =
            longin_store::Store::connect(&longin_store::StoreOptions::new(&self.database_url))
                .await
                .expect("store");
        let id = store.installation_id().await.expect("installation id");
        store.close().await;
        id
    }

    /// Creates an admin the way an operator does (`longin admin create-user`), then
    /// signs in as it.
    pub async fn admin(&self, username: &str) -> Session {
        let store =
            longin_store::Store::connect(&longin_store::StoreOptions::new(&self.database_url))
                .await
                .expect("store");
        let args = longin::cli::CreateUserArgs {
            store: StoreArgs {
                data_dir: self.data_dir.path().to_owned(),
                database_url: Some(self.database_url.clone()),
                secrets_key: None,
            },
            username: username.to_owned(),
            email: format!("{username}@example.com"),
            role: longin::cli::RoleArg::Admin,
        };
        longin::admin::create_user(&store, &args, PASSWORD.to_owned())
            .await
            .expect("create admin");
        store.close().await;
        self.login(username).await
    }
}

/// Registers `username` with the test password on the server at `base`.
pub async fn register_at(client: &reqwest::Client, base: &str, username: &str) -> Session {
    let res = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
            "confirm_password": PASSWORD,
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::CREATED, "register {username}");
    session_from(res.json().await.expect("json"))
}

pub fn session_from(body: Value) -> Session {
    Session {
        user_id: body["user"]["id"].as_str().expect("user id").to_owned(),
        username: body["user"]["username"]
            .as_str()
            .expect("username")
            .to_owned(),
        access_token: body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned(),
        refresh_token: body["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_owned(),
    }
}

/// The error body's `code`, asserting the JSON error shape on the way.
pub async fn error_code(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let body: Value = res.json().await.expect("error body is JSON");
    assert!(body["error"]["code"].is_string(), "error shape: {body}");
    assert!(body["error"]["message"].is_string(), "error shape: {body}");
    (status, body)
}

/// A child process killed when the test ends, passed or panicked.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    /// kill -9 and reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    #[must_use]
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `longin controller` child process and the address of its /metrics.
pub struct ControllerProcess {
    pub process: KillOnDrop,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl ControllerProcess {
    pub fn kill(&mut self) {
        self.process.kill();
    }

    #[must_use]
    pub fn id(&self) -> u32 {
        self.process.id()
    }
}

/// Starts `longin controller` on a store, resyncing every `resync` seconds, with
/// `env` added to its environment; its /metrics listens on a free port.
pub fn spawn_controller(
    data_dir: &std::path::Path,
    database_url: &str,
    instance: &str,
    ports: (u16, u16),
    resync: u64,
    env: &[(&str, &str)],
) -> ControllerProcess {
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let process = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_longin"))
            .arg("controller")
            .env("LONGIN_DATA_DIR", data_dir)
            .env("DATABASE_URL", database_url)
            .env("LONGIN_INSTANCE", instance)
            .env("LONGIN_PORT_RANGE", format!("{}-{}", ports.0, ports.1))
            .env("LONGIN_NETWORK_POOL", network_pool(ports.0))
            .env("LONGIN_BIND_ADDRESS", "127.0.0.1")
            .env("LONGIN_RESYNC_SECONDS", resync.to_string())
            .env("LONGIN_LISTEN", listen.to_string())
            .env("LONGIN_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    ControllerProcess {
        process,
        base: format!("http://{listen}"),
    }
}

/// A block of 40 host ports reserved for one test until dropped. Tests run in
/// parallel processes; two that picked the same block at random would fight over
/// ports ("port is already allocated") and time out. A reservation is a file created
/// exclusively under /tmp/longin-test-ports holding the owner's pid; one whose owner
/// is dead is taken over.
pub struct PortBlock {
    pub first: u16,
    path: std::path::PathBuf,
}

impl PortBlock {
    /// Reserves a free block among `blocks` blocks of 40 from `base`.
    pub fn reserve(base: u16, blocks: u16) -> Self {
        let dir = std::path::Path::new("/tmp/longin-test-ports");
        std::fs::create_dir_all(dir).unwrap();
        let start = u16::from_le_bytes([
            uuid::Uuid::new_v4().as_bytes()[0],
            uuid::Uuid::new_v4().as_bytes()[1],
        ]) % blocks;
        for i in 0..blocks {
            let first = base + 40 * ((start + i) % blocks);
            let path = dir.join(first.to_string());
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path);
            match created {
                Ok(mut file) => {
                    use std::io::Write as _;
                    write!(file, "{}", std::process::id()).unwrap();
                    // Something outside the reservations may hold a port of it (a
                    // container left behind by a killed run): skip such a block.
                    let free = (first..first + 40)
                        .all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
                    if free {
                        return Self { first, path };
                    }
                    drop(file);
                    let _ = std::fs::remove_file(&path);
                }
                Err(_) => {
                    let owner = std::fs::read_to_string(&path).unwrap_or_default();
                    let alive = owner
                        .trim()
                        .parse::<u32>()
                        .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
                    if !alive && !owner.trim().is_empty() {
                        // Its owner is gone: free it and try again next round.
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        panic!("no free block of test ports under {}", dir.display());
    }
}

impl Drop for PortBlock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes a test instance's containers when dropped.
pub struct InstanceContainers(pub String);

impl Drop for InstanceContainers {
    fn drop(&mut self) {
        remove_instance_containers(&self.0);
        remove_instance_networks(&self.0);
    }
}

/// `docker network rm` of every owner network of a test instance.
pub fn remove_instance_networks(instance: &str) {
    let ids = docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("label=io.longin.instance={instance}"),
    ]);
    for id in ids.split_whitespace() {
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", id])
            .output();
    }
}

/// The owners' network pool of the test holding port block `first`: a /20 (16
/// owners) of its own in 10.240.0.0/12, so tests running at once never ask the engine
/// for overlapping subnets. Networks a killed earlier run left in it are removed.
pub fn network_pool(first_port: u16) -> String {
    let block = u32::from(first_port.saturating_sub(20_000) / 40);
    let base =
        std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 240, 0, 0)) + block * 4096);
    let pool = format!("{base}/20");
    let names = docker(&[
        "network",
        "ls",
        "--filter",
        "label=io.longin.managed-by=longin",
        "--format",
        "{{.Name}}",
    ]);
    for name in names.split_whitespace() {
        let subnet = std::process::Command::new("docker")
            .args([
                "network",
                "inspect",
                "-f",
                "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
                name,
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let inside = subnet
            .split('/')
            .next()
            .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
            .is_some_and(|ip| {
                let (ip, base) = (u32::from(ip), u32::from(base));
                ip >= base && ip < base + 4096
            });
        if inside {
            let _ = std::process::Command::new("docker")
                .args(["network", "rm", name])
                .output();
        }
    }
    pool
}

/// `docker rm -f` of every container of a test instance.
pub fn remove_instance_containers(instance: &str) {
    let ids = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.longin.instance={instance}"),
    ]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        docker(&args);
    }
}

/// Runs the docker CLI; returns stdout. Panics when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// Polls `check` every 100 ms until it returns Some, or panics after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The local registry the test images are pushed to.
pub fn registry() -> String {
    std::env::var("LONGIN_TEST_REGISTRY").unwrap_or_else(|_| {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI must provide LONGIN_TEST_REGISTRY"
        );
        "127.0.0.1:5000".to_owned()
    })
}

/// A Prometheus scrape of `url`, which must answer 200 in the text format.
pub async fn scrape(url: &str) -> String {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    res.text().await.unwrap()
}

/// The value of the sample `series` (name with labels, as printed) in a scrape.
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub fn app_yaml(name: &str, image: &str, replicas: u32, extra: &str) -> String {
    format!(
        "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: {name}}}\nspec:\n  image: {image}\n  containerPort: 8080\n  replicas: {replicas}\n  terminationGracePeriodSeconds: 2\n{extra}"
    )
}

/// `PUT /api/applications/apply` of a YAML document; the response as it came.
pub async fn apply_yaml(app: &TestApp, token: &str, yaml: &str) -> reqwest::Response {
    app.client
        .put(app.url("/api/applications/apply"))
        .bearer_auth(token)
        .header("content-type", "application/yaml")
        .body(yaml.to_owned())
        .send()
        .await
        .unwrap()
}

/// Applies a YAML document, asserting 200; the response body.
pub async fn apply(app: &TestApp, token: &str, yaml: &str) -> Value {
    let res = apply_yaml(app, token, yaml).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

pub async fn get_application(app: &TestApp, token: &str, name: &str) -> Option<Value> {
    let res = app
        .get(&format!("/api/applications/{name}"), Some(token))
        .await;
    if res.status() == StatusCode::NOT_FOUND {
        return None;
    }
    Some(res.json().await.unwrap())
}

/// Waits until the application reports `ready` ready replicas in phase `phase`.
pub async fn wait_for(app: &TestApp, token: &str, name: &str, phase: &str, ready: u64) -> Value {
    // Generous: a port just released by a removed container can refuse a new bind for a
    // moment, and the reconcile then backs off before retrying.
    eventually(
        120,
        &format!("{name} {phase} with {ready} ready"),
        || async {
            let a = get_application(app, token, name).await?;
            (a["status"]["phase"] == phase
                && a["status"]["readyReplicas"] == ready
                && a["status"]["observedGeneration"] == a["metadata"]["generation"])
                .then_some(a)
        },
    )
    .await
}

/// A user created straight in the store, for tests that drive a controller process
/// (or the store itself) without the API.
pub async fn store_user(
    store: &longin_store::Store,
    username: &str,
) -> longin_store::users::UserRecord {
    store
        .create_user(&longin_store::users::NewUser {
            username,
            email: &format!("{username}@example.com"),
            password_hash: "x",
            role: longin_store::users::Role::User,
        })
        .await
        .unwrap()
}

/// An app of the busybox test image running `script` with `sh -c` (the image has no
/// command of its own).
pub fn busybox_app(name: &str, replicas: u32, script: &str) -> String {
    app_yaml(
        name,
        &format!("{}/longin/busybox:1.0", registry()),
        replicas,
        &format!("  command: [sh, -c, '{script}']\n"),
    )
}
