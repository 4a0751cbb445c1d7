//! The kubectl-like CLI end to end against a running server.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Cli {
    config_dir: tempfile::TempDir,
    server: String,
}

impl Cli {
    /// A CLI with a config dir of its own, signed in to `app` as `username`.
    fn signed_in(app: &common::TestApp, username: &str) -> Self {
        let cli = Self {
            config_dir: tempfile::tempdir().unwrap(),
            server: app.url(""),
        };
        let out = cli.ok(
            &[
                "login",
                "--server",
                &cli.server,
                "--username",
                username,
                "--password-stdin",
            ],
            Some(&format!("{}\n", common::PASSWORD)),
        );
        assert!(out.contains("Logged in"), "{out}");
        cli
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_longin"))
            .args(args)
            .env("LONGIN_CONFIG_DIR", self.config_dir.path())
            .env_remove("LONGIN_SERVER")
            // The default log level, whatever the tests run with.
            .env_remove("LONGIN_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "longin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure; returns stderr.
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(!out.status.success(), "longin {args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }

    fn credentials(&self) -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.config_dir.path().join("credentials.json")).unwrap(),
        )
        .unwrap()
    }
}

const WEB: &str = "apiVersion: longin.io/v1
kind: Application
metadata: {name: web}
spec: {image: '127.0.0.1:5000/demo/hello:1.0', containerPort: 8080, replicas: 2}
";

// Multi-threaded: the CLI runs as a blocking child process while the server it talks
// to runs on this test's runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_manages_applications_end_to_end() {
    let app = common::spawn_app().await;
    app.register("carol").await;
    let cli = Cli {
        config_dir: tempfile::tempdir().unwrap(),
        server: app.url(""),
    };

    let err = cli.fails(&["get"], None);
    assert!(err.contains("not logged in"), "{err}");
    let err = cli.fails(
        &[
            "login",
            "--server",
            &cli.server,
            "--username",
            "carol",
            "--password-stdin",
        ],
        Some("wrong password!\n"),
    );
    assert!(err.contains("invalid username or password"), "{err}");

    let out = cli.ok(
        &[
            "login",
            "--server",
            &cli.server,
            "--username",
            "carol",
            "--password-stdin",
        ],
        Some(&format!("{}\n", common::PASSWORD)),
    );
    assert!(out.contains("Logged in"), "{out}");
    let mode = std::fs::metadata(cli.config_dir.path().join("credentials.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // apply from a file, a directory and stdin
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("web.yaml"), WEB).unwrap();
    std::fs::write(
        files.path().join("worker.yml"),
        WEB.replace("name: web", "name: worker")
            .replace("replicas: 2", "replicas: 1"),
    )
    .unwrap();
    std::fs::write(files.path().join("notes.txt"), "not a manifest").unwrap();
    let web_file = files.path().join("web.yaml");
    assert_eq!(
        cli.ok(&["apply", "-f", web_file.to_str().unwrap()], None),
        "application/web created\n"
    );
    assert_eq!(
        cli.ok(&["apply", "-f", files.path().to_str().unwrap()], None),
        "application/web unchanged\napplication/worker created\n"
    );
    assert_eq!(
        cli.ok(
            &["apply", "-f", "-"],
            Some(&WEB.replace("replicas: 2", "replicas: 3"))
        ),
        "application/web configured\n"
    );

    // get: a kubectl-like table, yaml, json, wide
    let table = cli.ok(&["get"], None);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "READY", "STATUS", "PORTS", "AGE"]
    );
    let web: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&web[..3], ["web", "0/3", "Pending"]);
    assert_eq!(web[3].split(',').count(), 3, "{table}");
    assert!(lines[2].starts_with("worker"));
    let yaml = cli.ok(&["get", "web", "-o", "yaml"], None);
    assert!(
        yaml.contains("kind: Application") && yaml.contains("name: web"),
        "{yaml}"
    );
    let json: Value = serde_json::from_str(&cli.ok(&["get", "web", "-o", "json"], None)).unwrap();
    assert_eq!(json["spec"]["replicas"], 3);
    assert!(
        cli.ok(&["get", "-o", "wide"], None)
            .lines()
            .next()
            .unwrap()
            .contains("IMAGE")
    );

    let described = cli.ok(&["describe", "web"], None);
    for expected in [
        "Name:",
        "web",
        "Image:",
        "Replicas:",
        "3 desired",
        "Host ports:",
        "Conditions:",
        "Containers:",
        "Events:",
        "apply",
        "create",
    ] {
        assert!(described.contains(expected), "{expected} in {described}");
    }

    assert_eq!(cli.ok(&["stop", "web"], None), "application/web stopped\n");
    assert!(cli.ok(&["get", "web"], None).contains("0/0"));
    assert_eq!(cli.ok(&["start", "web"], None), "application/web started\n");
    assert_eq!(
        cli.ok(&["restart", "web"], None),
        "application/web restarted\n"
    );

    // Server errors are readable and fail the command.
    let err = cli.fails(&["get", "missing"], None);
    assert!(err.contains("application missing not found"), "{err}");
    let bad = files.path().join("bad.yaml");
    std::fs::write(&bad, WEB.replace("replicas: 2", "replica: 2")).unwrap();
    let err = cli.fails(&["apply", "-f", bad.to_str().unwrap()], None);
    assert!(err.contains("spec.replica"), "{err}");

    // An expired access token is refreshed without the user noticing.
    let mut saved = cli.credentials();
    let old_refresh = saved["refresh_token"].clone();
    saved["access_token"] = Value::from("expired-or-garbage");
    std::fs::write(
        cli.config_dir.path().join("credentials.json"),
        saved.to_string(),
    )
    .unwrap();
    assert!(cli.ok(&["get"], None).contains("web"));
    assert_ne!(
        cli.credentials()["refresh_token"],
        old_refresh,
        "rotated refresh token saved"
    );
    assert_ne!(cli.credentials()["access_token"], "expired-or-garbage");

    assert_eq!(
        cli.ok(&["delete", "worker"], None),
        "application/worker deleted\n"
    );
    assert!(!cli.ok(&["get"], None).contains("worker"));
    assert!(cli.ok(&["logout"], None).contains("Logged out"));
    assert!(cli.fails(&["get"], None).contains("not logged in"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_shows_logs_and_top() {
    let app =
        common::spawn_platform_with(|a| a.metrics_interval = std::time::Duration::from_secs(1))
            .await;
    let user = app.register("dave").await;
    let cli = Cli::signed_in(&app, "dave");
    let yaml = common::busybox_app(
        "chatter",
        2,
        "echo hello; echo oops >&2; n=0; while :; do echo tick$n; n=$((n+1)); sleep 0.2; done",
    );
    cli.ok(&["apply", "-f", "-"], Some(&yaml));
    common::wait_for(&app, &user.access_token, "chatter", "Running", 2).await;

    // Recent lines of one replica: stdout to stdout, stderr to stderr.
    let out = common::eventually(20, "a few ticks logged", || async {
        let out = cli.run(
            &["logs", "chatter", "--replica", "1", "--tail", "10000"],
            None,
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        (out.status.success() && stdout.contains("tick2"))
            .then_some((stdout, String::from_utf8(out.stderr).unwrap()))
    })
    .await;
    assert!(out.0.starts_with("hello\ntick0\ntick1\n"), "{}", out.0);
    assert_eq!(out.1, "oops\n");
    let last = cli.ok(&["logs", "chatter", "--replica", "0", "--tail", "1"], None);
    assert_eq!(last.lines().count(), 1, "{last}");
    assert!(last.starts_with("tick"), "{last}");
    // Both replicas: prefixed.
    let both = cli.ok(&["logs", "chatter", "--tail", "1"], None);
    assert!(
        both.contains("[r0] tick") && both.contains("[r1] tick"),
        "{both}"
    );
    let err = cli.fails(&["logs", "chatter", "--replica", "7"], None);
    assert!(err.contains("no replica 7 (replicas: 0, 1)"), "{err}");
    assert!(cli.fails(&["logs", "nothing"], None).contains("not found"));

    // -f keeps printing new lines.
    let mut follower = std::process::Command::new(env!("CARGO_BIN_EXE_longin"))
        .args(["logs", "chatter", "--replica", "0", "-f", "--tail", "0"])
        .env("LONGIN_CONFIG_DIR", cli.config_dir.path())
        .env_remove("LONGIN_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut ticks = Vec::new();
    while ticks.len() < 5 {
        if let Some(n) = next_line(&mut lines)
            .await
            .strip_prefix("tick")
            .and_then(|n| n.parse::<u64>().ok())
        {
            ticks.push(n);
        }
    }
    assert_eq!(ticks, (ticks[0]..ticks[0] + 5).collect::<Vec<_>>());
    // Its container replaced: the follower goes on with the new one from its first line.
    let replica0 = replica_container(&app, &user.access_token, "chatter", 0).await;
    common::docker(&["rm", "-f", &replica0]);
    expect_from_the_start(&mut lines, "the new container's lines, in order").await;
    // Restarted in place (same container): followed on from its restart, nothing
    // repeated.
    let replica0 = replica_container(&app, &user.access_token, "chatter", 0).await;
    common::docker(&["stop", "-t", "1", &replica0]);
    expect_from_the_start(&mut lines, "after the restart, in order").await;
    let _ = follower.kill();
    let _ = follower.wait();

    // top: the app with its two containers' figures.
    let top = common::eventually(20, "top with figures", || async {
        let out = cli.ok(&["top"], None);
        out.lines()
            .any(|l| l.starts_with("chatter") && l.trim_end().ends_with(" 2") && l.contains("Mi"))
            .then_some(out)
    })
    .await;
    assert!(top.starts_with("NAME"), "{top}");

    // An admin reads them as dave's with --owner.
    app.admin("root").await;
    let root = Cli::signed_in(&app, "root");
    let last = root.ok(
        &[
            "logs",
            "chatter",
            "--owner",
            "dave",
            "--replica",
            "0",
            "--tail",
            "1",
        ],
        None,
    );
    assert!(last.starts_with("tick"), "{last}");
    let top = root.ok(&["top", "--owner", "dave"], None);
    assert!(top.lines().any(|l| l.starts_with("dave/chatter")), "{top}");
    app.stop().await;
}

/// The next line a follower printed, within 30 s.
async fn next_line(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(30), lines.recv())
        .await
        .expect("a followed line within 30 s")
        .expect("the follower is still running")
}

/// Skips to the program's first line (`hello`, printed again by a new or restarted
/// container), then expects its first tick right after it.
async fn expect_from_the_start(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    why: &str,
) {
    while next_line(lines).await != "hello" {}
    assert_eq!(next_line(lines).await, "tick0", "{why}");
}

/// The engine id of replica `replica`'s container of app `name`.
async fn replica_container(app: &common::TestApp, token: &str, name: &str, replica: u64) -> String {
    let containers: Vec<Value> = app
        .get(&format!("/api/applications/{name}/containers"), Some(token))
        .await
        .json()
        .await
        .unwrap();
    containers.iter().find(|c| c["replica"] == replica).unwrap()["dockerId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A saved session's tokens go only to the server that issued them: `--server`
/// naming another (a typo, or a hostile host) fails before anything is sent there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_tokens_are_never_sent_to_another_server() {
    let app = common::spawn_app().await;
    app.register("erin").await;
    let cli = Cli::signed_in(&app, "erin");
    // A listener that records whether anyone connected.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    other.set_nonblocking(true).unwrap();
    let other_url = format!("http://{}", other.local_addr().unwrap());
    let err = cli.fails(&["get", "--server", &other_url], None);
    assert!(err.contains("saved session is for"), "{err}");
    assert!(
        other.accept().is_err(),
        "the CLI connected to a server it has no session for"
    );
    // The server it logged in to still works, named or not, before or after the
    // subcommand.
    cli.ok(&["get", "--server", &cli.server], None);
    cli.ok(&["--server", &cli.server, "get"], None);
    cli.ok(&["get"], None);
    let err = cli.fails(&["--server", &other_url, "get"], None);
    assert!(err.contains("saved session is for"), "{err}");
    app.stop().await;
}

/// An admin acts on another user's applications with `--owner`; anyone else is refused
/// with the server's reason and a non-zero exit. Client options go before or after the
/// subcommand, and a client command prints its results and no log lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_act_for_an_owner_with_owner() {
    let app = common::spawn_app().await;
    app.register("frank").await;
    app.register("grace").await;
    app.admin("root").await;
    let frank = Cli::signed_in(&app, "frank");
    let grace = Cli::signed_in(&app, "grace");
    let root = Cli::signed_in(&app, "root");
    frank.ok(&["apply", "-f", "-"], Some(WEB));

    // The admin's own applications unless --owner says whose.
    assert!(
        root.fails(&["describe", "web"], None)
            .contains("application web not found")
    );
    let described = root.ok(&["describe", "web", "--owner", "frank"], None);
    assert!(
        described.contains("Owner:                frank"),
        "{described}"
    );
    let listed = root.run(&["get", "--owner", "frank"], None);
    assert!(listed.status.success());
    let table = String::from_utf8(listed.stdout).unwrap();
    assert!(table.lines().nth(1).unwrap().starts_with("web "), "{table}");
    assert_eq!(
        String::from_utf8(listed.stderr).unwrap(),
        "",
        "no log lines from a client command"
    );
    for args in [
        &["-o", "json", "--owner", "frank", "get", "web"][..],
        &[
            "get",
            "web",
            "--owner",
            "frank",
            "-o",
            "json",
            "--server",
            &root.server,
        ],
    ] {
        let json: Value = serde_json::from_str(&root.ok(args, None)).unwrap();
        assert_eq!(json["metadata"]["owner"], "frank", "{args:?}");
    }
    assert_eq!(
        root.ok(&["stop", "web", "--owner", "frank"], None),
        "application/web stopped\n"
    );
    assert!(frank.ok(&["get", "web"], None).contains("0/0"));

    // Not an admin: refused, and frank's application is untouched.
    for args in [
        &["get", "--owner", "frank"][..],
        &["delete", "web", "--owner", "frank"],
    ] {
        let err = grace.fails(args, None);
        assert!(
            err.contains("403") && err.contains("only admins may act for another owner"),
            "{args:?}: {err}"
        );
    }
    // Where it means nothing, a usage error before anything is sent.
    let err = grace.fails(&["logout", "--owner", "frank"], None);
    assert!(
        err.contains("--owner is for the commands on applications"),
        "{err}"
    );
    let err = grace.fails(&["describe", "web", "-o", "json"], None);
    assert!(
        err.contains("-o/--output is the output format of `longin get`"),
        "{err}"
    );
    assert!(frank.ok(&["get"], None).contains("web"));

    assert_eq!(
        root.ok(&["delete", "web", "--owner", "frank"], None),
        "application/web deleted\n"
    );
    assert_eq!(frank.ok(&["get"], None), "No applications found.\n");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_follows_revisions_from_git_rolls_back_and_manages_hooks_and_credentials() {
    use common::git::{Repo, borrowed, web_files};
    let app = common::spawn_platform().await;
    let _containers = common::InstanceContainers(app.instance.clone());
    app.admin("gitops").await;
    let cli = Cli::signed_in(&app, "gitops");
    let registry = common::registry();
    let repo = Repo::new();
    repo.commit("main", &borrowed(&web_files(&registry, "one")), "one");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: longin.io/v1\nkind: Application\nmetadata: {{name: site}}\nspec:\n  source: {{git: {{url: '{}'}}}}\n  containerPort: 8080\n  terminationGracePeriodSeconds: 1\n",
            repo.url()
        ),
    )
    .unwrap();
    cli.ok(&["apply", "-f", file.to_str().unwrap()], None);
    let out = cli.ok(&["rollout", "status", "site", "--timeout", "5m"], None);
    assert!(out.contains("revision 1 successfully rolled out"), "{out}");

    repo.commit("main", &[("index.html", "two")], "second page");
    let out = cli.ok(&["redeploy", "site"], None);
    assert!(out.contains("redeploying as revision 2"), "{out}");
    cli.ok(&["rollout", "status", "site", "--timeout", "5m"], None);
    let history = cli.ok(&["rollout", "history", "site"], None);
    let second = history
        .lines()
        .find(|l| l.starts_with("2 "))
        .unwrap_or_default();
    assert!(
        second.contains("redeploy")
            && second.contains("succeeded")
            && second.contains("second page"),
        "{history}"
    );

    let out = cli.ok(&["rollout", "undo", "site"], None);
    assert!(out.contains("rolling back as revision 3"), "{out}");
    cli.ok(&["rollout", "status", "site", "--timeout", "5m"], None);
    let err = cli.fails(&["rollout", "undo", "site", "--to-revision", "99"], None);
    assert!(err.contains("revision 99 not found"), "{err}");

    // A revision that fails: `rollout status` says so and exits non-zero.
    repo.commit_dockerfile(&registry, "RUN false\n", "broken");
    cli.ok(&["redeploy", "site"], None);
    let err = cli.fails(&["rollout", "status", "site", "--timeout", "5m"], None);
    assert!(err.contains("revision 4 failed"), "{err}");

    // The webhook: created with its secret once, then shown without it.
    let created = cli.ok(&["webhook", "site"], None);
    let secret = created
        .lines()
        .find_map(|l| l.strip_prefix("Secret:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        created.contains("/hooks/github/") && secret.len() >= 32,
        "{created}"
    );
    let shown = cli.ok(&["webhook", "site"], None);
    assert!(
        shown.contains("Deliveries:") && !shown.contains(&secret),
        "{shown}"
    );

    // Credentials: a token from stdin only; a deploy key made once, then shown.
    cli.ok(&["git-token", "site"], Some("tok-0123456789\n"));
    let err = cli.fails(&["git-token", "site"], Some(""));
    assert!(err.contains("no token on stdin"), "{err}");
    let key = cli.ok(&["deploy-key", "site"], None);
    assert!(key.starts_with("ssh-ed25519 "), "{key}");
    assert_eq!(cli.ok(&["deploy-key", "site"], None), key);
    assert_ne!(cli.ok(&["deploy-key", "site", "--rotate"], None), key);
    app.stop().await;
}

// Multi-threaded: the CLI runs as a blocking child process while the server it talks
// to runs on this test's runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_creates_lists_and_revokes_tokens() {
    let app = common::spawn_app().await;
    app.register("carol").await;
    let cli = Cli::signed_in(&app, "carol");

    let created = cli.run(&["token", "create", "ci"], None);
    assert!(created.status.success(), "{created:?}");
    let stdout = String::from_utf8(created.stdout.clone()).unwrap();
    let stderr = String::from_utf8(created.stderr.clone()).unwrap();
    let token = stdout.strip_suffix('\n').unwrap();
    assert!(
        token.starts_with("lgn_") && !token.contains(char::is_whitespace),
        "the token alone on stdout: {stdout:?}"
    );
    assert!(stderr.contains("shown this once"), "{stderr}");
    let me = |token: String| {
        let app = &app;
        async move { app.get("/api/auth/me", Some(&token)).await.status() }
    };
    assert_eq!(me(token.to_owned()).await, reqwest::StatusCode::OK);

    let err = cli.fails(&["token", "create", "ci"], None);
    assert!(err.contains("already exists"), "{err}");
    let err = cli.fails(
        &["token", "create", "later", "--expires-in-days", "0"],
        None,
    );
    assert!(err.contains("expiresInDays"), "{err}");
    let err = cli.fails(&["token", "list", "--owner", "carol"], None);
    assert!(err.contains("--owner"), "{err}");
    cli.ok(
        &["token", "create", "laptop", "--expires-in-days", "7"],
        None,
    );

    let table = cli.ok(&["token", "list"], None);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["NAME", "CREATED", "LAST-USED", "EXPIRES"],
        "{table}"
    );
    assert_eq!(rows[1][0], "ci", "{table}");
    assert_ne!(rows[1][2], "never", "ci was used: {table}");
    assert_eq!(rows[1][3..], ["in", "89d"], "{table}");
    assert_eq!(rows[2][0], "laptop", "{table}");
    assert_eq!(rows[2][2], "never", "{table}");
    assert_eq!(rows[2][3..], ["in", "6d"], "{table}");
    assert!(!table.contains("lgn_"), "{table}");

    assert_eq!(
        cli.ok(&["token", "revoke", "ci"], None),
        "token/ci revoked\n"
    );
    assert_eq!(
        me(token.to_owned()).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    let err = cli.fails(&["token", "revoke", "ci"], None);
    assert!(err.contains("no API token named"), "{err}");
    cli.ok(&["token", "revoke", "laptop"], None);
    assert_eq!(cli.ok(&["token", "list"], None), "No API tokens found.\n");
    app.stop().await;
}

// The local engine as the one node: `longin nodes` for an admin, refused to a user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_lists_the_local_engine_for_admins_only() {
    let app = common::spawn_platform().await;
    let admin = app.admin("root").await;
    app.register("nina").await;
    let root = Cli::signed_in(&app, "root");
    let nina = Cli::signed_in(&app, "nina");
    root.ok(
        &["apply", "-f", "-"],
        Some(&common::app_yaml(
            "web",
            &format!("{}/longin/httpd:1.0", common::registry()),
            2,
            "",
        )),
    );
    common::wait_for(&app, &admin.access_token, "web", "Running", 2).await;

    let table = root.ok(&["nodes"], None);
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("Engine: docker"), "{table}");
    assert!(lines.next().unwrap().starts_with("NAME"), "{table}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let info = common::docker(&["info", "--format", "{{.Name}} {{.ServerVersion}}"]);
    let (hostname, version) = info.trim().split_once(' ').unwrap();
    // NAME ADDRESS ROLE STATE AVAILABILITY ENGINE REPLICAS AGENT: this installation's
    // two; one engine needs no agent.
    assert_eq!(
        row,
        [
            hostname,
            "-",
            "standalone",
            "ready",
            "active",
            version,
            "2",
            "-"
        ],
        "{table}"
    );
    assert_eq!(lines.next(), None, "{table}");

    let json: Value = serde_json::from_str(&root.ok(&["nodes", "-o", "json"], None)).unwrap();
    assert_eq!(json["engine"], "docker");
    assert_eq!(json["publishMode"], Value::Null);
    assert_eq!(json["nodes"][0]["replicasRunning"], 2);
    assert_eq!(json["nodes"][0]["agentRunning"], Value::Null);

    let refused = nina.fails(&["nodes"], None);
    assert!(
        refused.contains("403") || refused.to_lowercase().contains("admin"),
        "{refused}"
    );
    let res = app.get("/api/admin/nodes", Some(&admin.access_token)).await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let res = app.get("/api/admin/nodes", None).await;
    assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED);
}
