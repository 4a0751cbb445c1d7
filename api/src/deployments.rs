//! An application's revisions: the rollout history, one revision and its build log,
//! and the actions on them (cancel, rollback, redeploy). Every action queues a
//! revision for the controller's builder and answers at once (202) with its number;
//! `longin rollout status` follows it to its end.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use longin_store::deployments::{DeploymentError, DeploymentRecord, NewRevision};

use crate::access::{OwnedApp, OwnerQuery};
use crate::auth::AuthUser;
use crate::context::ApiContext;
use crate::error::{AppError, ErrorBody, FieldErrors};
use crate::extract::AppJson;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(deployments))
        .routes(routes!(deployment))
        .routes(routes!(deployment_log))
        .routes(routes!(cancel))
        .routes(routes!(rollback))
        .routes(routes!(redeploy))
}

/// One revision of an application: what rolled out, why, and how it went.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeploymentView {
    revision: i64,
    /// The application generation that rolls it out, once it does.
    generation: Option<i64>,
    /// `create`, `apply`, `stop`, `start`, `restart`, `webhook`, `redeploy`, `rollback`.
    triggered_by: String,
    /// Empty until a build made it.
    image: String,
    image_digest: Option<String>,
    commit_sha: Option<String>,
    commit_message: Option<String>,
    commit_author: Option<String>,
    /// `queued`, `building`, `deploying`, `succeeded`, `failed`, `cancelled`, `superseded`.
    status: String,
    message: String,
    created_at: chrono::DateTime<chrono::Utc>,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<DeploymentRecord> for DeploymentView {
    fn from(d: DeploymentRecord) -> Self {
        use crate::users::time_from_ms;
        Self {
            revision: d.revision,
            generation: d.generation,
            triggered_by: d.triggered_by,
            image: d.image,
            image_digest: d.image_digest,
            commit_sha: d.commit_sha,
            commit_message: d.commit_message,
            commit_author: d.commit_author,
            status: d.status.as_str().to_owned(),
            message: d.message,
            created_at: time_from_ms(d.created_at),
            started_at: d.started_at.map(time_from_ms),
            finished_at: d.finished_at.map(time_from_ms),
        }
    }
}

/// A queued revision.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Queued {
    revision: i64,
}

impl From<DeploymentError> for AppError {
    fn from(err: DeploymentError) -> Self {
        let message = err.to_string();
        match err {
            DeploymentError::NotFound { .. } => Self::NotFound(message),
            DeploymentError::NotCancellable { .. } => Self::Conflict {
                code: "not_cancellable",
                message,
                fields: FieldErrors::new(),
            },
            DeploymentError::NothingToRollBack => Self::Conflict {
                code: "nothing_to_roll_back",
                message,
                fields: FieldErrors::new(),
            },
            DeploymentError::NoImage { .. } => Self::Conflict {
                code: "no_image",
                message,
                fields: FieldErrors::from([(
                    "revision".to_owned(),
                    "has no image to roll back to".to_owned(),
                )]),
            },
            DeploymentError::Application(err) => err.into(),
        }
    }
}

/// The revision a `…/deployments/{revision}` path names.
fn revision_of(text: &str) -> Result<i64, AppError> {
    text.parse::<i64>()
        .ok()
        .filter(|r| *r > 0)
        .ok_or_else(|| AppError::NotFound("no such revision".to_owned()))
}

async fn found(
    ctx: &ApiContext,
    app_id: &str,
    revision: i64,
) -> Result<DeploymentRecord, AppError> {
    ctx.store
        .deployment(app_id, revision)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("revision {revision} not found")))
}

/// The application's revisions (its rollout history), newest first, at most 50.
#[utoipa::path(
    get, path = "/api/applications/{name}/deployments", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses((status = 200, body = Vec<DeploymentView>), (status = 404, body = ErrorBody))
)]
async fn deployments(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
) -> Result<axum::Json<Vec<DeploymentView>>, AppError> {
    let history = ctx.store.application_deployments(&record.id, 50).await?;
    Ok(axum::Json(
        history.into_iter().map(DeploymentView::from).collect(),
    ))
}

/// One revision.
#[utoipa::path(
    get, path = "/api/applications/{name}/deployments/{revision}", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), ("revision" = i64, Path), OwnerQuery),
    responses((status = 200, body = DeploymentView), (status = 404, body = ErrorBody))
)]
async fn deployment(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
    Path(path): Path<(String, String)>,
) -> Result<axum::Json<DeploymentView>, AppError> {
    let revision = revision_of(&path.1)?;
    Ok(axum::Json(found(&ctx, &record.id, revision).await?.into()))
}

/// A revision's build log as stored so far (capped; `\r` redraws resolved). Live
/// lines: subscribe to the deployment on `/ws/logs`.
#[utoipa::path(
    get, path = "/api/applications/{name}/deployments/{revision}/log", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), ("revision" = i64, Path), OwnerQuery),
    responses(
        (status = 200, description = "The log", content_type = "text/plain", body = String),
        (status = 404, body = ErrorBody),
    )
)]
async fn deployment_log(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
    Path(path): Path<(String, String)>,
) -> Result<Response, AppError> {
    let revision = revision_of(&path.1)?;
    let log = ctx
        .store
        .deployment_log(&record.id, revision)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("revision {revision} not found")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log).into_response())
}

/// Cancels a revision still queued or building; the running image stays.
#[utoipa::path(
    post, path = "/api/applications/{name}/deployments/{revision}/cancel", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), ("revision" = i64, Path), OwnerQuery),
    responses(
        (status = 200, body = DeploymentView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Past building: it can no longer be cancelled", body = ErrorBody),
    )
)]
async fn cancel(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    OwnedApp { record }: OwnedApp,
    Path(path): Path<(String, String)>,
) -> Result<axum::Json<DeploymentView>, AppError> {
    let revision = revision_of(&path.1)?;
    let cancelled = ctx
        .store
        .cancel_deployment(&record.id, revision, &user.username)
        .await?;
    metrics::counter!("longin_deployments_total",
        "trigger" => longin_controller::builds::trigger_label(&cancelled.triggered_by),
        "result" => "cancelled")
    .increment(1);
    tracing::info!(app = %record.name, revision, by = %user.username, "revision cancelled");
    Ok(axum::Json(cancelled.into()))
}

/// Which revision to roll back to.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackRequest {
    /// Default: the newest succeeded revision whose image is not the running one.
    #[schema(minimum = 1)]
    revision: Option<i64>,
}

/// Rolls back: a new revision with revision N's image (rebuilt from N's commit when
/// the image is gone).
#[utoipa::path(
    post, path = "/api/applications/{name}/rollback", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    request_body(content = RollbackRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 400, body = ErrorBody),
        (status = 404, description = "No such application or revision", body = ErrorBody),
        (status = 409, description = "Nothing to roll back to, or terminating", body = ErrorBody),
    )
)]
async fn rollback(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
    body: Option<AppJson<RollbackRequest>>,
) -> Result<Response, AppError> {
    let target = body.and_then(|AppJson(b)| b.revision);
    if target.is_some_and(|r| r <= 0) {
        return Err(AppError::field(
            "revision",
            "must be a revision number (1 or more)",
        ));
    }
    let revision = ctx.store.queue_rollback(&record.id, target).await?;
    tracing::info!(app = %record.name, revision, ?target, "rollback queued");
    Ok((StatusCode::ACCEPTED, axum::Json(Queued { revision })).into_response())
}

/// Redeploys: an application built from git is rebuilt at its branch's head; one of
/// a pulled image is pulled again and every replica replaced.
#[utoipa::path(
    post, path = "/api/applications/{name}/redeploy", tag = "deployments",
    security(("bearer" = [])),
    params(("name" = String, Path), OwnerQuery),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Terminating", body = ErrorBody),
    )
)]
async fn redeploy(
    State(ctx): State<ApiContext>,
    OwnedApp { record }: OwnedApp,
) -> Result<Response, AppError> {
    let new = redeploy_of(&record, "redeploy");
    let revision = ctx.store.queue_deployment(&record.id, &new).await?;
    tracing::info!(app = %record.name, revision, "redeploy queued");
    Ok((StatusCode::ACCEPTED, axum::Json(Queued { revision })).into_response())
}

/// What a redeploy (by hand or by a push) queues for `app`.
pub(crate) fn redeploy_of(
    app: &longin_store::applications::ApplicationRecord,
    trigger: &str,
) -> NewRevision {
    match &app.spec.source {
        Some(source) => NewRevision {
            trigger: trigger.to_owned(),
            source: Some(source.git.clone()),
            ..NewRevision::default()
        },
        None => NewRevision {
            trigger: trigger.to_owned(),
            image: app
                .spec
                .image
                .as_ref()
                .map_or_else(String::new, |i| i.as_str().to_owned()),
            repull: true,
            ..NewRevision::default()
        },
    }
}
