//! `longin kubeconfig`: a kubeconfig for the server's Kubernetes-compatible API.
//!
//! It holds a new API token (`kubeconfig-CONTEXT`, replacing an older one of that
//! name), since kubectl cannot refresh Longin's short-lived access tokens, and the CA
//! of the server's generated certificate. Written into an existing file, it replaces
//! only its own cluster, user and context entries and makes its context current.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiClient, check, read_json};
use crate::cli::KubeconfigArgs;

/// What `GET /api/kubernetes` answers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    enabled: bool,
    listen: Option<String>,
    certificate_authority: Option<String>,
    namespace: String,
}

#[derive(Debug, Deserialize)]
struct NewToken {
    token: String,
}

/// Writes (or prints) the kubeconfig; returns what to print.
///
/// # Errors
/// The server has no HTTPS listener, refuses the token, or the file cannot be
/// written.
pub async fn write(client: &mut ApiClient, args: &KubeconfigArgs) -> anyhow::Result<String> {
    let endpoint: Endpoint =
        read_json(client.send(Method::GET, "/api/kubernetes", |r| r).await?).await?;
    let listen = match (endpoint.enabled, endpoint.listen) {
        (true, Some(listen)) => listen,
        _ => bail!(
            "{} serves no Kubernetes API: start it with --tls-listen ADDRESS (e.g. 127.0.0.1:6443)",
            client.credentials().server
        ),
    };
    let server = https_url(&listen, &client.credentials().server)?;
    let token = new_token(
        client,
        &format!("kubeconfig-{}", args.context),
        args.expires_in_days,
    )
    .await?;
    let entries = Entries {
        context: args.context.clone(),
        server,
        ca_pem: endpoint.certificate_authority,
        token,
        namespace: endpoint.namespace,
    };
    let Some(file) = &args.file else {
        return longin_crds::document::to_yaml(&merge(None, &entries)).context("writing YAML");
    };
    let existing = match std::fs::read_to_string(file) {
        Ok(text) if !text.trim().is_empty() => Some(
            longin_crds::document::parse_yaml_documents(&text)
                .ok()
                .and_then(|mut docs| (docs.len() == 1).then(|| docs.remove(0)))
                .with_context(|| {
                    format!("{} is not a kubeconfig (one YAML document)", file.display())
                })?,
        ),
        Ok(_) => None,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
    };
    let config = merge(existing, &entries);
    write_private(
        file,
        &longin_crds::document::to_yaml(&config).context("writing YAML")?,
    )?;
    Ok(format!(
        "kubeconfig context \"{}\" written to {} (namespace {}, server {}); try: kubectl --kubeconfig {} get applications\n",
        entries.context,
        file.display(),
        entries.namespace,
        entries.server,
        file.display()
    ))
}

/// The https URL of `listen`: an unspecified address is reached at the host the CLI
/// already talks to.
fn https_url(listen: &str, api_server: &str) -> anyhow::Result<String> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("the server's HTTPS address {listen:?}"))?;
    if !addr.ip().is_unspecified() {
        return Ok(format!("https://{addr}"));
    }
    let url = reqwest::Url::parse(api_server)
        .with_context(|| format!("the server URL {api_server:?}"))?;
    let host = url.host_str().context("the server URL has no host")?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Ok(format!("https://{host}:{}", addr.port()))
}

/// A fresh token named `name`; an older one of the name is revoked first.
async fn new_token(client: &mut ApiClient, name: &str, days: i64) -> anyhow::Result<String> {
    let body = json!({"name": name, "expiresInDays": days});
    let res = client
        .send(Method::POST, "/api/tokens", |r| r.json(&body))
        .await?;
    let res = if res.status() == StatusCode::CONFLICT {
        let revoked = client
            .send(Method::DELETE, &format!("/api/tokens/{name}"), |r| r)
            .await?;
        check(revoked).await?;
        client
            .send(Method::POST, "/api/tokens", |r| r.json(&body))
            .await?
    } else {
        res
    };
    Ok(read_json::<NewToken>(res).await?.token)
}

/// What `longin kubeconfig` puts into a kubeconfig.
#[derive(Debug, Clone)]
struct Entries {
    context: String,
    server: String,
    ca_pem: Option<String>,
    token: String,
    namespace: String,
}

/// `existing` (or an empty kubeconfig) with this context's cluster, user and context
/// replaced or added, and made current.
fn merge(existing: Option<Value>, entries: &Entries) -> Value {
    let mut config = existing
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"apiVersion": "v1", "kind": "Config", "preferences": {}}));
    let name = &entries.context;
    let mut cluster = json!({"server": entries.server});
    if let Some(pem) = &entries.ca_pem {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(pem));
    }
    replace_entry(&mut config, "clusters", "cluster", name, cluster);
    replace_entry(
        &mut config,
        "users",
        "user",
        name,
        json!({"token": entries.token}),
    );
    replace_entry(
        &mut config,
        "contexts",
        "context",
        name,
        json!({"cluster": name, "user": name, "namespace": entries.namespace}),
    );
    config["current-context"] = json!(name);
    config
}

fn replace_entry(config: &mut Value, list: &str, field: &str, name: &str, value: Value) {
    if !config[list].is_array() {
        config[list] = json!([]);
    }
    if let Some(items) = config[list].as_array_mut() {
        items.retain(|item| item["name"].as_str() != Some(name));
        items.push(json!({"name": name, field: value}));
    }
}

/// Replaces `path` with `text` (mode 0600: it holds a token), atomically.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let staging = dir.join(format!(
        ".{}.longin-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("kubeconfig"),
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", staging.display()))?;
    std::fs::rename(&staging, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Entries {
        Entries {
            context: "longin".to_owned(),
            server: "https://127.0.0.1:6443".to_owned(),
            ca_pem: Some("-----BEGIN CERTIFICATE-----\n".to_owned()),
            token: "lgn_abc".to_owned(),
            namespace: "alice".to_owned(),
        }
    }

    #[test]
    fn a_new_kubeconfig_has_one_context_in_the_users_namespace() {
        let config = merge(None, &entries());
        assert_eq!(config["current-context"], "longin");
        assert_eq!(config["contexts"][0]["context"]["namespace"], "alice");
        assert_eq!(config["users"][0]["user"]["token"], "lgn_abc");
        assert_eq!(
            config["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert!(config["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
    }

    #[test]
    fn merging_keeps_other_entries_and_replaces_its_own() {
        let existing = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "prod",
            "clusters": [{"name": "prod", "cluster": {"server": "https://prod"}}, {"name": "longin", "cluster": {"server": "https://old"}}],
            "users": [{"name": "prod", "user": {"token": "t"}}],
            "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}],
        });
        let config = merge(Some(existing), &entries());
        assert_eq!(config["current-context"], "longin");
        let clusters = config["clusters"].as_array().expect("clusters");
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[0]["name"], "prod");
        assert_eq!(clusters[1]["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(config["users"].as_array().expect("users").len(), 2);
        assert_eq!(config["contexts"].as_array().expect("contexts").len(), 2);
    }

    #[test]
    fn an_unspecified_listen_address_is_reached_at_the_api_host() {
        assert_eq!(
            https_url("127.0.0.1:6443", "http://example.org:3001").expect("url"),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            https_url("0.0.0.0:6443", "http://longin.example.org:3001").expect("url"),
            "https://longin.example.org:6443"
        );
        assert_eq!(
            https_url("[::]:6443", "http://[::1]:3001").expect("url"),
            "https://[::1]:6443"
        );
    }
}
