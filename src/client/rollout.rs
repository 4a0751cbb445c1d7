//! The revision commands, after kubectl's: `rollout history`, `rollout undo`,
//! `rollout status` (waits; its exit code says how the revision ended), `redeploy`
//! and `webhook`.

use std::time::Duration;

use anyhow::bail;
use chrono::{DateTime, Utc};
use reqwest::Method;

use super::answers::{Deployment, NewWebhook, Queued, Webhook};
use super::output::{age, table};
use super::{ApiClient, check, read_json};

/// How `rollout status` waits.
const POLL: Duration = Duration::from_secs(1);

/// The revision table. Pure.
#[must_use]
pub fn history_table(history: &[Deployment], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = history
        .iter()
        .map(|d| {
            vec![
                d.revision.to_string(),
                d.triggered_by.clone(),
                d.status.clone(),
                d.commit_sha
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |c| c[..c.len().min(12)].to_owned()),
                if d.image.is_empty() {
                    "-".to_owned()
                } else {
                    d.image.clone()
                },
                age((now - d.created_at).num_seconds()),
                d.commit_message
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| d.message.clone()),
            ]
        })
        .collect();
    table(
        &[
            "REVISION", "TRIGGER", "STATUS", "COMMIT", "IMAGE", "AGE", "MESSAGE",
        ],
        &rows,
    )
}

/// `longin rollout history NAME`.
///
/// # Errors
/// The server refuses, or the application does not exist.
pub async fn history(client: &mut ApiClient, name: &str) -> anyhow::Result<String> {
    let history: Vec<Deployment> = client
        .get_applications(&format!("/{name}/deployments"))
        .await?;
    Ok(history_table(&history, Utc::now()))
}

/// `longin rollout undo NAME [--to-revision N]`.
///
/// # Errors
/// Nothing to roll back to, no such revision, or the server refuses.
pub async fn undo(client: &mut ApiClient, name: &str, to: Option<i64>) -> anyhow::Result<String> {
    let body = serde_json::json!({ "revision": to });
    let res = client
        .send_applications(Method::POST, &format!("/{name}/rollback"), |r| {
            r.json(&body)
        })
        .await?;
    let queued: Queued = read_json(res).await?;
    Ok(format!(
        "application/{name} rolling back as revision {} (longin rollout status {name})\n",
        queued.revision
    ))
}

/// `longin redeploy NAME`.
///
/// # Errors
/// The server refuses, or the application does not exist.
pub async fn redeploy(client: &mut ApiClient, name: &str) -> anyhow::Result<String> {
    let res = client
        .send_applications(Method::POST, &format!("/{name}/redeploy"), |r| r)
        .await?;
    let queued: Queued = read_json(res).await?;
    Ok(format!(
        "application/{name} redeploying as revision {} (longin rollout status {name})\n",
        queued.revision
    ))
}

/// `longin rollout status NAME [--revision N]`: prints each status the revision
/// passes through and returns once it ended; an error (exit 1) unless it succeeded.
///
/// # Errors
/// The revision failed, was cancelled or superseded, or the wait timed out.
pub async fn status(
    client: &mut ApiClient,
    name: &str,
    revision: Option<i64>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let current: Deployment = match revision {
            Some(r) => {
                client
                    .get_applications(&format!("/{name}/deployments/{r}"))
                    .await?
            }
            None => {
                let history: Vec<Deployment> = client
                    .get_applications(&format!("/{name}/deployments"))
                    .await?;
                match history.into_iter().next() {
                    Some(newest) => newest,
                    None => bail!("application/{name} has no revisions"),
                }
            }
        };
        if current.status != last {
            eprintln!("revision {}: {}", current.revision, current.status);
            last.clone_from(&current.status);
        }
        match current.status.as_str() {
            "succeeded" => {
                return Ok(format!(
                    "application/{name} revision {} successfully rolled out\n",
                    current.revision
                ));
            }
            "failed" | "cancelled" | "superseded" => bail!(
                "application/{name} revision {} {}: {}",
                current.revision,
                current.status,
                current.message
            ),
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "application/{name} revision {} still {} after {} s",
                current.revision,
                current.status,
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `longin webhook NAME [--rotate]`: shows the hook (creating it the first time), or
/// gives it a new secret.
///
/// # Errors
/// The server refuses, or the application does not exist.
pub async fn webhook(client: &mut ApiClient, name: &str, rotate: bool) -> anyhow::Result<String> {
    let path = format!("/{name}/webhook");
    if !rotate {
        let res = client.send_applications(Method::GET, &path, |r| r).await?;
        if res.status() != reqwest::StatusCode::NOT_FOUND {
            let hook: Webhook = read_json(res).await?;
            let mut out = format!(
                "URL:     {}\nSecret:  (set; --rotate for a new one)\n",
                hook.url
            );
            let rows: Vec<Vec<String>> = hook
                .deliveries
                .iter()
                .map(|d| {
                    vec![
                        d.delivery_id.clone(),
                        d.event.clone(),
                        d.result.clone(),
                        d.revision.map_or_else(|| "-".to_owned(), |r| r.to_string()),
                        age((Utc::now() - d.received_at).num_seconds()),
                    ]
                })
                .collect();
            out.push_str("Deliveries:\n");
            out.push_str(&table(
                &["DELIVERY", "EVENT", "RESULT", "REVISION", "AGE"],
                &rows,
            ));
            return Ok(out);
        }
        // No hook yet (or no such app: the PUT says which).
    }
    let res = client.send_applications(Method::PUT, &path, |r| r).await?;
    let hook: NewWebhook = read_json(check(res).await?).await?;
    Ok(format!(
        "URL:     {}\nSecret:  {}\n\nIn GitHub: Settings → Webhooks → Add webhook: this payload URL, content type\napplication/json, this secret, \"Just the push event\". The secret is not shown again.\n",
        hook.url, hook.secret
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lists_revisions_with_commit_and_message() {
        let history: Vec<Deployment> = serde_json::from_value(serde_json::json!([
            {"revision": 2, "triggeredBy": "webhook", "image": "longin/u:757107ea0eb2",
             "commitSha": "757107ea0eb2509fc211221cce984b8a37570b6d", "commitMessage": "Fix the header",
             "status": "succeeded", "message": "", "createdAt": "2026-01-01T00:59:00Z"},
            {"revision": 1, "triggeredBy": "create", "image": "", "status": "failed",
             "message": "git fetch failed", "createdAt": "2026-01-01T00:00:00Z"},
        ]))
        .expect("history");
        let now = DateTime::parse_from_rfc3339("2026-01-01T01:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let out = history_table(&history, now);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("REVISION"), "{out}");
        assert!(
            lines[1].contains("webhook")
                && lines[1].contains("757107ea0eb2 ")
                && lines[1].contains("Fix the header"),
            "{out}"
        );
        assert!(
            lines[2].contains("failed") && lines[2].contains("git fetch failed"),
            "{out}"
        );
    }
}
