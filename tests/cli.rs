//! The `longin` binary end to end: bootstrapping an admin, migrating, and serving with
//! a graceful shutdown.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

fn longin(data_dir: &std::path::Path, database_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_longin"));
    cmd.env("LONGIN_DATA_DIR", data_dir)
        .env("DATABASE_URL", database_url)
        .env_remove("REDIS_URL")
        .env_remove("LONGIN_JWT_SECRET")
        .env("LONGIN_LOG", "warn")
        .env(
            "LONGIN_INSTANCE",
            format!("longin-test-cli-{}", std::process::id()),
        );
    cmd
}

fn run_with_stdin(mut cmd: Command, stdin: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn longin");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[tokio::test]
async fn admin_create_user_bootstraps_an_admin_who_can_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;

    let migrate = longin(dir.path(), &url).arg("migrate").output().unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let mut create = longin(dir.path(), &url);
    create.args([
        "admin",
        "create-user",
        "--username",
        "root",
        "--email",
        "root@example.com",
        "--role",
        "admin",
    ]);
    let out = run_with_stdin(create, "a very good password\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin root"));

    // Taken names and bad input: a readable message and a non-zero exit.
    let mut again = longin(dir.path(), &url);
    again.args([
        "admin",
        "create-user",
        "--username",
        "root",
        "--email",
        "other@example.com",
    ]);
    let out = run_with_stdin(again, "a very good password\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already taken"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut weak = longin(dir.path(), &url);
    weak.args(["admin", "create-user", "--username", "x", "--email", "nope"]);
    let out = run_with_stdin(weak, "short\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for field in ["username", "email", "password"] {
        assert!(stderr.contains(field), "{field} in {stderr}");
    }

    let bad_role = longin(dir.path(), &url)
        .args([
            "admin",
            "create-user",
            "--username",
            "abc",
            "--email",
            "a@b.co",
            "--role",
            "god",
        ])
        .output()
        .unwrap();
    assert!(!bad_role.status.success());
}

/// Operator commands print their result and warnings, not the info lines a server
/// logs: those show with `LONGIN_LOG=info`.
#[tokio::test]
async fn operator_commands_print_no_info_lines_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;
    let create_user = |username: &str, log: Option<&str>| {
        let mut cmd = longin(dir.path(), &url);
        cmd.env_remove("LONGIN_LOG").args([
            "admin",
            "create-user",
            "--username",
            username,
            "--email",
            &format!("{username}@example.com"),
        ]);
        if let Some(log) = log {
            cmd.env("LONGIN_LOG", log);
        }
        run_with_stdin(cmd, "a very good password\n")
    };
    // A fresh database: opening it migrates, which a server logs at info.
    let quiet = create_user("quiet", None);
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    let migrate = longin(dir.path(), &url)
        .env_remove("LONGIN_LOG")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrate.status.success());
    assert_eq!(String::from_utf8_lossy(&migrate.stderr), "");
    // The same command does have info lines to show.
    let loud = create_user("loud", Some("info"));
    assert!(loud.status.success());
    assert!(
        String::from_utf8_lossy(&loud.stderr).contains("INFO"),
        "{}",
        String::from_utf8_lossy(&loud.stderr)
    );
}

/// A free port on loopback (bound and released; good enough for a test).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serve_answers_then_shuts_down_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;
    let mut create = longin(dir.path(), &url);
    create.args([
        "admin",
        "create-user",
        "--username",
        "root",
        "--email",
        "root@example.com",
        "--role",
        "admin",
    ]);
    assert!(
        run_with_stdin(create, "a very good password\n")
            .status
            .success()
    );

    let port = free_port();
    let serve = longin(dir.path(), &url)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(res) = client.get(format!("{base}/readyz")).send().await {
            ready = res.status() == StatusCode::OK;
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "longin serve never became ready");

    let res = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "root", "password": "a very good password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["user"]["role"], "admin");

    // With no LONGIN_JWT_SECRET the server made one, private to its owner.
    if url.starts_with("sqlite:") || dir.path().join("jwt-secret").exists() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("jwt-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let pid = serve.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || serve.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(
        status.status.success(),
        "exit {:?}: {stderr}",
        status.status
    );
}

#[test]
fn bad_configuration_is_a_clear_error_and_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_longin"))
        .args(["serve", "--database-url", "mysql://nope/db"])
        .env("LONGIN_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database url"));

    let out = Command::new(env!("CARGO_BIN_EXE_longin"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LONGIN_DATA_DIR", dir.path())
        .env_remove("DATABASE_URL")
        .env("LONGIN_JWT_SECRET", "too-short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"));
}
