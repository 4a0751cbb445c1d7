//! The client commands: login, logout, apply, get, describe, delete, stop, start,
//! restart. Each prints what kubectl would and fails with a readable message.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::Value;

use super::credentials::{self, Credentials};
use super::output::{GET_HEADER, GET_WIDE_HEADER, age, application_row, table};
use super::{ApiClient, check, http_client};
use crate::cli::OutputFormat;

/// Signs in and saves the session.
///
/// # Errors
/// Wrong credentials, an unreachable server, or the session cannot be saved.
pub async fn login(server: &str, username: &str, password_stdin: bool) -> anyhow::Result<String> {
    let password = if password_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .read_to_string(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        rpassword::prompt_password("Password: ").context("reading the password")?
    };
    let server = server.trim_end_matches('/').to_owned();
    let res = http_client()?
        .post(format!("{server}/api/auth/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    let body: Value = check(res)
        .await?
        .json()
        .await
        .context("reading the login answer")?;
    let (Some(access), Some(refresh)) = (
        body["access_token"].as_str(),
        body["refresh_token"].as_str(),
    ) else {
        bail!("the server's login answer has no tokens");
    };
    credentials::save(&Credentials {
        server: server.clone(),
        username: username.to_owned(),
        access_token: access.to_owned(),
        refresh_token: refresh.to_owned(),
    })?;
    Ok(format!("Logged in to {server} as {username}\n"))
}

/// Revokes the session on the server (best effort) and forgets it.
///
/// # Errors
/// The saved session cannot be removed.
pub async fn logout() -> anyhow::Result<String> {
    if let Some(saved) = credentials::load()? {
        let revoked = http_client()?
            .post(format!("{}/api/auth/logout", saved.server))
            .json(&serde_json::json!({"refresh_token": saved.refresh_token}))
            .send()
            .await;
        if let Err(err) = revoked {
            eprintln!(
                "warning: could not tell {} ({err}); forgetting the session anyway",
                saved.server
            );
        }
    }
    credentials::remove()?;
    Ok("Logged out\n".to_owned())
}

/// The documents named by one `-f`: a file, every `.yaml`/`.yml`/`.json` file of a
/// directory (sorted), or stdin for `-`.
fn read_sources(source: &str) -> anyhow::Result<Vec<(String, String)>> {
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
        return Ok(vec![("<stdin>".to_owned(), text)]);
    }
    let path = Path::new(source);
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("reading directory {source}"))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
            })
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("{source} has no .yaml, .yml or .json files");
        }
        return files
            .into_iter()
            .map(|f| {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?;
                Ok((f.display().to_string(), text))
            })
            .collect();
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {source}"))?;
    Ok(vec![(source.to_owned(), text)])
}

/// Applies every document of every source, one request per file.
///
/// # Errors
/// The first file the server refuses (earlier files stay applied, as with kubectl).
pub async fn apply(client: &mut ApiClient, sources: &[String]) -> anyhow::Result<String> {
    let mut out = String::new();
    for source in sources {
        for (name, text) in read_sources(source)? {
            let res = client
                .send(Method::PUT, "/api/applications/apply", |r| {
                    r.header("content-type", "application/yaml")
                        .body(text.clone())
                })
                .await?;
            let body: Value = check(res)
                .await
                .with_context(|| format!("applying {name}"))?
                .json()
                .await?;
            for result in body["results"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "application/{} {}\n",
                    result["name"].as_str().unwrap_or("?"),
                    result["action"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    Ok(out)
}

/// Lists applications, or shows one.
///
/// # Errors
/// The server refuses, or the application does not exist.
pub async fn get(
    client: &mut ApiClient,
    name: Option<&str>,
    output: Option<OutputFormat>,
) -> anyhow::Result<String> {
    let path = name.map_or_else(
        || "/api/applications".to_owned(),
        |n| format!("/api/applications/{n}"),
    );
    if output == Some(OutputFormat::Yaml) {
        let res = client
            .send(Method::GET, &path, |r| {
                r.header("accept", "application/yaml")
            })
            .await?;
        return Ok(check(res).await?.text().await?);
    }
    let res = client.send(Method::GET, &path, |r| r).await?;
    let body: Value = check(res).await?.json().await?;
    if output == Some(OutputFormat::Json) {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&body)?));
    }
    let items = match name {
        Some(_) => vec![body],
        None => body["items"].as_array().cloned().unwrap_or_default(),
    };
    if items.is_empty() {
        return Ok("No applications found.\n".to_owned());
    }
    let wide = output == Some(OutputFormat::Wide);
    let now = chrono::Utc::now();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|a| application_row(a, now, wide))
        .collect();
    Ok(if wide {
        table(&GET_WIDE_HEADER, &rows)
    } else {
        table(&GET_HEADER, &rows)
    })
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn ago(now: chrono::DateTime<chrono::Utc>, time: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| {
            format!(
                "{} ago",
                age((now - t.with_timezone(&chrono::Utc)).num_seconds())
            )
        })
        .unwrap_or_else(|_| "-".to_owned())
}

/// Shows everything about one application: spec, status, conditions, containers and
/// its recent rollouts.
///
/// # Errors
/// The server refuses, or the application does not exist.
pub async fn describe(client: &mut ApiClient, name: &str) -> anyhow::Result<String> {
    let app: Value = check(
        client
            .send(Method::GET, &format!("/api/applications/{name}"), |r| r)
            .await?,
    )
    .await?
    .json()
    .await?;
    let containers: Value = check(
        client
            .send(
                Method::GET,
                &format!("/api/applications/{name}/containers"),
                |r| r,
            )
            .await?,
    )
    .await?
    .json()
    .await?;
    let history: Value = check(
        client
            .send(
                Method::GET,
                &format!("/api/applications/{name}/deployments"),
                |r| r,
            )
            .await?,
    )
    .await?
    .json()
    .await?;
    let now = chrono::Utc::now();
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{:<22}{v}\n", format!("{k}:")));
    line("Name", s(&app, "/metadata/name").to_owned());
    line("Owner", s(&app, "/metadata/owner").to_owned());
    line("UID", s(&app, "/metadata/uid").to_owned());
    line(
        "Created",
        format!(
            "{} ({})",
            s(&app, "/metadata/creationTimestamp"),
            ago(now, s(&app, "/metadata/creationTimestamp"))
        ),
    );
    if let Some(labels) = app.pointer("/metadata/labels").and_then(Value::as_object) {
        line(
            "Labels",
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    line(
        "Generation",
        app.pointer("/metadata/generation")
            .map(ToString::to_string)
            .unwrap_or_default(),
    );
    line("Image", s(&app, "/spec/image").to_owned());
    let command: Vec<String> = ["/spec/command", "/spec/args"]
        .iter()
        .filter_map(|p| app.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if !command.is_empty() {
        line("Command", command.join(" "));
    }
    line(
        "Container port",
        app.pointer("/spec/containerPort")
            .map(ToString::to_string)
            .unwrap_or_default(),
    );
    line(
        "Replicas",
        format!(
            "{} desired | {} ready | {} updated",
            app.pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            app.pointer("/status/readyReplicas")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            app.pointer("/status/updatedReplicas")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        ),
    );
    line(
        "Resources",
        format!(
            "memory {}, cpu {}",
            s(&app, "/spec/resources/memory"),
            s(&app, "/spec/resources/cpu")
        ),
    );
    let probe = match (
        app.pointer("/spec/healthCheck/http/path"),
        app.pointer("/spec/healthCheck/tcp"),
    ) {
        (Some(path), _) => format!(
            "http GET {} every {}s, timeout {}s, {} failures",
            path.as_str().unwrap_or(""),
            app.pointer("/spec/healthCheck/periodSeconds")
                .map(ToString::to_string)
                .unwrap_or_default(),
            app.pointer("/spec/healthCheck/timeoutSeconds")
                .map(ToString::to_string)
                .unwrap_or_default(),
            app.pointer("/spec/healthCheck/failureThreshold")
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        (None, Some(_)) => "tcp connect".to_owned(),
        (None, None) => "<none>".to_owned(),
    };
    line("Health check", probe);
    line("Restart policy", s(&app, "/spec/restartPolicy").to_owned());
    line("Status", s(&app, "/status/phase").to_owned());
    let ports: Vec<String> = app
        .pointer("/status/hostPorts")
        .and_then(Value::as_array)
        .map(|p| p.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    line(
        "Host ports",
        if ports.is_empty() {
            "<none>".to_owned()
        } else {
            ports.join(", ")
        },
    );
    if let Some(message) = app.pointer("/status/message").and_then(Value::as_str) {
        line("Message", message.to_owned());
    }
    if let Some(env) = app.pointer("/spec/env").and_then(Value::as_array) {
        out.push_str("Environment:\n");
        for var in env {
            let value = if var["secret"] == Value::Bool(true) {
                "<secret>"
            } else {
                var["value"].as_str().unwrap_or("")
            };
            out.push_str(&format!(
                "  {}={value}\n",
                var["name"].as_str().unwrap_or("")
            ));
        }
    }
    out.push_str("Conditions:\n");
    let conditions = app
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if conditions.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let rows: Vec<Vec<String>> = conditions
            .iter()
            .map(|c| {
                vec![
                    s(c, "/type").into(),
                    s(c, "/status").into(),
                    s(c, "/reason").into(),
                    s(c, "/message").into(),
                ]
            })
            .collect();
        out.push_str(&indent(&table(
            &["TYPE", "STATUS", "REASON", "MESSAGE"],
            &rows,
        )));
    }
    out.push_str("Containers:\n");
    let containers = containers.as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let rows: Vec<Vec<String>> = containers
            .iter()
            .map(|c| {
                vec![
                    c["replica"].to_string(),
                    c["dockerId"]
                        .as_str()
                        .map(|id| id.chars().take(12).collect())
                        .unwrap_or_else(|| "-".into()),
                    c["hostPort"]
                        .as_i64()
                        .map_or_else(|| "-".into(), |p| p.to_string()),
                    s(c, "/status").into(),
                    c["restartCount"].to_string(),
                    c["startedAt"]
                        .as_str()
                        .map_or_else(|| "-".into(), |t| ago(now, t)),
                ]
            })
            .collect();
        out.push_str(&indent(&table(
            &[
                "REPLICA",
                "CONTAINER",
                "PORT",
                "STATUS",
                "RESTARTS",
                "STARTED",
            ],
            &rows,
        )));
    }
    out.push_str("Events:\n");
    let history = history.as_array().cloned().unwrap_or_default();
    if history.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let rows: Vec<Vec<String>> = history
            .iter()
            .take(10)
            .map(|d| {
                vec![
                    ago(now, s(d, "/createdAt")),
                    d["generation"].to_string(),
                    s(d, "/triggeredBy").into(),
                    s(d, "/image").into(),
                    s(d, "/status").into(),
                ]
            })
            .collect();
        out.push_str(&indent(&table(
            &["AGE", "GENERATION", "TRIGGER", "IMAGE", "STATUS"],
            &rows,
        )));
    }
    Ok(out)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Deletes an application.
///
/// # Errors
/// The server refuses, or the application does not exist.
pub async fn delete(client: &mut ApiClient, name: &str) -> anyhow::Result<String> {
    let res = client
        .send(Method::DELETE, &format!("/api/applications/{name}"), |r| r)
        .await?;
    let body: Value = check(res).await?.json().await?;
    Ok(match body["status"].as_str() {
        Some("Terminating") => {
            format!("application/{name} deleting (containers are being removed)\n")
        }
        _ => format!("application/{name} deleted\n"),
    })
}

/// Stops, starts or restarts an application (`verb` is the route's last segment).
///
/// # Errors
/// The server refuses, or the application does not exist.
pub async fn verb(client: &mut ApiClient, name: &str, verb: &str) -> anyhow::Result<String> {
    let res = client
        .send(
            Method::POST,
            &format!("/api/applications/{name}/{verb}"),
            |r| r,
        )
        .await?;
    check(res).await?;
    let done = match verb {
        "stop" => "stopped",
        "start" => "started",
        _ => "restarted",
    };
    Ok(format!("application/{name} {done}\n"))
}
