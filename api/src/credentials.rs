//! How Longin reaches an application's private repository: an HTTPS token the user
//! gives (stored sealed, never shown again) and an SSH deploy key Longin generates
//! (only its public half leaves the server, for the user to add to the repository).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{OwnedApp, OwnerQuery};
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody};
use crate::extract::AppJson;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(get_credentials))
        .routes(routes!(set_token, delete_token))
        .routes(routes!(new_deploy_key, delete_deploy_key))
}

/// What the builder has to fetch the application's repository with.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CredentialsView {
    /// Whether an HTTPS token is set (it is never shown).
    token: bool,
    /// The deploy key's public half (`ssh-ed25519 …`), to add to the repository as a
    /// read-only deploy key.
    deploy_key: Option<String>,
}

/// An HTTPS token for the repository (a GitHub fine-grained token with read access to
/// its contents, for example).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    /// Printable ASCII without spaces, as tokens are.
    #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
    token: String,
}

/// The public half of a new deploy key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeployKey {
    deploy_key: String,
}

/// Whether a token is set, and the deploy key's public half.
#[utoipa::path(
    get, path = "/api/applications/{name}/credentials", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses((status = 200, body = CredentialsView), (status = 404, body = ErrorBody))
)]
async fn get_credentials(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
) -> Result<axum::Json<CredentialsView>, AppError> {
    let found = ctx.store.source_credentials(&record.id).await?;
    Ok(axum::Json(CredentialsView {
        token: found.https_token.is_some(),
        deploy_key: found.ssh_public_key,
    }))
}

/// Sets the HTTPS token builds fetch the repository with.
#[utoipa::path(
    put, path = "/api/applications/{name}/credentials/token", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    request_body(content = TokenRequest, content_type = "application/json"),
    responses((status = 204, description = "Set"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn set_token(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
    AppJson(body): AppJson<TokenRequest>,
) -> Result<StatusCode, AppError> {
    let token = body.token.as_str();
    if token.is_empty() || token.len() > 4096 {
        return Err(AppError::field("token", "must be 1 to 4096 characters"));
    }
    // What the schema says (`^[!-~]+$`): the token goes into an HTTP header.
    if !token.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        return Err(AppError::field(
            "token",
            "must be printable ASCII without spaces",
        ));
    }
    ctx.store.set_git_token(&record.id, Some(token)).await?;
    tracing::info!(app = %record.name, "repository token set");
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets the HTTPS token.
#[utoipa::path(
    delete, path = "/api/applications/{name}/credentials/token", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses((status = 204, description = "Forgotten"), (status = 404, body = ErrorBody))
)]
async fn delete_token(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
) -> Result<StatusCode, AppError> {
    ctx.store.set_git_token(&record.id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Generates a new SSH deploy key (ed25519) for the repository, replacing any
/// previous one; answers its public half. The private half never leaves the server.
#[utoipa::path(
    post, path = "/api/applications/{name}/credentials/deploy-key", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses((status = 200, body = DeployKey), (status = 404, body = ErrorBody))
)]
async fn new_deploy_key(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
) -> Result<axum::Json<DeployKey>, AppError> {
    let comment = format!("longin-{}-{}", record.owner_username, record.name);
    let (private, public) = generate_key(&comment).await.map_err(AppError::internal)?;
    ctx.store
        .set_deploy_key(&record.id, Some((&private, &public)))
        .await?;
    tracing::info!(app = %record.name, "deploy key generated");
    Ok(axum::Json(DeployKey { deploy_key: public }))
}

/// Forgets the deploy key.
#[utoipa::path(
    delete, path = "/api/applications/{name}/credentials/deploy-key", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses((status = 204, description = "Forgotten"), (status = 404, body = ErrorBody))
)]
async fn delete_deploy_key(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
) -> Result<StatusCode, AppError> {
    ctx.store.set_deploy_key(&record.id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new ed25519 key pair from `ssh-keygen` (OpenSSH's own format, which `ssh -i`
/// reads), made in a private temporary directory that is removed at once.
async fn generate_key(comment: &str) -> anyhow::Result<(String, String)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("key");
    let out = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private = tokio::fs::read_to_string(&path).await?;
    let public = tokio::fs::read_to_string(path.with_extension("pub")).await?;
    Ok((private, public.trim().to_owned()))
}
