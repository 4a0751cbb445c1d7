//! Real `kubectl` against Longin's Kubernetes API: the `applications.longin.io`
//! resource over the HTTPS listener, with the kubeconfig `longin kubeconfig` writes.
//! The client is Debian's kubectl 1.20 that scripts/test-services unpacks
//! (`LONGIN_TEST_KUBECTL`); outside CI a `kubectl` on PATH stands in. One test runs on
//! the real engine (apply, watch, scale, describe, delete); the others need the API only.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;

use common::ws::WsClient;
use common::{TestApp, docker, eventually, get_application, registry, wait_for};
use longin::cli::ServeArgs;

/// The context each test's kubeconfig is written with.
const CONTEXT: &str = "longin-test";
/// The API token that kubeconfig carries, named after its context.
const CONTEXT_TOKEN: &str = "kubeconfig-longin-test";
/// Longest a one-shot command may run (`delete` is given 120 s to see its containers go).
const COMMAND_DEADLINE: Duration = Duration::from_secs(180);

// --- harness ------------------------------------------------------------------------

/// An API-only server with the HTTPS listener kubectl talks to.
async fn spawn_api() -> TestApp {
    common::spawn_app_with_args(with_tls).await
}

fn with_tls(args: &mut ServeArgs) {
    args.tls_listen = Some("127.0.0.1:0".parse().unwrap());
}

/// The kubectl the tests run: `LONGIN_TEST_KUBECTL`, required in CI; elsewhere a
/// `kubectl` on PATH when it is unset. Never none: a test without a client fails.
fn kubectl_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LONGIN_TEST_KUBECTL").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            is_executable(&path),
            "LONGIN_TEST_KUBECTL={} is not an executable file",
            path.display()
        );
        return path;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "CI must provide LONGIN_TEST_KUBECTL (scripts/test-services unpacks Debian's kubectl 1.20)"
    );
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| is_executable(candidate))
        .expect(
            "no kubectl: eval \"$(scripts/test-services)\" for kubectl 1.20 (LONGIN_TEST_KUBECTL), or put a kubectl on PATH",
        )
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A finished command: what it was, how it ended and what it printed.
#[derive(Debug)]
struct Outcome {
    command: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// Stdout, asserting that the command succeeded.
    fn ok(self) -> String {
        assert!(
            self.status.success(),
            "`{}` failed ({}):\nstderr: {}\nstdout: {}",
            self.command,
            self.status,
            self.stderr,
            self.stdout
        );
        self.stdout
    }

    /// Stderr, asserting that the command failed.
    fn failed(self) -> String {
        assert!(
            !self.status.success(),
            "`{}` should have failed:\nstdout: {}\nstderr: {}",
            self.command,
            self.stdout,
            self.stderr
        );
        self.stderr
    }
}

/// Runs `command` to its end with `stdin` as its input; killed after COMMAND_DEADLINE.
async fn finish(mut command: Command, shown: String, stdin: Option<&str>) -> Outcome {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start `{shown}`: {e}"));
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // A command that exits without reading it fails on its own terms, shown below.
        let _ = input.write_all(text.as_bytes()).await;
    }
    drop(input);
    let out = tokio::time::timeout(COMMAND_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`{shown}` still running after {COMMAND_DEADLINE:?}"))
        .unwrap();
    Outcome {
        command: shown,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `longin` CLI with a config dir of its own, signed in as one user.
struct LonginCli {
    config_dir: tempfile::TempDir,
}

impl LonginCli {
    async fn signed_in(app: &TestApp, username: &str) -> Self {
        let cli = Self {
            config_dir: tempfile::tempdir().unwrap(),
        };
        let server = app.url("");
        let out = cli
            .ok(
                &[
                    "login",
                    "--server",
                    &server,
                    "--username",
                    username,
                    "--password-stdin",
                ],
                Some(&format!("{}\n", common::PASSWORD)),
            )
            .await;
        assert!(out.contains("Logged in"), "{out}");
        cli
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        let mut command = Command::new(env!("CARGO_BIN_EXE_longin"));
        command
            .args(args)
            .env("LONGIN_CONFIG_DIR", self.config_dir.path())
            .env_remove("LONGIN_SERVER")
            .env_remove("LONGIN_LOG");
        finish(command, format!("longin {}", args.join(" ")), stdin).await
    }

    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.run(args, stdin).await.ok()
    }
}

/// kubectl as one Longin user: the kubeconfig `longin kubeconfig` made for them, and a
/// cache dir and home of its own, so that tests share nothing.
struct Kubectl {
    binary: PathBuf,
    dir: tempfile::TempDir,
    /// The `longin` session the kubeconfig was made from (`longin token …`).
    longin: LonginCli,
}

impl Kubectl {
    /// Signs `username` in with `longin login`, then writes their kubeconfig with
    /// `longin kubeconfig --file … --context longin-test`.
    async fn signed_in(app: &TestApp, username: &str) -> Self {
        let longin = LonginCli::signed_in(app, username).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let kubectl = Self {
            binary: kubectl_binary(),
            dir,
            longin,
        };
        let kubeconfig = kubectl.kubeconfig();
        kubectl
            .longin
            .ok(
                &[
                    "kubeconfig",
                    "--file",
                    kubeconfig.to_str().unwrap(),
                    "--context",
                    CONTEXT,
                ],
                None,
            )
            .await;
        assert!(
            kubeconfig.is_file(),
            "longin kubeconfig wrote no {}",
            kubeconfig.display()
        );
        kubectl
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// kubectl on this user's kubeconfig and cache, each request given up after
    /// `request_timeout`.
    fn command(&self, request_timeout: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg(format!("--kubeconfig={}", self.kubeconfig().display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.path().join("cache").display()
            ))
            .arg(format!("--request-timeout={request_timeout}"))
            .args(args)
            .env("HOME", self.dir.path().join("home"))
            .env_remove("KUBECONFIG")
            .env_remove("KUBE_EDITOR")
            .env_remove("EDITOR");
        command
    }

    async fn run_with_env(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> Outcome {
        let mut command = self.command("30s", args);
        command.envs(env.iter().copied());
        finish(command, format!("kubectl {}", args.join(" ")), stdin).await
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Outcome {
        self.run_with_env(args, stdin, &[]).await
    }

    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.run(args, stdin).await.ok()
    }

    async fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.run(args, stdin).await.failed()
    }

    /// `kubectl apply -f -` of `document`; what it printed.
    async fn apply(&self, document: &str) -> String {
        self.ok(&["apply", "-f", "-"], Some(document)).await
    }

    /// A value of the kubeconfig, by a jsonpath over `kubectl config view --minify`.
    async fn config(&self, jsonpath: &str) -> String {
        self.ok(
            &[
                "config",
                "view",
                "--minify",
                "--raw",
                "-o",
                &format!("jsonpath={jsonpath}"),
            ],
            None,
        )
        .await
    }

    /// Starts `kubectl <args>` (a `get --watch`), reading its stdout as it comes.
    fn watch(&self, args: &[&str]) -> Watch {
        let stderr = self.dir.path().join("watch.stderr");
        // No request timeout: the watch is one request that lasts as long as the test.
        let mut child = self
            .command("0", args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Watch {
            _child: child,
            lines,
            header: Vec::new(),
            printed: Vec::new(),
            stderr,
        }
    }
}

/// A row of a printed table, cell by column name.
type Row = BTreeMap<String, String>;

/// A running `kubectl get --watch`: its header, then one row per event. Killed when
/// dropped.
struct Watch {
    _child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    header: Vec<String>,
    printed: Vec<String>,
    stderr: PathBuf,
}

impl Watch {
    /// The next row `accept` takes, within `secs` seconds; panics with everything the
    /// watch printed otherwise.
    async fn next_row(&mut self, secs: u64, what: &str, accept: impl Fn(&Row) -> bool) -> Row {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None) | Err(_)) => {
                    panic!(
                        "the watch ended while waiting for {what}\n{}",
                        self.transcript()
                    )
                }
                Err(_) => panic!("no row with {what} within {secs} s\n{}", self.transcript()),
            };
            self.printed.push(line.clone());
            let cells: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            if self.header.is_empty() {
                self.header = cells;
                continue;
            }
            assert_eq!(
                cells.len(),
                self.header.len(),
                "a row with other columns than {:?}: {line}\n{}",
                self.header,
                self.transcript()
            );
            let row: Row = self.header.iter().cloned().zip(cells).collect();
            if accept(&row) {
                return row;
            }
        }
    }

    fn transcript(&self) -> String {
        format!(
            "it printed:\n{}\nits stderr:\n{}",
            self.printed.join("\n"),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }
}

/// A table kubectl printed, split on whitespace: no cell of these tables holds a space
/// (ports and labels are comma-separated).
#[derive(Debug)]
struct Table {
    text: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn parse(text: &str) -> Self {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .unwrap_or_else(|| panic!("no table in {text:?}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let rows: Vec<Vec<String>> = lines
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect();
        for row in &rows {
            assert_eq!(
                row.len(),
                header.len(),
                "a row of other columns in:\n{text}"
            );
        }
        Self {
            text: text.to_owned(),
            header,
            rows,
        }
    }

    fn column(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in:\n{}", self.text))
    }

    /// Column `name`'s values, sorted.
    fn values(&self, name: &str) -> Vec<&str> {
        let i = self.column(name);
        let mut values: Vec<&str> = self.rows.iter().map(|r| r[i].as_str()).collect();
        values.sort_unstable();
        values
    }

    /// The cell of `column` in the row whose NAME is `name`.
    fn cell(&self, name: &str, column: &str) -> &str {
        let (n, i) = (self.column("NAME"), self.column(column));
        self.rows
            .iter()
            .find(|r| r[n] == name)
            .map(|r| r[i].as_str())
            .unwrap_or_else(|| panic!("no row {name} in:\n{}", self.text))
    }
}

/// The test image for applications: the API-only servers never pull it.
fn httpd() -> String {
    format!("{}/longin/httpd:1.0", registry())
}

/// An Application as a user writes it for kubectl (no namespace: the context's), in
/// block style so that an editor's line edit finds its line; `extra` goes under `spec`.
fn document(name: &str, replicas: u32, labels: &[(&str, &str)], extra: &str) -> String {
    let mut doc =
        format!("apiVersion: longin.io/v1\nkind: Application\nmetadata:\n  name: {name}\n");
    if !labels.is_empty() {
        doc.push_str("  labels:\n");
        for (key, value) in labels {
            doc.push_str(&format!("    {key}: {value}\n"));
        }
    }
    doc.push_str(&format!(
        "spec:\n  image: {}\n  containerPort: 8080\n  replicas: {replicas}\n  terminationGracePeriodSeconds: 2\n{extra}",
        httpd()
    ));
    doc
}

/// The engine's containers of this test's app `name`; with `all`, stopped ones too.
fn containers_of(app: &TestApp, name: &str, all: bool) -> Vec<String> {
    let instance = format!("label=io.longin.instance={}", app.instance);
    let app_name = format!("label=io.longin.app-name={name}");
    let list = if all { "-aq" } else { "-q" };
    docker(&["ps", list, "--filter", &instance, "--filter", &app_name])
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

// --- on the engine --------------------------------------------------------------------

/// The whole life of an application driven by kubectl alone, seen by the engine,
/// Longin's own API and the dashboard's live stream: apply, a watch that shows a killed
/// replica, scale, describe, and a delete that returns once the containers are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_runs_an_application_on_the_engine_from_apply_to_delete() {
    let app = common::spawn_platform_with(with_tls).await;
    let pat = app.register("pat").await;
    let token = &pat.access_token;
    let kubectl = Kubectl::signed_in(&app, "pat").await;
    let web = document(
        "web",
        2,
        &[],
        "  healthCheck: {http: {path: /healthz}, periodSeconds: 1}\n",
    );
    assert_eq!(
        kubectl.apply(&web).await,
        "application.longin.io/web created\n"
    );
    wait_for(&app, token, "web", "Running", 2).await;

    // get -w: the list, then a row per change; a killed replica shows at once.
    let mut watch = kubectl.watch(&["get", "applications", "--watch", "--output-watch-events"]);
    watch
        .next_row(60, "web listed as 2/2 Running", |r| {
            r["NAME"] == "web" && r["READY"] == "2/2" && r["STATUS"] == "Running"
        })
        .await;
    let victim = containers_of(&app, "web", false).remove(0);
    docker(&["kill", &victim]);
    let changed = watch
        .next_row(90, "web no longer 2/2 Running after docker kill", |r| {
            r["NAME"] == "web" && (r["READY"] != "2/2" || r["STATUS"] != "Running")
        })
        .await;
    assert_eq!(changed["EVENT"], "MODIFIED", "{changed:?}");
    wait_for(&app, token, "web", "Running", 2).await;

    // scale: three containers, and the dashboard's live status says so.
    let mut live = WsClient::authenticated(&app, "/ws/metrics", token).await;
    live.send(json!({"type": "subscribe", "app": "web"})).await;
    assert_eq!(
        live.recv(10).await.unwrap(),
        json!({"type": "subscribed", "app": "web"})
    );
    assert_eq!(
        kubectl
            .ok(&["scale", "--replicas=3", "app/web"], None)
            .await,
        "application.longin.io/web scaled\n"
    );
    let stored = get_application(&app, token, "web").await.unwrap();
    assert_eq!(stored["spec"]["replicas"], 3, "{stored}");
    let status = live
        .next_matching("status", 120, |m| m["readyReplicas"] == 3)
        .await;
    assert_eq!(status["phase"], "Running", "{status}");
    eventually(120, "three running containers of web", || async {
        (containers_of(&app, "web", false).len() == 3).then_some(())
    })
    .await;
    wait_for(&app, token, "web", "Running", 3).await;
    watch
        .next_row(60, "web at 3/3", |r| {
            r["NAME"] == "web" && r["READY"] == "3/3"
        })
        .await;

    // describe: the object's fields, its conditions and its events.
    let described = kubectl.ok(&["describe", "app", "web"], None).await;
    let field = |name: &str| {
        described
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    assert_eq!(field("Name:"), Some("web"), "{described}");
    assert_eq!(field("Namespace:"), Some("pat"), "{described}");
    assert!(described.contains("Conditions:"), "{described}");
    assert!(
        described
            .lines()
            .any(|l| l.trim_start().starts_with("Type:") && l.trim_end().ends_with("Ready")),
        "a Ready condition in:\n{described}"
    );
    let (_, events) = described
        .split_once("\nEvents:")
        .unwrap_or_else(|| panic!("no Events section in:\n{described}"));
    assert!(
        !events.trim_start().starts_with("<none>"),
        "no events in:\n{described}"
    );
    assert!(
        events.lines().any(|l| {
            let l = l.to_lowercase();
            l.contains("roll") || l.contains("revision")
        }),
        "a rollout event in:\n{described}"
    );

    // delete waits (kubectl's default) until the object is gone, which is once its
    // containers are.
    assert_eq!(
        kubectl
            .ok(&["delete", "app", "web", "--timeout=120s"], None)
            .await,
        "application.longin.io \"web\" deleted\n"
    );
    assert_eq!(
        containers_of(&app, "web", true),
        Vec::<String>::new(),
        "containers of web left after kubectl delete returned"
    );
    assert!(get_application(&app, token, "web").await.is_none());
    watch
        .next_row(30, "web DELETED", |r| {
            r["NAME"] == "web" && r["EVENT"] == "DELETED"
        })
        .await;
    let err = kubectl.fails(&["get", "app", "web"], None).await;
    assert!(err.contains("NotFound"), "{err}");
    drop(watch);
    app.stop().await;
}

// --- the API alone ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_then_is_unchanged_then_configures_and_longin_sees_the_same_app() {
    let app = spawn_api().await;
    let alice = app.register("alice").await;
    let kubectl = Kubectl::signed_in(&app, "alice").await;

    // The kubeconfig: the HTTPS listener, its CA, a token, alice's namespace.
    let tls = app.tls.expect("the test server has an HTTPS listener");
    let server = kubectl.config("{.clusters[0].cluster.server}").await;
    assert!(
        server.starts_with("https://") && server.ends_with(&format!(":{}", tls.port())),
        "server {server}, HTTPS listener on {tls}"
    );
    assert!(
        !kubectl
            .config("{.clusters[0].cluster.certificate-authority-data}")
            .await
            .is_empty()
    );
    assert!(
        kubectl
            .config("{.users[0].user.token}")
            .await
            .starts_with("lgn_")
    );
    assert_eq!(kubectl.config("{.contexts[0].name}").await, CONTEXT);
    assert_eq!(
        kubectl.config("{.contexts[0].context.namespace}").await,
        "alice"
    );

    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("web.yaml");
    let path = file.to_str().unwrap();
    std::fs::write(&file, document("web", 2, &[("tier", "frontend")], "")).unwrap();
    assert_eq!(
        kubectl.ok(&["apply", "-f", path], None).await,
        "application.longin.io/web created\n"
    );
    assert_eq!(
        kubectl.ok(&["apply", "-f", path], None).await,
        "application.longin.io/web unchanged\n"
    );
    std::fs::write(&file, document("web", 3, &[("tier", "frontend")], "")).unwrap();
    assert_eq!(
        kubectl.ok(&["apply", "-f", path], None).await,
        "application.longin.io/web configured\n"
    );

    // Longin's own API and CLI see the same application.
    let stored = get_application(&app, &alice.access_token, "web")
        .await
        .expect("web through Longin's API");
    assert_eq!(stored["metadata"]["owner"], "alice", "{stored}");
    assert_eq!(stored["metadata"]["labels"]["tier"], "frontend", "{stored}");
    assert_eq!(stored["metadata"]["generation"], 2, "{stored}");
    assert_eq!(stored["spec"]["replicas"], 3, "{stored}");
    assert_eq!(stored["spec"]["image"], httpd(), "{stored}");
    let listed = Table::parse(&kubectl.longin.ok(&["get"], None).await);
    assert_eq!(listed.cell("web", "READY"), "0/3");
    // And what Longin applied shows in kubectl.
    common::apply(
        &app,
        &alice.access_token,
        &common::app_yaml("worker", &httpd(), 1, ""),
    )
    .await;
    let table = Table::parse(&kubectl.ok(&["get", "applications"], None).await);
    assert_eq!(table.values("NAME"), ["web", "worker"]);
    assert_eq!(table.cell("worker", "READY"), "0/1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_tables_wide_labels_yaml_and_json_under_every_name() {
    let app = spawn_api().await;
    let alice = app.register("alice").await;
    let kubectl = Kubectl::signed_in(&app, "alice").await;
    kubectl
        .apply(&document("web", 2, &[("tier", "frontend")], ""))
        .await;
    let stored = get_application(&app, &alice.access_token, "web")
        .await
        .unwrap();
    let ports: Vec<String> = stored["status"]["hostPorts"]
        .as_array()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ports.len(), 2, "{stored}");

    for resource in [
        "applications",
        "application",
        "app",
        "applications.longin.io",
    ] {
        let table = Table::parse(&kubectl.ok(&["get", resource, "web"], None).await);
        assert_eq!(
            table.header,
            ["NAME", "READY", "STATUS", "PORTS", "AGE"],
            "get {resource}"
        );
        assert_eq!(table.cell("web", "READY"), "0/2", "get {resource}");
        assert_eq!(table.cell("web", "STATUS"), "Pending", "get {resource}");
        let shown: Vec<&str> = table
            .cell("web", "PORTS")
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .collect();
        assert_eq!(shown, ports, "get {resource}");
    }

    let wide = Table::parse(&kubectl.ok(&["get", "app", "-o", "wide"], None).await);
    assert_eq!(
        wide.header[..5],
        ["NAME", "READY", "STATUS", "PORTS", "AGE"]
    );
    assert_eq!(wide.cell("web", "IMAGE"), httpd());
    assert_eq!(wide.cell("web", "GENERATION"), "1");
    let labelled = Table::parse(&kubectl.ok(&["get", "app", "--show-labels"], None).await);
    assert_eq!(labelled.cell("web", "LABELS"), "tier=frontend");
    assert_eq!(
        kubectl.ok(&["get", "app", "-o", "name"], None).await,
        "application.longin.io/web\n"
    );
    assert_eq!(
        kubectl
            .ok(
                &["get", "app", "web", "-o", "jsonpath={.spec.replicas}"],
                None
            )
            .await,
        "2"
    );
    let json: Value =
        serde_json::from_str(&kubectl.ok(&["get", "app", "web", "-o", "json"], None).await)
            .unwrap();
    assert_eq!(json["apiVersion"], "longin.io/v1", "{json}");
    assert_eq!(json["kind"], "Application", "{json}");
    assert_eq!(json["metadata"]["name"], "web", "{json}");
    assert_eq!(json["metadata"]["namespace"], "alice", "{json}");
    assert_eq!(json["spec"]["replicas"], 2, "{json}");

    // What kubectl applied, read back and applied again, changes nothing.
    let last_applied = kubectl
        .ok(
            &["apply", "view-last-applied", "app/web", "-o", "yaml"],
            None,
        )
        .await;
    assert_eq!(
        kubectl.apply(&last_applied).await,
        "application.longin.io/web unchanged\n"
    );
    // The whole object read back applies too. kubectl says "configured": its
    // last-applied annotation becomes that document, status and all; the desired
    // state stays as it was.
    let yaml = kubectl.ok(&["get", "app", "web", "-o", "yaml"], None).await;
    assert!(
        yaml.contains("kind: Application") && yaml.contains("namespace: alice"),
        "{yaml}"
    );
    assert_eq!(
        kubectl.apply(&yaml).await,
        "application.longin.io/web configured\n"
    );
    let after = get_application(&app, &alice.access_token, "web")
        .await
        .unwrap();
    assert_eq!(after["metadata"]["generation"], 1, "{after}");
    assert_eq!(after["spec"], stored["spec"], "{after}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_namespaces_are_one_s_own_for_users_and_everyone_s_for_admins() {
    let app = spawn_api().await;
    app.register("alice").await;
    app.register("bob").await;
    app.admin("root").await;
    let alice = Kubectl::signed_in(&app, "alice").await;
    let bob = Kubectl::signed_in(&app, "bob").await;
    let root = Kubectl::signed_in(&app, "root").await;
    alice.apply(&document("web", 1, &[], "")).await;
    bob.apply(&document("web", 1, &[], "")).await;
    bob.apply(&document("api", 1, &[], "")).await;

    // `namespace/name` of each row, sorted.
    let rows = |table: &Table| -> Vec<String> {
        let (ns, name) = (table.column("NAMESPACE"), table.column("NAME"));
        let mut rows: Vec<String> = table
            .rows
            .iter()
            .map(|r| format!("{}/{}", r[ns], r[name]))
            .collect();
        rows.sort();
        rows
    };
    let seen_by_alice = Table::parse(&alice.ok(&["get", "app", "-A"], None).await);
    assert_eq!(seen_by_alice.header[0], "NAMESPACE");
    assert_eq!(rows(&seen_by_alice), ["alice/web"]);
    let seen_by_root = Table::parse(&root.ok(&["get", "app", "-A"], None).await);
    assert_eq!(seen_by_root.header[0], "NAMESPACE");
    assert_eq!(rows(&seen_by_root), ["alice/web", "bob/api", "bob/web"]);
    // An admin reads one namespace too; their own holds nothing.
    let bobs = Table::parse(&root.ok(&["get", "app", "-n", "bob"], None).await);
    assert_eq!(bobs.values("NAME"), ["api", "web"]);
    let own = root.run(&["get", "app"], None).await;
    assert!(own.status.success(), "{own:?}");
    assert_eq!(own.stdout, "", "{own:?}");
    assert!(own.stderr.contains("No resources found"), "{own:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_and_scale_change_the_stored_application() {
    let app = spawn_api().await;
    let alice = app.register("alice").await;
    let kubectl = Kubectl::signed_in(&app, "alice").await;
    kubectl
        .apply(&document("web", 2, &[("tier", "frontend")], ""))
        .await;

    // An "editor" that changes two lines of the YAML kubectl hands it.
    let tools = tempfile::tempdir().unwrap();
    let editor = tools.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nset -e\nsed -i -e 's/^  replicas: 2$/  replicas: 4/' -e 's/^    tier: frontend$/    tier: backend/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let edited = kubectl
        .run_with_env(
            &["edit", "app", "web"],
            None,
            &[("KUBE_EDITOR", editor.to_str().unwrap())],
        )
        .await
        .ok();
    assert_eq!(edited, "application.longin.io/web edited\n");
    let stored = get_application(&app, &alice.access_token, "web")
        .await
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 4, "{stored}");
    assert_eq!(stored["metadata"]["labels"]["tier"], "backend", "{stored}");
    assert_eq!(stored["metadata"]["generation"], 2, "{stored}");

    assert_eq!(
        kubectl
            .ok(&["scale", "--replicas=1", "app/web"], None)
            .await,
        "application.longin.io/web scaled\n"
    );
    let stored = get_application(&app, &alice.access_token, "web")
        .await
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 1, "{stored}");
    assert_eq!(
        kubectl
            .ok(
                &["get", "app", "web", "-o", "jsonpath={.spec.replicas}"],
                None
            )
            .await,
        "1"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_document_is_refused_naming_each_bad_field() {
    let app = spawn_api().await;
    let alice = app.register("alice").await;
    let kubectl = Kubectl::signed_in(&app, "alice").await;
    let bad = "apiVersion: longin.io/v1\nkind: Application\nmetadata:\n  name: bad\nspec:\n  image: 'Not A//Valid Image'\n  containerPort: 8080\n  replicas: -1\n";
    for verb in ["apply", "create"] {
        let err = kubectl.fails(&[verb, "-f", "-"], Some(bad)).await;
        let (_, causes) = err
            .split_once("is invalid")
            .unwrap_or_else(|| panic!("kubectl {verb}: no \"is invalid\" in: {err}"));
        for field in ["spec.replicas", "spec.image"] {
            assert!(causes.contains(field), "kubectl {verb}: {field} in: {err}");
        }
    }
    assert!(
        get_application(&app, &alice.access_token, "bad")
            .await
            .is_none()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_s_namespace_is_forbidden_and_their_apps_are_not_found() {
    let app = spawn_api().await;
    app.register("alice").await;
    let bob = app.register("bob").await;
    let alice_kubectl = Kubectl::signed_in(&app, "alice").await;
    let bob_kubectl = Kubectl::signed_in(&app, "bob").await;
    bob_kubectl.apply(&document("bobsapp", 1, &[], "")).await;

    let err = alice_kubectl
        .fails(&["get", "app", "-n", "bob"], None)
        .await;
    assert!(err.contains("Forbidden"), "{err}");
    let err = alice_kubectl.fails(&["get", "app", "bobsapp"], None).await;
    assert!(
        err.contains("NotFound") && err.contains("\"bobsapp\" not found"),
        "{err}"
    );
    let err = alice_kubectl
        .fails(&["delete", "app", "bobsapp", "-n", "bob"], None)
        .await;
    assert!(err.contains("Forbidden"), "{err}");
    let err = alice_kubectl
        .fails(
            &["apply", "-n", "bob", "-f", "-"],
            Some(&document("bobsapp", 5, &[], "")),
        )
        .await;
    assert!(err.contains("Forbidden"), "{err}");

    let untouched = get_application(&app, &bob.access_token, "bobsapp")
        .await
        .expect("bob's app is still there");
    assert_eq!(untouched["spec"]["replicas"], 1, "{untouched}");
    assert_eq!(untouched["metadata"]["generation"], 1, "{untouched}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_unauthorized_and_a_new_one_works() {
    let app = spawn_api().await;
    app.register("alice").await;
    let kubectl = Kubectl::signed_in(&app, "alice").await;
    kubectl.ok(&["get", "app"], None).await;

    kubectl
        .longin
        .ok(&["token", "revoke", CONTEXT_TOKEN], None)
        .await;
    let err = kubectl.fails(&["get", "app"], None).await;
    assert!(
        err.contains("Unauthorized") && err.contains("You must be logged in"),
        "{err}"
    );

    let created = kubectl.longin.ok(&["token", "create", "ci"], None).await;
    let token = created
        .split_whitespace()
        .find(|w| w.starts_with("lgn_"))
        .unwrap_or_else(|| panic!("no lgn_ token in: {created}"))
        .to_owned();
    let flag = format!("--token={token}");
    kubectl.ok(&[flag.as_str(), "get", "app"], None).await;
    kubectl.longin.ok(&["token", "revoke", "ci"], None).await;
    let err = kubectl.fails(&[flag.as_str(), "get", "app"], None).await;
    assert!(err.contains("Unauthorized"), "{err}");
    app.stop().await;
}
