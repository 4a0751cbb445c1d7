//! Credentials of an application's private repository: `longin git-token NAME`
//! (the token read from stdin, never an argument a shell history would keep) and
//! `longin deploy-key NAME [--rotate]`.

use std::io::Read as _;

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde::Deserialize;

use super::{ApiClient, check, read_json};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    deploy_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeployKey {
    deploy_key: String,
}

/// Sets the HTTPS token builds fetch with, read from stdin; `clear` forgets it.
///
/// # Errors
/// An empty token, or the server refuses.
pub async fn git_token(client: &mut ApiClient, name: &str, clear: bool) -> anyhow::Result<String> {
    let path = format!("/{name}/credentials/token");
    if clear {
        check(
            client
                .send_applications(Method::DELETE, &path, |r| r)
                .await?,
        )
        .await?;
        return Ok(format!("application/{name} repository token forgotten\n"));
    }
    let mut token = String::new();
    std::io::stdin()
        .read_to_string(&mut token)
        .context("reading the token from stdin")?;
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("no token on stdin (echo \"$TOKEN\" | longin git-token {name})");
    }
    let body = serde_json::json!({ "token": token });
    check(
        client
            .send_applications(Method::PUT, &path, |r| r.json(&body))
            .await?,
    )
    .await?;
    Ok(format!("application/{name} repository token set\n"))
}

/// Shows the deploy key's public half, generating one the first time (or with
/// `rotate`, always: the old key stops working).
///
/// # Errors
/// The server refuses, or the application does not exist.
pub async fn deploy_key(
    client: &mut ApiClient,
    name: &str,
    rotate: bool,
) -> anyhow::Result<String> {
    if !rotate {
        let found: Credentials = client
            .get_applications(&format!("/{name}/credentials"))
            .await?;
        if let Some(key) = found.deploy_key {
            return Ok(format!("{key}\n"));
        }
    }
    let res = client
        .send_applications(
            Method::POST,
            &format!("/{name}/credentials/deploy-key"),
            |r| r,
        )
        .await?;
    let key: DeployKey = read_json(res).await?;
    eprintln!("Add this key to the repository as a read-only deploy key:");
    Ok(format!("{}\n", key.deploy_key))
}
