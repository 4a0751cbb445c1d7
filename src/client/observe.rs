//! `longin logs` and `longin top`: what an application prints and what it uses.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use reqwest::Method;

use longin_crds::application::ApplicationList;

use super::answers::{LogEvent, MetricsPoint, MetricsSeries};
use super::output::table;
use super::{ApiClient, check, read_json};

/// Prints one object of the stream: a line (container stderr to our stderr, as
/// `docker logs` does) or a notice (to stderr).
fn print_event(event: &LogEvent, prefixed: bool) {
    let prefix = match (event.replica, event.node.as_deref()) {
        (Some(r), Some(node)) if prefixed => format!("[r{r} {node}] "),
        (Some(r), None) if prefixed => format!("[r{r}] "),
        _ => String::new(),
    };
    match event.kind.as_deref() {
        Some(_) => eprintln!(
            "{prefix}[longin: {}]",
            event.message.as_deref().unwrap_or("stream ended")
        ),
        None if event.stream == "stderr" => {
            let _ = writeln!(std::io::stderr().lock(), "{prefix}{}", event.line);
        }
        None => {
            let _ = writeln!(std::io::stdout().lock(), "{prefix}{}", event.line);
        }
    }
}

/// Prints an application's output as the server streams it from
/// `/api/applications/{name}/logs`: its last `tail` lines per container merged in time
/// order, then with `follow` new lines — the server follows new and restarted
/// containers too — until the application is deleted (Ctrl-C to stop). Lines of
/// several replicas are prefixed `[rN]`.
///
/// # Errors
/// The server refuses, or the application has no such replica.
pub async fn logs(
    client: &mut ApiClient,
    name: &str,
    follow: bool,
    tail: usize,
    replica: Option<i64>,
) -> anyhow::Result<()> {
    let mut query = vec![("tail", tail.to_string()), ("follow", follow.to_string())];
    if let Some(r) = replica {
        query.push(("replica", r.to_string()));
    }
    let res = client
        .send_applications(Method::GET, &format!("/{name}/logs"), |r| {
            let r = r.query(&query).header("accept", "application/x-ndjson");
            // A followed stream lasts as long as the application: not the client's
            // 60-second limit for a whole request.
            if follow {
                r.timeout(std::time::Duration::from_secs(365 * 24 * 3600))
            } else {
                r
            }
        })
        .await?;
    let mut res = check(res).await?;
    let replicas: usize = res
        .headers()
        .get("longin-replicas")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if replicas == 0 && !follow {
        bail!("{name} has no containers (is it stopped, or still starting?)");
    }
    let prefixed = replica.is_none() && replicas > 1;
    let mut pending = Vec::new();
    while let Some(chunk) = res.chunk().await.context("the log stream failed")? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Ok(event) = serde_json::from_slice::<LogEvent>(&line) {
                print_event(&event, prefixed);
            }
        }
    }
    Ok(())
}

/// Human bytes: `512Ki`, `41.5Mi`, `2.0Gi`.
#[must_use]
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["Ki", "Mi", "Gi", "Ti"];
    if n < 1024.0 {
        return format!("{n:.0}");
    }
    let mut value = n / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 100.0 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// CPU and memory per application, from the latest collection cycle of the last two
/// minutes.
///
/// # Errors
/// The server refuses.
pub async fn top(client: &mut ApiClient) -> anyhow::Result<String> {
    let list: ApplicationList = client.get_applications("").await?;
    let since = chrono::Utc::now().timestamp() - 120;
    let mut rows = Vec::new();
    let me = client.credentials().username.clone();
    for app in &list.items {
        let name = &app.metadata.name;
        // Admins list everyone's applications: each is read as its owner's.
        let owner = app.metadata.owner.clone().unwrap_or_else(|| me.clone());
        let res = client
            .send(
                Method::GET,
                &format!("/api/applications/{name}/metrics?since={since}&step=1"),
                |r| r.query(&[("owner", &owner)]),
            )
            .await?;
        let series: MetricsSeries = read_json(res).await?;
        let latest = series.points.last().copied();
        let f = |figure: fn(&MetricsPoint) -> f64| latest.as_ref().map(figure);
        rows.push(vec![
            if owner == me {
                name.clone()
            } else {
                format!("{owner}/{name}")
            },
            f(|p| p.cpu_percent).map_or_else(|| "-".to_owned(), |c| format!("{c:.1}%")),
            f(|p| p.memory_bytes).map_or_else(|| "-".to_owned(), bytes),
            f(|p| p.memory_limit_bytes).map_or_else(|| "-".to_owned(), bytes),
            f(|p| p.containers).map_or_else(|| "0".to_owned(), |c| format!("{c:.0}")),
        ]);
    }
    if rows.is_empty() {
        return Ok("No applications found.\n".to_owned());
    }
    Ok(table(
        &["NAME", "CPU", "MEMORY", "LIMIT", "CONTAINERS"],
        &rows,
    ))
}

/// `longin nodes`: the engine's machines, as `GET /api/admin/nodes` lists them.
pub async fn nodes(
    client: &mut ApiClient,
    output: Option<crate::cli::OutputFormat>,
) -> anyhow::Result<String> {
    let res = client.send(Method::GET, "/api/admin/nodes", |r| r).await?;
    let view: serde_json::Value = read_json(res).await?;
    if matches!(output, Some(crate::cli::OutputFormat::Json)) {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&view)?));
    }
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("-")
            .to_owned()
    };
    let rows: Vec<Vec<String>> = view
        .get("nodes")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let leader = n.get("leader").and_then(serde_json::Value::as_bool) == Some(true);
            vec![
                text(n, "hostname"),
                text(n, "address"),
                if leader {
                    format!("{} (leader)", text(n, "role"))
                } else {
                    text(n, "role")
                },
                text(n, "state"),
                text(n, "availability"),
                text(n, "engineVersion"),
                n.get("replicasRunning")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0)
                    .to_string(),
                match n.get("agentRunning").and_then(serde_json::Value::as_bool) {
                    Some(true) => "running",
                    Some(false) => "missing",
                    None => "-",
                }
                .to_owned(),
            ]
        })
        .collect();
    let mut out = match view.get("publishMode").and_then(serde_json::Value::as_str) {
        Some(mode) => format!("Engine: {} (publishing: {mode})\n", text(&view, "engine")),
        None => format!("Engine: {}\n", text(&view, "engine")),
    };
    out.push_str(&table(
        &[
            "NAME",
            "ADDRESS",
            "ROLE",
            "STATE",
            "AVAILABILITY",
            "ENGINE",
            "REPLICAS",
            "AGENT",
        ],
        &rows,
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_kubectl_top() {
        assert_eq!(bytes(512.0), "512");
        assert_eq!(bytes(2048.0), "2.0Ki");
        assert_eq!(bytes(41.5 * 1024.0 * 1024.0), "41.5Mi");
        assert_eq!(bytes(512.0 * 1024.0 * 1024.0), "512Mi");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0Gi");
    }
}
