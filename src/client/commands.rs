//! The client commands: login, logout, apply, get, describe, delete, stop, start,
//! restart. Each prints what kubectl would and fails with a readable message.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use reqwest::Method;

use longin_crds::Application;
use longin_crds::application::{ApplicationList, HealthCheck};

use super::answers::{ApplyAnswer, ContainerSummary, DeleteAnswer, Deployment, Tokens};
use super::credentials::{self, Credentials};
use super::output::{GET_HEADER, GET_WIDE_HEADER, age, age_since, application_row, ports, table};
use super::{ApiClient, check, http_client, read_json};
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
    let tokens: Tokens = check(res)
        .await?
        .json()
        .await
        .context("the server's login answer has no tokens")?;
    credentials::save(&Credentials {
        server: server.clone(),
        username: username.to_owned(),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
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
                .send_applications(Method::PUT, "/apply", |r| {
                    r.header("content-type", "application/yaml")
                        .body(text.clone())
                })
                .await?;
            let answer: ApplyAnswer = read_json(res)
                .await
                .with_context(|| format!("applying {name}"))?;
            for result in answer.results {
                out.push_str(&format!("application/{} {}\n", result.name, result.action));
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
    let path = name.map_or_else(String::new, |n| format!("/{n}"));
    match output {
        // The server's own document, as it wrote it.
        Some(OutputFormat::Yaml) => {
            let res = client
                .send_applications(Method::GET, &path, |r| {
                    r.header("accept", "application/yaml")
                })
                .await?;
            return Ok(check(res).await?.text().await?);
        }
        Some(OutputFormat::Json) => {
            let body: serde_json::Value = client.get_applications(&path).await?;
            return Ok(format!("{}\n", serde_json::to_string_pretty(&body)?));
        }
        Some(OutputFormat::Wide) | None => {}
    }
    let items = match name {
        Some(_) => vec![client.get_applications::<Application>(&path).await?],
        None => client.get_applications::<ApplicationList>("").await?.items,
    };
    if items.is_empty() {
        return Ok("No applications found.\n".to_owned());
    }
    let wide = output == Some(OutputFormat::Wide);
    let now = Utc::now();
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

/// `5m ago`, or `-` for no time.
fn ago(now: DateTime<Utc>, time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(
        || "-".to_owned(),
        |t| format!("{} ago", age((now - t).num_seconds())),
    )
}

/// Shows everything about one application: spec, status, conditions, containers and
/// its recent rollouts.
///
/// # Errors
/// The server refuses, or the application does not exist.
pub async fn describe(client: &mut ApiClient, name: &str) -> anyhow::Result<String> {
    let app: Application = client.get_applications(&format!("/{name}")).await?;
    let containers: Vec<ContainerSummary> = client
        .get_applications(&format!("/{name}/containers"))
        .await?;
    let history: Vec<Deployment> = client
        .get_applications(&format!("/{name}/deployments"))
        .await?;
    Ok(description(&app, &containers, &history, Utc::now()))
}

/// What `describe` prints, from what the server answered. Pure.
#[must_use]
pub fn description(
    app: &Application,
    containers: &[ContainerSummary],
    history: &[Deployment],
    now: DateTime<Utc>,
) -> String {
    let mut out = overview(app, now);
    if !app.spec.env.is_empty() {
        out.push_str("Environment:\n");
        for var in &app.spec.env {
            let value = if var.secret {
                "<secret>"
            } else {
                var.value.as_deref().unwrap_or("")
            };
            out.push_str(&format!("  {}={value}\n", var.name));
        }
    }
    let conditions = app.status.as_ref().map_or(&[][..], |s| &s.conditions);
    out.push_str(&section(
        "Conditions",
        &["TYPE", "STATUS", "REASON", "MESSAGE"],
        conditions
            .iter()
            .map(|c| {
                vec![
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                ]
            })
            .collect(),
    ));
    out.push_str(&section(
        "Containers",
        &[
            "REPLICA",
            "CONTAINER",
            "PORT",
            "STATUS",
            "RESTARTS",
            "STARTED",
        ],
        containers.iter().map(|c| container_row(c, now)).collect(),
    ));
    out.push_str(&section(
        "Events",
        &["AGE", "REVISION", "TRIGGER", "IMAGE", "STATUS"],
        history
            .iter()
            .take(10)
            .map(|d| {
                vec![
                    ago(now, Some(d.created_at)),
                    d.revision.to_string(),
                    d.triggered_by.clone(),
                    d.image.clone(),
                    d.status.clone(),
                ]
            })
            .collect(),
    ));
    out
}

/// The `Key:   value` lines at the top of `describe`.
fn overview(app: &Application, now: DateTime<Utc>) -> String {
    let (meta, spec, status) = (&app.metadata, &app.spec, app.status.as_ref());
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{:<22}{v}\n", format!("{k}:")));
    let created = meta.creation_timestamp.as_deref().unwrap_or("");
    line("Name", meta.name.clone());
    line("Owner", meta.owner.clone().unwrap_or_default());
    line("UID", meta.uid.clone().unwrap_or_default());
    let created_ago =
        age_since(now, created).map_or_else(|| "-".to_owned(), |a| format!("{a} ago"));
    line("Created", format!("{created} ({created_ago})"));
    if !meta.labels.is_empty() {
        let labels: Vec<String> = meta
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        line("Labels", labels.join(","));
    }
    line(
        "Generation",
        meta.generation.map(|g| g.to_string()).unwrap_or_default(),
    );
    line(
        "Image",
        spec.image
            .as_ref()
            .map_or_else(|| "<not built yet>".to_owned(), ToString::to_string),
    );
    if let Some(source) = &spec.source {
        line(
            "Source",
            format!(
                "{} {} ({})",
                source.git.url, source.git.branch, source.git.dockerfile
            ),
        );
    }
    let command: Vec<&str> = spec
        .command
        .iter()
        .chain(&spec.args)
        .map(String::as_str)
        .collect();
    if !command.is_empty() {
        line("Command", command.join(" "));
    }
    line("Container port", spec.container_port.to_string());
    line(
        "Replicas",
        format!(
            "{} desired | {} ready | {} updated",
            spec.replicas,
            status.map_or(0, |s| s.ready_replicas),
            status.map_or(0, |s| s.updated_replicas),
        ),
    );
    line(
        "Resources",
        format!(
            "memory {}, cpu {}",
            spec.resources.memory, spec.resources.cpu
        ),
    );
    line("Health check", health_check(spec.health_check.as_ref()));
    line("Restart policy", spec.restart_policy.as_str().to_owned());
    line("Status", status.map_or("", |s| s.phase.as_str()).to_owned());
    line(
        "Host ports",
        ports(status.map_or(&[], |s| &s.host_ports), ", "),
    );
    if let Some(message) = status.and_then(|s| s.message.clone()) {
        line("Message", message);
    }
    out
}

/// How readiness is probed, in a few words.
fn health_check(check: Option<&HealthCheck>) -> String {
    match check {
        Some(HealthCheck {
            http: Some(http),
            period_seconds,
            timeout_seconds,
            failure_threshold,
            ..
        }) => format!(
            "http GET {} every {period_seconds}s, timeout {timeout_seconds}s, {failure_threshold} failures",
            http.path
        ),
        Some(HealthCheck { tcp: Some(_), .. }) => "tcp connect".to_owned(),
        _ => "<none>".to_owned(),
    }
}

/// A replica's row under `Containers:`.
fn container_row(c: &ContainerSummary, now: DateTime<Utc>) -> Vec<String> {
    vec![
        c.replica.to_string(),
        c.docker_id
            .as_deref()
            .map_or_else(|| "-".into(), |id| id.chars().take(12).collect()),
        c.host_port.map_or_else(|| "-".into(), |p| p.to_string()),
        c.status.clone(),
        c.restart_count.to_string(),
        ago(now, c.started_at),
    ]
}

/// `Title:` and its rows as an indented table, or `<none>`.
fn section(title: &str, header: &[&str], rows: Vec<Vec<String>>) -> String {
    let body = if rows.is_empty() {
        "  <none>\n".to_owned()
    } else {
        indent(&table(header, &rows))
    };
    format!("{title}:\n{body}")
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
        .send_applications(Method::DELETE, &format!("/{name}"), |r| r)
        .await?;
    let answer: DeleteAnswer = read_json(res).await?;
    Ok(match answer.status.as_str() {
        "Terminating" => {
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
        .send_applications(Method::POST, &format!("/{name}/{verb}"), |r| r)
        .await?;
    check(res).await?;
    let done = match verb {
        "stop" => "stopped",
        "start" => "started",
        _ => "restarted",
    };
    Ok(format!("application/{name} {done}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(time)
            .expect("a time")
            .with_timezone(&Utc)
    }

    #[test]
    fn description_shows_spec_status_conditions_containers_and_events() {
        let app: Application = serde_json::from_value(serde_json::json!({
            "apiVersion": "longin.io/v1", "kind": "Application",
            "metadata": {"name": "hello", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 3,
                         "owner": "ada", "uid": "u-1", "labels": {"b": "2", "a": "1"}},
            "spec": {"replicas": 3, "image": "busybox", "containerPort": 8080,
                     "command": ["sh", "-c"], "args": ["echo hi"],
                     "env": [{"name": "A", "value": "1"}, {"name": "T", "secret": true}],
                     "resources": {"memory": "64Mi", "cpu": "500m"},
                     "healthCheck": {"http": {"path": "/healthz"}, "periodSeconds": 5,
                                     "timeoutSeconds": 2, "failureThreshold": 4},
                     "restartPolicy": "OnFailure"},
            "status": {"phase": "Degraded", "readyReplicas": 2, "updatedReplicas": 1,
                       "hostPorts": [3100, 3101], "message": "one is down",
                       "conditions": [{"type": "Ready", "status": "False", "reason": "Down",
                                       "message": "r2 down", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        }))
        .expect("an application");
        let containers: Vec<ContainerSummary> = serde_json::from_value(serde_json::json!([
            {"id": "c1", "dockerId": "0123456789abcdef0123", "replica": 0, "hostPort": 3100,
             "status": "running", "restartCount": 2, "startedAt": "2026-01-01T00:30:00Z"},
            {"id": "c2", "dockerId": null, "replica": 1, "hostPort": null, "status": "created",
             "restartCount": 0, "startedAt": null},
        ]))
        .expect("containers");
        let history: Vec<Deployment> = serde_json::from_value(serde_json::json!([
            {"revision": 3, "generation": 3, "triggeredBy": "apply", "image": "busybox", "commitSha": null,
             "status": "succeeded", "createdAt": "2026-01-01T00:59:00Z", "finishedAt": null},
        ]))
        .expect("deployments");
        let expected = "\
Name:                 hello
Owner:                ada
UID:                  u-1
Created:              2026-01-01T00:00:00Z (60m ago)
Labels:               a=1,b=2
Generation:           3
Image:                busybox
Command:              sh -c echo hi
Container port:       8080
Replicas:             3 desired | 2 ready | 1 updated
Resources:            memory 64Mi, cpu 500m
Health check:         http GET /healthz every 5s, timeout 2s, 4 failures
Restart policy:       OnFailure
Status:               Degraded
Host ports:           3100, 3101
Message:              one is down
Environment:
  A=1
  T=<secret>
Conditions:
  TYPE    STATUS   REASON   MESSAGE
  Ready   False    Down     r2 down
Containers:
  REPLICA   CONTAINER      PORT   STATUS    RESTARTS   STARTED
  0         0123456789ab   3100   running   2          30m ago
  1         -              -      created   0          -
Events:
  AGE       REVISION   TRIGGER   IMAGE     STATUS
  60s ago   3          apply     busybox   succeeded
";
        assert_eq!(
            description(&app, &containers, &history, at("2026-01-01T01:00:00Z")),
            expected
        );
    }

    #[test]
    fn description_of_a_bare_application_says_none() {
        let app: Application = serde_json::from_value(serde_json::json!({
            "apiVersion": "longin.io/v1", "kind": "Application",
            "metadata": {"name": "bare"},
            "spec": {"image": "busybox", "containerPort": 80},
        }))
        .expect("an application");
        let out = description(&app, &[], &[], at("2026-01-01T01:00:00Z"));
        for line in [
            "Created:               (-)\n",
            "Health check:         <none>\n",
            "Status:               \n",
            "Host ports:           <none>\n",
            "Conditions:\n  <none>\nContainers:\n  <none>\nEvents:\n  <none>\n",
        ] {
            assert!(out.contains(line), "{line:?} in {out}");
        }
        assert!(
            !out.contains("Environment:") && !out.contains("Labels:"),
            "{out}"
        );
    }
}
