//! `longin logs` and `longin top`: what an application prints and what it uses.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use reqwest::Method;
use tokio::sync::mpsc;

use longin_crds::application::ApplicationList;

use super::answers::{ContainerSummary, LogEvent, MetricsPoint, MetricsSeries};
use super::output::table;
use super::{ApiClient, check, read_json};

/// A line as the server streams it (JSON lines).
fn write_line(prefix: &str, line: &LogEvent) {
    let text = &line.line;
    // Container stderr to our stderr, as `docker logs` does.
    if line.stream == "stderr" {
        let _ = writeln!(std::io::stderr().lock(), "{prefix}{text}");
    } else {
        let _ = writeln!(std::io::stdout().lock(), "{prefix}{text}");
    }
}

/// The containers to read: every one of the app's, or replica `replica`'s.
async fn containers(
    client: &mut ApiClient,
    name: &str,
    replica: Option<i64>,
) -> anyhow::Result<Vec<(i64, String)>> {
    let list: Vec<ContainerSummary> = client
        .get_applications(&format!("/{name}/containers"))
        .await?;
    let all: Vec<(i64, String)> = list
        .into_iter()
        .filter_map(|c| Some((c.replica, c.docker_id?)))
        .collect();
    if all.is_empty() {
        bail!("{name} has no containers (is it stopped, or still starting?)");
    }
    match replica {
        None => Ok(all),
        Some(r) => {
            let mine: Vec<_> = all.iter().filter(|(i, _)| *i == r).cloned().collect();
            if mine.is_empty() {
                let replicas: Vec<String> = all.iter().map(|(i, _)| i.to_string()).collect();
                bail!(
                    "{name} has no replica {r} (replicas: {})",
                    replicas.join(", ")
                );
            }
            Ok(mine)
        }
    }
}

/// Lines flowing from the readers to the printer: (prefix, JSON line).
type LineSender = mpsc::Sender<(String, LogEvent)>;

/// A reader's end: the container, and the time of the last line it passed on.
type ReaderEnd = (String, Option<String>);

fn line_time(value: &LogEvent) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    value
        .timestamp
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
}

/// Opens `id`'s log stream and spawns a reader that sends its lines to `tx`, skipping
/// lines not newer than `after` (an RFC 3339 time). A failing stream is reported on
/// stderr when it fails, not when everything else has ended.
async fn open_reader(
    client: &mut ApiClient,
    id: &str,
    query: &str,
    prefix: String,
    after: Option<String>,
    tx: LineSender,
    readers: &mut tokio::task::JoinSet<ReaderEnd>,
) -> anyhow::Result<()> {
    let follow = query.contains("follow=true");
    let res = client
        .send(
            Method::GET,
            &format!("/api/containers/{id}/logs?{query}"),
            |r| {
                let r = r.header("accept", "application/x-ndjson");
                // A followed stream lasts as long as the container: not the
                // client's 60-second limit for a whole request.
                if follow {
                    r.timeout(std::time::Duration::from_secs(365 * 24 * 3600))
                } else {
                    r
                }
            },
        )
        .await?;
    let mut res = check(res).await?;
    let id = id.to_owned();
    let after_time = after
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    readers.spawn(async move {
        let mut last = after;
        let mut pending = Vec::new();
        loop {
            let chunk = match res.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(err) => {
                    eprintln!("{prefix}[longin: the log stream failed: {err}]");
                    break;
                }
            };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let Ok(value) = serde_json::from_slice::<LogEvent>(&line) else {
                    continue;
                };
                if after_time.is_some() && line_time(&value) <= after_time {
                    continue;
                }
                if let Some(t) = &value.timestamp {
                    last = Some(t.clone());
                }
                if tx.send((prefix.clone(), value)).await.is_err() {
                    return (id, last);
                }
            }
        }
        (id, last)
    });
    Ok(())
}

/// How often `logs -f` looks for the application's new and restarted containers.
const NEW_CONTAINERS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Follows an application's containers: the `initial` ones from their last `tail`
/// lines, then those it gains (restarts, replacements, rollouts) from their first
/// lines, and those restarted in place from where their stream stopped. Ends when the
/// application is gone.
async fn follow_app(
    mut client: ApiClient,
    name: String,
    replica: Option<i64>,
    prefixed: bool,
    initial: Vec<(i64, String)>,
    tail: usize,
    tx: LineSender,
) -> anyhow::Result<()> {
    let prefix_of = |r: i64| {
        if prefixed {
            format!("[r{r}] ")
        } else {
            String::new()
        }
    };
    let mut readers = tokio::task::JoinSet::new();
    let mut following = std::collections::HashSet::new();
    // Where each ended stream stopped, and the container's restart count then.
    let mut stopped: std::collections::HashMap<String, (Option<String>, i64)> =
        std::collections::HashMap::new();
    let mut restarts: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for (r, id) in &initial {
        let query = format!("tail={tail}&follow=true");
        open_reader(
            &mut client,
            id,
            &query,
            prefix_of(*r),
            None,
            tx.clone(),
            &mut readers,
        )
        .await?;
        following.insert(id.clone());
    }
    loop {
        tokio::time::sleep(NEW_CONTAINERS_EVERY).await;
        while let Some(done) = readers.try_join_next() {
            if let Ok((id, last)) = done {
                following.remove(&id);
                let count = restarts.get(&id).copied().unwrap_or(0);
                stopped.insert(id, (last, count));
            }
        }
        let res = match client
            .send_applications(Method::GET, &format!("/{name}/containers"), |r| r)
            .await
        {
            Ok(res) => res,
            Err(err) => {
                eprintln!("[longin: {err:#}; trying again]");
                continue;
            }
        };
        if res.status() == reqwest::StatusCode::NOT_FOUND {
            eprintln!("[longin: {name} was deleted]");
            return Ok(());
        }
        let list: Vec<ContainerSummary> = match check(res).await {
            Ok(res) => res.json().await.unwrap_or_default(),
            Err(err) => {
                eprintln!("[longin: {err:#}; trying again]");
                continue;
            }
        };
        for c in list {
            let (r, Some(id)) = (c.replica, c.docker_id.as_deref()) else {
                continue;
            };
            let count = c.restart_count;
            restarts.insert(id.to_owned(), count);
            if replica.is_some_and(|want| want != r) || following.contains(id) {
                continue;
            }
            let (query, after) = match stopped.get(id) {
                // New: from its first lines.
                None => ("tail=10000&follow=true".to_owned(), None),
                // Running again (its restart count moved: it also drops when the
                // crash-loop window starts over): from where its stream stopped, or
                // from its start if it had printed nothing.
                Some((last, before)) if count != *before && c.status == "running" => {
                    let since = last
                        .as_ref()
                        .map(|since| format!("&since={since}"))
                        .unwrap_or_default();
                    (format!("tail=10000&follow=true{since}"), last.clone())
                }
                Some(_) => continue,
            };
            match open_reader(
                &mut client,
                id,
                &query,
                prefix_of(r),
                after,
                tx.clone(),
                &mut readers,
            )
            .await
            {
                Ok(()) => {
                    following.insert(id.to_owned());
                    stopped.remove(id);
                }
                // Gone between the listing and the request, or a passing failure.
                Err(err) => eprintln!("[longin: {err:#}]"),
            }
        }
    }
}

/// Prints an application's output: its last `tail` lines, then with `follow` new
/// lines, following its new and restarted containers too, until the application is
/// deleted (Ctrl-C to stop). Several containers: lines prefixed `[rN]`.
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
    let containers = containers(client, name, replica).await?;
    let prefixed = containers.len() > 1;
    let (tx, mut rx) = mpsc::channel::<(String, LogEvent)>(1024);
    if follow {
        // The follower takes the session from here on: `client` is not used again.
        let follower = tokio::spawn(follow_app(
            client.clone(),
            name.to_owned(),
            replica,
            prefixed,
            containers,
            tail,
            tx,
        ));
        while let Some((prefix, value)) = rx.recv().await {
            match value.kind.as_deref() {
                Some("lagged" | "end") => eprintln!(
                    "{prefix}[longin: {}]",
                    value.message.as_deref().unwrap_or("stream ended")
                ),
                _ => write_line(&prefix, &value),
            }
        }
        return follower.await.context("the log follower failed")?;
    }
    let mut readers = tokio::task::JoinSet::new();
    let query = format!("tail={tail}&follow=false");
    for (r, id) in &containers {
        let prefix = if prefixed {
            format!("[r{r}] ")
        } else {
            String::new()
        };
        open_reader(client, id, &query, prefix, None, tx.clone(), &mut readers).await?;
    }
    drop(tx);
    // All of it, merged in time order across containers.
    let mut all = Vec::new();
    while let Some(item) = rx.recv().await {
        all.push(item);
    }
    all.sort_by_key(|(_, v)| line_time(v));
    for (prefix, value) in &all {
        write_line(prefix, value);
    }
    while readers.join_next().await.is_some() {}
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
