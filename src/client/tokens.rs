//! Personal API tokens, for kubectl and CI: `longin token create NAME
//! [--expires-in-days N]`, `token list`, `token revoke NAME`. They take the session of
//! `longin login`; the server refuses an API token here.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;

use super::output::{age, table};
use super::{ApiClient, check, read_json};

/// The answer to a creation: the token, shown this once.
#[derive(Debug, Deserialize)]
struct NewToken {
    token: String,
}

/// One of the caller's tokens, as listed (never the token itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSummary {
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct TokenList {
    items: Vec<TokenSummary>,
}

/// `longin token create NAME`: the token alone on stdout, so that
/// `TOKEN=$(longin token create ci)` keeps just it; the reminder goes to stderr. The
/// server's default lifetime applies unless `expires_in_days` is given.
///
/// # Errors
/// A bad name or lifetime, a name already taken, or the server refuses.
pub async fn create(
    client: &mut ApiClient,
    name: &str,
    expires_in_days: Option<i64>,
) -> anyhow::Result<String> {
    let body = serde_json::json!({ "name": name, "expiresInDays": expires_in_days });
    let res = client
        .send(Method::POST, "/api/tokens", |r| r.json(&body))
        .await?;
    let created: NewToken = read_json(res).await?;
    eprintln!(
        "token/{name} created. It is shown this once: store it now. It acts as you until it expires or `longin token revoke {name}`."
    );
    Ok(format!("{}\n", created.token))
}

/// `longin token list`.
///
/// # Errors
/// The server refuses.
pub async fn list(client: &mut ApiClient) -> anyhow::Result<String> {
    let res = client.send(Method::GET, "/api/tokens", |r| r).await?;
    let list: TokenList = read_json(res).await?;
    if list.items.is_empty() {
        return Ok("No API tokens found.\n".to_owned());
    }
    Ok(token_table(&list.items, Utc::now()))
}

/// `longin token revoke NAME`.
///
/// # Errors
/// No token of that name, or the server refuses.
pub async fn revoke(client: &mut ApiClient, name: &str) -> anyhow::Result<String> {
    let res = client
        .send(Method::DELETE, &format!("/api/tokens/{name}"), |r| r)
        .await?;
    check(res).await?;
    Ok(format!("token/{name} revoked\n"))
}

/// The token table: ages for the past, `in …` for the expiry still ahead. Pure.
#[must_use]
pub fn token_table(tokens: &[TokenSummary], now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                age((now - t.created_at).num_seconds()),
                t.last_used_at
                    .map_or_else(|| "never".to_owned(), |at| age((now - at).num_seconds())),
                match t.expires_at {
                    None => "never".to_owned(),
                    Some(at) if at <= now => "expired".to_owned(),
                    Some(at) => format!("in {}", age((at - now).num_seconds())),
                },
            ]
        })
        .collect();
    table(&["NAME", "CREATED", "LAST-USED", "EXPIRES"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn the_table_shows_ages_and_what_is_left() {
        let tokens: Vec<TokenSummary> = serde_json::from_value(serde_json::json!([
            {"name": "ci", "createdAt": "2026-01-01T00:00:00Z", "lastUsedAt": "2026-01-03T23:55:00Z",
             "expiresAt": "2026-04-01T00:00:00Z"},
            {"name": "laptop", "createdAt": "2026-01-03T00:00:00Z", "lastUsedAt": null,
             "expiresAt": "2026-01-03T12:00:00Z"},
            {"name": "forever", "createdAt": "2026-01-04T00:00:00Z", "expiresAt": null},
        ]))
        .expect("tokens");
        let out = token_table(&tokens, time("2026-01-04T00:00:00Z"));
        let rows: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["NAME", "CREATED", "LAST-USED", "EXPIRES"]);
        assert_eq!(rows[1], ["ci", "3d", "5m", "in", "87d"]);
        assert_eq!(rows[2], ["laptop", "24h", "never", "expired"]);
        assert_eq!(rows[3], ["forever", "0s", "never", "never"]);
    }
}
