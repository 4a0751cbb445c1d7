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
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_longin"))
            .args(args)
            .env("LONGIN_CONFIG_DIR", self.config_dir.path())
            .env_remove("LONGIN_SERVER")
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
